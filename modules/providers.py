"""The one place that builds provider blocks and backends for a stack."""

from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags

from config.schema import EnvironmentConfig


def default_tags(env: EnvironmentConfig, stack_id: str) -> dict[str, str]:
    return {"Project": env.project, "Environment": env.name, "ManagedBy": "cdktf", "Stack": stack_id}


def aws_provider(
    stack: TerraformStack, env: EnvironmentConfig, stack_id: str, *, alias: str | None = None, region: str | None = None
) -> AwsProvider:
    """AWS provider pinned to the environment's account, so a dev config can never touch prod."""
    return AwsProvider(
        stack,
        f"aws-{alias}" if alias else "aws",
        region=region or env.region,
        alias=alias,
        allowed_account_ids=[env.account_id],
        default_tags=[AwsProviderDefaultTags(tags=default_tags(env, stack_id))],
    )


def s3_backend(stack: TerraformStack, env: EnvironmentConfig, stack_id: str) -> S3Backend:
    backend = S3Backend(
        stack,
        bucket=env.state_bucket,
        key=f"{env.name}/{stack_id}.tfstate",
        region=env.state_region,
        encrypt=True,
        allowed_account_ids=[env.account_id],
    )
    # S3-native state locking (Terraform >= 1.10); cdktf 0.21's S3Backend has no argument for it.
    backend.add_override("use_lockfile", True)
    return backend


def local_backend(stack: TerraformStack, stack_id: str) -> LocalBackend:
    # Only the bootstrap stack: it creates the bucket the other stacks keep their state in.
    return LocalBackend(stack, path=f"terraform.{stack_id}.tfstate")
