"""Names of the deployed resources: read from the <env>-storage stack's outputs, else from config.

Order: `terraform output -json` in an initialised cdktf.out/stacks/<env>-storage; the stack's state
object in the environment's state bucket (only where AWS is used anyway); the names the storage stack
derives from the config (EnvironmentConfig.ecr_repository, bucket_name("models")).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from config import ConfigError, EnvironmentConfig, load_environments
from image.comfyctl.errors import CliError
from image.comfyctl.paths import CDKTF_OUT


def load_env(name: str) -> EnvironmentConfig:
    try:
        return load_environments(names=[name], source="--env")[0]
    except ConfigError as err:
        raise CliError(f"config error: {err}", exit_code=2) from None


@dataclass(frozen=True)
class StorageNames:
    ecr_repository_url: str
    models_bucket: str
    source: str  # where the names came from, for the user


def registry_of(env: EnvironmentConfig) -> str:
    return f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com"


def _stack_dir(env: EnvironmentConfig) -> Path:
    return CDKTF_OUT / f"{env.name}-storage"


def _terraform_outputs(env: EnvironmentConfig) -> dict[str, str] | None:
    stack_dir = _stack_dir(env)
    if not (stack_dir / ".terraform").is_dir() or shutil.which("terraform") is None:
        return None
    try:
        result = subprocess.run(
            ["terraform", "output", "-json"], cwd=stack_dir, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    try:
        return {key: value["value"] for key, value in json.loads(result.stdout).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def state_location(env: EnvironmentConfig) -> tuple[str, str, str]:
    """(bucket, key, region) of the storage stack's state: the synthesized backend when present."""
    synthesized = _stack_dir(env) / "cdk.tf.json"
    if synthesized.is_file():
        try:
            backend = json.loads(synthesized.read_text())["terraform"]["backend"]["s3"]
            return backend["bucket"], backend["key"], backend["region"]
        except (ValueError, KeyError, TypeError):
            pass
    return env.state_bucket, f"{env.name}/{env.name}-storage.tfstate", env.state_region


def _state_outputs(env: EnvironmentConfig, session) -> dict[str, str] | None:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key, region = state_location(env)
    client = session.client("s3", region_name=region, config=Config(connect_timeout=5, retries={"max_attempts": 2}))
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        outputs = json.loads(body).get("outputs", {})
        return {name: value["value"] for name, value in outputs.items()}
    except (ClientError, BotoCoreError, ValueError, KeyError, TypeError, AttributeError):
        return None


def storage_names(env: EnvironmentConfig, session=None) -> StorageNames:
    """The ECR repository URL and models bucket of `env`; `session` (boto3) enables the state lookup."""
    outputs = _terraform_outputs(env)
    source = f"terraform output of {env.name}-storage"
    if outputs is None and session is not None:
        outputs = _state_outputs(env, session)
        source = f"state of {env.name}-storage"
    if not outputs or "ecr_repository_url" not in outputs or "models_bucket" not in outputs:
        return StorageNames(
            ecr_repository_url=f"{registry_of(env)}/{env.ecr_repository}",
            models_bucket=env.bucket_name("models"),
            source=f"config/{env.name}.yaml (no deployed {env.name}-storage outputs found)",
        )
    return StorageNames(
        ecr_repository_url=outputs["ecr_repository_url"], models_bucket=outputs["models_bucket"], source=source
    )


def boto3_session():
    import boto3

    return boto3.session.Session()
