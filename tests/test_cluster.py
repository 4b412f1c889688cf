"""<env>-cluster: EKS security settings, nodes, managed add-ons, Karpenter's AWS side and the
Pod Identity roles of every in-cluster component."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest
import yaml

from config import ConfigError, load_environment
from modules import names
from modules.charts import KARPENTER, LOAD_BALANCER_CONTROLLER, MOUNTPOINT_S3_CSI, SYSTEM_NODE_LABEL_KEY
from modules.eks_cluster import endpoint_access
from modules.instance_types import al2023_ami_type, architecture
from tests.conftest import REFERENCE
from tests.tf import one, ref, resources

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def cluster_stack(synth, env) -> dict:
    return synth.stack(f"{env.name}-cluster")


def key_of(stack: dict, rtype: str, **match) -> str:
    found = [k for k, v in resources(stack, rtype).items() if all(v.get(f) == x for f, x in match.items())]
    assert len(found) == 1, (rtype, match, found)
    return found[0]


def role_by_name(stack: dict, name: str) -> tuple[str, dict]:
    key = key_of(stack, "aws_iam_role", name=name)
    return key, resources(stack, "aws_iam_role")[key]


def inline_policies(stack: dict, role_key: str) -> dict[str, dict]:
    return {
        p["name"]: json.loads(p["policy"])
        for p in resources(stack, "aws_iam_role_policy").values()
        if p["role"] == ref("aws_iam_role", role_key)
    }


def managed_policies(stack: dict, role_key: str) -> set[str]:
    return {
        a["policy_arn"].removeprefix("arn:aws:iam::aws:policy/")
        for a in resources(stack, "aws_iam_role_policy_attachment").values()
        if a["role"] == ref("aws_iam_role", role_key, "name")
    }


def grants(document: dict) -> set[tuple[str, str]]:
    """(action, resource) pairs an identity policy allows."""
    pairs = set()
    for stmt in document["Statement"]:
        assert stmt["Effect"] == "Allow"
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        res = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        pairs |= {(a, r) for a in actions for r in res}
    return pairs


def storage_output(env, rtype: str, key: str, attribute: str) -> str:
    return (
        f"${{data.terraform_remote_state.cross-stack-reference-input-{env.name}-storage.outputs."
        f"cross-stack-output-{rtype}{key}{attribute}}}"
    )


def bucket_arn(synth, env, purpose: str) -> str:
    """The storage bucket's ARN as the cluster stack sees it (a cross-stack reference)."""
    storage = synth.stack(f"{env.name}-storage")
    key = key_of(storage, "aws_s3_bucket", bucket=env.bucket_name(purpose))
    return storage_output(env, "aws_s3_bucket", key, "arn")


def kms_key_arn(synth, env, purpose: str) -> str | None:
    if not getattr(env.storage, purpose).kms:
        return None
    storage = synth.stack(f"{env.name}-storage")
    keys = [k for k in resources(storage, "aws_kms_key") if k.startswith(f"{purpose}_kms_")]
    assert len(keys) == 1
    return storage_output(env, "aws_kms_key", keys[0], "arn")


# --- control plane ---------------------------------------------------------------------------


def test_cluster_security_settings(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        cluster = one(stack, "aws_eks_cluster")
        assert cluster["name"] == env.cluster_name
        assert cluster["version"] == env.cluster.version
        assert cluster["access_config"] == {
            "authentication_mode": "API",
            "bootstrap_cluster_creator_admin_permissions": False,
        }
        vpc = cluster["vpc_config"]
        assert vpc["endpoint_private_access"] is True
        assert vpc["endpoint_public_access"] is bool(env.cluster.public_endpoint_cidrs)
        assert vpc.get("public_access_cidrs") in (None, env.cluster.public_endpoint_cidrs)
        # Control plane ENIs only in the private subnets of the network stack.
        assert len(vpc["subnet_ids"]) == env.network.az_count
        assert all("aws_subnetvpc_private-" in subnet for subnet in vpc["subnet_ids"])
        assert cluster["bootstrap_self_managed_addons"] is False
        assert cluster["deletion_protection"] is env.production
        assert cluster["kubernetes_network_config"]["service_ipv4_cidr"] == env.cluster.service_cidr

        # Secrets envelope encryption with a customer managed key that rotates.
        assert cluster["encryption_config"]["resources"] == ["secrets"]
        key_ref = cluster["encryption_config"]["provider"]["key_arn"]
        key_name = key_ref.split(".")[1]
        assert resources(stack, "aws_kms_key")[key_name]["enable_key_rotation"] is True


def test_endpoint_access_is_private_unless_allowlisted():
    assert endpoint_access([]) == {"endpoint_private_access": True, "endpoint_public_access": False}
    assert endpoint_access(["203.0.113.0/24"]) == {
        "endpoint_private_access": True,
        "endpoint_public_access": True,
        "public_access_cidrs": ["203.0.113.0/24"],
    }


def test_control_plane_logs(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        cluster = one(stack, "aws_eks_cluster")
        assert cluster["enabled_cluster_log_types"] == ["api", "audit", "authenticator"]
        group_key = key_of(stack, "aws_cloudwatch_log_group", name=f"/aws/eks/{env.cluster_name}/cluster")
        group = resources(stack, "aws_cloudwatch_log_group")[group_key]
        assert group["retention_in_days"] == env.cluster.log_retention_days
        assert group["kms_key_id"].startswith("${aws_kms_key.")
        # Created first, so EKS does not create it without retention.
        assert f"aws_cloudwatch_log_group.{group_key}" in cluster["depends_on"]


def test_cluster_role_has_only_the_required_aws_policies(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        cluster = one(stack, "aws_eks_cluster")
        role_key = cluster["role_arn"].split(".")[1]
        role = resources(stack, "aws_iam_role")[role_key]
        trust = json.loads(role["assume_role_policy"])["Statement"]
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": ["sts:AssumeRole"]}
        ]
        assert managed_policies(stack, role_key) == {"AmazonEKSClusterPolicy"}
        (policy,) = inline_policies(stack, role_key).values()
        key_arn = cluster["encryption_config"]["provider"]["key_arn"]
        assert grants(policy) == {
            (action, key_arn) for action in ("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey")
        }


def test_admin_access_entries(synth, environments):
    assert any(env.cluster.admin_principals for env in environments.values()), "no environment tests this"
    for env in environments.values():
        stack = cluster_stack(synth, env)
        standard = {
            e["principal_arn"]: k
            for k, e in resources(stack, "aws_eks_access_entry").items()
            if e["type"] == "STANDARD"
        }
        assert set(standard) == set(env.cluster.admin_principals)
        associations = resources(stack, "aws_eks_access_policy_association").values()
        assert len(associations) == len(standard)
        for association in associations:
            assert association["policy_arn"] == CLUSTER_ADMIN_POLICY
            assert association["access_scope"] == {"type": "cluster"}
            entry_key = association["principal_arn"].split(".")[1]
            assert entry_key in standard.values()


def test_cluster_security_group_carries_the_karpenter_discovery_tag(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        cluster_key = next(iter(resources(stack, "aws_eks_cluster")))
        tag = one(stack, "aws_ec2_tag")
        assert tag == {
            "key": "karpenter.sh/discovery",
            "value": ref("aws_eks_cluster", cluster_key, "name"),
            "resource_id": f"${{aws_eks_cluster.{cluster_key}.vpc_config[0].cluster_security_group_id}}",
        }


# --- system nodes and managed add-ons ----------------------------------------------------------


def test_system_node_group(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        nodes = env.cluster.system_nodes
        group = one(stack, "aws_eks_node_group")
        assert group["ami_type"] == "AL2023_x86_64_STANDARD"
        assert group["capacity_type"] == "ON_DEMAND"
        assert group["instance_types"] == nodes.instance_types
        assert group["scaling_config"] == {"desired_size": nodes.desired, "min_size": nodes.min, "max_size": nodes.max}
        assert all("aws_subnetvpc_private-" in subnet for subnet in group["subnet_ids"])
        assert group["labels"] == {SYSTEM_NODE_LABEL_KEY: "system"}
        template_key = key_of(stack, "aws_launch_template", name=group["node_group_name"])
        assert group["launch_template"]["id"] == ref("aws_launch_template", template_key)
        template = resources(stack, "aws_launch_template")[template_key]
        assert template["metadata_options"] == {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
            "instance_metadata_tags": "disabled",
        }
        (root,) = template["block_device_mappings"]
        assert root["device_name"] == "/dev/xvda"
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volume_size"] == nodes.disk_gb
        # The launch template must not pin an AMI or security groups: EKS picks the AL2023 AMI and
        # puts nodes in the cluster security group.
        assert "image_id" not in template and "vpc_security_group_ids" not in template
        role_key = group["node_role_arn"].split(".")[1]
        assert managed_policies(stack, role_key) == {
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryPullOnly",
        }
        assert inline_policies(stack, role_key) == {}


def test_managed_addons_pinned_from_config_and_ordered(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        addons = {a["addon_name"]: (k, a) for k, a in resources(stack, "aws_eks_addon").items()}
        versions = env.cluster.addons
        assert {name: a["addon_version"] for name, (_, a) in addons.items()} == {
            "vpc-cni": versions.vpc_cni,
            "coredns": versions.coredns,
            "kube-proxy": versions.kube_proxy,
            "eks-pod-identity-agent": versions.pod_identity_agent,
        }
        assert json.loads(addons["vpc-cni"][1]["configuration_values"]) == {"enableNetworkPolicy": "true"}
        group_key = next(iter(resources(stack, "aws_eks_node_group")))
        group = resources(stack, "aws_eks_node_group")[group_key]
        # Nodes need the CNI, kube-proxy and the pod identity agent; coredns needs nodes.
        for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
            assert f"aws_eks_addon.{addons[name][0]}" in group["depends_on"]
        assert addons["coredns"][1]["depends_on"] == [f"aws_eks_node_group.{group_key}"]


def test_system_node_architecture():
    assert architecture("t3a.xlarge") == "x86_64"
    assert architecture("g4dn.xlarge") == "x86_64"
    assert architecture("m7g.large") == "arm64"
    assert architecture("c7gn.2xlarge") == "arm64"
    assert al2023_ami_type(["m7g.large", "t4g.xlarge"]) == "AL2023_ARM_64_STANDARD"
    with pytest.raises(ValueError, match="mix architectures"):
        al2023_ami_type(["t3a.xlarge", "m7g.large"])


def test_mixed_architecture_system_nodes_are_a_one_line_config_error(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mixed",
                "production": False,
                "account_id": "111122223333",
                "region": "us-west-2",
                "cluster": {"system_nodes": {"instance_types": ["t3a.xlarge", "m7g.xlarge"]}},
            }
        )
    )
    with pytest.raises(ConfigError) as err:
        load_environment(path)
    message = str(err.value)
    assert "cluster.system_nodes.instance_types" in message and "mix architectures" in message
    assert "\n" not in message


# --- Karpenter ----------------------------------------------------------------------------------


def _cfn_loader():
    class Loader(yaml.SafeLoader):
        pass

    # The template uses CloudFormation short tags (!Sub, !GetAtt); their values do not matter here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return Loader


def test_interruption_rules_match_upstream_and_target_the_queue(synth, environments):
    text = (REFERENCE / "karpenter" / "controller-policy.cloudformation.yaml").read_text()
    template = yaml.load(text, Loader=_cfn_loader())  # noqa: S506 - a SafeLoader subclass
    upstream = {
        json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    }
    assert len(upstream) == 5
    for env in environments.values():
        stack = cluster_stack(synth, env)
        queue_key = next(iter(resources(stack, "aws_sqs_queue")))
        rules = resources(stack, "aws_cloudwatch_event_rule")
        assert {json.dumps(json.loads(r["event_pattern"]), sort_keys=True) for r in rules.values()} == upstream
        targets = resources(stack, "aws_cloudwatch_event_target").values()
        assert {t["rule"] for t in targets} == {ref("aws_cloudwatch_event_rule", k, "name") for k in rules}
        assert {t["arn"] for t in targets} == {ref("aws_sqs_queue", queue_key, "arn")}


def test_interruption_queue_is_encrypted_and_tls_only(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        queue_key, queue = next(iter(resources(stack, "aws_sqs_queue").items()))
        assert queue["sqs_managed_sse_enabled"] is True
        assert queue["message_retention_seconds"] == 300
        policy = one(stack, "aws_sqs_queue_policy")
        assert policy["queue_url"] == ref("aws_sqs_queue", queue_key, "url")
        statements = json.loads(policy["policy"])["Statement"]
        queue_arn = ref("aws_sqs_queue", queue_key, "arn")
        deny = [s for s in statements if s["Effect"] == "Deny"]
        assert deny == [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": [queue_arn],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
        (allow,) = [s for s in statements if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == ["sqs:SendMessage"] and allow["Resource"] == [queue_arn]
        rule_arns = {ref("aws_cloudwatch_event_rule", k, "arn") for k in resources(stack, "aws_cloudwatch_event_rule")}
        assert set(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_arns


def test_karpenter_node_role(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        role_key, role = role_by_name(stack, f"{env.project}-{env.name}-karpenter-node")
        trust = json.loads(role["assume_role_policy"])["Statement"]
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole"]}
        ]
        # Upstream's managed policies; SSM lets the model-sync Lambda's commands run on the nodes.
        upstream = json.loads((REFERENCE / "karpenter" / "controller-policies.derived.json").read_text())
        expected = {arn.rsplit("/", 1)[1] for arn in upstream["nodeRole"]["ManagedPolicyArns"]}
        assert "AmazonSSMManagedInstanceCore" in expected
        assert managed_policies(stack, role_key) == expected
        # Read-only on the models bucket, nothing else.
        (policy,) = inline_policies(stack, role_key).values()
        models = bucket_arn(synth, env, "models")
        expected_grants = {("s3:ListBucket", models), ("s3:GetObject", f"{models}/*")}
        if kms_key_arn(synth, env, "models"):
            expected_grants.add(("kms:Decrypt", kms_key_arn(synth, env, "models")))
        assert grants(policy) == expected_grants
        # Nodes with this role may join the cluster.
        entries = [e for e in resources(stack, "aws_eks_access_entry").values() if e["type"] == "EC2_LINUX"]
        assert entries == [
            {
                "cluster_name": ref("aws_eks_cluster", next(iter(resources(stack, "aws_eks_cluster"))), "name"),
                "principal_arn": ref("aws_iam_role", role_key, "arn"),
                "type": "EC2_LINUX",
            }
        ]


def _render_reference(document: dict, variables: dict[str, str]) -> dict:
    # Independent of modules.controller_policies: plain text substitution on the upstream JSON.
    text = json.dumps(document)
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    assert "${AWS::" not in text and "${Karpenter" not in text and "${ClusterName}" not in text
    return json.loads(text)


def test_karpenter_controller_policy_equals_upstream(synth, environments):
    upstream = json.loads((REFERENCE / "karpenter" / "controller-policies.derived.json").read_text())
    for env in environments.values():
        stack = cluster_stack(synth, env)
        prefix = f"{env.project}-{env.name}"
        node_role_key, _ = role_by_name(stack, f"{prefix}-karpenter-node")
        variables = {
            "AWS::Partition": "aws",
            "AWS::Region": env.region,
            "AWS::AccountId": env.account_id,
            "AWS::URLSuffix": "amazonaws.com",
            "ClusterName": ref("aws_eks_cluster", next(iter(resources(stack, "aws_eks_cluster"))), "name"),
            "KarpenterInterruptionQueue.Arn": ref(
                "aws_sqs_queue", next(iter(resources(stack, "aws_sqs_queue"))), "arn"
            ),
            "KarpenterNodeRole.Arn": ref("aws_iam_role", node_role_key, "arn"),
        }
        expected = {
            name: _render_reference(policy["PolicyDocument"], variables)
            for name, policy in upstream["controllerManagedPolicies"].items()
        }
        controller_key, _ = role_by_name(stack, f"{prefix}-karpenter-controller")
        assert inline_policies(stack, controller_key) == expected
        assert managed_policies(stack, controller_key) == set()


def test_vendored_policies_are_the_reference_copies():
    from modules.controller_policies import KARPENTER_POLICIES_FILE, LOAD_BALANCER_CONTROLLER_POLICY_FILE

    assert (
        KARPENTER_POLICIES_FILE.read_bytes()
        == (REFERENCE / "karpenter" / "controller-policies.derived.json").read_bytes()
    )
    assert (
        LOAD_BALANCER_CONTROLLER_POLICY_FILE.read_bytes()
        == (REFERENCE / "aws-load-balancer-controller" / "iam_policy.json").read_bytes()
    )


def test_load_balancer_controller_policy_is_upstream_scoped_not_widened(synth, environments):
    from tests.test_iam import RESOURCE_STAR_ALLOWED

    upstream = json.loads((REFERENCE / "aws-load-balancer-controller" / "iam_policy.json").read_text())["Statement"]

    def listify(value):
        return value if isinstance(value, list) else [value]

    for env in environments.values():
        stack = cluster_stack(synth, env)
        role_key, _ = role_by_name(stack, f"{env.project}-{env.name}-lb-controller")
        (policy,) = inline_policies(stack, role_key).values()
        granted = set()
        for stmt in policy["Statement"]:
            for action in listify(stmt["Action"]):
                granted.add((action, json.dumps(stmt.get("Condition"), sort_keys=True)))
                for resource in listify(stmt["Resource"]):
                    # Covered by an upstream statement with the same action and condition ...
                    assert any(
                        action in listify(up["Action"])
                        and up.get("Condition") == stmt.get("Condition")
                        and any(fnmatchcase(resource, pattern) for pattern in listify(up["Resource"]))
                        for up in upstream
                    ), (action, resource)
                    # ... and narrowed to this account (and region) wherever AWS allows it.
                    if resource == "*":
                        assert action in RESOURCE_STAR_ALLOWED, action
                    else:
                        assert f":{env.account_id}:" in resource, resource
                        assert ":*:" not in resource, resource
        # Nothing upstream was dropped.
        expected = {
            (action, json.dumps(up.get("Condition"), sort_keys=True))
            for up in upstream
            for action in listify(up["Action"])
        }
        assert granted == expected


# --- Pod Identity --------------------------------------------------------------------------------


def expected_associations(env) -> dict[tuple[str, str], str]:
    prefix = f"{env.project}-{env.name}"
    return {
        (KARPENTER.namespace, KARPENTER.service_account): f"{prefix}-karpenter-controller",
        (LOAD_BALANCER_CONTROLLER.namespace, LOAD_BALANCER_CONTROLLER.service_account): f"{prefix}-lb-controller",
        (MOUNTPOINT_S3_CSI.namespace, MOUNTPOINT_S3_CSI.service_account): f"{prefix}-mountpoint-s3-csi",
        (env.comfyui.namespace, names.COMFYUI_SERVICE_ACCOUNT): f"{prefix}-comfyui",
    }


def test_pod_identity_associations_and_trust(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        cluster_name = ref("aws_eks_cluster", next(iter(resources(stack, "aws_eks_cluster"))), "name")
        roles = resources(stack, "aws_iam_role")
        found = {}
        for association in resources(stack, "aws_eks_pod_identity_association").values():
            assert association["cluster_name"] == cluster_name
            role = roles[association["role_arn"].split(".")[1]]
            namespace, account = association["namespace"], association["service_account"]
            found[(namespace, account)] = role["name"]
            (trust,) = json.loads(role["assume_role_policy"])["Statement"]
            assert trust == {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                # Only this cluster's service account can use the role, whatever association names it.
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": account,
                    }
                },
            }
        assert found == expected_associations(env)


def test_bucket_access_per_component(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        prefix = f"{env.project}-{env.name}"
        arn = {purpose: bucket_arn(synth, env, purpose) for purpose in ("models", "inputs", "outputs")}
        kms = {purpose: kms_key_arn(synth, env, purpose) for purpose in ("models", "inputs", "outputs")}

        def expect(purpose, object_actions, kms_actions, listing, arn=arn, kms=kms):
            pairs = {(action, f"{arn[purpose]}/*") for action in object_actions}
            if listing:
                pairs.add(("s3:ListBucket", arn[purpose]))
            if kms[purpose]:
                pairs |= {(action, kms[purpose]) for action in kms_actions}
            return pairs

        comfyui_key, _ = role_by_name(stack, f"{prefix}-comfyui")
        (comfyui,) = inline_policies(stack, comfyui_key).values()
        assert grants(comfyui) == (
            expect("models", ["s3:GetObject"], ["kms:Decrypt"], listing=True)
            | expect("inputs", ["s3:GetObject"], ["kms:Decrypt"], listing=True)
            | expect(
                "outputs",
                ["s3:PutObject", "s3:AbortMultipartUpload"],
                ["kms:GenerateDataKey", "kms:Decrypt"],
                listing=False,
            )
        )
        csi_key, _ = role_by_name(stack, f"{prefix}-mountpoint-s3-csi")
        (csi,) = inline_policies(stack, csi_key).values()
        read_write = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
        assert grants(csi) == (
            expect("inputs", read_write, ["kms:GenerateDataKey", "kms:Decrypt"], listing=True)
            | expect("outputs", read_write, ["kms:GenerateDataKey", "kms:Decrypt"], listing=True)
        )
        # KMS use is limited to S3 in this region.
        for document in (comfyui, csi):
            for stmt in document["Statement"]:
                if stmt["Action"][0].startswith("kms:"):
                    assert stmt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{env.region}.amazonaws.com"}}
    # prod encrypts its buckets with KMS, so the kms branch above is exercised.
    assert any(kms_key_arn(synth, env, "models") for env in environments.values())


# --- names, sizes, wiring -------------------------------------------------------------------------


def test_names_fit_aws_limits(synth, environments):
    for env in environments.values():
        stack = cluster_stack(synth, env)
        prefix = f"{env.project}-{env.name}"
        # Worst case: the longest project and environment names the schema allows (20 + 20).
        worst = "p" * 20 + "-" + "e" * 20
        for role in resources(stack, "aws_iam_role").values():
            assert role["name"].startswith(prefix)
            assert len(worst + role["name"][len(prefix) :]) <= 64, role["name"]
        for rule in resources(stack, "aws_cloudwatch_event_rule").values():
            assert len(worst + rule["name"][len(prefix) :]) <= 64, rule["name"]
        for queue in resources(stack, "aws_sqs_queue").values():
            assert len(worst + queue["name"][len(prefix) :]) <= 80, queue["name"]


def test_inline_policies_fit_the_per_role_limit(synth, environments):
    # IAM allows 10,240 characters (whitespace not counted) of inline policy per role. Terraform
    # references stand in for ARNs of similar length, so keep a margin.
    for env in environments.values():
        stack = cluster_stack(synth, env)
        for role_key, role in resources(stack, "aws_iam_role").items():
            size = sum(
                len(json.dumps(document, separators=(",", ":")))
                for document in inline_policies(stack, role_key).values()
            )
            assert size < 9000, (role["name"], size)


def test_stack_dependencies(synth, environments):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    for name in environments:
        cluster = manifest["stacks"][f"{name}-cluster"]["dependencies"]
        assert {f"{name}-network", f"{name}-storage"} <= set(cluster)
        assert f"{name}-cluster" in manifest["stacks"][f"{name}-addons"]["dependencies"]


def test_outputs(synth, environments):
    for env in environments.values():
        outputs = cluster_stack(synth, env)["output"]
        assert outputs["kubeconfig_command"]["value"] == (
            f"aws eks update-kubeconfig --region {env.region} --name {env.cluster_name}"
        )
        for name in ("cluster_name", "cluster_endpoint", "karpenter_node_role_name", "comfyui_role_arn"):
            assert outputs[name]["value"].startswith("${aws_"), name
