"""The one way to make a CloudWatch log group: retention always set, KMS-encrypted."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct


@dataclass(frozen=True)
class LogGroupSettings:
    name: str
    retention_days: int
    kms_key_arn: str


def log_group(scope: Construct, id_: str, settings: LogGroupSettings) -> CloudwatchLogGroup:
    return CloudwatchLogGroup(
        scope,
        id_,
        name=settings.name,
        retention_in_days=settings.retention_days,
        kms_key_id=settings.kms_key_arn,
    )
