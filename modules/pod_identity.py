"""PodIdentityRole: an IAM role that one Kubernetes service account assumes through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from constructs import Construct

from modules.iam import Role, RoleSettings, trust_policy

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


@dataclass(frozen=True)
class PodIdentityRoleSettings:
    name: str
    description: str
    cluster_name: str
    namespace: str
    service_account: str
    # Inline policies by name (JSON documents from modules.iam.policy_document or a rendered upstream policy).
    inline_policies: Mapping[str, str] = field(default_factory=dict)


def pod_identity_trust(cluster_name: str, namespace: str, service_account: str) -> str:
    """Trust for EKS Pod Identity, limited by its session tags to one cluster, namespace and service account.

    Without the conditions any pod identity association in the account could use the role.
    """
    return trust_policy(
        {"Service": POD_IDENTITY_PRINCIPAL},
        actions=("sts:AssumeRole", "sts:TagSession"),
        condition={
            "StringEquals": {
                "aws:RequestTag/eks-cluster-name": cluster_name,
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": service_account,
            }
        },
    )


class PodIdentityRole(Role):
    """A Role (`.arn`, `.name`) plus the pod identity association that hands it to the service account."""

    def __init__(self, scope: Construct, id_: str, settings: PodIdentityRoleSettings) -> None:
        super().__init__(
            scope,
            id_,
            RoleSettings(
                name=settings.name,
                description=settings.description,
                assume_role_policy=pod_identity_trust(
                    settings.cluster_name, settings.namespace, settings.service_account
                ),
                inline_policies=settings.inline_policies,
            ),
        )
        self.association = EksPodIdentityAssociation(
            self,
            "association",
            cluster_name=settings.cluster_name,
            namespace=settings.namespace,
            service_account=settings.service_account,
            role_arn=self.arn,
        )
