"""IAM policy documents and the one way to make a role.

Policies are plain JSON strings built from Python dicts, so a test can parse every document in
every synthesized stack. Resource ARNs may be Terraform tokens (`${aws_s3_bucket.x.arn}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

# AWS managed policies that grant far more than any component here needs.
FORBIDDEN_MANAGED_POLICY_MARKERS = ("FullAccess", "AdministratorAccess", "PowerUserAccess")


def statement(
    actions: Sequence[str],
    resources: Sequence[str] | str,
    *,
    sid: str | None = None,
    effect: str = "Allow",
    condition: Mapping | None = None,
    principal: Mapping | str | None = None,
) -> dict:
    result: dict = {}
    if sid:
        result["Sid"] = sid
    result["Effect"] = effect
    if principal is not None:
        result["Principal"] = principal
    result["Action"] = list(actions)
    result["Resource"] = [resources] if isinstance(resources, str) else list(resources)
    if condition:
        result["Condition"] = dict(condition)
    return result


def policy_document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def deny_insecure_transport(resources: Sequence[str], actions: str = "s3:*") -> dict:
    """Deny any request to these resources that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def trust_policy(
    principal: Mapping, actions: Sequence[str] = ("sts:AssumeRole",), condition: Mapping | None = None
) -> str:
    """Assume-role policy: who may assume the role (trust policies have no Resource)."""
    trust: dict = {"Effect": "Allow", "Principal": dict(principal), "Action": list(actions)}
    if condition:
        trust["Condition"] = dict(condition)
    return json.dumps({"Version": "2012-10-17", "Statement": [trust]}, indent=2)


def service_trust(
    *services: str, actions: Sequence[str] = ("sts:AssumeRole",), condition: Mapping | None = None
) -> str:
    """Trust policy for AWS service principals (e.g. "ec2.amazonaws.com")."""
    principal = {"Service": services[0] if len(services) == 1 else list(services)}
    return trust_policy(principal, actions, condition)


@dataclass(frozen=True)
class RoleSettings:
    name: str
    assume_role_policy: str
    description: str
    # Inline policies by name; each is a JSON document from policy_document().
    inline_policies: Mapping[str, str] = field(default_factory=dict)
    # AWS managed policies, by ARN suffix after `policy/` (e.g. "AmazonEKSWorkerNodePolicy").
    managed_policies: Sequence[str] = ()
    max_session_duration: int = 3600


class Role(Construct):
    """An IAM role with its own inline policies and a guarded set of AWS managed policies."""

    def __init__(self, scope: Construct, id_: str, settings: RoleSettings) -> None:
        super().__init__(scope, id_)
        for managed in settings.managed_policies:
            if any(marker in managed for marker in FORBIDDEN_MANAGED_POLICY_MARKERS):
                raise ValueError(f"role {settings.name}: managed policy {managed} is too broad; write a scoped policy")
        self.role = IamRole(
            self,
            "role",
            name=settings.name,
            description=settings.description,
            assume_role_policy=settings.assume_role_policy,
            max_session_duration=settings.max_session_duration,
        )
        for policy_name, document in settings.inline_policies.items():
            IamRolePolicy(self, f"policy-{policy_name}", name=policy_name, role=self.role.id, policy=document)
        for managed in settings.managed_policies:
            IamRolePolicyAttachment(
                self,
                f"attach-{managed}",
                role=self.role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{managed}",
            )

    @property
    def resources(self) -> list[TerraformResource]:
        """The role and its policy resources: depend on these to use the role only once it can act."""
        return [child for child in self.node.children if isinstance(child, TerraformResource)]

    @property
    def arn(self) -> str:
        return self.role.arn

    @property
    def name(self) -> str:
        return self.role.name
