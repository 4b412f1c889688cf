"""SecureBucket: the one way to make an S3 bucket here.

Always: public access fully blocked, ownership enforced (no ACLs), default encryption (SSE-S3, or
SSE-KMS with its own rotating key), a bucket policy that denies non-TLS requests, and a lifecycle
that aborts stale multipart uploads. Optional: versioning, expiry, server access logging, extra
bucket policy statements (for AWS services that deliver logs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from config.schema import BucketConfig
from modules.iam import deny_insecure_transport, policy_document
from modules.kms import KmsKey, KmsKeySettings


@dataclass(frozen=True)
class SecureBucketSettings:
    name: str
    account_id: str
    region: str
    versioning: bool = False
    kms: bool = False
    expire_days: int | None = None
    noncurrent_expire_days: int = 30
    force_destroy: bool = False
    # Server access logs go to this bucket (its id) under `<access_logs_prefix>`.
    access_logs_bucket: str | None = None
    access_logs_prefix: str = ""
    # Extra bucket policy statements, given the bucket ARN (e.g. a log delivery service's write).
    policy_statements: Callable[[str], list[dict]] | None = None

    @classmethod
    def from_config(
        cls, name: str, account_id: str, region: str, config: BucketConfig, **extra
    ) -> SecureBucketSettings:
        return cls(
            name=name,
            account_id=account_id,
            region=region,
            versioning=config.versioning,
            kms=config.kms,
            expire_days=config.expire_days,
            noncurrent_expire_days=config.noncurrent_expire_days,
            force_destroy=config.force_destroy,
            **extra,
        )


class SecureBucket(Construct):
    def __init__(self, scope: Construct, id_: str, settings: SecureBucketSettings) -> None:
        super().__init__(scope, id_)
        self.settings = settings
        self.bucket = S3Bucket(self, "bucket", bucket=settings.name, force_destroy=settings.force_destroy)
        bucket_id = self.bucket.id

        S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        ownership = S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=bucket_id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )

        self.kms_key: KmsKey | None = None
        if settings.kms:
            self.kms_key = KmsKey(
                self,
                "kms",
                KmsKeySettings(
                    alias=f"s3/{settings.name}",
                    description=f"SSE-KMS for s3://{settings.name}",
                    account_id=settings.account_id,
                    region=settings.region,
                ),
            )
            by_default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="aws:kms", kms_master_key_id=self.kms_key.arn
            )
        else:
            by_default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="AES256"
            )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=by_default, bucket_key_enabled=settings.kms
                )
            ],
        )

        # Unversioned buckets get no versioning resource: a new bucket cannot start "Suspended".
        versioning = (
            S3BucketVersioningA(
                self,
                "versioning",
                bucket=bucket_id,
                versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
            )
            if settings.versioning
            else None
        )

        rules = [
            S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                ],
            )
        ]
        if settings.expire_days is not None:
            rules.append(
                S3BucketLifecycleConfigurationRule(
                    id="expire-objects",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=settings.expire_days)],
                )
            )
        if settings.versioning:
            rules.append(
                S3BucketLifecycleConfigurationRule(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                            noncurrent_days=settings.noncurrent_expire_days
                        )
                    ],
                )
            )
        S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=bucket_id, rule=rules, depends_on=[versioning] if versioning else None
        )

        if settings.access_logs_bucket is not None:
            S3BucketLoggingA(
                self,
                "access-logging",
                bucket=bucket_id,
                target_bucket=settings.access_logs_bucket,
                target_prefix=settings.access_logs_prefix or f"{settings.name}/",
            )

        statements = [deny_insecure_transport([self.bucket.arn, f"{self.bucket.arn}/*"])]
        if settings.policy_statements is not None:
            statements.extend(settings.policy_statements(self.bucket.arn))
        # Exposed so that a writer that checks access on creation (an ALB's access logs) can wait for it.
        self.policy = S3BucketPolicy(
            self,
            "policy",
            bucket=bucket_id,
            policy=policy_document(*statements),
            depends_on=[ownership],
        )

    @property
    def name(self) -> str:
        return self.bucket.bucket

    @property
    def arn(self) -> str:
        return self.bucket.arn

    @property
    def kms_key_arn(self) -> str | None:
        return self.kms_key.arn if self.kms_key else None
