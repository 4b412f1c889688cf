"""<env>-storage: the models, inputs and outputs buckets, their access-log bucket, and the image repository."""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules.ecr import EcrRepository, EcrRepositorySettings
from modules.iam import statement
from modules.secure_bucket import SecureBucket, SecureBucketSettings
from stacks.base import EnvironmentStack

DATA_BUCKETS = ("models", "inputs", "outputs")


class StorageStack(EnvironmentStack):
    component = "storage"

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        super().__init__(scope, env)
        source_arns = [f"arn:aws:s3:::{env.bucket_name(purpose)}" for purpose in DATA_BUCKETS]

        def allow_log_delivery(bucket_arn: str) -> list[dict]:
            return [
                statement(
                    ["s3:PutObject"],
                    f"{bucket_arn}/*",
                    sid="S3ServerAccessLogs",
                    principal={"Service": "logging.s3.amazonaws.com"},
                    condition={
                        "ArnLike": {"aws:SourceArn": source_arns},
                        "StringEquals": {"aws:SourceAccount": env.account_id},
                    },
                )
            ]

        # Server access logs of the data buckets. S3 log delivery only writes with SSE-S3.
        self.access_logs = SecureBucket(
            self,
            "access-logs",
            SecureBucketSettings(
                name=env.bucket_name("access-logs"),
                account_id=env.account_id,
                region=env.region,
                expire_days=env.storage.access_logs_expire_days,
                force_destroy=not env.production,
                policy_statements=allow_log_delivery,
            ),
        )
        self.buckets: dict[str, SecureBucket] = {}
        for purpose in DATA_BUCKETS:
            self.buckets[purpose] = SecureBucket(
                self,
                purpose,
                SecureBucketSettings.from_config(
                    env.bucket_name(purpose),
                    env.account_id,
                    env.region,
                    getattr(env.storage, purpose),
                    access_logs_bucket=self.access_logs.bucket.id,
                ),
            )
            self.output(f"{purpose}_bucket", self.buckets[purpose].name, f"S3 bucket for ComfyUI {purpose}")

        self.repository = EcrRepository(
            self,
            "image",
            EcrRepositorySettings(
                name=env.ecr_repository,
                keep_images=env.image.keep_images,
                force_delete=not env.production,
            ),
        )
        self.output("ecr_repository_url", self.repository.url, "ECR repository for the ComfyUI image")

    @property
    def models(self) -> SecureBucket:
        return self.buckets["models"]

    @property
    def inputs(self) -> SecureBucket:
        return self.buckets["inputs"]

    @property
    def outputs(self) -> SecureBucket:
        return self.buckets["outputs"]
