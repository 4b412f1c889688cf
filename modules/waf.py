"""CloudFrontWebAcl: the WAF in front of ComfyUI (CLOUDFRONT scope: build it on a us-east-1 provider).

Rules, in order: Amazon IP reputation list, anonymous IP list (Tor, anonymizing VPNs; hosting
provider ranges only count, so scripts on EC2 or CI runners can call the API), the common rule set
(its 8 KB body-size rule only counts: ComfyUI workflow JSON and image uploads are bigger), known
bad inputs (Log4j and friends), a per-IP rate limit, and, when an allowlist is configured, "allow
these ranges" with a default block. About 980 WCU of the 1,500 included in the base price.
Logs go to a KMS-encrypted CloudWatch log group with the Authorization and Cookie headers redacted.

The provider binding types `rule.statement` as Any (too deeply nested to generate), so statements
are plain dicts in Terraform's block syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_resource_policy import CloudwatchLogResourcePolicy
from cdktf_cdktf_provider_aws.wafv2_ip_set import Wafv2IpSet
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclDefaultActionBlock,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionAllow,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from modules.iam import policy_document, statement
from modules.kms import KmsKey, KmsKeySettings
from modules.logs import LogGroupSettings, log_group

WAF_REGION = "us-east-1"
# (rule group, rules inside it that only count). SizeRestrictions_BODY blocks bodies over 8 KB.
MANAGED_RULE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AWSManagedRulesAmazonIpReputationList", ()),
    ("AWSManagedRulesAnonymousIpList", ("HostingProviderIPList",)),
    ("AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    ("AWSManagedRulesKnownBadInputsRuleSet", ()),
)
# Headers that carry session cookies and bearer tokens never reach the WAF logs.
REDACTED_HEADERS = ("authorization", "cookie")


@dataclass(frozen=True)
class CloudFrontWebAclSettings:
    name: str
    account_id: str
    # Requests per 5 minutes from one client IP before it is blocked.
    rate_limit: int
    # IPv4 CIDRs; non-empty: everything else is blocked.
    ip_allowlist: Sequence[str]
    log_retention_days: int


def _visibility(metric: str) -> Wafv2WebAclRuleVisibilityConfig:
    return Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def managed_rule_group(name: str, priority: int, count_rules: Sequence[str] = ()) -> Wafv2WebAclRule:
    group: dict = {"vendor_name": "AWS", "name": name}
    if count_rules:
        group["rule_action_override"] = [{"name": rule, "action_to_use": {"count": {}}} for rule in count_rules]
    return Wafv2WebAclRule(
        name=name,
        priority=priority,
        override_action=Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone()),
        statement={"managed_rule_group_statement": group},
        visibility_config=_visibility(name),
    )


class CloudFrontWebAcl(Construct):
    def __init__(self, scope: Construct, id_: str, settings: CloudFrontWebAclSettings) -> None:
        super().__init__(scope, id_)
        rules = [
            managed_rule_group(group, priority, count_rules)
            for priority, (group, count_rules) in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            Wafv2WebAclRule(
                name="rate-limit-per-ip",
                priority=len(rules),
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                statement={
                    "rate_based_statement": {
                        "limit": settings.rate_limit,
                        "aggregate_key_type": "IP",
                        "evaluation_window_sec": 300,
                    }
                },
                visibility_config=_visibility("rate-limit-per-ip"),
            )
        )
        self.ip_set: Wafv2IpSet | None = None
        if settings.ip_allowlist:
            self.ip_set = Wafv2IpSet(
                self,
                "allowlist",
                name=f"{settings.name}-allowlist",
                description="Client ranges allowed to reach ComfyUI",
                scope="CLOUDFRONT",
                ip_address_version="IPV4",
                addresses=list(settings.ip_allowlist),
            )
            rules.append(
                Wafv2WebAclRule(
                    name="ip-allowlist",
                    priority=len(rules),
                    action=Wafv2WebAclRuleAction(allow=Wafv2WebAclRuleActionAllow()),
                    statement={"ip_set_reference_statement": {"arn": self.ip_set.arn}},
                    visibility_config=_visibility("ip-allowlist"),
                )
            )
        default_action = (
            Wafv2WebAclDefaultAction(block=Wafv2WebAclDefaultActionBlock())
            if settings.ip_allowlist
            else Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow())
        )
        self.web_acl = Wafv2WebAcl(
            self,
            "acl",
            name=settings.name,
            description="ComfyUI CloudFront distribution",
            scope="CLOUDFRONT",
            default_action=default_action,
            rule=rules,
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=settings.name, sampled_requests_enabled=True
            ),
        )

        key = KmsKey(
            self,
            "logs-key",
            KmsKeySettings(
                alias=f"{settings.name}-waf-logs",
                description="WAF logs encryption",
                account_id=settings.account_id,
                region=WAF_REGION,
                allow_cloudwatch_logs=True,
            ),
        )
        # WAF only logs to groups whose name starts with `aws-waf-logs-`.
        self.log_group = log_group(
            self,
            "logs",
            LogGroupSettings(
                name=f"aws-waf-logs-{settings.name}",
                retention_days=settings.log_retention_days,
                kms_key_arn=key.arn,
            ),
        )
        # Written explicitly so the grant is reviewable (WAF would otherwise add an account-wide one).
        delivery = CloudwatchLogResourcePolicy(
            self,
            "logs-delivery",
            policy_name=f"{settings.name}-waf-logs",
            policy_document=policy_document(
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    f"{self.log_group.arn}:*",
                    sid="WafLogDelivery",
                    principal={"Service": "delivery.logs.amazonaws.com"},
                    condition={
                        "StringEquals": {"aws:SourceAccount": settings.account_id},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{WAF_REGION}:{settings.account_id}:*"},
                    },
                )
            ),
        )
        Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=header)
                )
                for header in REDACTED_HEADERS
            ],
            depends_on=[delivery],
        )

    @property
    def arn(self) -> str:
        return self.web_acl.arn
