"""<env>-model-sync: models bucket events → SQS (+DLQ, alarm) → Lambda → one SSM command per batch on GPU nodes."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification, S3BucketNotificationQueue
from constructs import Construct

from config.schema import EnvironmentConfig
from modules.iam import statement
from modules.kms import KmsKey, KmsKeySettings
from modules.model_sync import ModelSyncFunction, ModelSyncFunctionSettings, visibility_timeout
from modules.names import CLUSTER_TAG_KEY, GPU_POOL_TAG_KEY, GPU_POOL_TAG_VALUE, MODEL_SYNC_SCRIPT_PATH
from modules.queue import QueueWithDlq, QueueWithDlqSettings
from stacks.base import EnvironmentStack
from stacks.storage import StorageStack

MODEL_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


class ModelSyncStack(EnvironmentStack):
    component = "model-sync"

    def __init__(self, scope: Construct, env: EnvironmentConfig, *, storage: StorageStack) -> None:
        super().__init__(scope, env)
        config = env.model_sync
        name = f"{env.project}-{env.name}-model-sync"
        bucket = storage.models

        key = KmsKey(
            self,
            "key",
            KmsKeySettings(
                alias=name,
                description="model-sync Lambda logs and environment",
                account_id=env.account_id,
                region=env.region,
                allow_cloudwatch_logs=True,
            ),
        )

        def s3_may_send(queue_arn: str) -> list[dict]:
            return [
                statement(
                    ["sqs:SendMessage"],
                    queue_arn,
                    sid="ModelsBucketEvents",
                    principal={"Service": "s3.amazonaws.com"},
                    condition={
                        "ArnEquals": {"aws:SourceArn": bucket.arn},
                        "StringEquals": {"aws:SourceAccount": env.account_id},
                    },
                )
            ]

        self.queue = QueueWithDlq(
            self,
            "events",
            QueueWithDlqSettings(
                name=name,
                visibility_timeout_seconds=visibility_timeout(
                    config.lambda_timeout_seconds, config.batching_window_seconds
                ),
                max_receive_count=config.max_receive_count,
                policy_statements=s3_may_send,
                alarm_actions=config.alarm_actions,
            ),
        )

        self.function = ModelSyncFunction(
            self,
            "sync",
            ModelSyncFunctionSettings(
                name=name,
                account_id=env.account_id,
                region=env.region,
                queue_arn=self.queue.arn,
                kms_key_arn=key.arn,
                cluster_tag_key=CLUSTER_TAG_KEY,
                cluster_name=env.cluster_name,
                pool_tag_key=GPU_POOL_TAG_KEY,
                pool_tag_value=GPU_POOL_TAG_VALUE,
                timeout_seconds=config.lambda_timeout_seconds,
                batch_size=config.batch_size,
                batching_window_seconds=config.batching_window_seconds,
                max_concurrency=config.max_concurrency,
                log_retention_days=config.log_retention_days,
                environment={
                    "MODELS_BUCKET": bucket.name,
                    "MODELS_PREFIX": config.prefix,
                    "MODELS_DIR": env.gpu.models_path,
                    "BUCKET_REGION": env.region,
                    "CLUSTER_NAME": env.cluster_name,
                    "CLUSTER_TAG_KEY": CLUSTER_TAG_KEY,
                    "POOL_TAG_KEY": GPU_POOL_TAG_KEY,
                    "POOL_TAG_VALUE": GPU_POOL_TAG_VALUE,
                    "SYNC_SCRIPT_PATH": MODEL_SYNC_SCRIPT_PATH,
                    "NODE_COMMAND_TIMEOUT_SECONDS": str(config.node_command_timeout_seconds),
                },
            ),
        )

        # The bucket's only notification configuration (S3 keeps one per bucket): owned here.
        S3BucketNotification(
            self,
            "models-bucket-events",
            bucket=bucket.bucket.id,
            queue=[
                S3BucketNotificationQueue(
                    id="model-sync",
                    queue_arn=self.queue.arn,
                    events=MODEL_EVENTS,
                    filter_prefix=config.prefix or None,
                )
            ],
            # S3 sends a test event when the configuration is saved: the queue must already accept it.
            depends_on=[self.queue.queue_policy],
        )

        self.output("queue_url", self.queue.url, "Model event queue (S3 → Lambda)")
        self.output("dlq_url", self.queue.dlq.url, "Dead-letter queue of model events (replay: docs/model-sync.md)")
        self.output("dlq_arn", self.queue.dlq.arn, "Dead-letter queue ARN (source of a message move task)")
        self.output("function_name", self.function.function.function_name, "model-sync Lambda")
        self.output("log_group", self.function.log_group.name, "model-sync Lambda logs (JSON lines)")
