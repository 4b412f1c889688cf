"""<env>-cluster: EKS, its nodes and managed add-ons, and the AWS side of every in-cluster component
(Karpenter's node role, interruption queue and controller role; Pod Identity roles per component).

Only AWS resources: the Helm releases that use them live in <env>-addons, deployed after this.
"""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules import names
from modules.bucket_access import BucketGrant, read_statements, read_write_statements, write_statements
from modules.charts import (
    KARPENTER,
    LOAD_BALANCER_CONTROLLER,
    MOUNTPOINT_S3_CSI,
    SYSTEM_NODE_LABEL_KEY,
    SYSTEM_NODE_LABEL_VALUE,
)
from modules.controller_policies import load_balancer_controller_policy
from modules.eks_addons import managed_addons, networking_addons, workload_addons
from modules.eks_cluster import EksCluster, EksClusterSettings
from modules.iam import policy_document
from modules.karpenter import Karpenter, KarpenterSettings
from modules.pod_identity import PodIdentityRole, PodIdentityRoleSettings
from modules.providers import default_tags
from modules.system_nodes import SystemNodeGroup, SystemNodeGroupSettings
from stacks.base import EnvironmentStack
from stacks.network import NetworkStack
from stacks.storage import StorageStack


class ClusterStack(EnvironmentStack):
    component = "cluster"

    def __init__(
        self, scope: Construct, env: EnvironmentConfig, *, network: NetworkStack, storage: StorageStack
    ) -> None:
        super().__init__(scope, env)
        prefix = f"{env.project}-{env.name}"
        config = env.cluster
        subnets = network.vpc.private_subnet_ids

        self.eks = EksCluster(
            self,
            "eks",
            EksClusterSettings(
                name=env.cluster_name,
                version=config.version,
                role_name=f"{prefix}-eks-cluster",
                subnet_ids=subnets,
                admin_principals=config.admin_principals,
                public_endpoint_cidrs=config.public_endpoint_cidrs,
                service_cidr=config.service_cidr,
                log_retention_days=config.log_retention_days,
                account_id=env.account_id,
                region=env.region,
                key_alias_prefix=f"{prefix}-eks",
                deletion_protection=env.production,
            ),
        )
        self.cluster_name = self.eks.name

        networking = managed_addons(self, self.cluster_name, networking_addons(config.addons))
        nodes = config.system_nodes
        self.system_nodes = SystemNodeGroup(
            self,
            "system-nodes",
            SystemNodeGroupSettings(
                name=f"{prefix}-system",
                role_name=f"{prefix}-system-nodes",
                cluster_name=self.cluster_name,
                kubernetes_version=self.eks.version,
                subnet_ids=subnets,
                instance_types=nodes.instance_types,
                desired=nodes.desired,
                min=nodes.min,
                max=nodes.max,
                disk_gb=nodes.disk_gb,
                labels={SYSTEM_NODE_LABEL_KEY: SYSTEM_NODE_LABEL_VALUE},
                tags=default_tags(env, self.stack_id),
            ),
            depends_on=networking,
        )
        managed_addons(
            self, self.cluster_name, workload_addons(config.addons), depends_on=[self.system_nodes.node_group]
        )

        def grant(purpose: str, sid: str) -> BucketGrant:
            bucket = storage.buckets[purpose]
            return BucketGrant(sid=sid, arn=bucket.arn, kms_key_arn=bucket.kms_key_arn, region=env.region)

        models, inputs, outputs = grant("models", "Models"), grant("inputs", "Inputs"), grant("outputs", "Outputs")

        karpenter = Karpenter(
            self,
            "karpenter",
            KarpenterSettings(
                prefix=prefix,
                cluster_name=self.cluster_name,
                account_id=env.account_id,
                region=env.region,
                namespace=KARPENTER.namespace,
                service_account=KARPENTER.service_account,
                # GPU nodes copy the models bucket to local disk (boot sync and model-sync SSM commands).
                node_inline_policies={"read-models": policy_document(*read_statements(models))},
            ),
        )
        self.node_role = karpenter.node_role
        self.interruption_queue = karpenter.queue

        PodIdentityRole(
            self,
            "load-balancer-controller-role",
            PodIdentityRoleSettings(
                name=f"{prefix}-lb-controller",
                description="AWS Load Balancer Controller (upstream policy, scoped to this account and region)",
                cluster_name=self.cluster_name,
                namespace=LOAD_BALANCER_CONTROLLER.namespace,
                service_account=LOAD_BALANCER_CONTROLLER.service_account,
                inline_policies={
                    "load-balancer-controller": load_balancer_controller_policy(
                        region=env.region, account_id=env.account_id
                    )
                },
            ),
        )
        PodIdentityRole(
            self,
            "mountpoint-s3-csi-role",
            PodIdentityRoleSettings(
                name=f"{prefix}-mountpoint-s3-csi",
                description="Mountpoint for S3 CSI driver: read/write on the inputs and outputs buckets",
                cluster_name=self.cluster_name,
                namespace=MOUNTPOINT_S3_CSI.namespace,
                service_account=MOUNTPOINT_S3_CSI.service_account,
                inline_policies={
                    "inputs-outputs-read-write": policy_document(
                        *read_write_statements(inputs), *read_write_statements(outputs)
                    )
                },
            ),
        )
        self.comfyui_role = PodIdentityRole(
            self,
            "comfyui-role",
            PodIdentityRoleSettings(
                name=f"{prefix}-comfyui",
                description="ComfyUI pods: read models and inputs, write outputs",
                cluster_name=self.cluster_name,
                namespace=env.comfyui.namespace,
                service_account=names.COMFYUI_SERVICE_ACCOUNT,
                inline_policies={
                    "comfyui-buckets": policy_document(
                        *read_statements(models), *read_statements(inputs), *write_statements(outputs)
                    )
                },
            ),
        )

        self.output("cluster_name", self.cluster_name, "EKS cluster name")
        self.output("cluster_endpoint", self.eks.endpoint, "EKS API endpoint (private; public only for the allowlist)")
        self.output(
            "kubeconfig_command",
            f"aws eks update-kubeconfig --region {env.region} --name {env.cluster_name}",
            "Add the cluster to ~/.kube/config (needs an access entry: cluster.admin_principals)",
        )
        self.output("karpenter_node_role_name", self.node_role.name, "IAM role of Karpenter-launched nodes")
        self.output("karpenter_interruption_queue", self.interruption_queue.name, "Karpenter interruption SQS queue")
        self.output("comfyui_role_arn", self.comfyui_role.arn, "Pod Identity role of the ComfyUI service account")
