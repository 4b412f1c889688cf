"""QueueWithDlq: an SQS queue, its dead-letter queue and an alarm on the DLQ's depth.

Both queues: server-side encryption with SQS-managed keys (SSE-SQS), a policy that denies non-TLS
requests, and only the statements the caller adds (e.g. S3 may send, from one bucket). SSE-SQS rather
than a customer managed key: S3 event notifications need no key policy for it, and the messages hold
object keys, not model data. The DLQ only accepts redrives from its
queue and keeps messages for 14 days (the maximum), longer than the queue, so nothing expires in transit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktf_cdktf_provider_aws.sqs_queue_redrive_allow_policy import SqsQueueRedriveAllowPolicy
from constructs import Construct

from modules.iam import deny_insecure_transport, policy_document

DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueWithDlqSettings:
    name: str
    visibility_timeout_seconds: int
    # Receives before SQS moves a message to the DLQ.
    max_receive_count: int
    retention_seconds: int = 4 * 24 * 3600
    # Extra queue policy statements, given the queue ARN (e.g. a service that may send to it).
    policy_statements: Callable[[str], list[dict]] | None = None
    # SNS topics told when the DLQ holds messages (and when it is empty again).
    alarm_actions: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.visibility_timeout_seconds <= 43200:
            raise ValueError(f"{self.name}: visibility timeout {self.visibility_timeout_seconds}s is outside 0..43200")
        if self.retention_seconds >= DLQ_RETENTION_SECONDS:
            raise ValueError(f"{self.name}: queue retention must stay below the DLQ's {DLQ_RETENTION_SECONDS}s")


class QueueWithDlq(Construct):
    def __init__(self, scope: Construct, id_: str, settings: QueueWithDlqSettings) -> None:
        super().__init__(scope, id_)
        self.dlq = SqsQueue(
            self,
            "dlq",
            name=f"{settings.name}-dlq",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
        )
        self.queue = SqsQueue(
            self,
            "queue",
            name=settings.name,
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            message_retention_seconds=settings.retention_seconds,
            receive_wait_time_seconds=20,
            redrive_policy=json.dumps(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": settings.max_receive_count}
            ),
        )
        # A separate resource: the DLQ naming its source queue inline would be a dependency cycle.
        SqsQueueRedriveAllowPolicy(
            self,
            "dlq-redrive-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}),
        )
        statements = [deny_insecure_transport([self.queue.arn], actions="sqs:*")]
        if settings.policy_statements is not None:
            statements.extend(settings.policy_statements(self.queue.arn))
        self.queue_policy = SqsQueuePolicy(
            self, "queue-policy", queue_url=self.queue.url, policy=policy_document(*statements)
        )
        SqsQueuePolicy(
            self,
            "dlq-policy",
            queue_url=self.dlq.url,
            policy=policy_document(deny_insecure_transport([self.dlq.arn], actions="sqs:*")),
        )
        self.dlq_alarm = CloudwatchMetricAlarm(
            self,
            "dlq-alarm",
            alarm_name=f"{settings.name}-dlq-not-empty",
            alarm_description=(
                f"Messages in {settings.name}-dlq: events that failed {settings.max_receive_count} times. "
                "Runbook: docs/model-sync.md (replay the DLQ)."
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dlq.name},
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(settings.alarm_actions) or None,
            ok_actions=list(settings.alarm_actions) or None,
        )

    @property
    def arn(self) -> str:
        return self.queue.arn

    @property
    def url(self) -> str:
        return self.queue.url
