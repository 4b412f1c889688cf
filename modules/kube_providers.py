"""Kubernetes and Helm providers for stacks deployed after <env>-cluster.

They find the cluster by name (data source), and authenticate with exec (`aws eks get-token`):
no static kubeconfig or token is ever written into Terraform.
"""

from __future__ import annotations

from cdktf import Fn, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider, KubernetesProviderExec

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def _token_args(cluster_name: str, region: str) -> list[str]:
    return ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"]


def eks_cluster(stack: TerraformStack, cluster_name: str) -> DataAwsEksCluster:
    return DataAwsEksCluster(stack, "eks-cluster", name=cluster_name)


def kubernetes_provider(stack: TerraformStack, cluster: DataAwsEksCluster, region: str) -> KubernetesProvider:
    return KubernetesProvider(
        stack,
        "kubernetes",
        host=cluster.endpoint,
        cluster_ca_certificate=Fn.base64decode(cluster.certificate_authority.get(0).data),
        exec=[
            KubernetesProviderExec(api_version=EXEC_API_VERSION, command="aws", args=_token_args(cluster.name, region))
        ],
    )


def helm_provider(stack: TerraformStack, cluster: DataAwsEksCluster, region: str) -> HelmProvider:
    return HelmProvider(
        stack,
        "helm",
        kubernetes=HelmProviderKubernetes(
            host=cluster.endpoint,
            cluster_ca_certificate=Fn.base64decode(cluster.certificate_authority.get(0).data),
            exec=HelmProviderKubernetesExec(
                api_version=EXEC_API_VERSION, command="aws", args=_token_args(cluster.name, region)
            ),
        ),
    )
