"""TargetGroupBinding: the AWS Load Balancer Controller registers the Service's pods in our target group.

Terraform owns the ALB and target group; the controller only keeps the pod IPs registered. The
`networking` block makes the controller open the pods' security group to the ALB's security group
on the ComfyUI port (it manages that rule on whichever group the pod ENIs carry).
Needs the CRD (installed by <env>-addons) at plan time: kubernetes_manifest reads its schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_kubernetes.manifest import Manifest
from constructs import Construct

API_VERSION = "elbv2.k8s.aws/v1beta1"
KIND = "TargetGroupBinding"


@dataclass(frozen=True)
class TargetGroupBindingSettings:
    name: str
    namespace: str
    service_name: str
    service_port: int
    target_group_arn: str
    vpc_id: str
    # Traffic from this security group (the ALB's) to the pods is allowed on `pod_port`.
    alb_security_group_id: str
    pod_port: int


def target_group_binding_manifest(settings: TargetGroupBindingSettings) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": "terraform"},
        },
        "spec": {
            "serviceRef": {"name": settings.service_name, "port": settings.service_port},
            "targetGroupARN": settings.target_group_arn,
            "targetType": "ip",
            "vpcID": settings.vpc_id,
            "networking": {
                "ingress": [
                    {
                        "from": [{"securityGroup": {"groupID": settings.alb_security_group_id}}],
                        "ports": [{"port": settings.pod_port, "protocol": "TCP"}],
                    }
                ]
            },
        },
    }


class TargetGroupBinding(Construct):
    def __init__(self, scope: Construct, id_: str, settings: TargetGroupBindingSettings) -> None:
        super().__init__(scope, id_)
        self.manifest = Manifest(self, "manifest", manifest=target_group_binding_manifest(settings))
