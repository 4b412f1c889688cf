"""<env>-edge: internal ALB, TargetGroupBinding, CloudFront VPC origin, WAF, access control."""

from __future__ import annotations

import copy
import json
import re
import textwrap

import jsonschema
import pytest
import yaml

from config import ConfigError, load_environment
from config.schema import EnvironmentConfig
from modules.names import COMFYUI_SERVICE
from modules.waf import REDACTED_HEADERS
from stacks.edge import CLOUDFRONT_ORIGIN_FACING, IDLE_TIMEOUT_SECONDS, short_name
from tests.conftest import PROJECT, REFERENCE
from tests.tf import data_sources, one, resources

TGB_CRD = REFERENCE / "aws-load-balancer-controller" / "targetgroupbindings.crd.yaml"
REMOTE = re.compile(r"^\$\{data\.terraform_remote_state\.cross-stack-reference-input-([\w-]+)\.outputs\.([\w.-]+)\}$")
REF = re.compile(r"^\$\{(?:data\.)?([\w-]+)\.([\w-]+)\.(\w+)\}$")
CF_CERT = "arn:aws:acm:us-east-1:444455556666:certificate/11111111-2222-3333-4444-555555555555"
ALB_CERT = "arn:aws:acm:us-west-2:444455556666:certificate/11111111-2222-3333-4444-555555555555"


def edge_stacks(synth, environments):
    for name, env in environments.items():
        yield env, synth.stack(f"{name}-edge")


def ref_to(value: str) -> tuple[str, str, str]:
    """`${type.name.attr}` or `${data.type.name.attr}` -> (type, name, attr)."""
    match = REF.match(value)
    assert match, value
    return match.group(1), match.group(2), match.group(3)


def remote_value(synth, value: str) -> str:
    """The producing stack's expression behind a cross-stack reference."""
    match = REMOTE.match(value)
    assert match, f"not a cross-stack reference: {value}"
    return synth.stack(match.group(1))["output"][match.group(2)]["value"]


def named(stack: dict, rtype: str, name: str) -> dict:
    return resources(stack, rtype)[name]


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields rejected, as `kubectl apply --validate=strict` does."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def tgb_schema() -> dict:
    crd = yaml.safe_load(TGB_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    assert version["served"] and version["storage"]
    return strict(version["schema"]["openAPIV3Schema"])


# --- ALB -------------------------------------------------------------------------------------------


def test_every_environment_has_an_edge_stack(synth, environments):
    assert {f"{name}-edge" for name in environments} <= set(synth.stacks)


def test_alb_is_internal_in_the_private_subnets(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        alb = one(stack, "aws_lb")
        assert alb["internal"] is True and alb["load_balancer_type"] == "application"
        network = synth.stack(f"{env.name}-network")
        subnets = [remote_value(synth, subnet) for subnet in alb["subnets"]]
        assert len(subnets) == env.network.az_count
        for expression in subnets:
            rtype, name, attribute = ref_to(expression)
            assert (rtype, attribute) == ("aws_subnet", "id")
            subnet = network["resource"]["aws_subnet"][name]
            assert subnet["//"]["metadata"]["path"].split("/")[-1].startswith("private-"), name
            assert subnet["tags"]["kubernetes.io/role/internal-elb"] == "1"


def test_no_public_load_balancer_anywhere(synth):
    for stack_id, stack in synth.stacks.items():
        for rtype in ("aws_lb", "aws_alb", "aws_elb"):
            for name, lb in resources(stack, rtype).items():
                assert lb.get("internal") is True, f"{stack_id}: {rtype}.{name} is internet-facing"
        # The edge stack's ALB is the only way in: no Ingress or LoadBalancer Service makes another.
        for rtype in ("kubernetes_ingress_v1", "kubernetes_ingress"):
            assert not resources(stack, rtype), f"{stack_id}: {rtype} would create another load balancer"
        for rtype in ("kubernetes_service_v1", "kubernetes_service"):
            for name, service in resources(stack, rtype).items():
                assert service["spec"].get("type", "ClusterIP") != "LoadBalancer", f"{stack_id}: {name}"


def test_alb_security_group_admits_only_cloudfront(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        group = one(stack, "aws_security_group")
        assert "ingress" not in group and "egress" not in group  # rules are separate resources
        assert not resources(stack, "aws_security_group_rule")
        ingress = one(stack, "aws_vpc_security_group_ingress_rule")
        assert (
            ingress["security_group_id"]
            == "${aws_security_group." + next(iter(resources(stack, "aws_security_group"))) + ".id}"
        )
        assert not {"cidr_ipv4", "cidr_ipv6", "referenced_security_group_id"} & set(ingress)
        prefix_list = data_sources(stack, "aws_ec2_managed_prefix_list")[ref_to(ingress["prefix_list_id"])[1]]
        assert prefix_list["name"] == CLOUDFRONT_ORIGIN_FACING == "com.amazonaws.global.cloudfront.origin-facing"
        port = 443 if env.edge.alb_certificate_arn else 80
        assert (ingress["ip_protocol"], ingress["from_port"], ingress["to_port"]) == ("tcp", port, port)
        egress = list(resources(stack, "aws_vpc_security_group_egress_rule").values())
        assert len(egress) == 1  # no Cognito: nothing but the pods
        assert (egress[0]["from_port"], egress[0]["to_port"]) == (env.comfyui.port, env.comfyui.port)
        assert remote_value(synth, egress[0]["cidr_ipv4"]).endswith(".cidr_block}")
        assert "0.0.0.0/0" not in json.dumps(stack["resource"])


def test_alb_websockets_stickiness_health_and_logs(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        alb = one(stack, "aws_lb")
        assert alb["idle_timeout"] == IDLE_TIMEOUT_SECONDS == 4000
        assert alb["drop_invalid_header_fields"] is True
        assert alb["enable_deletion_protection"] is env.production
        group = one(stack, "aws_lb_target_group")
        assert (group["target_type"], group["protocol"], group["port"]) == ("ip", "HTTP", env.comfyui.port)
        assert group["name"].endswith(f"-{env.comfyui.port}") and len(group["name"]) <= 32
        assert group["lifecycle"] == {"create_before_destroy": True}
        assert group["stickiness"] == {"type": "lb_cookie", "enabled": True, "cookie_duration": 86400}
        assert group["health_check"]["path"] == "/system_stats" and group["health_check"]["matcher"] == "200"
        listener = one(stack, "aws_lb_listener")
        assert listener["default_action"] == [
            {
                "type": "forward",
                "target_group_arn": "${aws_lb_target_group."
                + next(iter(resources(stack, "aws_lb_target_group")))
                + ".arn}",
            }
        ]
        # Access logs: to the edge log bucket, written by ELB only under its own account's prefix.
        bucket_key, bucket = next(iter(resources(stack, "aws_s3_bucket").items()))
        assert bucket["bucket"] == env.bucket_name("edge-logs")
        assert alb["access_logs"] == {
            "bucket": f"${{aws_s3_bucket.{bucket_key}.bucket}}",
            "enabled": True,
            "prefix": "alb",
        }
        policy = json.loads(one(stack, "aws_s3_bucket_policy")["policy"])
        alb_writes = [s for s in policy["Statement"] if s.get("Sid", "").startswith("AlbAccessLogs")]
        assert alb_writes and all(
            s["Action"] == ["s3:PutObject"]
            and s["Resource"] == [f"${{aws_s3_bucket.{bucket_key}.arn}}/alb/AWSLogs/{env.account_id}/*"]
            for s in alb_writes
        )
        assert any(s["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"} for s in alb_writes)
        sse = one(stack, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
        assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"  # ELB writes SSE-S3 only
        assert alb["depends_on"] == [f"aws_s3_bucket_policy.{next(iter(resources(stack, 'aws_s3_bucket_policy')))}"]


def test_target_group_binding_is_schema_valid_and_names_the_service(synth, environments, tgb_schema):
    for env, stack in edge_stacks(synth, environments):
        manifest = one(stack, "kubernetes_manifest")["manifest"]
        jsonschema.validate(manifest, tgb_schema)
        assert (manifest["apiVersion"], manifest["kind"]) == ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding")
        assert manifest["metadata"]["namespace"] == env.comfyui.namespace
        spec = manifest["spec"]
        assert spec["serviceRef"] == {"name": COMFYUI_SERVICE, "port": env.comfyui.port}
        assert ref_to(spec["targetGroupARN"])[:1] == ("aws_lb_target_group",)
        assert spec["targetType"] == "ip"
        rule = spec["networking"]["ingress"][0]
        assert ref_to(rule["from"][0]["securityGroup"]["groupID"])[0] == "aws_security_group"
        assert rule["ports"] == [{"port": env.comfyui.port, "protocol": "TCP"}]
        # The kubernetes provider reaches the cluster named in config with exec auth, no static token.
        assert data_sources(stack, "aws_eks_cluster")["eks-cluster"]["name"] == env.cluster_name
        assert stack["provider"]["kubernetes"][0]["exec"][0]["command"] == "aws"


def test_target_group_binding_schema_catches_mistakes(synth, tgb_schema):
    manifest = one(synth.stack("dev-edge"), "kubernetes_manifest")["manifest"]
    for broken in (
        {**manifest, "spec": {**manifest["spec"], "targetType": "pod"}},
        {**manifest, "spec": {**manifest["spec"], "targetGroupArn": "x"}},  # misspelled key
        {**manifest, "spec": {k: v for k, v in manifest["spec"].items() if k != "serviceRef"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, tgb_schema)


def test_edge_deploys_after_addons_and_workload(synth, environments):
    stacks = json.loads((synth.outdir / "manifest.json").read_text())["stacks"]
    for name in environments:
        dependencies = stacks[f"{name}-edge"]["dependencies"]
        assert f"{name}-network" in dependencies
        for component in ("addons", "workload"):
            if f"{name}-{component}" in synth.stacks:
                assert f"{name}-{component}" in dependencies, component


# --- CloudFront ------------------------------------------------------------------------------------


def test_cloudfront_reaches_the_alb_through_a_vpc_origin(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        distribution = one(stack, "aws_cloudfront_distribution")
        lb_name = next(iter(resources(stack, "aws_lb")))
        (origin,) = distribution["origin"]
        assert origin["domain_name"] == f"${{aws_lb.{lb_name}.dns_name}}"
        assert "custom_origin_config" not in origin
        vpc_origin_name = ref_to(origin["vpc_origin_config"]["vpc_origin_id"])[1]
        (endpoint,) = named(stack, "aws_cloudfront_vpc_origin", vpc_origin_name)["vpc_origin_endpoint_config"]
        assert endpoint["arn"] == f"${{aws_lb.{lb_name}.arn}}"
        assert endpoint["origin_ssl_protocols"] == [{"items": ["TLSv1.2"], "quantity": 1}]
        assert endpoint["origin_protocol_policy"] == ("https-only" if env.edge.alb_certificate_arn else "http-only")
        assert distribution["price_class"] == env.edge.price_class


def test_cloudfront_is_https_only_uncached_and_behind_the_waf(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        distribution = one(stack, "aws_cloudfront_distribution")
        behavior = distribution["default_cache_behavior"]
        assert behavior["viewer_protocol_policy"] == "redirect-to-https"
        assert set(behavior["allowed_methods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}
        cache = data_sources(stack, "aws_cloudfront_cache_policy")[ref_to(behavior["cache_policy_id"])[1]]
        assert cache["name"] == "Managed-CachingDisabled"
        origin_request = data_sources(stack, "aws_cloudfront_origin_request_policy")[
            ref_to(behavior["origin_request_policy_id"])[1]
        ]
        assert origin_request["name"] == "Managed-AllViewer"  # cookies, Authorization, websocket headers
        assert "forwarded_values" not in behavior
        acl_name = next(iter(resources(stack, "aws_wafv2_web_acl")))
        assert distribution["web_acl_id"] == f"${{aws_wafv2_web_acl.{acl_name}.arn}}"
        # Shipped environments have no custom domain: CloudFront's own certificate, no aliases.
        assert env.edge.domain_name is None
        assert distribution["viewer_certificate"] == {"cloudfront_default_certificate": True}
        assert "aliases" not in distribution
        # IPv4 allowlist: no IPv6 for viewers, so dual-stack clients are matched by it.
        assert distribution["is_ipv6_enabled"] is (not env.edge.ip_allowlist)


def test_cloudfront_standard_logging_v2_to_the_log_bucket(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        distribution_name = next(iter(resources(stack, "aws_cloudfront_distribution")))
        bucket_key = next(iter(resources(stack, "aws_s3_bucket")))
        source = one(stack, "aws_cloudwatch_log_delivery_source")
        assert source["resource_arn"] == f"${{aws_cloudfront_distribution.{distribution_name}.arn}}"
        assert source["log_type"] == "ACCESS_LOGS"
        destination = one(stack, "aws_cloudwatch_log_delivery_destination")
        (config,) = destination["delivery_destination_configuration"]
        assert config["destination_resource_arn"] == f"${{aws_s3_bucket.{bucket_key}.arn}}/cloudfront"
        for rtype in ("aws_cloudwatch_log_delivery_source", "aws_cloudwatch_log_delivery_destination"):
            assert one(stack, rtype)["provider"] == "aws.us-east-1"
        delivery = one(stack, "aws_cloudwatch_log_delivery")
        assert delivery["provider"] == "aws.us-east-1"
        policy = json.loads(one(stack, "aws_s3_bucket_policy")["policy"])
        (write,) = [s for s in policy["Statement"] if s.get("Sid") == "CloudFrontAccessLogs"]
        assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
        assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == env.account_id
        assert write["Condition"]["ArnLike"]["aws:SourceArn"].startswith(f"arn:aws:logs:us-east-1:{env.account_id}:")
        assert not resources(stack, "aws_s3_bucket_acl")  # v2 logging needs no ACLs


# --- WAF -------------------------------------------------------------------------------------------


def rules_by_name(acl: dict) -> dict[str, dict]:
    return {rule["name"]: rule for rule in acl["rule"]}


def test_waf_managed_rules_rate_limit_and_scope(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        acl = one(stack, "aws_wafv2_web_acl")
        assert acl["scope"] == "CLOUDFRONT" and acl["provider"] == "aws.us-east-1"
        providers = {p.get("alias"): p for p in stack["provider"]["aws"]}
        assert providers["us-east-1"]["region"] == "us-east-1"
        rules = rules_by_name(acl)
        assert len({rule["priority"] for rule in acl["rule"]}) == len(acl["rule"])
        for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
            statement = rules[group]["statement"]["managed_rule_group_statement"]
            assert (statement["vendor_name"], statement["name"]) == ("AWS", group)
            assert rules[group]["override_action"] == {"none": {}}  # the group's own actions apply
        common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managed_rule_group_statement"]
        # Workflow JSON and image uploads are larger than the 8 KB the size rule allows: count only.
        assert common["rule_action_override"] == [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}]
        assert (
            "rule_action_override"
            not in rules["AWSManagedRulesKnownBadInputsRuleSet"]["statement"]["managed_rule_group_statement"]
        )
        rate = rules["rate-limit-per-ip"]
        assert rate["action"] == {"block": {}}
        assert rate["statement"]["rate_based_statement"]["limit"] == env.edge.rate_limit
        assert rate["statement"]["rate_based_statement"]["aggregate_key_type"] == "IP"
        for rule in acl["rule"]:
            assert rule["visibility_config"]["cloudwatch_metrics_enabled"] is True


def test_waf_ip_allowlist_blocks_everyone_else(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        acl = one(stack, "aws_wafv2_web_acl")
        rules = rules_by_name(acl)
        if env.edge.ip_allowlist:
            ip_set = one(stack, "aws_wafv2_ip_set")
            assert ip_set["addresses"] == env.edge.ip_allowlist
            assert (ip_set["scope"], ip_set["ip_address_version"], ip_set["provider"]) == (
                "CLOUDFRONT",
                "IPV4",
                "aws.us-east-1",
            )
            allow = rules["ip-allowlist"]
            assert allow["action"] == {"allow": {}}
            assert ref_to(allow["statement"]["ip_set_reference_statement"]["arn"])[0] == "aws_wafv2_ip_set"
            # Evaluated last: managed rules and the rate limit still apply to allowed clients.
            assert allow["priority"] == max(rule["priority"] for rule in acl["rule"])
            assert acl["default_action"] == {"block": {}}
        else:
            assert not resources(stack, "aws_wafv2_ip_set") and "ip-allowlist" not in rules
            assert acl["default_action"] == {"allow": {}}
    assert environments["prod"].edge.access_control == "ip_allowlist"


def test_waf_logs_are_encrypted_and_redact_credentials(synth, environments):
    for env, stack in edge_stacks(synth, environments):
        logging = one(stack, "aws_wafv2_web_acl_logging_configuration")
        redacted = {field["single_header"]["name"] for field in logging["redacted_fields"]}
        assert redacted == set(REDACTED_HEADERS) == {"authorization", "cookie"}
        group_name = ref_to(logging["log_destination_configs"][0])[1]
        group = named(stack, "aws_cloudwatch_log_group", group_name)
        assert group["name"].startswith("aws-waf-logs-")
        assert group["retention_in_days"] == env.edge.log_retention_days
        assert ref_to(group["kms_key_id"])[0] == "aws_kms_key"
        key = one(stack, "aws_kms_key")
        assert key["enable_key_rotation"] is True and key["provider"] == "aws.us-east-1"
        assert "logs.us-east-1.amazonaws.com" in key["policy"]


# --- Outputs and config ----------------------------------------------------------------------------


def test_outputs_tell_users_where_to_go_and_how_to_test(synth, environments):
    for _env, stack in edge_stacks(synth, environments):
        outputs = {name: output["value"] for name, output in stack["output"].items()}
        distribution_name = next(iter(resources(stack, "aws_cloudfront_distribution")))
        url = f"https://${{aws_cloudfront_distribution.{distribution_name}.domain_name}}"
        assert outputs["url"] == outputs["api_base_url"] == url
        assert outputs["test_command"] == f"curl -fsS {url}/system_stats"


def test_short_names_fit_aws_limits():
    assert short_name("comfyui-dev-comfyui", 32) == "comfyui-dev-comfyui"
    long = short_name("a-very-long-project-name-production-comfyui", 32)
    assert len(long) <= 32 and long == short_name("a-very-long-project-name-production-comfyui", 32)
    assert long != short_name("a-very-long-project-name-production-comfyux", 32)


def write_variant(tmp_path, edge: str):
    text = (PROJECT / "config" / "prod.yaml").read_text()
    head = text.split("\nedge:\n")[0]
    tail = text.split("\nci:\n")[1]
    path = tmp_path / "prod.yaml"
    path.write_text(head + "\nedge:\n" + textwrap.indent(textwrap.dedent(edge), "  ") + "\nci:\n" + tail)
    return path


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        (
            "access_control: none\n",
            "edge.access_control: 'none' is not allowed in production; use 'ip_allowlist' or 'cognito'",
        ),
        ("access_control: ip_allowlist\n", "access_control 'ip_allowlist' needs at least one CIDR"),
        ("access_control: cognito\ndomain_name: comfy.example.com\n", "access_control 'cognito' needs domain_name"),
        (
            f"access_control: ip_allowlist\nip_allowlist: [203.0.113.0/24]\ndomain_name: comfy.example.com\n"
            f"alb_certificate_arn: {ALB_CERT}\n",
            "alb_certificate_arn needs cloudfront_certificate_arn",
        ),
        ("access_control: ip_allowlist\nip_allowlist: [0.0.0.0/0]\n", "0.0.0.0/0 admits everyone"),
        (
            "access_control: ip_allowlist\nip_allowlist: [203.0.113.0/24]\nlog_retention_days: 45\n",
            "must be one of CloudWatch's retention values",
        ),
    ],
)
def test_edge_config_mistakes_are_one_line_errors(tmp_path, edge, expected):
    with pytest.raises(ConfigError) as caught:
        load_environment(write_variant(tmp_path, edge))
    message = str(caught.value)
    assert "\n" not in message and "prod.yaml" in message and expected in message


def test_the_shipped_prod_file_with_access_control_none_does_not_load(tmp_path):
    text = (PROJECT / "config" / "prod.yaml").read_text()
    assert "access_control: ip_allowlist" in text
    path = tmp_path / "prod.yaml"
    path.write_text(text.replace("access_control: ip_allowlist", "access_control: none"))
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    assert str(caught.value) == (
        f"{path}: edge.access_control: 'none' is not allowed in production; use 'ip_allowlist' or 'cognito'"
    )


# --- Cognito variant: one extra synth of just the edge stack ------------------------------------------


@pytest.fixture(scope="module")
def cognito_edge(environments) -> tuple[EnvironmentConfig, dict]:
    from cdktf import Testing as CdktfTesting

    from stacks.edge import EdgeStack
    from stacks.network import NetworkStack

    data = environments["prod"].model_dump()
    data["edge"] = {
        "access_control": "cognito",
        "domain_name": "comfy.example.com",
        "cloudfront_certificate_arn": CF_CERT,
        "alb_certificate_arn": ALB_CERT,
    }
    env = EnvironmentConfig.model_validate(data)
    app = CdktfTesting.app()
    edge = EdgeStack(app, env, network=NetworkStack(app, env))
    return env, json.loads(CdktfTesting.synth(edge))


def test_cognito_login_in_front_of_the_ui(cognito_edge):
    _env, stack = cognito_edge
    listener = one(stack, "aws_lb_listener")
    assert (listener["port"], listener["protocol"], listener["certificate_arn"]) == (443, "HTTPS", ALB_CERT)
    assert listener["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    login, forward = sorted(listener["default_action"], key=lambda action: action["order"])
    assert login["type"] == "authenticate-cognito" and forward["type"] == "forward"
    cognito = login["authenticate_cognito"]
    pool = next(iter(resources(stack, "aws_cognito_user_pool")))
    assert cognito["user_pool_arn"] == f"${{aws_cognito_user_pool.{pool}.arn}}"
    assert cognito["on_unauthenticated_request"] == "authenticate"
    clients = {
        client["name"]: (key, client) for key, client in resources(stack, "aws_cognito_user_pool_client").items()
    }
    alb_key, alb_client = clients["comfyui-prod-alb"]
    assert cognito["user_pool_client_id"] == f"${{aws_cognito_user_pool_client.{alb_key}.id}}"
    assert alb_client["generate_secret"] is True and alb_client["allowed_oauth_flows"] == ["code"]
    assert alb_client["callback_urls"] == ["https://comfy.example.com/oauth2/idpresponse"]
    assert ref_to(cognito["user_pool_domain"])[0] == "aws_cognito_user_pool_domain"
    assert one(stack, "aws_cognito_user_pool")["admin_create_user_config"]["allow_admin_create_user_only"] is True


def test_cognito_api_clients_use_bearer_tokens_checked_by_the_alb(cognito_edge):
    _env, stack = cognito_edge
    rule = one(stack, "aws_lb_listener_rule")
    assert rule["condition"] == [{"http_header": {"http_header_name": "Authorization", "values": ["Bearer *"]}}]
    validate, forward = sorted(rule["action"], key=lambda action: action["order"])
    assert forward["type"] == "forward"
    jwt = validate["jwt_validation"]
    pool = next(iter(resources(stack, "aws_cognito_user_pool")))
    assert jwt["issuer"] == f"https://${{aws_cognito_user_pool.{pool}.endpoint}}"
    assert jwt["jwks_endpoint"] == jwt["issuer"] + "/.well-known/jwks.json"
    api_key = next(k for k, c in resources(stack, "aws_cognito_user_pool_client").items() if c["name"].endswith("-api"))
    claims = {claim["name"]: claim["values"] for claim in jwt["additional_claim"]}
    assert claims == {"token_use": ["access"], "client_id": [f"${{aws_cognito_user_pool_client.{api_key}.id}}"]}
    api_client = resources(stack, "aws_cognito_user_pool_client")[api_key]
    assert api_client["generate_secret"] is False and "ALLOW_USER_PASSWORD_AUTH" in api_client["explicit_auth_flows"]
    test = stack["output"]["test_command"]["value"]
    assert "initiate-auth" in test and "Authorization: Bearer $TOKEN" in test
    assert test.endswith("https://comfy.example.com/system_stats")


def test_cognito_variant_uses_https_end_to_end(cognito_edge):
    _env, stack = cognito_edge
    ingress = one(stack, "aws_vpc_security_group_ingress_rule")
    assert (ingress["from_port"], ingress["to_port"]) == (443, 443) and "prefix_list_id" in ingress
    idp = [r for r in resources(stack, "aws_vpc_security_group_egress_rule").values() if r["from_port"] == 443]
    assert len(idp) == 1  # the ALB fetches tokens and JWKS from Cognito
    distribution = one(stack, "aws_cloudfront_distribution")
    assert distribution["aliases"] == ["comfy.example.com"]
    assert distribution["viewer_certificate"] == {
        "acm_certificate_arn": CF_CERT,
        "ssl_support_method": "sni-only",
        "minimum_protocol_version": "TLSv1.2_2021",
    }
    (endpoint,) = one(stack, "aws_cloudfront_vpc_origin")["vpc_origin_endpoint_config"]
    assert endpoint["origin_protocol_policy"] == "https-only"
    assert distribution["is_ipv6_enabled"] is True
    assert stack["output"]["url"]["value"] == "https://comfy.example.com"
