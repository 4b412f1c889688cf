"""Karpenter's AWS side: the node role (with its access entry), the interruption queue and the
EventBridge rules that feed it, and the controller's Pod Identity role with the upstream policies.

The Helm release (<env>-addons) and the NodePool/EC2NodeClass (<env>-workload) use what this makes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from modules.controller_policies import karpenter_controller_policies
from modules.iam import Role, RoleSettings, deny_insecure_transport, policy_document, service_trust, statement
from modules.pod_identity import PodIdentityRole, PodIdentityRoleSettings

# The upstream node role's managed policies (Karpenter getting-started template, v1.14.1).
# SSM managed instance core also lets the model-sync Lambda run its SSM command on GPU nodes.
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True)
class InterruptionEvent:
    key: str
    source: str
    detail_type: str
    description: str


# The events Karpenter acts on (same patterns as the upstream template's rules).
INTERRUPTION_EVENTS = (
    InterruptionEvent("health", "aws.health", "AWS Health Event", "scheduled maintenance of instances"),
    InterruptionEvent("spot", "aws.ec2", "EC2 Spot Instance Interruption Warning", "spot interruption warning"),
    InterruptionEvent("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation", "spot rebalance recommendation"),
    InterruptionEvent("state", "aws.ec2", "EC2 Instance State-change Notification", "instance state change"),
    InterruptionEvent(
        "odcr",
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
        "capacity reservation interruption",
    ),
)


@dataclass(frozen=True)
class KarpenterSettings:
    # Prefix of every name here ("<project>-<env>"), short enough for IAM's 64 characters.
    prefix: str
    cluster_name: str
    account_id: str
    region: str
    namespace: str
    service_account: str
    # Extra inline policies of the node role (e.g. read-only access to the models bucket).
    node_inline_policies: Mapping[str, str] = field(default_factory=dict)
    # Interruption messages are useless after a few minutes (upstream keeps them 300 s).
    message_retention_seconds: int = 300


class Karpenter(Construct):
    def __init__(self, scope: Construct, id_: str, settings: KarpenterSettings) -> None:
        super().__init__(scope, id_)
        self.node_role = Role(
            self,
            "node-role",
            RoleSettings(
                name=f"{settings.prefix}-karpenter-node",
                description=f"Nodes Karpenter launches in {settings.cluster_name}",
                assume_role_policy=service_trust("ec2.amazonaws.com"),
                managed_policies=NODE_MANAGED_POLICIES,
                inline_policies=settings.node_inline_policies,
            ),
        )
        # Lets instances with this role join the cluster (API authentication mode has no aws-auth).
        EksAccessEntry(
            self,
            "node-access-entry",
            cluster_name=settings.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
        )

        self.queue = SqsQueue(
            self,
            "interruption-queue",
            name=f"{settings.prefix}-karpenter-interruption",
            message_retention_seconds=settings.message_retention_seconds,
            # SSE-SQS: EventBridge cannot use the AWS managed SQS KMS key, and a CMK adds nothing here.
            sqs_managed_sse_enabled=True,
        )
        self.rules: list[CloudwatchEventRule] = []
        for event in INTERRUPTION_EVENTS:
            rule = CloudwatchEventRule(
                self,
                f"rule-{event.key}",
                name=f"{settings.prefix}-karpenter-{event.key}",
                description=f"Karpenter interruption handling: {event.description}",
                event_pattern=json.dumps({"source": [event.source], "detail-type": [event.detail_type]}),
            )
            CloudwatchEventTarget(
                self,
                f"target-{event.key}",
                rule=rule.name,
                arn=self.queue.arn,
                target_id="karpenter-interruption-queue",
            )
            self.rules.append(rule)
        SqsQueuePolicy(
            self,
            "interruption-queue-policy",
            queue_url=self.queue.url,
            policy=policy_document(
                statement(
                    ["sqs:SendMessage"],
                    self.queue.arn,
                    sid="EventBridgeRulesSendInterruptionEvents",
                    principal={"Service": "events.amazonaws.com"},
                    condition={"ArnEquals": {"aws:SourceArn": [rule.arn for rule in self.rules]}},
                ),
                deny_insecure_transport([self.queue.arn], actions="sqs:*"),
            ),
        )

        self.controller_role = PodIdentityRole(
            self,
            "controller-role",
            PodIdentityRoleSettings(
                name=f"{settings.prefix}-karpenter-controller",
                description=f"Karpenter controller of {settings.cluster_name} (upstream policies, rendered)",
                cluster_name=settings.cluster_name,
                namespace=settings.namespace,
                service_account=settings.service_account,
                inline_policies=karpenter_controller_policies(
                    region=settings.region,
                    account_id=settings.account_id,
                    cluster_name=settings.cluster_name,
                    interruption_queue_arn=self.queue.arn,
                    node_role_arn=self.node_role.arn,
                ),
            ),
        )

    @property
    def rule_arns(self) -> Sequence[str]:
        return [rule.arn for rule in self.rules]
