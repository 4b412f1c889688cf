"""The one way to make a customer managed KMS key: rotation on, account-owned, named services allowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey as AwsKmsKey
from constructs import Construct

from modules.iam import policy_document, statement


@dataclass(frozen=True)
class KmsKeySettings:
    alias: str  # without the "alias/" prefix
    description: str
    account_id: str
    region: str
    # Let CloudWatch Logs in this account and region encrypt log groups with the key.
    allow_cloudwatch_logs: bool = False
    # Further AWS service principals that may use the key through their service integration.
    service_principals: Sequence[str] = ()
    deletion_window_days: int = 30


class KmsKey(Construct):
    def __init__(self, scope: Construct, id_: str, settings: KmsKeySettings) -> None:
        super().__init__(scope, id_)
        account_root = f"arn:aws:iam::{settings.account_id}:root"
        log_groups = f"arn:aws:logs:{settings.region}:{settings.account_id}:*"
        statements = [
            # The AWS default key policy: the account (through IAM) administers the key.
            statement(["kms:*"], "*", sid="AccountAdministers", principal={"AWS": account_root}),
        ]
        if settings.allow_cloudwatch_logs:
            statements.append(
                statement(
                    ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                    "*",
                    sid="CloudWatchLogs",
                    principal={"Service": f"logs.{settings.region}.amazonaws.com"},
                    condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
                )
            )
        if settings.service_principals:
            statements.append(
                statement(
                    ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "*",
                    sid="Services",
                    principal={"Service": list(settings.service_principals)},
                    condition={"StringEquals": {"aws:SourceAccount": settings.account_id}},
                )
            )
        self.key = AwsKmsKey(
            self,
            "key",
            description=settings.description,
            enable_key_rotation=True,
            deletion_window_in_days=settings.deletion_window_days,
            policy=policy_document(*statements),
        )
        KmsAlias(self, "alias", name=f"alias/{settings.alias}", target_key_id=self.key.key_id)

    @property
    def arn(self) -> str:
        return self.key.arn
