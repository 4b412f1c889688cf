"""GithubCiAccess: the GitHub Actions OIDC provider and the plan and deploy roles of one environment.

The plan role is read-only and may be assumed by this repository's pull requests and by the
deploy workflow's plan job on the protected branch. The deploy role writes this environment's
resources and state and may only be assumed from the protected branch, or from the GitHub
environment whose reviewers approve production. Statements: modules/ci_policies.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.data_aws_iam_openid_connect_provider import DataAwsIamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from constructs import Construct

from modules.ci_policies import (
    GITHUB_OIDC_URL,
    STS_AUDIENCE,
    CiScope,
    deploy_statements,
    deploy_subjects,
    github_trust_condition,
    plan_statements,
    plan_subjects,
)
from modules.iam import Role, RoleSettings, policy_document, trust_policy


@dataclass(frozen=True)
class GithubCiAccessSettings:
    scope: CiScope
    repository: str  # "owner/name"
    deploy_branch: str
    github_environment: str | None
    # False: the account already has the provider (one per account), look it up instead.
    create_oidc_provider: bool = True
    # A full deploy (EKS cluster, node groups, add-ons) can outlast the default one-hour session.
    deploy_session_seconds: int = 3 * 3600


class GithubCiAccess(Construct):
    def __init__(self, scope: Construct, id_: str, settings: GithubCiAccessSettings) -> None:
        super().__init__(scope, id_)
        ci = settings.scope
        if settings.create_oidc_provider:
            # No thumbprint: AWS validates GitHub's certificate against its own trusted CAs.
            provider_arn = IamOpenidConnectProvider(
                self, "github", url=GITHUB_OIDC_URL, client_id_list=[STS_AUDIENCE]
            ).arn
        else:
            provider_arn = DataAwsIamOpenidConnectProvider(self, "github", url=GITHUB_OIDC_URL).arn

        def github_trust(subjects: list[str]) -> str:
            return trust_policy(
                {"Federated": provider_arn},
                ("sts:AssumeRoleWithWebIdentity",),
                github_trust_condition(settings.repository, subjects),
            )

        self.provider_arn = provider_arn
        self.plan = Role(
            self,
            "plan",
            RoleSettings(
                name=f"{ci.ci_role_prefix}plan",
                description=f"GitHub Actions terraform plan for {ci.prefix} (read-only)",
                assume_role_policy=github_trust(plan_subjects(settings.deploy_branch)),
                inline_policies={"plan": policy_document(*plan_statements(ci))},
            ),
        )
        self.deploy = Role(
            self,
            "deploy",
            RoleSettings(
                name=f"{ci.ci_role_prefix}deploy",
                description=f"GitHub Actions terraform apply for {ci.prefix}",
                assume_role_policy=github_trust(deploy_subjects(settings.deploy_branch, settings.github_environment)),
                inline_policies={"deploy": policy_document(*deploy_statements(ci))},
                max_session_duration=settings.deploy_session_seconds,
            ),
        )
