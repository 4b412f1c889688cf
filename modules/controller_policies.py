"""Upstream IAM policies of in-cluster controllers, rendered for one cluster.

modules/policies/ holds verbatim copies of the upstream documents (tests check them against
tests/reference/). Rendering only fills in this cluster's names and narrows resources; it never
adds an action or drops a condition.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path

POLICIES_DIR = Path(__file__).resolve().parent / "policies"
KARPENTER_POLICIES_FILE = POLICIES_DIR / "karpenter-controller-policies.json"
LOAD_BALANCER_CONTROLLER_POLICY_FILE = POLICIES_DIR / "aws-load-balancer-controller.json"

# Commercial partition only: config.schema.AWS_REGIONS lists no China or GovCloud region.
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


def substitute(document: object, variables: Mapping[str, str]) -> object:
    """Replace every CloudFormation-style `${Name}` in keys and values; an unknown name is an error."""

    def text(value: str) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in variables:
                raise KeyError(f"no value for ${{{name}}}")
            return variables[name]

        return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", replace, value)

    if isinstance(document, dict):
        return {text(key): substitute(value, variables) for key, value in document.items()}
    if isinstance(document, list):
        return [substitute(item, variables) for item in document]
    if isinstance(document, str):
        return text(document)
    return document


def karpenter_controller_policies(
    *, region: str, account_id: str, cluster_name: str, interruption_queue_arn: str, node_role_arn: str
) -> dict[str, str]:
    """The six upstream Karpenter controller policies (name -> JSON document), rendered as-is."""
    upstream = json.loads(KARPENTER_POLICIES_FILE.read_text(encoding="utf-8"))
    variables = {
        "AWS::Partition": PARTITION,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::URLSuffix": URL_SUFFIX,
        "ClusterName": cluster_name,
        "KarpenterInterruptionQueue.Arn": interruption_queue_arn,
        "KarpenterNodeRole.Arn": node_role_arn,
    }
    return {
        name: json.dumps(substitute(policy["PolicyDocument"], variables), indent=2)
        for name, policy in upstream["controllerManagedPolicies"].items()
    }


# AWS Load Balancer Controller actions that AWS authorizes only against Resource "*" (no
# resource-level permissions in the Service Authorization Reference). They keep "*".
LOAD_BALANCER_CONTROLLER_UNSCOPABLE = frozenset(
    {
        "acm:ListCertificates",
        "iam:ListServerCertificates",
        "shield:GetSubscriptionState",
        "shield:CreateProtection",
        "elasticloadbalancing:SetWebAcl",
    }
)
_UNSCOPABLE_PREFIXES = ("ec2:Describe", "elasticloadbalancing:Describe")


def _scoped_resources(action: str, region: str, account_id: str) -> list[str]:
    """ARN patterns in this account (and region) for an action that upstream grants on "*"."""
    regional = f"{region}:{account_id}"
    load_balancers = f"arn:{PARTITION}:elasticloadbalancing:{regional}:*"
    service = action.split(":", 1)[0]
    special = {
        "iam:CreateServiceLinkedRole": [
            f"arn:{PARTITION}:iam::{account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
            "AWSServiceRoleForElasticLoadBalancing"
        ],
        "iam:GetServerCertificate": [f"arn:{PARTITION}:iam::{account_id}:server-certificate/*"],
        "acm:DescribeCertificate": [f"arn:{PARTITION}:acm:{regional}:certificate/*"],
        "cognito-idp:DescribeUserPoolClient": [f"arn:{PARTITION}:cognito-idp:{regional}:userpool/*"],
    }
    if action in special:
        return special[action]
    if service in ("waf-regional", "wafv2"):
        # Web ACL calls name both the web ACL and the load balancer it protects.
        return [f"arn:{PARTITION}:{service}:{regional}:*", load_balancers]
    if service == "shield":
        return [f"arn:{PARTITION}:shield::{account_id}:protection/*"]
    if service in ("ec2", "elasticloadbalancing"):
        return [f"arn:{PARTITION}:{service}:{regional}:*"]
    raise ValueError(f"no scope known for {action}; add it here or to LOAD_BALANCER_CONTROLLER_UNSCOPABLE")


def is_unscopable_load_balancer_action(action: str) -> bool:
    return action in LOAD_BALANCER_CONTROLLER_UNSCOPABLE or action.startswith(_UNSCOPABLE_PREFIXES)


def load_balancer_controller_policy(*, region: str, account_id: str) -> str:
    """The upstream AWS Load Balancer Controller policy, scoped to this account and region.

    Same actions and conditions as upstream. Resources: `arn:aws:<svc>:*:*:...` becomes this region
    and account; `"*"` stays only for actions without resource-level permissions, the other actions
    of such a statement move to a copy of it (same condition) on this account's ARNs.
    """
    upstream = json.loads(LOAD_BALANCER_CONTROLLER_POLICY_FILE.read_text(encoding="utf-8"))
    statements: list[dict] = []
    for original in upstream["Statement"]:
        actions = original["Action"] if isinstance(original["Action"], list) else [original["Action"]]
        resources = original["Resource"] if isinstance(original["Resource"], list) else [original["Resource"]]
        if resources != ["*"]:
            statement = copy.deepcopy(original)
            statement["Resource"] = [
                re.sub(rf"^arn:{PARTITION}:([a-z0-9-]+):\*:\*:", rf"arn:{PARTITION}:\1:{region}:{account_id}:", arn)
                for arn in resources
            ]
            statements.append(statement)
            continue
        unscoped = [action for action in actions if is_unscopable_load_balancer_action(action)]
        if unscoped:
            statement = copy.deepcopy(original)
            statement["Action"] = unscoped
            statements.append(statement)
        # Actions that share the same ARN patterns stay together, in upstream order.
        groups: dict[tuple[str, ...], list[str]] = {}
        for action in actions:
            if action not in unscoped:
                groups.setdefault(tuple(_scoped_resources(action, region, account_id)), []).append(action)
        for arns, grouped in groups.items():
            statement = copy.deepcopy(original)
            statement["Action"] = grouped
            statement["Resource"] = list(arns)
            statements.append(statement)
    return json.dumps({"Version": upstream["Version"], "Statement": statements}, indent=2)
