"""Helm charts installed by <env>-addons: the ONE place their versions are pinned.

Each release reads its values from helm_values/<release>.yaml. A values file may hold `${name}`
placeholders (string.Template), filled in at synth with config values or Terraform references;
a placeholder without a value, or a value without a placeholder, fails the synth.

Upgrading a chart: change `version` here, compare the chart's new default values with
tests/reference/ (refresh the vendored copy), run the tests. docs/cluster.md has the runbook.
No cdktf imports: <env>-cluster needs the service account names without building a release.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

VALUES_DIR = Path(__file__).resolve().parent.parent / "helm_values"


@dataclass(frozen=True)
class Chart:
    release: str  # Helm release name, and helm_values/<release>.yaml
    chart: str
    repository: str
    version: str
    namespace: str
    # The service account the chart creates that gets an EKS Pod Identity role (None: no AWS access).
    service_account: str | None = None

    @property
    def values_file(self) -> Path:
        return VALUES_DIR / f"{self.release}.yaml"


# CRDs ship in their own chart so that `helm upgrade` updates them (Helm never upgrades a chart's crds/).
KARPENTER_CRD = Chart(
    release="karpenter-crd",
    chart="karpenter-crd",
    repository="oci://public.ecr.aws/karpenter",
    version="1.14.1",
    namespace="kube-system",
)
KARPENTER = Chart(
    release="karpenter",
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    version="1.14.1",
    namespace="kube-system",
    service_account="karpenter",
)
GPU_OPERATOR = Chart(
    release="gpu-operator",
    chart="gpu-operator",
    repository="https://helm.ngc.nvidia.com/nvidia",
    version="v26.7.0",
    namespace="gpu-operator",
)
MOUNTPOINT_S3_CSI = Chart(
    release="aws-mountpoint-s3-csi-driver",
    chart="aws-mountpoint-s3-csi-driver",
    repository="https://awslabs.github.io/mountpoint-s3-csi-driver",
    version="2.7.0",
    namespace="kube-system",
    service_account="s3-csi-driver-sa",
)
LOAD_BALANCER_CONTROLLER = Chart(
    release="aws-load-balancer-controller",
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="3.5.0",
    namespace="kube-system",
    service_account="aws-load-balancer-controller",
)

CHARTS: tuple[Chart, ...] = (KARPENTER_CRD, KARPENTER, GPU_OPERATOR, MOUNTPOINT_S3_CSI, LOAD_BALANCER_CONTROLLER)

# Label on the managed system node group; controllers are pinned to it (GPU nodes are tainted anyway).
SYSTEM_NODE_LABEL_KEY = "comfyui/pool"
SYSTEM_NODE_LABEL_VALUE = "system"


def render_values(chart: Chart, variables: Mapping[str, str]) -> str:
    """helm_values/<release>.yaml with every `${name}` replaced; strict both ways."""
    template = string.Template(chart.values_file.read_text(encoding="utf-8"))
    wanted = set(template.get_identifiers())
    given = set(variables)
    if wanted != given:
        raise ValueError(
            f"{chart.values_file.name}: placeholders {sorted(wanted)} but values given for {sorted(given)}"
        )
    return template.substitute(variables)
