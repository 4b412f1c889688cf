"""<env>-addons: the Helm releases of Karpenter, the NVIDIA GPU operator, the Mountpoint for S3 CSI
driver and the AWS Load Balancer Controller.

A separate stack because Terraform configures the Helm provider before it creates anything: pointed
at a cluster made in the same state, the provider has no endpoint on the first plan and a stale one
when the cluster is replaced. Here the cluster already exists; the provider finds it by name.
"""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules import names
from modules.charts import (
    GPU_OPERATOR,
    KARPENTER,
    KARPENTER_CRD,
    LOAD_BALANCER_CONTROLLER,
    MOUNTPOINT_S3_CSI,
    SYSTEM_NODE_LABEL_KEY,
    SYSTEM_NODE_LABEL_VALUE,
)
from modules.helm_addon import HelmAddon, HelmAddonSettings
from modules.kube_providers import eks_cluster, helm_provider
from stacks.base import EnvironmentStack
from stacks.cluster import ClusterStack
from stacks.network import NetworkStack


class AddonsStack(EnvironmentStack):
    component = "addons"

    def __init__(
        self, scope: Construct, env: EnvironmentConfig, *, cluster: ClusterStack, network: NetworkStack
    ) -> None:
        super().__init__(scope, env)
        eks = eks_cluster(self, cluster.cluster_name)
        helm_provider(self, eks, env.region)
        system_nodes = {"system_label_key": SYSTEM_NODE_LABEL_KEY, "system_label_value": SYSTEM_NODE_LABEL_VALUE}

        karpenter_crds = HelmAddon(self, "karpenter-crd", HelmAddonSettings(chart=KARPENTER_CRD, variables=None))
        HelmAddon(
            self,
            "karpenter",
            HelmAddonSettings(
                chart=KARPENTER,
                skip_crds=True,
                variables={
                    "service_account": KARPENTER.service_account,
                    "region": env.region,
                    "cluster_name": eks.name,
                    "cluster_endpoint": eks.endpoint,
                    "interruption_queue": cluster.interruption_queue.name,
                    **system_nodes,
                },
            ),
            depends_on=[karpenter_crds.release],
        )
        HelmAddon(
            self,
            "gpu-operator",
            HelmAddonSettings(
                chart=GPU_OPERATOR,
                create_namespace=True,
                variables={"gpu_taint_key": names.GPU_TAINT_KEY, **system_nodes},
            ),
        )
        HelmAddon(
            self,
            "mountpoint-s3-csi",
            HelmAddonSettings(
                chart=MOUNTPOINT_S3_CSI,
                variables={"service_account": MOUNTPOINT_S3_CSI.service_account, "gpu_taint_key": names.GPU_TAINT_KEY},
            ),
        )
        HelmAddon(
            self,
            "load-balancer-controller",
            HelmAddonSettings(
                chart=LOAD_BALANCER_CONTROLLER,
                variables={
                    "cluster_name": eks.name,
                    "region": env.region,
                    "vpc_id": network.vpc.vpc.id,
                    "service_account": LOAD_BALANCER_CONTROLLER.service_account,
                    **system_nodes,
                },
            ),
        )
