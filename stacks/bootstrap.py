"""<env>-bootstrap: the state bucket every other stack of the environment keeps its state in.

Local backend (the bucket does not exist yet). Deploy it once per environment, first.
"""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules.secure_bucket import SecureBucket, SecureBucketSettings
from stacks.base import EnvironmentStack


class BootstrapStack(EnvironmentStack):
    component = "bootstrap"

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        super().__init__(scope, env, local_state=True)
        self.state_bucket = SecureBucket(
            self,
            "state",
            SecureBucketSettings(
                name=env.state_bucket,
                account_id=env.account_id,
                region=env.state_region,
                versioning=True,
                kms=False,
                # Old state versions are the undo history of every apply: keep them 90 days.
                noncurrent_expire_days=90,
            ),
        )
        self.output("state_bucket", self.state_bucket.name, "S3 bucket holding this environment's Terraform state")
