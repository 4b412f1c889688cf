"""<env>-workload: Karpenter's GPU NodePool(s) and EC2NodeClass, and ComfyUI itself.

Deployed after <env>-addons: the Helm releases there install the Karpenter and Mountpoint CRDs and
controllers that these objects need at plan time.
"""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules import names
from modules.comfyui import ComfyUI, ComfyUISettings, image_reference
from modules.gpu_nodes import GpuNodePool, GpuNodePoolSettings
from modules.gpu_user_data import GpuUserDataSettings
from modules.kube_providers import eks_cluster, kubernetes_provider
from modules.providers import default_tags
from stacks.addons import AddonsStack
from stacks.base import EnvironmentStack
from stacks.cluster import ClusterStack
from stacks.network import NetworkStack
from stacks.storage import StorageStack


class WorkloadStack(EnvironmentStack):
    component = "workload"

    def __init__(
        self,
        scope: Construct,
        env: EnvironmentConfig,
        *,
        cluster: ClusterStack,
        addons: AddonsStack,
        storage: StorageStack,
        network: NetworkStack,
    ) -> None:
        super().__init__(scope, env)
        # `addons` is taken for the deploy order only (stacks/app.py): no value crosses from it, but its
        # Helm releases install the CRDs and controllers this stack's objects need at plan time.
        eks = eks_cluster(self, cluster.cluster_name)
        kubernetes_provider(self, eks, env.region)
        gpu, comfy = env.gpu, env.comfyui

        self.gpu_nodes = GpuNodePool(
            self,
            "gpu-nodes",
            GpuNodePoolSettings(
                cluster_name=env.cluster_name,
                node_role_name=cluster.node_role.name,
                ami_alias=gpu.ami_alias,
                instance_families=gpu.instance_families,
                instance_sizes=gpu.instance_sizes,
                capacity_types=gpu.capacity_types,
                gpu_limit=gpu.gpu_limit,
                spot_fallback=gpu.spot_fallback,
                root_volume_gb=gpu.root_volume_gb,
                root_volume_throughput=gpu.root_volume_throughput,
                consolidate_after=gpu.consolidate_after,
                expire_after=gpu.expire_after,
                pod_termination_grace_seconds=comfy.termination_grace_seconds,
                user_data=GpuUserDataSettings(
                    models_path=gpu.models_path,
                    models_bucket=storage.models.name,
                    models_prefix=env.model_sync.prefix,
                    region=env.region,
                ),
                # GPU instances carry the environment's tags too; Karpenter, not Terraform, manages them.
                tags={**default_tags(env, self.stack_id), "ManagedBy": "karpenter"},
            ),
        )

        self.comfyui = ComfyUI(
            self,
            "comfyui",
            ComfyUISettings(
                namespace=comfy.namespace,
                cluster_version=env.cluster.version,
                image=image_reference(storage.repository.url, env.image.tag, env.image.digest),
                replicas=comfy.replicas,
                port=comfy.port,
                gpus=comfy.gpus,
                cpu_request=comfy.cpu_request,
                cpu_limit=comfy.cpu_limit,
                memory_request=comfy.memory_request,
                memory_limit=comfy.memory_limit,
                termination_grace_seconds=comfy.termination_grace_seconds,
                startup_timeout_seconds=comfy.startup_timeout_seconds,
                output_staging_gb=comfy.output_staging_gb,
                models_host_path=gpu.models_path,
                inputs_bucket=storage.inputs.name,
                outputs_bucket=storage.outputs.name,
                region=env.region,
                ingress_cidrs=[subnet.cidr_block for subnet in network.vpc.private_subnets],
            ),
        )

        self.output("comfyui_namespace", comfy.namespace, "Namespace of the ComfyUI Deployment and Service")
        self.output(
            "rollout_status_command",
            f"kubectl -n {comfy.namespace} rollout status deployment/{names.COMFYUI_APP} --timeout=45m",
            "Wait for ComfyUI pods (a GPU node launch and boot model sync come first)",
        )
