"""<env>-model-sync: queue, DLQ, alarm, event source mapping, IAM scoping, packaging, and its config."""

from __future__ import annotations

import base64
import json
import shutil
import textwrap
import zipfile

import pytest

from config import ConfigError, load_environment
from modules.lambda_asset import content_digest, source_files
from modules.model_sync import LAMBDA_SOURCE
from modules.names import CLUSTER_TAG_KEY, GPU_POOL_TAG_KEY, GPU_POOL_TAG_VALUE, MODEL_SYNC_SCRIPT_PATH
from tests.tf import data_sources, one, policy_documents, resources

COMPONENT = "model-sync"


def stacks(synth, environments):
    for name, env in environments.items():
        yield env, synth.stack(f"{name}-{COMPONENT}")


def ref(rtype: str, name: str, attribute: str) -> str:
    return f"${{{rtype}.{name}.{attribute}}}"


def named(stack: dict, rtype: str, suffix: str) -> tuple[str, dict]:
    found = {key: value for key, value in resources(stack, rtype).items() if key.startswith(suffix)}
    assert len(found) == 1, (rtype, suffix, sorted(resources(stack, rtype)))
    return next(iter(found.items()))


def storage_output(stack: dict, attribute: str) -> str:
    """The cross-stack reference to the models bucket's `attribute` (remote state of <env>-storage)."""
    (state,) = data_sources(stack, "terraform_remote_state")
    return f"${{data.terraform_remote_state.{state}.outputs.cross-stack-output-aws_s3_bucketmodels_bucket_"


def test_every_environment_has_the_stack_after_storage(synth, environments):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    for name in environments:
        assert f"{name}-storage" in manifest["stacks"][f"{name}-{COMPONENT}"]["dependencies"]


def test_queues_are_encrypted_and_redrive_to_the_dlq(synth, environments):
    for env, stack in stacks(synth, environments):
        config = env.model_sync
        queue_name, queue = named(stack, "aws_sqs_queue", "events_queue_")
        dlq_name, dlq = named(stack, "aws_sqs_queue", "events_dlq_")
        for q in (queue, dlq):
            # SSE-SQS: S3 notifications need no key policy for it (a CMK needs one for s3.amazonaws.com).
            assert q["sqs_managed_sse_enabled"] is True
            assert "kms_master_key_id" not in q
        assert json.loads(queue["redrive_policy"]) == {
            "deadLetterTargetArn": ref("aws_sqs_queue", dlq_name, "arn"),
            "maxReceiveCount": config.max_receive_count,
        }
        assert dlq["message_retention_seconds"] == 14 * 24 * 3600 > queue["message_retention_seconds"]
        # AWS guidance: visibility timeout >= 6x the function timeout (plus the batching window).
        function = one(stack, "aws_lambda_function")
        assert queue["visibility_timeout_seconds"] >= 6 * function["timeout"]
        assert queue["visibility_timeout_seconds"] == 6 * config.lambda_timeout_seconds + config.batching_window_seconds
        allow = one(stack, "aws_sqs_queue_redrive_allow_policy")
        assert allow["queue_url"] == ref("aws_sqs_queue", dlq_name, "url")
        assert json.loads(allow["redrive_allow_policy"]) == {
            "redrivePermission": "byQueue",
            "sourceQueueArns": [ref("aws_sqs_queue", queue_name, "arn")],
        }


def test_queue_policies_are_tls_only_and_let_only_the_models_bucket_send(synth, environments):
    for env, stack in stacks(synth, environments):
        queue_name, _ = named(stack, "aws_sqs_queue", "events_queue_")
        dlq_name, _ = named(stack, "aws_sqs_queue", "events_dlq_")
        policies = {p["queue_url"]: json.loads(p["policy"]) for p in resources(stack, "aws_sqs_queue_policy").values()}
        assert set(policies) == {ref("aws_sqs_queue", queue_name, "url"), ref("aws_sqs_queue", dlq_name, "url")}
        for url, policy in policies.items():
            arn = url.replace(".url}", ".arn}")
            deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
            assert deny == [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": [arn],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ]
        allows = [s for s in policies[ref("aws_sqs_queue", queue_name, "url")]["Statement"] if s["Effect"] == "Allow"]
        (allow,) = allows
        assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
        assert allow["Action"] == ["sqs:SendMessage"]
        assert allow["Resource"] == [ref("aws_sqs_queue", queue_name, "arn")]
        assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": env.account_id}
        source_arn = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert source_arn.startswith(storage_output(stack, "arn")) and source_arn.endswith("arn}")
        assert not any(s["Effect"] == "Allow" for s in policies[ref("aws_sqs_queue", dlq_name, "url")]["Statement"])


def test_key_encrypts_logs_and_environment_only(synth, environments):
    for env, stack in stacks(synth, environments):
        _, key = named(stack, "aws_kms_key", "key_")
        assert key["enable_key_rotation"] is True
        statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
        assert set(statements) == {"AccountAdministers", "CloudWatchLogs"}
        assert statements["CloudWatchLogs"]["Principal"] == {"Service": f"logs.{env.region}.amazonaws.com"}


def test_dlq_depth_alarm(synth, environments):
    for env, stack in stacks(synth, environments):
        dlq_name, _ = named(stack, "aws_sqs_queue", "events_dlq_")
        alarm = one(stack, "aws_cloudwatch_metric_alarm")
        assert alarm["namespace"] == "AWS/SQS"
        assert alarm["metric_name"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["dimensions"] == {"QueueName": ref("aws_sqs_queue", dlq_name, "name")}
        assert alarm["comparison_operator"] == "GreaterThanThreshold" and alarm["threshold"] == 0
        assert alarm["treat_missing_data"] == "notBreaching"
        assert alarm.get("alarm_actions") == (env.model_sync.alarm_actions or None)
        assert "docs/model-sync.md" in alarm["alarm_description"]


def test_event_source_mapping(synth, environments):
    for env, stack in stacks(synth, environments):
        config = env.model_sync
        queue_name, _ = named(stack, "aws_sqs_queue", "events_queue_")
        function_name, function = named(stack, "aws_lambda_function", "sync_function_")
        policy_name, _ = named(stack, "aws_iam_role_policy", "sync_role_policy-model-sync_")
        mapping = one(stack, "aws_lambda_event_source_mapping")
        assert mapping["event_source_arn"] == ref("aws_sqs_queue", queue_name, "arn")
        assert mapping["function_name"] == ref("aws_lambda_function", function_name, "arn")
        assert mapping["batch_size"] == config.batch_size
        assert mapping["maximum_batching_window_in_seconds"] == config.batching_window_seconds
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
        assert mapping["scaling_config"] == {"maximum_concurrency": config.max_concurrency}
        # Lambda checks the role's SQS permissions when the mapping is created: it waits for the policy.
        assert f"aws_iam_role_policy.{policy_name}" in mapping["depends_on"]
        # Bounded by the mapping, never by reserved concurrency (which throttles messages into the DLQ).
        assert "reserved_concurrent_executions" not in function


def test_function_settings(synth, environments):
    for env, stack in stacks(synth, environments):
        key_name, _ = named(stack, "aws_kms_key", "key_")
        log_name, logs = named(stack, "aws_cloudwatch_log_group", "sync_logs_")
        function = one(stack, "aws_lambda_function")
        assert function["runtime"] == "python3.12"
        assert function["handler"] == "sync_handler.handler"
        assert function["timeout"] == env.model_sync.lambda_timeout_seconds
        assert function["kms_key_arn"] == ref("aws_kms_key", key_name, "arn")
        assert function["logging_config"]["log_group"] == ref("aws_cloudwatch_log_group", log_name, "name")
        assert logs["name"] == f"/aws/lambda/{function['function_name']}"
        assert logs["retention_in_days"] == env.model_sync.log_retention_days
        assert logs["kms_key_id"] == ref("aws_kms_key", key_name, "arn")
        variables = function["environment"]["variables"]
        bucket = variables.pop("MODELS_BUCKET")
        assert bucket.startswith(storage_output(stack, "bucket")) and bucket.endswith("bucket}")
        assert variables == {
            "MODELS_PREFIX": env.model_sync.prefix,
            "MODELS_DIR": env.gpu.models_path,
            "BUCKET_REGION": env.region,
            "CLUSTER_NAME": env.cluster_name,
            "CLUSTER_TAG_KEY": CLUSTER_TAG_KEY,
            "POOL_TAG_KEY": GPU_POOL_TAG_KEY,
            "POOL_TAG_VALUE": GPU_POOL_TAG_VALUE,
            "SYNC_SCRIPT_PATH": MODEL_SYNC_SCRIPT_PATH,
            "NODE_COMMAND_TIMEOUT_SECONDS": str(env.model_sync.node_command_timeout_seconds),
        }


def test_lambda_permissions_are_scoped(synth, environments):
    for env, stack in stacks(synth, environments):
        key_name, _ = named(stack, "aws_kms_key", "key_")
        queue_name, _ = named(stack, "aws_sqs_queue", "events_queue_")
        log_name, _ = named(stack, "aws_cloudwatch_log_group", "sync_logs_")
        role = one(stack, "aws_iam_role")
        trust = json.loads(role["assume_role_policy"])["Statement"]
        assert trust == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["sts:AssumeRole"],
                "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
            }
        ]
        assert resources(stack, "aws_iam_role_policy_attachment") == {}
        policy = json.loads(one(stack, "aws_iam_role_policy")["policy"])
        grants = {
            (action, resource): statement.get("Condition")
            for statement in policy["Statement"]
            for action in statement["Action"]
            for resource in statement["Resource"]
        }
        assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
        instance_condition = {
            "StringEquals": {
                f"ssm:resourceTag/{CLUSTER_TAG_KEY}": env.cluster_name,
                f"ssm:resourceTag/{GPU_POOL_TAG_KEY}": GPU_POOL_TAG_VALUE,
            }
        }
        queue_arn = ref("aws_sqs_queue", queue_name, "arn")
        assert grants == {
            ("sqs:ReceiveMessage", queue_arn): None,
            ("sqs:DeleteMessage", queue_arn): None,
            ("sqs:GetQueueAttributes", queue_arn): None,
            ("kms:Decrypt", ref("aws_kms_key", key_name, "arn")): None,
            ("ssm:SendCommand", f"arn:aws:ssm:{env.region}::document/AWS-RunShellScript"): None,
            ("ssm:SendCommand", f"arn:aws:ec2:{env.region}:{env.account_id}:instance/*"): instance_condition,
            # DescribeInstances has no resource-level permissions: the only "*" in the policy.
            ("ec2:DescribeInstances", "*"): None,
            ("logs:CreateLogStream", ref("aws_cloudwatch_log_group", log_name, "arn") + ":*"): None,
            ("logs:PutLogEvents", ref("aws_cloudwatch_log_group", log_name, "arn") + ":*"): None,
        }


def test_no_allow_statement_uses_a_wildcard_action(synth, environments):
    for _env, stack in stacks(synth, environments):
        for where, document in policy_documents(stack):
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement["Effect"] == "Allow" and "aws_kms_key" not in where:
                    assert not any("*" in action.split(":", 1)[1] for action in actions), where


def test_bucket_notification_is_owned_here_and_only_here(synth, environments):
    for env, stack in stacks(synth, environments):
        queue_name, _ = named(stack, "aws_sqs_queue", "events_queue_")
        policy_name, _ = named(stack, "aws_sqs_queue_policy", "events_queue-policy_")
        notification = one(stack, "aws_s3_bucket_notification")
        assert notification["bucket"].startswith(storage_output(stack, "id")) and notification["bucket"].endswith("id}")
        (queue,) = notification["queue"]
        assert queue["queue_arn"] == ref("aws_sqs_queue", queue_name, "arn")
        assert queue["events"] == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
        assert queue.get("filter_prefix") == (env.model_sync.prefix or None)
        assert notification["depends_on"] == [f"aws_sqs_queue_policy.{policy_name}"]
    # S3 keeps one notification configuration per bucket: no other stack may define one.
    owners = [stack_id for stack_id, stack in synth.stacks.items() if resources(stack, "aws_s3_bucket_notification")]
    assert sorted(owners) == sorted(f"{name}-{COMPONENT}" for name in environments)


def test_outputs(synth, environments):
    for _env, stack in stacks(synth, environments):
        assert {"queue_url", "dlq_url", "dlq_arn", "function_name", "log_group"} <= set(stack["output"])


def test_lambda_package_holds_only_the_sources(synth, environments):
    expected = sorted(p.as_posix() for p in source_files(LAMBDA_SOURCE))
    assert expected == ["sync_handler.py"]
    digest = content_digest(LAMBDA_SOURCE)
    for name in environments:
        stack_dir = synth.outdir / "stacks" / f"{name}-{COMPONENT}"
        function = one(synth.stack(f"{name}-{COMPONENT}"), "aws_lambda_function")
        archive = stack_dir / function["filename"]
        with zipfile.ZipFile(archive) as package:
            assert sorted(package.namelist()) == expected
            assert package.read("sync_handler.py") == (LAMBDA_SOURCE / "sync_handler.py").read_bytes()
        # Content-addressed: asset directory and source_code_hash both come from the sources alone.
        assert archive.parent.name == digest.hex()[:32].upper()
        assert function["source_code_hash"] == base64.b64encode(digest).decode()


def test_package_hash_ignores_bytecode_and_mtimes_but_not_code(tmp_path):
    copy = tmp_path / "model_sync"
    shutil.copytree(LAMBDA_SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    baseline = content_digest(copy)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "sync_handler.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (copy / "stray.pyc").write_bytes(b"\x00")
    for path in copy.rglob("*"):
        path.touch()
    assert content_digest(copy) == baseline
    assert [p.as_posix() for p in source_files(copy)] == ["sync_handler.py"]
    (copy / "sync_handler.py").write_text((copy / "sync_handler.py").read_text() + "\n# changed\n")
    assert content_digest(copy) != baseline


BASE = textwrap.dedent(
    """\
    name: env
    production: false
    account_id: "111122223333"
    region: us-west-2
    """
)


def load(tmp_path, extra: str):
    path = tmp_path / "env.yaml"
    path.write_text(BASE + textwrap.dedent(extra))
    return load_environment(path)


def test_model_sync_config_defaults(tmp_path):
    config = load(tmp_path, "").model_sync
    assert config.batch_size == 1000 and config.batching_window_seconds == 20
    assert config.max_concurrency == 2 and config.lambda_timeout_seconds == 60
    assert config.alarm_actions == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("model_sync: {batch_size: 100, batching_window_seconds: 0}", "needs batching_window_seconds >= 1"),
        ("model_sync: {prefix: ../}", "model_sync.prefix"),
        ("model_sync: {prefix: models/./}", "are not folder names"),
        ("model_sync: {prefix: models}", "model_sync.prefix"),
        ("model_sync: {max_concurrency: 1}", "model_sync.max_concurrency"),
        ("model_sync: {lambda_timeout_seconds: 901}", "model_sync.lambda_timeout_seconds"),
        ("model_sync: {alarm_actions: [arn:aws:sqs:us-west-2:111122223333:x]}", "model_sync.alarm_actions"),
    ],
)
def test_model_sync_config_errors_are_one_line(tmp_path, extra, expected):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    message = str(caught.value)
    assert "\n" not in message and expected in message and "env.yaml" in message


def test_small_batches_without_window_are_allowed(tmp_path):
    config = load(tmp_path, "model_sync: {batch_size: 10, batching_window_seconds: 0}").model_sync
    assert config.batch_size == 10
    config = load(tmp_path, "model_sync: {alarm_actions: ['arn:aws:sns:us-west-2:111122223333:oncall']}")
    assert config.model_sync.alarm_actions == ["arn:aws:sns:us-west-2:111122223333:oncall"]
