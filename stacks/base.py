"""Base class for every stack: stack id, backend and AWS provider in one place."""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from constructs import Construct

from config.schema import EnvironmentConfig
from modules.providers import aws_provider, local_backend, s3_backend


class EnvironmentStack(TerraformStack):
    """A stack named `<env>-<component>` with its state in the environment's state bucket."""

    component: str = ""

    def __init__(self, scope: Construct, env: EnvironmentConfig, *, local_state: bool = False) -> None:
        self.stack_id = f"{env.name}-{self.component}"
        super().__init__(scope, self.stack_id)
        self.env = env
        if local_state:
            local_backend(self, self.stack_id)
        else:
            s3_backend(self, env, self.stack_id)
        self.aws = aws_provider(self, env, self.stack_id)

    def output(self, name: str, value: object, description: str, *, sensitive: bool = False) -> TerraformOutput:
        return TerraformOutput(self, name, value=value, description=description, sensitive=sensitive)
