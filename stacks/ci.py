"""<env>-ci (optional): GitHub Actions access for the users' CI, created when `ci.github_repository` is set.

The OIDC provider and two roles (plan: read-only; deploy: this environment's resources). An
administrator deploys it once per environment with `cdktf deploy <env>-ci`, after bootstrap; the
deploy workflow never applies it (the deploy role cannot change CI's own access). No other stack
reads its state: its outputs are copied into repository variables (docs/ci.md).
"""

from __future__ import annotations

from constructs import Construct

from config import ConfigError
from config.schema import EnvironmentConfig
from modules.ci_policies import CiScope
from modules.github_oidc import GithubCiAccess, GithubCiAccessSettings
from stacks.base import EnvironmentStack


class CiStack(EnvironmentStack):
    component = "ci"

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        if not env.ci.github_repository:
            raise ConfigError(f"environment {env.name!r}: ci.github_repository: required for the ci stack")
        _one_provider_per_account(scope, env)
        super().__init__(scope, env)
        ci_scope = CiScope(
            project=env.project,
            environment=env.name,
            account_id=env.account_id,
            region=env.region,
            cluster_name=env.cluster_name,
            state_bucket=env.state_bucket,
            production=env.production,
        )
        self.access = GithubCiAccess(
            self,
            "github",
            GithubCiAccessSettings(
                scope=ci_scope,
                repository=env.ci.github_repository,
                deploy_branch=env.ci.deploy_branch,
                github_environment=env.ci.github_environment,
                create_oidc_provider=env.ci.create_oidc_provider,
            ),
        )
        variable = env.name.upper().replace("-", "_")
        self.output(
            "plan_role_arn", self.access.plan.arn, f"Repository variable AWS_PLAN_ROLE_ARN_{variable} (PR plans)"
        )
        self.output(
            "deploy_role_arn", self.access.deploy.arn, f"Repository variable AWS_DEPLOY_ROLE_ARN_{variable} (deploys)"
        )
        self.output("github_oidc_provider_arn", self.access.provider_arn, "The account's GitHub OIDC provider")


def _one_provider_per_account(scope: Construct, env: EnvironmentConfig) -> None:
    """IAM allows one provider per URL and account: two environments in one account must share it."""
    if not env.ci.create_oidc_provider:
        return
    for other in scope.node.children:
        if isinstance(other, CiStack) and other.env.account_id == env.account_id and other.env.ci.create_oidc_provider:
            raise ConfigError(
                f"environment {env.name!r}: ci.create_oidc_provider: {other.env.name!r} already creates the GitHub "
                f"OIDC provider of account {env.account_id} (one per account); set it to false in one of them"
            )
