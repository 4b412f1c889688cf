"""<env>-addons: pinned Helm releases, values files checked against the charts' default values, and
exec-authenticated providers that find the cluster made by <env>-cluster."""

from __future__ import annotations

import re

import pytest
import yaml

from modules import names
from modules.charts import (
    CHARTS,
    GPU_OPERATOR,
    KARPENTER,
    KARPENTER_CRD,
    LOAD_BALANCER_CONTROLLER,
    MOUNTPOINT_S3_CSI,
    SYSTEM_NODE_LABEL_KEY,
    SYSTEM_NODE_LABEL_VALUE,
    VALUES_DIR,
    Chart,
    render_values,
)
from tests.conftest import REFERENCE
from tests.tf import data_sources, one, resources

# helm_values/<release>.yaml -> folder of tests/reference/ that holds the chart's default values.
REFERENCE_FOLDER = {"aws-mountpoint-s3-csi-driver": "mountpoint-s3-csi-driver"}
# Keys under these are Kubernetes labels/annotations/selectors: data, not chart options.
FREE_FORM_MAPS = {
    "nodeSelector",
    "podLabels",
    "podAnnotations",
    "additionalLabels",
    "additionalAnnotations",
    "labels",
    "annotations",
}
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")


def unknown_keys(values: object, defaults: object, path: str = "") -> list[str]:
    """Key paths of `values` that the chart's default values do not have."""
    if not isinstance(values, dict):
        return []
    if not isinstance(defaults, dict):
        # A key whose default is null/absent-but-declared takes any shape; a scalar default does not.
        return [] if defaults is None else [f"{path} (default is {type(defaults).__name__}, not a map)"]
    if not defaults or path.rsplit(".", 1)[-1] in FREE_FORM_MAPS:
        return []  # an empty map ({}) or a label map: its keys are the user's
    problems = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            problems.append(where)
        else:
            problems += unknown_keys(value, defaults[key], where)
    return problems


def values_files() -> list:
    return sorted(VALUES_DIR.glob("*.yaml"))


def reference_defaults(values_file) -> dict:
    folder = REFERENCE_FOLDER.get(values_file.stem, values_file.stem)
    path = REFERENCE / folder / "values.yaml"
    assert path.exists(), f"{values_file.name}: no chart defaults at tests/reference/{folder}/values.yaml"
    return yaml.safe_load(path.read_text())


def test_unknown_key_check_catches_misspellings():
    defaults = {"settings": {"clusterName": "", "featureGates": {"nodeRepair": False}}, "nodeSelector": {"a": "b"}}
    assert unknown_keys({"settings": {"clusterName": "x"}}, defaults) == []
    assert unknown_keys({"settings": {"clustername": "x"}}, defaults) == ["settings.clustername"]
    assert unknown_keys({"settings": {"featureGates": {"noderepair": True}}}, defaults) == [
        "settings.featureGates.noderepair"
    ]
    assert unknown_keys({"settings": {"clusterName": {"nested": 1}}}, defaults) == [
        "settings.clusterName (default is str, not a map)"
    ]
    assert unknown_keys({"nodeSelector": {"comfyui/pool": "system"}}, defaults) == []


def test_every_values_key_exists_in_the_chart_defaults():
    files = values_files()
    assert {f.stem for f in files} >= {c.release for c in CHARTS if c is not KARPENTER_CRD}
    for values_file in files:
        values = yaml.safe_load(values_file.read_text())
        assert isinstance(values, dict) and values, values_file.name
        assert unknown_keys(values, reference_defaults(values_file)) == [], values_file.name


def test_chart_versions_are_pinned_and_match_the_reference_data():
    for chart in CHARTS:
        assert EXACT_VERSION.match(chart.version), f"{chart.release}: {chart.version!r} is not an exact version"
    karpenter = yaml.safe_load((REFERENCE / "karpenter" / "values.yaml").read_text())
    assert KARPENTER.version == KARPENTER_CRD.version == karpenter["controller"]["image"]["tag"]
    lbc = yaml.safe_load((REFERENCE / "aws-load-balancer-controller" / "values.yaml").read_text())
    assert f"v{LOAD_BALANCER_CONTROLLER.version}" == lbc["image"]["tag"]
    mountpoint = yaml.safe_load((REFERENCE / "mountpoint-s3-csi-driver" / "values.yaml").read_text())
    assert f"v{MOUNTPOINT_S3_CSI.version}" == mountpoint["image"]["tag"]
    # The GPU operator's values carry no chart version; SOURCES.md records the tag they came from.
    sources = (REFERENCE / "SOURCES.md").read_text()
    (row,) = [line for line in sources.splitlines() if line.startswith("| `gpu-operator/values.yaml`")]
    assert f"`{GPU_OPERATOR.version}`" in row


def test_render_values_is_strict():
    with pytest.raises(ValueError, match="placeholders"):
        render_values(MOUNTPOINT_S3_CSI, {"service_account": "x"})  # gpu_taint_key missing
    with pytest.raises(ValueError, match="placeholders"):
        render_values(MOUNTPOINT_S3_CSI, {"service_account": "x", "gpu_taint_key": "y", "typo": "z"})
    rendered = yaml.safe_load(render_values(MOUNTPOINT_S3_CSI, {"service_account": "sa", "gpu_taint_key": "t"}))
    assert rendered["node"]["serviceAccount"]["name"] == "sa"


def releases(stack: dict) -> dict[str, dict]:
    return {release["name"]: release for release in resources(stack, "helm_release").values()}


def release_values(release: dict) -> dict:
    (text,) = release["values"]
    return yaml.safe_load(text)


def remote_output(env, stack: str, rtype: str, key: str, attribute: str) -> str:
    return (
        f"${{data.terraform_remote_state.cross-stack-reference-input-{env.name}-{stack}.outputs."
        f"cross-stack-output-{rtype}{key}{attribute}}}"
    )


def test_releases_are_pinned(synth, environments):
    for env in environments.values():
        found = releases(synth.stack(f"{env.name}-addons"))
        assert set(found) == {chart.release for chart in CHARTS}
        for chart in CHARTS:
            release = found[chart.release]
            assert (release["chart"], release["repository"], release["version"], release["namespace"]) == (
                chart.chart,
                chart.repository,
                chart.version,
                chart.namespace,
            )
            assert release["atomic"] is True
        assert found["karpenter"]["repository"].startswith("oci://public.ecr.aws/karpenter")
        # CRDs come from karpenter-crd (upgraded with the chart), not from the karpenter chart's crds/.
        assert found["karpenter"]["skip_crds"] is True
        assert found["karpenter"]["depends_on"] == [
            f"helm_release.{k}"
            for k, r in resources(synth.stack(f"{env.name}-addons"), "helm_release").items()
            if r["name"] == "karpenter-crd"
        ]


def test_providers_find_the_cluster_by_name_and_use_exec_auth(synth, environments):
    for env in environments.values():
        stack = synth.stack(f"{env.name}-addons")
        cluster_stack = synth.stack(f"{env.name}-cluster")
        cluster_key = next(iter(resources(cluster_stack, "aws_eks_cluster")))
        (lookup,) = data_sources(stack, "aws_eks_cluster").values()
        assert lookup["name"] == remote_output(env, "cluster", "aws_eks_cluster", cluster_key, "name")
        (helm,) = stack["provider"]["helm"]
        kube = helm["kubernetes"]
        assert set(kube) == {"host", "cluster_ca_certificate", "exec"}  # no token, no kubeconfig file
        assert kube["exec"]["command"] == "aws"
        assert kube["exec"]["args"][:2] == ["eks", "get-token"]
        assert kube["exec"]["args"][kube["exec"]["args"].index("--region") + 1] == env.region
        for provider in stack["provider"].get("kubernetes", []):
            assert "token" not in provider and "config_path" not in provider
            assert provider["exec"][0]["args"][:2] == ["eks", "get-token"]


def test_karpenter_values(synth, environments):
    for env in environments.values():
        stack = synth.stack(f"{env.name}-addons")
        cluster_stack = synth.stack(f"{env.name}-cluster")
        queue_key = next(iter(resources(cluster_stack, "aws_sqs_queue")))
        values = release_values(releases(stack)["karpenter"])
        assert values["settings"] == {
            "clusterName": "${data.aws_eks_cluster.eks-cluster.name}",
            "clusterEndpoint": "${data.aws_eks_cluster.eks-cluster.endpoint}",
            "interruptionQueue": remote_output(env, "cluster", "aws_sqs_queue", queue_key, "name"),
        }
        assert values["replicas"] == 2
        assert values["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
        assert values["nodeSelector"][SYSTEM_NODE_LABEL_KEY] == SYSTEM_NODE_LABEL_VALUE
        assert {"name": "AWS_REGION", "value": env.region} in values["controller"]["env"]
        assert values["serviceAccount"]["name"] == KARPENTER.service_account


def test_system_node_label_matches_the_node_group(synth, environments):
    for env in environments.values():
        group = one(synth.stack(f"{env.name}-cluster"), "aws_eks_node_group")
        assert group["labels"] == {SYSTEM_NODE_LABEL_KEY: SYSTEM_NODE_LABEL_VALUE}


def gpu_toleration(tolerations: list[dict]) -> bool:
    return {"key": names.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_gpu_operator_values(synth, environments):
    for env in environments.values():
        values = release_values(releases(synth.stack(f"{env.name}-addons"))["gpu-operator"])
        # The AL2023 NVIDIA AMI brings driver and toolkit.
        assert values["driver"]["enabled"] is False
        assert values["toolkit"]["enabled"] is False
        for component in ("devicePlugin", "gfd", "dcgmExporter"):
            assert values[component]["enabled"] is True, component
        assert gpu_toleration(values["daemonsets"]["tolerations"])
        assert gpu_toleration(values["node-feature-discovery"]["worker"]["tolerations"])
        assert values["operator"]["nodeSelector"][SYSTEM_NODE_LABEL_KEY] == SYSTEM_NODE_LABEL_VALUE
        assert releases(synth.stack(f"{env.name}-addons"))["gpu-operator"]["create_namespace"] is True


def test_mountpoint_values(synth, environments):
    for env in environments.values():
        values = release_values(releases(synth.stack(f"{env.name}-addons"))["aws-mountpoint-s3-csi-driver"])
        node = values["node"]
        assert node["tolerateAllTaints"] is False
        assert gpu_toleration(node["tolerations"])
        assert node["serviceAccount"]["name"] == MOUNTPOINT_S3_CSI.service_account


def test_load_balancer_controller_values(synth, environments):
    for env in environments.values():
        network = synth.stack(f"{env.name}-network")
        vpc_key = next(iter(resources(network, "aws_vpc")))
        values = release_values(releases(synth.stack(f"{env.name}-addons"))["aws-load-balancer-controller"])
        assert values["clusterName"] == "${data.aws_eks_cluster.eks-cluster.name}"
        assert values["region"] == env.region
        assert values["vpcId"] == remote_output(env, "network", "aws_vpc", vpc_key, "id")
        assert values["serviceAccount"]["name"] == LOAD_BALANCER_CONTROLLER.service_account
        assert values["enableServiceMutatorWebhook"] is False


@pytest.mark.parametrize("chart", [c for c in CHARTS if c.service_account], ids=lambda c: c.release)
def test_service_accounts_have_a_pod_identity_association(synth, environments, chart: Chart):
    for env in environments.values():
        associations = resources(synth.stack(f"{env.name}-cluster"), "aws_eks_pod_identity_association").values()
        assert (chart.namespace, chart.service_account) in {
            (a["namespace"], a["service_account"]) for a in associations
        }
