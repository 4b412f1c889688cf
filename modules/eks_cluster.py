"""EksCluster: the control plane, its IAM role, secrets encryption, control-plane logs and admin access.

Authentication is API mode (access entries only, no aws-auth ConfigMap), and whoever runs
`terraform apply` gets no implicit cluster-admin: admins are the principals listed in config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ec2_tag import Ec2Tag
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.eks_access_policy_association import (
    EksAccessPolicyAssociation,
    EksAccessPolicyAssociationAccessScope,
)
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster as AwsEksCluster
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterKubernetesNetworkConfig,
    EksClusterVpcConfig,
)
from constructs import Construct

from modules.iam import Role, RoleSettings, policy_document, service_trust, statement
from modules.kms import KmsKey, KmsKeySettings
from modules.logs import LogGroupSettings, log_group
from modules.vpc import KARPENTER_DISCOVERY_TAG

# Control-plane log types sent to CloudWatch (controllerManager and scheduler are noise for this use).
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")
CLUSTER_ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# The only AWS managed policy an EKS cluster role needs (no Auto Mode, no legacy VPC resource controller).
CLUSTER_ROLE_MANAGED_POLICIES = ("AmazonEKSClusterPolicy",)


@dataclass(frozen=True)
class EksClusterSettings:
    name: str
    version: str
    role_name: str
    # Control-plane ENIs go into these (private) subnets.
    subnet_ids: Sequence[str]
    # IAM principals given AmazonEKSClusterAdminPolicy through access entries.
    admin_principals: Sequence[str]
    # Empty: private endpoint only. Otherwise the public endpoint is on, for these CIDRs only.
    public_endpoint_cidrs: Sequence[str]
    service_cidr: str
    log_retention_days: int
    account_id: str
    region: str
    # Prefix of the KMS key aliases (secrets and log keys).
    key_alias_prefix: str
    deletion_protection: bool


def endpoint_access(public_endpoint_cidrs: Sequence[str]) -> dict:
    """API endpoint arguments of vpc_config: private always; public only for an allowlist of CIDRs."""
    if not public_endpoint_cidrs:
        return {"endpoint_private_access": True, "endpoint_public_access": False}
    return {
        "endpoint_private_access": True,
        "endpoint_public_access": True,
        "public_access_cidrs": list(public_endpoint_cidrs),
    }


def _principal_id(principal_arn: str) -> str:
    # Stable construct id per principal: reordering the config list must not replace access entries.
    return hashlib.sha256(principal_arn.encode()).hexdigest()[:10]


class EksCluster(Construct):
    def __init__(self, scope: Construct, id_: str, settings: EksClusterSettings) -> None:
        super().__init__(scope, id_)
        self.secrets_key = KmsKey(
            self,
            "secrets-key",
            KmsKeySettings(
                alias=f"{settings.key_alias_prefix}-secrets",
                description=f"EKS {settings.name}: envelope encryption of Kubernetes secrets",
                account_id=settings.account_id,
                region=settings.region,
            ),
        )
        logs_key = KmsKey(
            self,
            "logs-key",
            KmsKeySettings(
                alias=f"{settings.key_alias_prefix}-logs",
                description=f"EKS {settings.name}: control-plane log encryption",
                account_id=settings.account_id,
                region=settings.region,
                allow_cloudwatch_logs=True,
            ),
        )
        # EKS writes to this exact name; creating it first sets retention and encryption.
        self.log_group = log_group(
            self,
            "control-plane-logs",
            LogGroupSettings(
                name=f"/aws/eks/{settings.name}/cluster",
                retention_days=settings.log_retention_days,
                kms_key_arn=logs_key.arn,
            ),
        )

        self.role = Role(
            self,
            "cluster-role",
            RoleSettings(
                name=settings.role_name,
                description=f"EKS control plane of {settings.name}",
                assume_role_policy=service_trust("eks.amazonaws.com"),
                managed_policies=CLUSTER_ROLE_MANAGED_POLICIES,
                inline_policies={
                    # The control plane encrypts and decrypts secrets with the key through this role.
                    "secrets-encryption": policy_document(
                        statement(
                            ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                            self.secrets_key.arn,
                            sid="SecretsEnvelopeEncryption",
                        )
                    )
                },
            ),
        )

        self.cluster = AwsEksCluster(
            self,
            "cluster",
            name=settings.name,
            version=settings.version,
            role_arn=self.role.arn,
            vpc_config=EksClusterVpcConfig(
                subnet_ids=list(settings.subnet_ids), **endpoint_access(settings.public_endpoint_cidrs)
            ),
            access_config=EksClusterAccessConfig(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # vpc-cni, kube-proxy and coredns come as managed add-ons with pinned versions instead.
            bootstrap_self_managed_addons=False,
            encryption_config=EksClusterEncryptionConfig(
                provider=EksClusterEncryptionConfigProvider(key_arn=self.secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            kubernetes_network_config=EksClusterKubernetesNetworkConfig(
                ip_family="ipv4", service_ipv4_cidr=settings.service_cidr
            ),
            deletion_protection=settings.deletion_protection,
            depends_on=[self.log_group, *self.role.resources],
        )

        for principal in settings.admin_principals:
            key = _principal_id(principal)
            entry = EksAccessEntry(
                self,
                f"admin-{key}",
                cluster_name=self.cluster.name,
                principal_arn=principal,
                type="STANDARD",
            )
            EksAccessPolicyAssociation(
                self,
                f"admin-{key}-policy",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_POLICY_ARN,
                access_scope=EksAccessPolicyAssociationAccessScope(type="cluster"),
            )

        # Karpenter's EC2NodeClass selects the security group EKS created by this tag (subnets carry it too).
        Ec2Tag(
            self,
            "security-group-discovery-tag",
            resource_id=self.security_group_id,
            key=KARPENTER_DISCOVERY_TAG,
            value=self.cluster.name,
        )

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def arn(self) -> str:
        return self.cluster.arn

    @property
    def endpoint(self) -> str:
        return self.cluster.endpoint

    @property
    def version(self) -> str:
        return self.cluster.version

    @property
    def security_group_id(self) -> str:
        """The cluster security group EKS creates; every node (managed and Karpenter) joins it."""
        return self.cluster.vpc_config.cluster_security_group_id
