"""Model sync: S3 object events (through SQS) become ONE SSM Run Command per batch on every GPU node.

Flow per invocation (an SQS batch, partial batch responses on):
  1. parse S3 records out of the SQS messages (and recognise S3's test event); malformed messages fail
     and end in the dead-letter queue after the queue's max receives;
  2. URL-decode keys, reject unsafe ones (logged, never sent) and coalesce per key: the latest event
     (S3 sequencer, then eventTime) decides whether the key is a copy or a delete;
  3. find running GPU nodes of this cluster by tags (paginated); none running means nothing to do (the
     boot-time full sync covers nodes that start later);
  4. send the node-side script the list as a gzip+base64 payload (only [A-Za-z0-9+/=] reaches the shell,
     so no key can inject anything), to at most 50 instances per SendCommand call; a list too large for
     one command becomes a full sync;
  5. if any call fails, every message that contributed a key is returned in batchItemFailures so SQS
     retries it. The node script reconciles each key against the bucket, so retries are cheap and
     out-of-order batches converge.

Runs on the Lambda Python 3.12 runtime and on Python 3.11 (tests). Only the standard library and boto3.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shlex
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

COPY = "copy"
DELETE = "delete"
FULL = "full"
# SendCommand accepts at most 50 InstanceIds per call.
MAX_INSTANCES_PER_CALL = 50
# Conservative bound on the command line sent to a node: far below SSM's request and document limits.
DEFAULT_MAX_COMMAND_BYTES = 16 * 1024
PAYLOAD_HEADER = "comfyui-model-sync/1"
# Node-local names in the models directory (ready marker, staging); must match modules/names.py.
RESERVED_PREFIX = ".comfyui-"
DOCUMENT_NAME = "AWS-RunShellScript"
MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux file systems
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^([A-Za-z0-9_.-]+/)*$")
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
# Unicode categories refused in keys: control characters and line/paragraph separators.
_REFUSED_CATEGORIES = {"Cc", "Zl", "Zp"}
# Shell metacharacters: keys never reach a shell (they travel base64-encoded), but a model file named
# `$(reboot)` or `;rm -rf x` is a trap for every later script and operator. The node script refuses the
# same set and its full sync excludes it, so both paths agree on what a node holds.
SHELL_METACHARACTERS = frozenset("$`;|&<>\"'\\*?")


def log(level: str, event: str, **fields: Any) -> None:
    """One JSON object per line: CloudWatch Logs Insights can filter and count on any field."""
    record = {"level": level, "event": event, **fields}
    sys.stdout.write(json.dumps(record, default=str, ensure_ascii=True) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str
    models_dir: str
    region: str
    cluster_name: str
    cluster_tag_key: str
    pool_tag_key: str
    pool_tag_value: str
    script_path: str
    node_timeout_seconds: int = 7200
    max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES

    def __post_init__(self) -> None:
        # The values end up on a root shell on every GPU node: refuse anything unexpected at start-up.
        if not _BUCKET.match(self.bucket):
            raise ValueError(f"MODELS_BUCKET {self.bucket!r} is not a bucket name")
        if not _PREFIX.match(self.prefix) or {".", ".."} & set(self.prefix.split("/")):
            raise ValueError(f"MODELS_PREFIX {self.prefix!r} must be empty or 'name/...' ending with '/'")
        if not re.match(r"^/[A-Za-z0-9_./-]+$", self.models_dir):
            raise ValueError(f"MODELS_DIR {self.models_dir!r} is not an absolute path")
        if not re.match(r"^/[A-Za-z0-9_./-]+$", self.script_path):
            raise ValueError(f"SYNC_SCRIPT_PATH {self.script_path!r} is not an absolute path")
        if not _REGION.match(self.region):
            raise ValueError(f"BUCKET_REGION {self.region!r} is not a region")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            bucket=environ["MODELS_BUCKET"],
            prefix=environ.get("MODELS_PREFIX", ""),
            models_dir=environ["MODELS_DIR"],
            region=environ.get("BUCKET_REGION") or environ["AWS_REGION"],
            cluster_name=environ["CLUSTER_NAME"],
            cluster_tag_key=environ["CLUSTER_TAG_KEY"],
            pool_tag_key=environ["POOL_TAG_KEY"],
            pool_tag_value=environ["POOL_TAG_VALUE"],
            script_path=environ["SYNC_SCRIPT_PATH"],
            node_timeout_seconds=int(environ.get("NODE_COMMAND_TIMEOUT_SECONDS", "7200")),
            max_command_bytes=int(environ.get("MAX_COMMAND_BYTES", str(DEFAULT_MAX_COMMAND_BYTES))),
        )


@dataclass
class Change:
    key: str
    action: str  # COPY or DELETE
    sequencer: str
    event_time: str
    arrival: int
    message_id: str


@dataclass
class Batch:
    """What one SQS batch asks for, after parsing and validation."""

    changes: list[Change] = field(default_factory=list)
    failed_messages: set[str] = field(default_factory=set)
    messages: int = 0
    s3_records: int = 0
    test_events: int = 0
    malformed: int = 0
    rejected: int = 0
    ignored: int = 0


def unsafe_reason(key: str, prefix: str) -> str | None:
    """Why a (decoded) key must never reach a node, or None when it is safe to sync."""
    if not key:
        return "empty key"
    for char in key:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"control character U+{ord(char):04X}"
    if key.startswith("/"):
        return "absolute path"
    found = sorted(SHELL_METACHARACTERS.intersection(key))
    if found:
        return f"shell metacharacter {''.join(found)!r}"
    if not key.startswith(prefix):
        return f"outside the synced prefix {prefix!r}"
    relative = key[len(prefix) :]
    segments = relative.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            return "'..', '.' or empty path segment"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"path segment longer than {MAX_SEGMENT_BYTES} bytes"
    if segments[0].startswith(RESERVED_PREFIX):
        return f"reserved name (node-local files start with {RESERVED_PREFIX!r})"
    return None


def _records(message_body: str) -> tuple[str, list[dict]]:
    """('test' | 'records', records) from one SQS message body; ValueError if it is not an S3 event."""
    body = json.loads(message_body)
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return "test", []
    records = body.get("Records")
    if not isinstance(records, list) or not records:
        raise ValueError("no S3 'Records' in body")
    return "records", records


def parse_batch(event: Mapping[str, Any], settings: Settings) -> Batch:
    batch = Batch()
    sqs_records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(sqs_records, list):
        log("error", "malformed_event", reason="event has no SQS 'Records' list")
        return batch
    arrival = 0
    for sqs_record in sqs_records:
        message_id = sqs_record.get("messageId") if isinstance(sqs_record, Mapping) else None
        if not isinstance(message_id, str):
            # Without an id the record cannot be reported; SQS redelivers it if the batch fails.
            log("error", "malformed_record", reason="SQS record without messageId")
            batch.malformed += 1
            continue
        batch.messages += 1
        try:
            kind, s3_records = _records(sqs_record.get("body", ""))
            changes = []
            for s3_record in s3_records:
                arrival += 1
                change = _change(s3_record, message_id, arrival, settings, batch)
                if change is not None:
                    changes.append(change)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            # Not retryable, but returned as a failure so that it ends in the DLQ for a human to see.
            batch.malformed += 1
            batch.failed_messages.add(message_id)
            log("error", "malformed_record", message_id=message_id, reason=str(err)[:300])
            continue
        if kind == "test":
            batch.test_events += 1
            log("info", "s3_test_event", message_id=message_id)
        batch.changes.extend(changes)
    return batch


def _change(record: Mapping, message_id: str, arrival: int, settings: Settings, batch: Batch) -> Change | None:
    if not isinstance(record, Mapping):
        raise ValueError("S3 record is not an object")
    batch.s3_records += 1
    event_name = record["eventName"]
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    raw_key = s3["object"]["key"]
    if not isinstance(event_name, str) or not isinstance(raw_key, str) or not isinstance(bucket, str):
        raise ValueError("eventName, bucket name and object key must be strings")
    if event_name.startswith("ObjectCreated:"):
        action = COPY
    elif event_name.startswith("ObjectRemoved:"):
        action = DELETE
    else:
        batch.ignored += 1
        log("info", "ignored_event", message_id=message_id, event_name=event_name[:100])
        return None
    # S3 URL-encodes keys in notifications (a space arrives as '+').
    key = unquote_plus(raw_key, encoding="utf-8", errors="strict")
    reason = "event for another bucket" if bucket != settings.bucket else unsafe_reason(key, settings.prefix)
    if reason is not None:
        batch.rejected += 1
        log("warning", "rejected_key", message_id=message_id, key=key[:300], reason=reason)
        return None
    return Change(
        key=key,
        action=action,
        sequencer=str(s3["object"].get("sequencer") or ""),
        event_time=str(record.get("eventTime") or ""),
        arrival=arrival,
        message_id=message_id,
    )


def coalesce(changes: Iterable[Change]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Per key, the action of its latest event, and the messages that mentioned the key.

    S3 sequencers order events of the same key: right-pad the shorter with zeros, then compare as
    strings (AWS guidance). eventTime and arrival order break ties or stand in when one is missing.
    """
    by_key: dict[str, list[Change]] = {}
    for change in changes:
        by_key.setdefault(change.key, []).append(change)
    actions: dict[str, str] = {}
    sources: dict[str, set[str]] = {}
    for key, events in by_key.items():
        width = max(len(event.sequencer) for event in events)
        latest = max(
            events, key=lambda event: (event.sequencer.upper().ljust(width, "0"), event.event_time, event.arrival)
        )
        actions[key] = latest.action
        sources[key] = {event.message_id for event in events}
    return actions, sources


def encode_payload(actions: Mapping[str, str]) -> str:
    lines = [PAYLOAD_HEADER] + [f"{actions[key]} {key}" for key in sorted(actions)]
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    return base64.b64encode(data).decode("ascii")


def decode_payload(payload: str) -> dict[str, str]:
    """Inverse of encode_payload (tests, the benchmark and operators reading a command)."""
    lines = gzip.decompress(base64.b64decode(payload, validate=True)).decode("utf-8").splitlines()
    if not lines or lines[0] != PAYLOAD_HEADER:
        raise ValueError("not a comfyui-model-sync payload")
    result = {}
    for line in lines[1:]:
        action, _, key = line.partition(" ")
        if action not in (COPY, DELETE):
            raise ValueError(f"bad payload line {line!r}")
        result[key] = action
    return result


def build_command(settings: Settings, actions: Mapping[str, str]) -> tuple[str, str]:
    """(mode, shell command) for the node. Every argument is quoted; keys travel only in the payload."""
    base = [
        settings.script_path,
        "--bucket",
        settings.bucket,
        "--prefix",
        settings.prefix,
        "--dir",
        settings.models_dir,
        "--region",
        settings.region,
    ]
    incremental = shlex.join([*base, "--payload", encode_payload(actions)])
    if len(incremental.encode("ascii")) <= settings.max_command_bytes:
        return "incremental", incremental
    return FULL, shlex.join([*base, "--full"])


def gpu_nodes(ec2: Any, settings: Settings) -> list[str]:
    """Running instances carrying this cluster's tag and the GPU pool tag, across every page."""
    filters = [
        {"Name": f"tag:{settings.cluster_tag_key}", "Values": [settings.cluster_name]},
        {"Name": f"tag:{settings.pool_tag_key}", "Values": [settings.pool_tag_value]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    ids: set[str] = set()
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters, PaginationConfig={"PageSize": 1000})
    for page in pages:
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                ids.add(instance["InstanceId"])
    return sorted(ids)


def chunks(items: list[str], size: int = MAX_INSTANCES_PER_CALL) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class SendResult:
    command_ids: list[str] = field(default_factory=list)
    calls: int = 0
    failed_calls: int = 0
    unreachable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def send(ssm: Any, settings: Settings, instance_ids: list[str], command: str, comment: str) -> SendResult:
    """Send one command to every instance, 50 per call. Errors are collected, never raised."""
    result = SendResult()
    for chunk in chunks(instance_ids):
        _send_chunk(ssm, settings, chunk, command, comment, result, retry_without_unreachable=True)
    return result


def _send_chunk(
    ssm: Any,
    settings: Settings,
    chunk: list[str],
    command: str,
    comment: str,
    result: SendResult,
    *,
    retry_without_unreachable: bool,
) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    result.calls += 1
    try:
        response = ssm.send_command(
            InstanceIds=chunk,
            DocumentName=DOCUMENT_NAME,
            Comment=comment[:100],
            Parameters={"commands": [command], "executionTimeout": [str(settings.node_timeout_seconds)]},
            # Run everywhere at once and let one failing node not cancel the others.
            MaxConcurrency=str(MAX_INSTANCES_PER_CALL),
            MaxErrors="100%",
            TimeoutSeconds=600,
        )
        result.command_ids.append(response["Command"]["CommandId"])
    except ClientError as err:
        result.failed_calls += 1
        code = err.response.get("Error", {}).get("Code", "ClientError")
        message = err.response.get("Error", {}).get("Message", "")
        # A node whose SSM agent is not registered yet (still booting) or broken fails the whole call and is
        # named in the message: send to the others now, and fail the batch so SQS retries it later.
        unreachable = sorted(set(_INSTANCE_ID.findall(message)) & set(chunk)) if code == "InvalidInstanceId" else []
        result.errors.append(f"{code}: {message[:200]}")
        log("error", "send_command_failed", code=code, message=message[:300], instances=len(chunk))
        if unreachable and retry_without_unreachable:
            result.unreachable.extend(unreachable)
            rest = [instance for instance in chunk if instance not in unreachable]
            log("warning", "unreachable_nodes", instances=unreachable, retrying=len(rest))
            if rest:
                _send_chunk(ssm, settings, rest, command, comment, result, retry_without_unreachable=False)
    except BotoCoreError as err:
        result.failed_calls += 1
        result.errors.append(f"{type(err).__name__}: {err}"[:200])
        log("error", "send_command_failed", code=type(err).__name__, message=str(err)[:300], instances=len(chunk))


def process(event: Mapping[str, Any], settings: Settings, ec2: Any, ssm: Any) -> dict[str, list[dict[str, str]]]:
    """The handler's logic with its clients passed in (tests and the benchmark use moto's)."""
    started = time.monotonic()
    batch = parse_batch(event, settings)
    actions, sources = coalesce(batch.changes)
    contributing = set().union(*sources.values()) if sources else set()
    failed = set(batch.failed_messages)
    summary: dict[str, Any] = {
        "messages": batch.messages,
        "s3_records": batch.s3_records,
        "test_events": batch.test_events,
        "malformed": batch.malformed,
        "rejected": batch.rejected,
        "ignored": batch.ignored,
        "keys": len(actions),
        "copies": sum(1 for action in actions.values() if action == COPY),
        "deletes": sum(1 for action in actions.values() if action == DELETE),
        "nodes": 0,
        "mode": "none",
        "send_command_calls": 0,
    }
    if actions:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            nodes = gpu_nodes(ec2, settings)
        except (ClientError, BotoCoreError) as err:
            log("error", "describe_instances_failed", message=str(err)[:300])
            nodes = None
            failed |= contributing
        if nodes is not None:
            summary["nodes"] = len(nodes)
            if not nodes:
                log("info", "no_gpu_nodes", detail="nothing sent; nodes run a full sync when they boot")
            else:
                mode, command = build_command(settings, actions)
                summary["mode"] = mode
                comment = (
                    f"model-sync full ({len(actions)} keys over the command limit)"
                    if mode == FULL
                    else f"model-sync {summary['copies']} copy {summary['deletes']} delete"
                )
                result = send(ssm, settings, nodes, command, comment)
                summary.update(
                    send_command_calls=result.calls,
                    failed_calls=result.failed_calls,
                    command_ids=result.command_ids,
                    unreachable=result.unreachable,
                    command_bytes=len(command),
                )
                if not result.ok:
                    failed |= contributing
    summary["failed_messages"] = len(failed)
    summary["duration_ms"] = round((time.monotonic() - started) * 1000)
    log("error" if failed else "info", "batch_done", **summary)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(failed)]}


_CLIENTS: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        # Standard retry mode backs off on throttling; what is still failing goes back to SQS.
        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
        _CLIENTS[name] = boto3.client(name, config=config)
    return _CLIENTS[name]


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    try:
        settings = Settings.from_env()
    except (KeyError, ValueError) as err:
        # A broken deployment: fail every message so nothing is lost; they reach the DLQ and its alarm.
        log("error", "bad_configuration", message=str(err))
        records = event.get("Records", []) if isinstance(event, Mapping) else []
        ids = [r.get("messageId") for r in records if isinstance(r, Mapping) and isinstance(r.get("messageId"), str)]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in ids]}
    return process(event, settings, _client("ec2"), _client("ssm"))
