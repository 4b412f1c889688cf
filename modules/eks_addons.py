"""EKS managed add-ons with pinned versions (config: cluster.addons).

Order matters because the cluster is created without the default self-managed add-ons: nodes
cannot become Ready before vpc-cni and kube-proxy run, and coredns cannot become ACTIVE before
there are nodes. So: NETWORKING add-ons -> node group -> coredns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.eks_addon import EksAddon
from constructs import Construct

from config.schema import AddonVersionsConfig

# The VPC CNI's network policy agent enforces Kubernetes NetworkPolicy objects.
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}


@dataclass(frozen=True)
class ManagedAddonSettings:
    name: str  # EKS add-on name
    version: str
    configuration_values: str | None = None


def networking_addons(versions: AddonVersionsConfig) -> list[ManagedAddonSettings]:
    """Add-ons a node needs before it can become Ready (created before the node group)."""
    return [
        ManagedAddonSettings(
            "vpc-cni", versions.vpc_cni, configuration_values=json.dumps(VPC_CNI_CONFIGURATION, sort_keys=True)
        ),
        ManagedAddonSettings("kube-proxy", versions.kube_proxy),
        ManagedAddonSettings("eks-pod-identity-agent", versions.pod_identity_agent),
    ]


def workload_addons(versions: AddonVersionsConfig) -> list[ManagedAddonSettings]:
    """Add-ons that run as Deployments and need nodes (created after the node group)."""
    return [ManagedAddonSettings("coredns", versions.coredns)]


def managed_addons(
    scope: Construct,
    cluster_name: str,
    addons: Sequence[ManagedAddonSettings],
    *,
    depends_on: Sequence[ITerraformDependable] = (),
) -> list[EksAddon]:
    return [
        EksAddon(
            scope,
            f"addon-{addon.name}",
            cluster_name=cluster_name,
            addon_name=addon.name,
            addon_version=addon.version,
            configuration_values=addon.configuration_values,
            # Terraform owns the add-on configuration: a manual change is overwritten on the next apply.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            depends_on=list(depends_on) or None,
        )
        for addon in addons
    ]
