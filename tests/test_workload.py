"""<env>-workload: every Kubernetes object validated against real schemas, and the properties that
matter for GPU nodes and ComfyUI (security context, probes, drain, tolerations, taints, limits,
image pinning, volumes, network policy)."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import kubernetes_validate
import pytest

from modules import names
from modules.comfyui import (
    HOOKS_PATH,
    POD_IDENTITY_AGENT_CIDR,
    SHUTDOWN_MARGIN_SECONDS,
    STATIC_STORAGE_CLASS,
    image_reference,
    s3_mount_options,
)
from modules.gpu_nodes import DRAIN_MARGIN_SECONDS, FALLBACK_WEIGHT, PRIMARY_WEIGHT
from tests.conftest import REFERENCE
from tests.k8s_objects import (
    ConversionError,
    cel_rules,
    load_crd_schema,
    schema_version,
    stack_objects,
    strict,
    to_object,
    validate_core,
)
from tests.tf import resources

KARPENTER_CRDS = REFERENCE / "karpenter"
LABELS = {"app.kubernetes.io/name": "comfyui", "app.kubernetes.io/component": "server"}


@pytest.fixture(scope="module")
def workloads(synth, environments):
    """Per environment: (env, stack JSON, Kubernetes objects by (kind, name), CRD manifests by (kind, name))."""
    result = {}
    for name, env in environments.items():
        stack = synth.stack(f"{name}-workload")
        version = schema_version(env.cluster.version)
        objects = {(obj["kind"], obj["metadata"]["name"]): obj for obj in stack_objects(stack, version)}
        manifests = {
            (m["manifest"]["kind"], m["manifest"]["metadata"]["name"]): m["manifest"]
            for m in resources(stack, "kubernetes_manifest").values()
        }
        result[name] = (env, stack, objects, manifests)
    return result


def remote_ref(stack_id: str, *fragments: str) -> re.Pattern:
    """A cross-stack reference to an output of `stack_id` whose name contains every fragment."""
    body = "".join(f"(?=[^}}]*{re.escape(f)})" for f in fragments)
    return re.compile(
        rf"^\$\{{data\.terraform_remote_state\.cross-stack-reference-input-{stack_id}\.outputs\.{body}[^}}]+\}}"
    )


def pod(objects) -> dict:
    return objects[("Deployment", names.COMFYUI_APP)]["spec"]["template"]["spec"]


def container(objects, name: str) -> dict:
    return next(c for c in pod(objects)["containers"] if c["name"] == name)


# --- stacks and deploy order -----------------------------------------------------------------------


def test_workload_stack_per_environment_after_addons(synth, environments):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    for name in environments:
        dependencies = manifest["stacks"][f"{name}-workload"]["dependencies"]
        assert f"{name}-addons" in dependencies
        for upstream in ("cluster", "storage", "network"):
            assert f"{name}-{upstream}" in dependencies


def test_kubernetes_provider_uses_exec_auth_against_the_cluster_by_name(workloads):
    for name, (_env, stack, _objects, _manifests) in workloads.items():
        (provider,) = stack["provider"]["kubernetes"]
        assert provider["exec"][0]["command"] == "aws" and provider["exec"][0]["args"][:2] == ["eks", "get-token"]
        assert "token" not in provider and "config_path" not in provider
        cluster = stack["data"]["aws_eks_cluster"]["eks-cluster"]["name"]
        assert remote_ref(f"{name}-cluster", "eks_cluster", "name").match(cluster)


# --- schemas -------------------------------------------------------------------------------------


def test_every_core_object_validates_against_the_kubernetes_schema(workloads):
    for name, (env, _stack, objects, _manifests) in workloads.items():
        version = schema_version(env.cluster.version)
        assert version == env.cluster.version or float(version) < float(env.cluster.version)
        kinds = sorted({kind for kind, _ in objects})
        assert kinds == sorted(
            [
                "ConfigMap",
                "Deployment",
                "Namespace",
                "NetworkPolicy",
                "PersistentVolume",
                "PersistentVolumeClaim",
                "PodDisruptionBudget",
                "Service",
                "ServiceAccount",
            ]
        ), name
        for obj in objects.values():
            assert validate_core(obj, version) == version, (name, obj["kind"])


def test_schema_validation_catches_mistakes(workloads):
    env, stack, objects, _ = workloads["dev"]
    version = schema_version(env.cluster.version)
    deployment = copy.deepcopy(objects[("Deployment", names.COMFYUI_APP)])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(deployment, version)
    deployment = copy.deepcopy(objects[("Deployment", names.COMFYUI_APP)])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(deployment, version)
    # The converter refuses synthesized keys it cannot place instead of dropping them.
    (config,) = resources(stack, "kubernetes_service_v1").values()
    broken = copy.deepcopy(config)
    broken["spec"]["prot"] = []
    with pytest.raises(ConversionError):
        to_object("kubernetes_service_v1", broken, version)


def crd_validator(crd_file: str) -> jsonschema.Validator:
    schema = strict(load_crd_schema(KARPENTER_CRDS / crd_file))
    return jsonschema.Draft7Validator(schema)


def test_karpenter_objects_validate_against_the_crds(workloads):
    validators = {
        "NodePool": crd_validator("nodepools.crd.yaml"),
        "EC2NodeClass": crd_validator("ec2nodeclasses.crd.yaml"),
    }
    for name, (env, _stack, _objects, manifests) in workloads.items():
        expected = {("EC2NodeClass", "gpu"), ("NodePool", names.GPU_NODEPOOL)}
        if env.gpu.spot_fallback:
            expected.add(("NodePool", names.GPU_FALLBACK_NODEPOOL))
        assert set(manifests) == expected, name
        for (kind, _), manifest in manifests.items():
            assert (
                manifest["apiVersion"] == {"NodePool": "karpenter.sh/v1", "EC2NodeClass": "karpenter.k8s.aws/v1"}[kind]
            )
            errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validators[kind].iter_errors(manifest)]
            assert not errors, (name, kind, errors)


def test_strict_crd_validation_catches_a_typo(workloads):
    _env, _stack, _objects, manifests = workloads["dev"]
    node_pool = copy.deepcopy(manifests[("NodePool", names.GPU_NODEPOOL)])
    node_pool["spec"]["disruption"]["consolidateAftr"] = "5m"
    assert list(crd_validator("nodepools.crd.yaml").iter_errors(node_pool))
    node_pool = copy.deepcopy(manifests[("NodePool", names.GPU_NODEPOOL)])
    node_pool["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    assert list(crd_validator("nodepools.crd.yaml").iter_errors(node_pool))


def _quoted_list(rule: str) -> list[str]:
    return re.findall(r'"([^"]+)"', rule.split("||")[0])


def test_karpenter_cel_rules_that_jsonschema_cannot_check(workloads):
    """The CRDs' x-kubernetes-validations (CEL) on the fields we set, with the lists taken from the CRDs."""
    pool_rules = dict(cel_rules(load_crd_schema(KARPENTER_CRDS / "nodepools.crd.yaml")))
    class_rules = cel_rules(load_crd_schema(KARPENTER_CRDS / "ec2nodeclasses.crd.yaml"))
    requirement_rules = [
        r
        for p, r in cel_rules(load_crd_schema(KARPENTER_CRDS / "nodepools.crd.yaml"))
        if p == ".spec.template.spec.requirements[].key"
    ]
    aws_keys = next(_quoted_list(r) for r in requirement_rules if "karpenter.k8s.aws/instance-family" in r)
    restricted_tags = [tag for p, r in class_rules if p == ".spec.tags" for tag in re.findall(r"'([^']+)'", r)]
    assert "karpenter.k8s.aws/instance-family" in aws_keys and "eks:eks-cluster-name" in restricted_tags
    assert pool_rules  # the CRD still carries CEL rules; if this fails, revisit this test
    for name, (_env, _stack, _objects, manifests) in workloads.items():
        for (kind, pool_name), manifest in manifests.items():
            if kind == "NodePool":
                template = manifest["spec"]["template"]
                for requirement in template["spec"]["requirements"]:
                    key, domain = requirement["key"], requirement["key"].split("/")[0]
                    if domain.endswith("karpenter.k8s.aws"):
                        assert key in aws_keys, (name, pool_name, key)
                    if domain.endswith("karpenter.sh"):
                        assert key == "karpenter.sh/capacity-type", (name, key)
                    assert key != "kubernetes.io/hostname"
                    if requirement["operator"] == "In":
                        assert requirement["values"], (name, key)
                for label in template["metadata"]["labels"]:
                    assert not label.split("/")[0].endswith(("karpenter.sh", "karpenter.k8s.aws")), label
                budgets = manifest["spec"]["disruption"]["budgets"]
                assert all(("schedule" in b) == ("duration" in b) for b in budgets)
            else:
                spec = manifest["spec"]
                for tag in spec["tags"]:
                    assert tag and tag not in restricted_tags and not tag.startswith("kubernetes.io/cluster"), tag
                (term,) = spec["amiSelectorTerms"]
                assert set(term) == {"alias"} and re.match(r"^[a-zA-Z0-9]+@.+$", term["alias"])
                assert term["alias"].split("@")[0] == "al2023"
                assert spec["role"] and "instanceProfile" not in spec
                (root,) = [b for b in spec["blockDeviceMappings"] if b.get("rootVolume")]
                assert "volumeSize" in root["ebs"]


# --- GPU nodes --------------------------------------------------------------------------------------


def test_node_class(workloads):
    for name, (env, _stack, _objects, manifests) in workloads.items():
        spec = manifests[("EC2NodeClass", "gpu")]["spec"]
        assert spec["amiSelectorTerms"] == [{"alias": env.gpu.ami_alias}]
        assert remote_ref(f"{name}-cluster", "node-role", "name").match(spec["role"]), spec["role"]
        discovery = [{"tags": {"karpenter.sh/discovery": env.cluster_name}}]
        assert spec["subnetSelectorTerms"] == discovery and spec["securityGroupSelectorTerms"] == discovery
        assert spec["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        }
        (root,) = spec["blockDeviceMappings"]
        assert root["deviceName"] == "/dev/xvda" and root["rootVolume"] is True
        ebs = root["ebs"]
        assert ebs["encrypted"] is True and ebs["volumeType"] == "gp3"
        assert ebs["volumeSize"] == f"{env.gpu.root_volume_gb}Gi"
        assert ebs["throughput"] == env.gpu.root_volume_throughput and ebs["iops"] * 0.25 >= ebs["throughput"]
        assert spec["tags"][names.GPU_POOL_TAG_KEY] == names.GPU_POOL_TAG_VALUE
        assert spec["tags"]["Environment"] == name
        # The instance store is ours (models); Karpenter must not RAID it for kubelet.
        assert "instanceStorePolicy" not in spec
        assert spec["associatePublicIPAddress"] is False


def test_node_pools(workloads):
    for name, (env, _stack, _objects, manifests) in workloads.items():
        gpu = env.gpu
        pools = {pool: m["spec"] for (kind, pool), m in manifests.items() if kind == "NodePool"}
        for pool_name, spec in pools.items():
            template = spec["template"]
            assert template["metadata"]["labels"] == {names.GPU_NODE_LABEL_KEY: names.GPU_POOL_TAG_VALUE}
            assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
            assert template["spec"]["nodeClassRef"] == {
                "group": "karpenter.k8s.aws",
                "kind": "EC2NodeClass",
                "name": "gpu",
            }
            requirements = {r["key"]: r for r in template["spec"]["requirements"]}
            assert requirements["karpenter.k8s.aws/instance-family"]["values"] == gpu.instance_families
            assert requirements["karpenter.k8s.aws/instance-size"]["values"] == gpu.instance_sizes
            assert all(r["operator"] == "In" for r in requirements.values())
            assert spec["limits"] == {"nvidia.com/gpu": str(gpu.gpu_limit)}
            assert template["spec"]["expireAfter"] == gpu.expire_after
            disruption = spec["disruption"]
            assert disruption["consolidationPolicy"] == "WhenEmpty"
            assert disruption["consolidateAfter"] == gpu.consolidate_after
            assert {"nodes": "1", "reasons": ["Drifted"]} in disruption["budgets"]
            # Karpenter waits for the pod's own grace period (its preStop drain) before forcing.
            grace = int(template["spec"]["terminationGracePeriod"].rstrip("s"))
            assert grace == env.comfyui.termination_grace_seconds + DRAIN_MARGIN_SECONDS
            capacity = requirements["karpenter.sh/capacity-type"]["values"]
            if not gpu.spot_fallback:
                assert capacity == gpu.capacity_types and "weight" not in spec
            elif pool_name == names.GPU_NODEPOOL:
                assert capacity == ["spot"] and spec["weight"] == PRIMARY_WEIGHT
            else:
                assert pool_name == names.GPU_FALLBACK_NODEPOOL
                assert capacity == ["on-demand"] and spec["weight"] == FALLBACK_WEIGHT < PRIMARY_WEIGHT
        assert (names.GPU_FALLBACK_NODEPOOL in pools) == gpu.spot_fallback, name
    # The shipped configs exercise both shapes.
    assert {env.gpu.spot_fallback for env, *_ in workloads.values()} == {True, False}


# --- ComfyUI -------------------------------------------------------------------------------------


def test_namespace_enforces_the_restricted_pod_security_standard(workloads):
    for _name, (env, _stack, objects, _) in workloads.items():
        labels = objects[("Namespace", env.comfyui.namespace)]["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{env.cluster.version}"


# Volume types the `restricted` Pod Security Standard admits
# (kubernetes.io/docs/concepts/security/pod-security-standards).
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def test_pod_passes_the_restricted_profile_and_runs_locked_down(workloads):
    for name, (_env, _stack, objects, _) in workloads.items():
        spec = pod(objects)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == names.CONTAINER_UID
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert not any(spec.get(flag) for flag in ("hostNetwork", "hostPID", "hostIPC"))
        for volume in spec["volumes"]:
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, (name, volume)
        assert [c["name"] for c in spec["initContainers"]] == ["writable-custom-nodes"]
        for each in spec["initContainers"] + spec["containers"]:
            context = each["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert context["runAsNonRoot"] is True and context["runAsUser"] == names.CONTAINER_UID
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"cpu", "memory"} <= set(each["resources"]["requests"]) and {"cpu", "memory"} <= set(
                each["resources"]["limits"]
            )
        for each in spec["containers"]:
            assert "livenessProbe" in each and "readinessProbe" in each


def test_comfyui_container(workloads):
    for name, (env, stack, objects, _) in workloads.items():
        comfy, spec = env.comfyui, pod(objects)
        deployment = objects[("Deployment", names.COMFYUI_APP)]
        assert deployment["spec"]["replicas"] == comfy.replicas
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        main = container(objects, "comfyui")
        image = main["image"]
        # Repository from <env>-storage (never re-derived), tag or digest from config, never :latest.
        assert remote_ref(f"{name}-storage", "ecr_repository", "repository_url").match(image), image
        assert image.endswith(f"@{env.image.digest}" if env.image.digest else f":{env.image.tag}")
        assert not image.endswith(":latest")
        assert main["imagePullPolicy"] == "Always"
        resources_ = main["resources"]
        assert resources_["requests"] == {
            "cpu": comfy.cpu_request,
            "memory": comfy.memory_request,
            "nvidia.com/gpu": str(comfy.gpus),
        }
        assert resources_["limits"] == {
            "cpu": comfy.cpu_limit,
            "memory": comfy.memory_limit,
            "nvidia.com/gpu": str(comfy.gpus),
        }
        assert main["ports"] == [{"name": "http", "containerPort": comfy.port, "protocol": "TCP"}]
        # image/Dockerfile's CMD listens on $COMFYUI_PORT.
        assert {"name": "COMFYUI_PORT", "value": str(comfy.port)} in main["env"]
        # GPU placement: tolerate the GPU taint, require the GPU pool label.
        assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": names.GPU_NODE_LABEL_KEY, "operator": "In", "values": ["gpu"]}]}]
        assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in spec["topologySpreadConstraints"])
        assert spec["serviceAccountName"] == names.COMFYUI_SERVICE_ACCOUNT
        assert spec["terminationGracePeriodSeconds"] == comfy.termination_grace_seconds
        raw = next(iter(resources(stack, "kubernetes_deployment_v1").values()))
        assert raw["wait_for_rollout"] is False


def test_probes_and_drain(workloads):
    for _name, (env, _stack, objects, _) in workloads.items():
        comfy = env.comfyui
        main = container(objects, "comfyui")
        url = f"http://127.0.0.1:{comfy.port}"
        startup = main["startupProbe"]
        assert startup["exec"]["command"] == [
            "python3",
            f"{HOOKS_PATH}/comfyui_lifecycle.py",
            "startup-check",
            "--marker",
            f"{names.CONTAINER_MODELS_PATH}/{names.MODELS_READY_MARKER}",
            "--url",
            url,
        ]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= comfy.startup_timeout_seconds
        for probe in (main["readinessProbe"], main["livenessProbe"]):
            assert probe["httpGet"] == {"path": "/system_stats", "port": "http"}
        assert main["livenessProbe"]["periodSeconds"] * main["livenessProbe"]["failureThreshold"] >= 60
        drain = main["lifecycle"]["preStop"]["exec"]["command"]
        assert drain[:3] == ["python3", f"{HOOKS_PATH}/comfyui_lifecycle.py", "drain"]
        timeout = int(drain[drain.index("--timeout") + 1])
        assert timeout == comfy.termination_grace_seconds - SHUTDOWN_MARGIN_SECONDS
        assert 0 < timeout < comfy.termination_grace_seconds
        assert drain[drain.index("--url") + 1] == url
        # The uploader keeps copying until ComfyUI has drained, then makes its final copy.
        uploader = container(objects, "output-uploader")
        assert uploader["lifecycle"]["preStop"] == main["lifecycle"]["preStop"]


def test_hook_scripts_are_mounted_from_the_project_files(workloads):
    from modules.comfyui import POD_FILES, hooks_checksum

    for _name, (_env, _stack, objects, _) in workloads.items():
        data = objects[("ConfigMap", "comfyui-hooks")]["data"]
        for file_name, text in data.items():
            # Terraform unescapes $${ -> ${ and %%{ -> %{ when it applies the ConfigMap.
            assert text.replace("$${", "${").replace("%%{", "%{") == (POD_FILES / file_name).read_text()
        hooks = next(v for v in pod(objects)["volumes"] if v["name"] == "hooks")
        assert hooks["configMap"] == {"name": "comfyui-hooks", "defaultMode": 0o555}
        template = objects[("Deployment", names.COMFYUI_APP)]["spec"]["template"]
        assert template["metadata"]["annotations"]["comfyui/hooks-sha256"] == hooks_checksum()


def test_volumes_models_read_only_inputs_and_outputs_on_s3(workloads):
    for name, (env, _stack, objects, _) in workloads.items():
        spec, main, uploader = pod(objects), container(objects, "comfyui"), container(objects, "output-uploader")
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["name"]: m for m in main["volumeMounts"] if "subPath" not in m}
        # Models: the node's copy, read-only at every level.
        assert mounts["models"] == {"name": "models", "mountPath": names.CONTAINER_MODELS_PATH, "readOnly": True}
        assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "comfyui-models", "readOnly": True}
        models_pv = objects[("PersistentVolume", f"{env.comfyui.namespace}-models")]["spec"]
        assert models_pv["hostPath"] == {"path": env.gpu.models_path, "type": "Directory"}
        assert models_pv["accessModes"] == ["ReadOnlyMany"]
        # Inputs straight from S3; outputs written locally, copied to S3 by the uploader.
        assert mounts["inputs"]["mountPath"] == names.CONTAINER_INPUT_PATH
        assert mounts["outputs-staging"]["mountPath"] == names.CONTAINER_OUTPUT_PATH
        assert "outputs" not in mounts
        assert volumes["outputs-staging"]["emptyDir"] == {"sizeLimit": f"{env.comfyui.output_staging_gb}Gi"}
        uploader_mounts = {m["name"]: m["mountPath"] for m in uploader["volumeMounts"]}
        assert uploader_mounts["outputs-staging"] == names.CONTAINER_OUTPUT_PATH
        assert uploader_mounts["outputs"] == "/mnt/outputs"
        assert uploader["command"][uploader["command"].index("--source") + 1] == names.CONTAINER_OUTPUT_PATH
        assert uploader["command"][uploader["command"].index("--dest") + 1] == "/mnt/outputs"
        # Writable paths ComfyUI needs with a read-only root filesystem.
        all_paths = {m["mountPath"] for m in main["volumeMounts"]}
        assert {
            "/tmp",
            names.CONTAINER_USER_PATH,
            names.CONTAINER_TEMP_PATH,
            names.CONTAINER_HOME,
            names.CONTAINER_CUSTOM_NODES_PATH,
            "/dev/shm",
        } <= all_paths
        # custom_nodes: a writable copy of the image's folder, made before ComfyUI starts.
        (init,) = spec["initContainers"]
        assert init["image"] == main["image"]
        assert init["command"][-2:] == [f"{names.CONTAINER_CUSTOM_NODES_PATH}/.", "/writable/"]
        (copy_target,) = init["volumeMounts"]
        nodes_mount = next(m for m in main["volumeMounts"] if m["mountPath"] == names.CONTAINER_CUSTOM_NODES_PATH)
        assert (copy_target["name"], copy_target["subPath"]) == (nodes_mount["name"], nodes_mount["subPath"])
        for purpose in ("inputs", "outputs"):
            pv = objects[("PersistentVolume", f"{env.comfyui.namespace}-{purpose}")]["spec"]
            assert pv["csi"]["driver"] == "s3.csi.aws.com"
            bucket = pv["csi"]["volumeAttributes"]["bucketName"]
            assert remote_ref(f"{name}-storage", f"{purpose}_bucket").match(bucket), bucket
            assert pv["mountOptions"] == s3_mount_options(env.region)
            assert {
                "allow-delete",
                "allow-overwrite",
                f"uid={names.CONTAINER_UID}",
                f"gid={names.CONTAINER_GID}",
            } <= set(pv["mountOptions"])
            assert f"region {env.region}" in pv["mountOptions"]
            claim = objects[("PersistentVolumeClaim", f"comfyui-{purpose}")]["spec"]
            assert claim["volumeName"] == f"{env.comfyui.namespace}-{purpose}"
            assert pv["claimRef"] == {"name": f"comfyui-{purpose}", "namespace": env.comfyui.namespace}
            assert claim["storageClassName"] == pv["storageClassName"] == STATIC_STORAGE_CLASS
            assert claim["accessModes"] == pv["accessModes"] == ["ReadWriteMany"]
            assert pv["persistentVolumeReclaimPolicy"] == "Retain"
        handles = [
            o["spec"]["csi"]["volumeHandle"]
            for (k, _), o in objects.items()
            if k == "PersistentVolume" and "csi" in o["spec"]
        ]
        assert len(handles) == len(set(handles)) == 2


def test_service_pdb_and_network_policy(workloads):
    for name, (env, _stack, objects, _) in workloads.items():
        comfy = env.comfyui
        service = objects[("Service", names.COMFYUI_SERVICE)]
        assert service["metadata"]["namespace"] == comfy.namespace
        assert service["spec"]["type"] == "ClusterIP" and service["spec"]["selector"] == LABELS
        assert service["spec"]["ports"] == [
            {"name": "http", "port": comfy.port, "targetPort": "http", "protocol": "TCP"}
        ]
        pdb = objects[("PodDisruptionBudget", names.COMFYUI_APP)]["spec"]
        assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}}
        policy = objects[("NetworkPolicy", names.COMFYUI_APP)]["spec"]
        assert policy["podSelector"] == {"matchLabels": LABELS} and policy["policyTypes"] == ["Ingress", "Egress"]
        (ingress,) = policy["ingress"]
        assert ingress["ports"] == [{"port": comfy.port, "protocol": "TCP"}]
        cidrs = [peer["ipBlock"]["cidr"] for peer in ingress["from"]]
        assert len(cidrs) == env.network.az_count
        for index, cidr in enumerate(cidrs):
            assert remote_ref(f"{name}-network", f"private-{index}", "cidr_block").match(cidr), cidr
        egress = {json.dumps(rule["ports"], sort_keys=True): rule["to"] for rule in policy["egress"]}
        dns = egress[json.dumps([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}], sort_keys=True)]
        assert dns == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ]
        assert egress[json.dumps([{"port": 443, "protocol": "TCP"}])] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
        assert egress[json.dumps([{"port": 80, "protocol": "TCP"}])] == [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}]
        assert len(policy["egress"]) == 3


def test_service_account_matches_the_pod_identity_association(synth, workloads):
    for name, (env, _stack, objects, _) in workloads.items():
        account = objects[("ServiceAccount", names.COMFYUI_SERVICE_ACCOUNT)]
        assert account["metadata"]["namespace"] == env.comfyui.namespace
        assert account["automountServiceAccountToken"] is False
        associations = resources(synth.stack(f"{name}-cluster"), "aws_eks_pod_identity_association").values()
        assert any(
            a["namespace"] == env.comfyui.namespace and a["service_account"] == names.COMFYUI_SERVICE_ACCOUNT
            for a in associations
        )


def test_image_reference_prefers_the_digest():
    digest = "sha256:" + "a" * 64
    assert image_reference("123.dkr.ecr.us-west-2.amazonaws.com/x", "v1", digest).endswith(f"/x@{digest}")
    assert image_reference("123.dkr.ecr.us-west-2.amazonaws.com/x", "v1", None).endswith("/x:v1")
