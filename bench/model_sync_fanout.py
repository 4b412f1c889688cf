#!/usr/bin/env python
"""Model sync fan-out: SSM commands and node-side transfers for a burst of S3 object events.

    pipenv run python bench/model_sync_fanout.py [--batch-size N] [--events 10,100,1000] [--nodes 1,10,100]

Both approaches run for real against moto (EC2 instances tagged as this cluster's GPU nodes, SSM):

- per-event (the reference solution): S3 invokes the Lambda once per object event; each invocation
  sends one `aws s3 cp` command for its key to every GPU node (deletes too: it re-copies). Chunked to
  50 instances per call here so that it works at all above 50 nodes (the reference does not chunk).
- ours: the events go through SQS and reach the real handler (lambda/model_sync) in batches of the
  configured batch size (the burst fits in the batching window); it coalesces per key and sends one
  command per batch, 50 instances per call.

Counted from the SendCommand requests actually made: SSM calls, and node-side transfers = keys to
download x instances addressed (an upper bound for ours: the node script skips unchanged files).
The burst is deterministic: 85% uploads of new models, 10% re-uploads of a model already uploaded in
the burst, 5% deletes (half of them of models uploaded in the burst).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from config.schema import ModelSyncConfig  # noqa: E402
from modules.names import CLUSTER_TAG_KEY, GPU_POOL_TAG_KEY, GPU_POOL_TAG_VALUE, MODEL_SYNC_SCRIPT_PATH  # noqa: E402

REGION = "us-west-2"
BUCKET = "comfyui-bench-models-111122223333-us-west-2"
CLUSTER = "comfyui-bench"


def load_handler():
    path = PROJECT / "lambda" / "model_sync" / "sync_handler.py"
    spec = importlib.util.spec_from_file_location("model_sync_handler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.dont_write_bytecode = True  # keep __pycache__ out of the Lambda sources
    spec.loader.exec_module(module)
    return module


def burst(count: int, seed: int = 4) -> list[tuple[str, str]]:
    """(key, eventName) in upload order."""
    rng = random.Random(seed)
    uploaded: list[str] = []
    events = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.10 and uploaded:
            events.append((rng.choice(uploaded), "ObjectCreated:CompleteMultipartUpload"))
        elif roll < 0.15:
            key = rng.choice(uploaded) if uploaded and rng.random() < 0.5 else f"loras/retired-{n:05d}.safetensors"
            events.append((key, "ObjectRemoved:Delete"))
        else:
            key = f"checkpoints/flux1-dev-fp8-{n:05d}.safetensors"
            uploaded.append(key)
            events.append((key, "ObjectCreated:CompleteMultipartUpload"))
    return events


def s3_record(key: str, event_name: str, sequencer: int) -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-11-20T10:00:00.000Z",
        "eventName": event_name,
        "s3": {
            "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {"key": quote_plus(key, safe="/"), "size": 6_000_000_000, "sequencer": f"{sequencer:018X}"},
        },
    }


def sqs_messages(events: list[tuple[str, str]]) -> list[dict]:
    return [
        {"messageId": f"m-{n}", "body": json.dumps({"Records": [s3_record(key, name, 0x55AED6DCD9000000 + n)]})}
        for n, (key, name) in enumerate(events)
    ]


class Recorder:
    def __init__(self, ssm) -> None:
        self.requests: list[dict] = []
        ssm.meta.events.register("provide-client-params.ssm.SendCommand", self)

    def __call__(self, params, **_) -> None:
        self.requests.append(params)


def launch_gpu_nodes(ec2, count: int) -> list[str]:
    response = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=count,
        MaxCount=count,
        InstanceType="g6e.2xlarge",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": CLUSTER_TAG_KEY, "Value": CLUSTER},
                    {"Key": GPU_POOL_TAG_KEY, "Value": GPU_POOL_TAG_VALUE},
                ],
            }
        ],
    )
    return [instance["InstanceId"] for instance in response["Instances"]]


def per_event(events, ec2, ssm, handler) -> tuple[int, int]:
    """The reference: one invocation per S3 event, one `aws s3 cp` command per key to every node."""
    recorder = Recorder(ssm)
    # The reference looks the nodes up in every invocation; the fleet does not change during a burst and
    # moto's DescribeInstances is slow (0.7 s at 100 instances), so look once: the counts are unaffected.
    nodes = handler.gpu_nodes(ec2, SETTINGS)
    for key, _event_name in events:  # deletes are re-copied too
        command = f"aws s3 cp s3://{BUCKET}/{key} /comfyui-models/{key}"
        for chunk in handler.chunks(nodes):
            ssm.send_command(InstanceIds=chunk, DocumentName="AWS-RunShellScript", Parameters={"commands": [command]})
    transfers = sum(len(request["InstanceIds"]) for request in recorder.requests)
    return len(recorder.requests), transfers


def ours(events, ec2, ssm, handler, batch_size: int) -> tuple[int, int, int, int]:
    recorder = Recorder(ssm)
    messages = sqs_messages(events)
    invocations = 0
    for start in range(0, len(messages), batch_size):
        invocations += 1
        response = handler.process({"Records": messages[start : start + batch_size]}, SETTINGS, ec2, ssm)
        assert response == {"batchItemFailures": []}, response
    transfers = full_syncs = 0
    for request in recorder.requests:
        argv = request["Parameters"]["commands"][0].split()
        if "--full" in argv:
            full_syncs += 1
            continue
        copies = [k for k, a in handler.decode_payload(argv[argv.index("--payload") + 1]).items() if a == "copy"]
        transfers += len(copies) * len(request["InstanceIds"])
    return invocations, len(recorder.requests), transfers, full_syncs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=ModelSyncConfig().batch_size)
    parser.add_argument("--events", default="10,100,1000")
    parser.add_argument("--nodes", default="1,10,100")
    args = parser.parse_args()
    handler = load_handler()
    global SETTINGS
    SETTINGS = handler.Settings(
        bucket=BUCKET,
        prefix="",
        models_dir="/opt/comfyui/models",
        region=REGION,
        cluster_name=CLUSTER,
        cluster_tag_key=CLUSTER_TAG_KEY,
        pool_tag_key=GPU_POOL_TAG_KEY,
        pool_tag_value=GPU_POOL_TAG_VALUE,
        script_path=MODEL_SYNC_SCRIPT_PATH,
    )
    handler.log = lambda *a, **k: None  # the handler's JSON logs are not the point here

    rows = []
    started = time.monotonic()
    for node_count in (int(n) for n in args.nodes.split(",")):
        with mock_aws():
            ec2 = boto3.client("ec2", region_name=REGION)
            ssm = boto3.client("ssm", region_name=REGION)
            launch_gpu_nodes(ec2, node_count)
            for event_count in (int(n) for n in args.events.split(",")):
                events = burst(event_count)
                unique = len({key for key, _ in events})
                ref_calls, ref_transfers = per_event(events, ec2, ssm, handler)
                invocations, calls, transfers, full = ours(events, ec2, ssm, handler, args.batch_size)
                rows.append(
                    (
                        event_count,
                        unique,
                        node_count,
                        event_count,
                        ref_calls,
                        ref_transfers,
                        invocations,
                        calls,
                        transfers,
                        full,
                    )
                )
    header = (
        "| events (keys) | nodes | per-event: invocations | SSM calls | node transfers "
        "| ours: invocations | SSM calls | node transfers |"
    )
    print(f"batch size {args.batch_size} (model_sync.batch_size); burst fits one batching window\n")
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for events_n, unique, nodes, ref_inv, ref_calls, ref_tr, inv, calls, tr, full in rows:
        note = f" (+{full} full sync)" if full else ""
        print(
            f"| {events_n} ({unique}) | {nodes} | {ref_inv} | {ref_calls} | {ref_tr} | {inv} | {calls}{note} | {tr} |"
        )
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.1f}s (moto)")
    return 0


SETTINGS = None

if __name__ == "__main__":
    sys.exit(main())
