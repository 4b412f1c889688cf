"""ModelSyncFunction: the Lambda that turns a batch of model-bucket events into one SSM command per batch.

Owns the function, its role, its log group and the SQS event source mapping. The role may read the
queue, send `AWS-RunShellScript` only to instances tagged with this cluster AND the GPU node pool,
describe instances (no resource-level permissions exist for that), and write its own log group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
)
from constructs import Construct

from modules.iam import Role, RoleSettings, policy_document, service_trust, statement
from modules.lambda_asset import lambda_package
from modules.logs import LogGroupSettings, log_group

PROJECT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE = PROJECT / "lambda" / "model_sync"
HANDLER = "sync_handler.handler"
RUNTIME = "python3.12"
RUN_SHELL_DOCUMENT = "AWS-RunShellScript"
# AWS guidance for SQS event sources: visibility timeout at least 6x the function timeout (plus the
# batching window), so a message is not redelivered while a throttled invocation still retries it.
VISIBILITY_TIMEOUT_FACTOR = 6


def visibility_timeout(function_timeout_seconds: int, batching_window_seconds: int) -> int:
    return VISIBILITY_TIMEOUT_FACTOR * function_timeout_seconds + batching_window_seconds


@dataclass(frozen=True)
class ModelSyncFunctionSettings:
    name: str
    account_id: str
    region: str
    queue_arn: str
    # Encrypts the log group and the function's environment variables.
    kms_key_arn: str
    # Only instances carrying both tags may receive commands.
    cluster_tag_key: str
    cluster_name: str
    pool_tag_key: str
    pool_tag_value: str
    timeout_seconds: int
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int
    log_retention_days: int
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 256
    source_dir: Path = LAMBDA_SOURCE


def lambda_policy(settings: ModelSyncFunctionSettings, log_group_arn: str) -> str:
    """The function's whole permission set (tests parse it)."""
    return policy_document(
        statement(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            settings.queue_arn,
            sid="ReadQueue",
        ),
        # Lambda decrypts the function's environment with the execution role.
        statement(["kms:Decrypt"], settings.kms_key_arn, sid="DecryptOwnEnvironment"),
        statement(
            ["ssm:SendCommand"],
            f"arn:aws:ssm:{settings.region}::document/{RUN_SHELL_DOCUMENT}",
            sid="RunShellDocumentOnly",
        ),
        statement(
            ["ssm:SendCommand"],
            f"arn:aws:ec2:{settings.region}:{settings.account_id}:instance/*",
            sid="GpuNodesOfThisClusterOnly",
            condition={
                "StringEquals": {
                    f"ssm:resourceTag/{settings.cluster_tag_key}": settings.cluster_name,
                    f"ssm:resourceTag/{settings.pool_tag_key}": settings.pool_tag_value,
                }
            },
        ),
        # DescribeInstances has no resource-level permissions: "*" is the only valid resource.
        statement(["ec2:DescribeInstances"], "*", sid="FindGpuNodes"),
        statement(["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group_arn}:*", sid="OwnLogGroup"),
    )


class ModelSyncFunction(Construct):
    def __init__(self, scope: Construct, id_: str, settings: ModelSyncFunctionSettings) -> None:
        super().__init__(scope, id_)
        self.log_group = log_group(
            self,
            "logs",
            LogGroupSettings(
                name=f"/aws/lambda/{settings.name}",
                retention_days=settings.log_retention_days,
                kms_key_arn=settings.kms_key_arn,
            ),
        )
        self.role = Role(
            self,
            "role",
            RoleSettings(
                name=settings.name,
                description="model-sync Lambda: SQS model events to SSM commands on GPU nodes",
                assume_role_policy=service_trust(
                    "lambda.amazonaws.com",
                    condition={"StringEquals": {"aws:SourceAccount": settings.account_id}},
                ),
                inline_policies={"model-sync": lambda_policy(settings, self.log_group.arn)},
            ),
        )
        package = lambda_package(self, "code", settings.source_dir)
        self.function = LambdaFunction(
            self,
            "function",
            function_name=settings.name,
            description="Syncs the models bucket to every GPU node (docs/model-sync.md)",
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=["arm64"],
            handler=HANDLER,
            filename=package.path,
            source_code_hash=package.source_code_hash,
            timeout=settings.timeout_seconds,
            memory_size=settings.memory_mb,
            kms_key_arn=settings.kms_key_arn,
            environment=LambdaFunctionEnvironment(variables=dict(settings.environment)),
            logging_config=LambdaFunctionLoggingConfig(log_format="Text", log_group=self.log_group.name),
            # Lambda's default, made explicit. Active tracing would need xray:Put* on "*" for a function that
            # makes a few API calls; its JSON log line per batch carries counts, nodes and command ids.
            tracing_config=LambdaFunctionTracingConfig(mode="PassThrough"),
            depends_on=[self.log_group],
        )
        # Lambda checks the role's SQS permissions when the mapping is created: wait for the policy.
        self.event_source = LambdaEventSourceMapping(
            self,
            "sqs-trigger",
            event_source_arn=settings.queue_arn,
            function_name=self.function.arn,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=settings.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            # Bounded concurrency without reserved concurrency (which would throttle messages into the DLQ).
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=settings.max_concurrency),
            depends_on=self.role.resources,
        )
