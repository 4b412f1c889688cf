"""SystemNodeGroup: the managed CPU node group for cluster-critical pods (CoreDNS, Karpenter, controllers).

AL2023, private subnets, IMDSv2 required with hop limit 1 (pods cannot reach the node's
credentials; they get their own through EKS Pod Identity), encrypted gp3 root volume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import ITerraformDependable, Token
from cdktf_cdktf_provider_aws.eks_node_group import (
    EksNodeGroup,
    EksNodeGroupLaunchTemplate,
    EksNodeGroupNodeRepairConfig,
    EksNodeGroupScalingConfig,
    EksNodeGroupUpdateConfig,
)
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
    LaunchTemplateTagSpecifications,
)
from constructs import Construct

from modules.iam import Role, RoleSettings, service_trust
from modules.instance_types import al2023_ami_type

# What a managed node needs: join the cluster, run the VPC CNI, pull images. Nothing else.
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
)
ROOT_DEVICE = "/dev/xvda"  # AL2023 EKS AMIs


@dataclass(frozen=True)
class SystemNodeGroupSettings:
    name: str
    role_name: str
    cluster_name: str
    # Nodes follow the control plane's version (set to the cluster resource's version).
    kubernetes_version: str
    subnet_ids: Sequence[str]
    instance_types: Sequence[str]
    desired: int
    min: int
    max: int
    disk_gb: int
    labels: Mapping[str, str] = field(default_factory=dict)
    # Tags on the instances, volumes and network interfaces the node group launches.
    tags: Mapping[str, str] = field(default_factory=dict)


class SystemNodeGroup(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        settings: SystemNodeGroupSettings,
        *,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.role = Role(
            self,
            "node-role",
            RoleSettings(
                name=settings.role_name,
                description=f"EKS managed system nodes of {settings.cluster_name}",
                assume_role_policy=service_trust("ec2.amazonaws.com"),
                managed_policies=NODE_MANAGED_POLICIES,
            ),
        )
        tags = {"Name": settings.name, **settings.tags}
        self.launch_template = LaunchTemplate(
            self,
            "launch-template",
            name=settings.name,
            description=f"EKS system nodes of {settings.cluster_name}: IMDSv2 only, encrypted root volume",
            update_default_version=True,
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name=ROOT_DEVICE,
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=settings.disk_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                LaunchTemplateTagSpecifications(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
        )
        self.node_group = EksNodeGroup(
            self,
            "node-group",
            cluster_name=settings.cluster_name,
            node_group_name=settings.name,
            node_role_arn=self.role.arn,
            version=settings.kubernetes_version,
            subnet_ids=list(settings.subnet_ids),
            ami_type=al2023_ami_type(list(settings.instance_types)),
            capacity_type="ON_DEMAND",
            instance_types=list(settings.instance_types),
            scaling_config=EksNodeGroupScalingConfig(
                desired_size=settings.desired, min_size=settings.min, max_size=settings.max
            ),
            update_config=EksNodeGroupUpdateConfig(max_unavailable=1),
            node_repair_config=EksNodeGroupNodeRepairConfig(enabled=True),
            labels=dict(settings.labels),
            launch_template=EksNodeGroupLaunchTemplate(
                id=self.launch_template.id, version=Token.as_string(self.launch_template.latest_version)
            ),
            depends_on=[*self.role.resources, *depends_on],
        )
