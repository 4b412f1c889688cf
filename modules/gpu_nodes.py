"""GpuNodePool: Karpenter EC2NodeClass + NodePool(s) for ComfyUI's GPU nodes.

CRD objects, so `kubernetes_manifest`: the stack that holds them is deployed after the Helm release
that installs the CRDs (the provider reads the CRD schema at plan time).

- EC2NodeClass: AL2023 AMI by pinned alias (Karpenter picks the NVIDIA variant for GPU instance
  types), node role from <env>-cluster, subnets and security groups by the discovery tag, IMDSv2
  with hop limit 1 (pods use Pod Identity, never the node's credentials), encrypted gp3 root
  volume, the pool tag the model-sync Lambda targets, and the user data (modules/gpu_user_data.py).
  Instance store is left to our user data (no instanceStorePolicy): it holds the models.
- NodePool `gpu`: families/sizes/capacity types from config, GPU taint and pool label, a GPU limit,
  consolidation only when empty, expiry, and a node drain timeout above the pod's grace period.
  With spot_fallback it is spot-only and a lower-weight on-demand pool `gpu-on-demand` catches
  what spot cannot place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_kubernetes.manifest import Manifest
from constructs import Construct

from modules import names
from modules.gpu_user_data import GpuUserDataSettings, user_data_for_terraform
from modules.vpc import KARPENTER_DISCOVERY_TAG

NODE_CLASS_NAME = "gpu"
KARPENTER_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
# Karpenter drains a node for at most this long beyond the pod's own grace period, then forces it.
DRAIN_MARGIN_SECONDS = 300
PRIMARY_WEIGHT = 100
FALLBACK_WEIGHT = 10


@dataclass(frozen=True)
class GpuNodePoolSettings:
    cluster_name: str
    # Name of the node IAM role (Karpenter makes the instance profile); a reference to <env>-cluster.
    node_role_name: str
    ami_alias: str
    instance_families: Sequence[str]
    instance_sizes: Sequence[str]
    capacity_types: Sequence[str]
    gpu_limit: int
    spot_fallback: bool
    root_volume_gb: int
    root_volume_throughput: int
    consolidate_after: str
    expire_after: str
    # terminationGracePeriodSeconds of the ComfyUI pods (their preStop drain).
    pod_termination_grace_seconds: int
    user_data: GpuUserDataSettings
    tags: Mapping[str, str] = field(default_factory=dict)


def node_class_manifest(settings: GpuNodePoolSettings) -> dict:
    discovery = {KARPENTER_DISCOVERY_TAG: settings.cluster_name}
    throughput = settings.root_volume_throughput
    return {
        "apiVersion": NODE_CLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS_NAME},
        "spec": {
            "role": settings.node_role_name,
            "amiSelectorTerms": [{"alias": settings.ami_alias}],
            "subnetSelectorTerms": [{"tags": discovery}],
            "securityGroupSelectorTerms": [{"tags": discovery}],
            "associatePublicIPAddress": False,
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "rootVolume": True,
                    "ebs": {
                        "volumeSize": f"{settings.root_volume_gb}Gi",
                        "volumeType": "gp3",
                        # gp3 allows 0.25 MiB/s per IOPS: raise IOPS with the throughput.
                        "iops": max(3000, throughput * 4),
                        "throughput": throughput,
                        "encrypted": True,
                        "deleteOnTermination": True,
                    },
                }
            ],
            "tags": {**settings.tags, names.GPU_POOL_TAG_KEY: names.GPU_POOL_TAG_VALUE},
            "userData": user_data_for_terraform(settings.user_data),
        },
    }


def _requirements(settings: GpuNodePoolSettings, capacity_types: Sequence[str]) -> list[dict]:
    return [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(settings.instance_families)},
        {"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": list(settings.instance_sizes)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In", "values": ["nvidia"]},
    ]


def node_pool_manifest(
    settings: GpuNodePoolSettings, name: str, capacity_types: Sequence[str], weight: int | None = None
) -> dict:
    manifest = {
        "apiVersion": KARPENTER_API,
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {names.GPU_NODE_LABEL_KEY: names.GPU_POOL_TAG_VALUE}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS_NAME},
                    "requirements": _requirements(settings, capacity_types),
                    "taints": [{"key": names.GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": settings.expire_after,
                    "terminationGracePeriod": f"{settings.pod_termination_grace_seconds + DRAIN_MARGIN_SECONDS}s",
                },
            },
            "limits": {"nvidia.com/gpu": str(settings.gpu_limit)},
            "disruption": {
                # A GPU node is only taken away when nothing runs on it: never to repack pods.
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": settings.consolidate_after,
                "budgets": [
                    # Empty GPU nodes cost money and run nothing: remove them all at once.
                    {"nodes": "100%", "reasons": ["Empty"]},
                    # A new AMI or node class rolls one GPU node at a time, so capacity stays.
                    {"nodes": "1", "reasons": ["Drifted"]},
                ],
            },
        },
    }
    if weight is not None:
        # Karpenter tries higher-weight pools first.
        manifest["spec"]["weight"] = weight
    return manifest


def node_pool_manifests(settings: GpuNodePoolSettings) -> dict[str, dict]:
    if not settings.spot_fallback:
        return {names.GPU_NODEPOOL: node_pool_manifest(settings, names.GPU_NODEPOOL, settings.capacity_types)}
    return {
        names.GPU_NODEPOOL: node_pool_manifest(settings, names.GPU_NODEPOOL, ["spot"], PRIMARY_WEIGHT),
        names.GPU_FALLBACK_NODEPOOL: node_pool_manifest(
            settings, names.GPU_FALLBACK_NODEPOOL, ["on-demand"], FALLBACK_WEIGHT
        ),
    }


class GpuNodePool(Construct):
    def __init__(self, scope: Construct, id_: str, settings: GpuNodePoolSettings) -> None:
        super().__init__(scope, id_)
        self.node_class = Manifest(self, "node-class", manifest=node_class_manifest(settings))
        self.node_pools = {
            name: Manifest(self, f"node-pool-{name}", manifest=manifest, depends_on=[self.node_class])
            for name, manifest in node_pool_manifests(settings).items()
        }
