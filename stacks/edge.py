"""<env>-edge: how users reach ComfyUI.

browser/CLI -> CloudFront (+ WAF, us-east-1) -> VPC origin -> internal ALB (private subnets)
-> TargetGroupBinding -> ComfyUI pods. Access control from edge.access_control: an IP allowlist in
WAF, a Cognito login at the ALB, or (outside production only) none. docs/edge.md has the details.

Deployed after <env>-workload (the Service) and <env>-addons (the TargetGroupBinding CRD and the
controller that fills the target group); it needs only their names, from config and modules.names.
"""

from __future__ import annotations

import hashlib

from cdktf_cdktf_provider_aws.data_aws_ec2_managed_prefix_list import DataAwsEc2ManagedPrefixList
from cdktf_cdktf_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from constructs import Construct

from config.schema import EnvironmentConfig
from modules.alb import InternalAlb, InternalAlbSettings
from modules.cdn import (
    DistributionAccessLogs,
    DistributionAccessLogsSettings,
    VpcOriginDistribution,
    VpcOriginDistributionSettings,
)
from modules.cognito import CognitoLogin, CognitoLoginSettings
from modules.iam import statement
from modules.kube_providers import eks_cluster, kubernetes_provider
from modules.names import COMFYUI_SERVICE
from modules.placement import pin_to_provider
from modules.providers import aws_provider
from modules.secure_bucket import SecureBucket, SecureBucketSettings
from modules.target_group_binding import TargetGroupBinding, TargetGroupBindingSettings
from modules.waf import CloudFrontWebAcl, CloudFrontWebAclSettings
from stacks.base import EnvironmentStack
from stacks.network import NetworkStack

CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
HEALTH_CHECK_PATH = "/system_stats"
# ALB maximum: ComfyUI's websocket can sit quiet for a long time while a prompt runs.
IDLE_TIMEOUT_SECONDS = 4000
STICKINESS_SECONDS = 24 * 3600
ALB_LOGS_PREFIX = "alb"
CLOUDFRONT_LOGS_PREFIX = "cloudfront"
# Regions that opened before August 2022 take ALB access logs from a regional ELB account, not
# from the logdelivery.elasticloadbalancing.amazonaws.com service principal.
ELB_ACCOUNT_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "me-south-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)


def short_name(name: str, limit: int) -> str:
    """`name`, or a stable shortened form of it for AWS names with a length limit (ALB, target group)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: limit - 7].rstrip('-')}-{digest}"


class EdgeStack(EnvironmentStack):
    component = "edge"

    def __init__(self, scope: Construct, env: EnvironmentConfig, *, network: NetworkStack) -> None:
        super().__init__(scope, env)
        edge = env.edge
        prefix = f"{env.project}-{env.name}"
        us_east_1 = aws_provider(self, env, self.stack_id, alias="us-east-1", region="us-east-1")
        custom_domain = edge.domain_name if edge.cloudfront_certificate_arn else None

        logs = SecureBucket(
            self,
            "logs",
            SecureBucketSettings(
                name=env.bucket_name("edge-logs"),
                account_id=env.account_id,
                region=env.region,
                expire_days=edge.log_retention_days,
                force_destroy=not env.production,
                policy_statements=self._log_delivery_statements,
            ),
        )

        cognito = None
        if edge.access_control == "cognito":
            cognito = CognitoLogin(
                self,
                "login",
                CognitoLoginSettings(
                    name=prefix,
                    region=env.region,
                    app_domain=edge.domain_name,
                    domain_prefix=f"{prefix}-{env.account_id}",
                    deletion_protection=env.production,
                ),
            )

        origin_facing = DataAwsEc2ManagedPrefixList(self, "cloudfront-origin-facing", name=CLOUDFRONT_ORIGIN_FACING)
        vpc = network.vpc
        self.alb = InternalAlb(
            self,
            "alb",
            InternalAlbSettings(
                name=short_name(f"{prefix}-comfyui", 32),
                vpc_id=vpc.vpc.id,
                vpc_cidr=vpc.vpc.cidr_block,
                subnet_ids=vpc.private_subnet_ids,
                ingress_prefix_list_id=origin_facing.id,
                target_port=env.comfyui.port,
                health_check_path=HEALTH_CHECK_PATH,
                idle_timeout_seconds=IDLE_TIMEOUT_SECONDS,
                stickiness_seconds=STICKINESS_SECONDS,
                access_logs_bucket=logs.name,
                access_logs_prefix=ALB_LOGS_PREFIX,
                deletion_protection=env.production,
                certificate_arn=edge.alb_certificate_arn,
                login=cognito.alb_login() if cognito else None,
                depends_on=[logs.policy],
            ),
        )

        cluster = eks_cluster(self, env.cluster_name)
        kubernetes_provider(self, cluster, env.region)
        TargetGroupBinding(
            self,
            "target-group-binding",
            TargetGroupBindingSettings(
                name=COMFYUI_SERVICE,
                namespace=env.comfyui.namespace,
                service_name=COMFYUI_SERVICE,
                service_port=env.comfyui.port,
                target_group_arn=self.alb.target_group.arn,
                vpc_id=vpc.vpc.id,
                alb_security_group_id=self.alb.security_group.id,
                pod_port=env.comfyui.port,
            ),
        )

        self.waf = CloudFrontWebAcl(
            self,
            "waf",
            CloudFrontWebAclSettings(
                name=prefix,
                account_id=env.account_id,
                rate_limit=edge.rate_limit,
                ip_allowlist=tuple(edge.ip_allowlist),
                log_retention_days=edge.log_retention_days,
            ),
        )
        pin_to_provider(self.waf, us_east_1)

        self.cdn = VpcOriginDistribution(
            self,
            "cdn",
            VpcOriginDistributionSettings(
                name=prefix,
                alb_arn=self.alb.arn,
                alb_dns_name=self.alb.dns_name,
                web_acl_arn=self.waf.arn,
                price_class=edge.price_class,
                domain_name=custom_domain,
                certificate_arn=edge.cloudfront_certificate_arn,
                https_to_origin=edge.alb_certificate_arn is not None,
                ipv6=not edge.ip_allowlist,
            ),
        )
        cdn_logs = DistributionAccessLogs(
            self,
            "cdn-logs",
            DistributionAccessLogsSettings(
                name=prefix, distribution_arn=self.cdn.arn, bucket_arn=logs.arn, prefix=CLOUDFRONT_LOGS_PREFIX
            ),
        )
        pin_to_provider(cdn_logs, us_east_1)

        url = f"https://{custom_domain or self.cdn.domain_name}"
        self.output("url", url, "Open this in a browser")
        self.output("api_base_url", url, "ComfyUI API base URL (/prompt, /history, /view, /ws)")
        self.output("cloudfront_domain_name", self.cdn.domain_name, "CNAME/alias target for edge.domain_name")
        self.output("distribution_id", self.cdn.distribution.id, "CloudFront distribution id")
        self.output("alb_dns_name", self.alb.dns_name, "Internal ALB (reachable only through CloudFront)")
        self.output("target_group_arn", self.alb.target_group.arn, "Target group the TargetGroupBinding fills")
        self.output("web_acl_arn", self.waf.arn, "WAF web ACL (us-east-1)")
        self.output("logs_bucket", logs.name, "ALB (alb/) and CloudFront (cloudfront/) access logs")
        if cognito is None:
            test = f"curl -fsS {url}{HEALTH_CHECK_PATH}"
        else:
            self.output("cognito_user_pool_id", cognito.user_pool.id, "Cognito user pool (add users here)")
            self.output("cognito_api_client_id", cognito.api_client.id, "App client for CLI/API tokens")
            self.output("cognito_login_url", cognito.hosted_login_url, "Cognito hosted login")
            test = (
                f"TOKEN=$(aws cognito-idp initiate-auth --region {env.region} --client-id {cognito.api_client.id}"
                " --auth-flow USER_PASSWORD_AUTH --auth-parameters USERNAME=you@example.com,PASSWORD=..."
                " --query AuthenticationResult.AccessToken --output text) && "
                f'curl -fsS -H "Authorization: Bearer $TOKEN" {url}{HEALTH_CHECK_PATH}'
            )
        self.output("test_command", test, "Checks the whole path browser -> CloudFront -> ALB -> pod")

    def _log_delivery_statements(self, bucket_arn: str) -> list[dict]:
        account = self.env.account_id
        alb_logs = f"{bucket_arn}/{ALB_LOGS_PREFIX}/AWSLogs/{account}/*"
        statements = [
            statement(
                ["s3:PutObject"],
                alb_logs,
                sid="AlbAccessLogs",
                principal={"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
            )
        ]
        if self.env.region in ELB_ACCOUNT_REGIONS:
            elb_account = DataAwsElbServiceAccount(self, "elb-account")
            statements.append(
                statement(["s3:PutObject"], alb_logs, sid="AlbAccessLogsElbAccount", principal={"AWS": elb_account.arn})
            )
        # CloudFront standard logging v2 delivers from us-east-1 through CloudWatch Logs.
        delivery_condition = {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:aws:logs:us-east-1:{account}:delivery-source:*"},
        }
        statements += [
            statement(
                ["s3:PutObject"],
                f"{bucket_arn}/{CLOUDFRONT_LOGS_PREFIX}/*",
                sid="CloudFrontAccessLogs",
                principal={"Service": "delivery.logs.amazonaws.com"},
                condition={
                    **delivery_condition,
                    "StringEquals": {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"},
                },
            ),
            statement(
                ["s3:GetBucketAcl"],
                bucket_arn,
                sid="CloudFrontAccessLogsAclCheck",
                principal={"Service": "delivery.logs.amazonaws.com"},
                condition=delivery_condition,
            ),
        ]
        return statements
