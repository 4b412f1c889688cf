"""InternalAlb: the ComfyUI load balancer, owned by Terraform and reachable only from CloudFront.

Internal (private subnets, no public address); its security group admits one listener port from
CloudFront's origin-facing managed prefix list, the source of VPC-origin traffic. The target group
is type `ip` (pods registered by the load balancer controller through a TargetGroupBinding), with
load-balancer-cookie stickiness so a browser's websocket and its `/history` calls reach one pod.

Listener: HTTP:80 without a certificate, HTTPS:443 with one. With a Cognito login, browsers are
sent through the hosted login (session cookie), and requests carrying `Authorization: Bearer` are
verified as Cognito access tokens of the API client instead (CLI and scripts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionAuthenticateCognito,
)
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleActionJwtValidation,
    LbListenerRuleActionJwtValidationAdditionalClaim,
    LbListenerRuleCondition,
    LbListenerRuleConditionHttpHeader,
)
from cdktf_cdktf_provider_aws.lb_target_group import (
    LbTargetGroup,
    LbTargetGroupHealthCheck,
    LbTargetGroupStickiness,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

# TLS 1.2 minimum, TLS 1.3 preferred (the current ELB recommendation).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
BEARER_RULE_PRIORITY = 10


@dataclass(frozen=True)
class AlbCognitoLogin:
    user_pool_arn: str
    # App client with a secret, used by the ALB for the hosted-login code flow.
    user_pool_client_id: str
    # Hosted login domain prefix (`<prefix>.auth.<region>.amazoncognito.com`).
    user_pool_domain: str
    # `https://cognito-idp.<region>.amazonaws.com/<pool id>`: bearer tokens must come from here...
    token_issuer: str
    # ...and be access tokens of this (public) API client.
    api_client_id: str
    session_timeout_seconds: int = 12 * 3600


@dataclass(frozen=True)
class InternalAlbSettings:
    name: str  # load balancer, target group and security group name (<= 32 characters)
    vpc_id: str
    vpc_cidr: str  # pods (ip targets) take their addresses from the VPC
    subnet_ids: Sequence[str]  # private subnets
    ingress_prefix_list_id: str  # com.amazonaws.global.cloudfront.origin-facing
    target_port: int
    health_check_path: str
    idle_timeout_seconds: int
    stickiness_seconds: int
    access_logs_bucket: str
    access_logs_prefix: str
    deletion_protection: bool
    certificate_arn: str | None = None
    login: AlbCognitoLogin | None = None
    # Resources that must exist before the ALB (the log bucket's policy: the ALB test-writes on create).
    depends_on: Sequence[ITerraformDependable] = ()

    def __post_init__(self) -> None:
        if len(self.name) > 32:
            raise ValueError(f"ALB name {self.name!r} is longer than 32 characters")
        if self.login is not None and self.certificate_arn is None:
            raise ValueError("a Cognito login needs an HTTPS listener (certificate_arn)")

    @property
    def target_group_name(self) -> str:
        suffix = f"-{self.target_port}"
        return self.name[: 32 - len(suffix)].rstrip("-") + suffix

    @property
    def listener_port(self) -> int:
        return 443 if self.certificate_arn else 80


class InternalAlb(Construct):
    def __init__(self, scope: Construct, id_: str, settings: InternalAlbSettings) -> None:
        super().__init__(scope, id_)
        self.settings = settings
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{settings.name}-alb",
            description="ComfyUI ALB: CloudFront VPC origin in, ComfyUI pods out",
            vpc_id=settings.vpc_id,
            tags={"Name": f"{settings.name}-alb"},
        )
        # One rule only: a managed prefix list counts with its max entries (55) against the 60-rule quota.
        VpcSecurityGroupIngressRule(
            self,
            "from-cloudfront",
            security_group_id=self.security_group.id,
            description="CloudFront origin-facing (VPC origin) to the listener",
            ip_protocol="tcp",
            from_port=settings.listener_port,
            to_port=settings.listener_port,
            prefix_list_id=settings.ingress_prefix_list_id,
        )
        VpcSecurityGroupEgressRule(
            self,
            "to-pods",
            security_group_id=self.security_group.id,
            description="ComfyUI pods (ip targets) and their health checks",
            ip_protocol="tcp",
            from_port=settings.target_port,
            to_port=settings.target_port,
            cidr_ipv4=settings.vpc_cidr,
        )
        if settings.login is not None:
            VpcSecurityGroupEgressRule(
                self,
                "to-idp",
                security_group_id=self.security_group.id,
                description="Cognito token endpoint and JWKS (HTTPS through the NAT gateways)",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4="0.0.0.0/0",
            )

        self.lb = Lb(
            self,
            "lb",
            name=settings.name,
            internal=True,
            load_balancer_type="application",
            subnets=list(settings.subnet_ids),
            security_groups=[self.security_group.id],
            # The UI keeps a websocket open while prompts run; ALB's maximum is 4000 s.
            idle_timeout=settings.idle_timeout_seconds,
            drop_invalid_header_fields=True,
            enable_deletion_protection=settings.deletion_protection,
            access_logs=LbAccessLogs(
                bucket=settings.access_logs_bucket, prefix=settings.access_logs_prefix, enabled=True
            ),
            depends_on=list(settings.depends_on) or None,
        )
        # The port is part of the name and the new group comes first: a port change replaces the
        # group without a name clash and without a moment where the listener has no target.
        self.target_group = LbTargetGroup(
            self,
            "comfyui",
            name=settings.target_group_name,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            vpc_id=settings.vpc_id,
            target_type="ip",
            protocol="HTTP",
            port=settings.target_port,
            health_check=LbTargetGroupHealthCheck(
                enabled=True,
                path=settings.health_check_path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            stickiness=LbTargetGroupStickiness(
                type="lb_cookie", enabled=True, cookie_duration=settings.stickiness_seconds
            ),
        )

        forward = {"type": "forward", "target_group_arn": self.target_group.arn}
        if settings.login is None:
            default_actions = [LbListenerDefaultAction(**forward)]
        else:
            login = settings.login
            default_actions = [
                LbListenerDefaultAction(
                    type="authenticate-cognito",
                    order=1,
                    authenticate_cognito=LbListenerDefaultActionAuthenticateCognito(
                        user_pool_arn=login.user_pool_arn,
                        user_pool_client_id=login.user_pool_client_id,
                        user_pool_domain=login.user_pool_domain,
                        on_unauthenticated_request="authenticate",
                        scope="openid email",
                        session_timeout=login.session_timeout_seconds,
                    ),
                ),
                LbListenerDefaultAction(order=2, **forward),
            ]
        self.listener = LbListener(
            self,
            "https" if settings.certificate_arn else "http",
            load_balancer_arn=self.lb.arn,
            port=settings.listener_port,
            protocol="HTTPS" if settings.certificate_arn else "HTTP",
            certificate_arn=settings.certificate_arn,
            ssl_policy=TLS_POLICY if settings.certificate_arn else None,
            default_action=default_actions,
        )
        if settings.login is not None:
            login = settings.login
            # API clients cannot follow a login redirect: their Cognito access token is checked here.
            LbListenerRule(
                self,
                "bearer-token",
                listener_arn=self.listener.arn,
                priority=BEARER_RULE_PRIORITY,
                condition=[
                    LbListenerRuleCondition(
                        http_header=LbListenerRuleConditionHttpHeader(
                            http_header_name="Authorization", values=["Bearer *"]
                        )
                    )
                ],
                action=[
                    LbListenerRuleAction(
                        type="jwt-validation",
                        order=1,
                        jwt_validation=LbListenerRuleActionJwtValidation(
                            issuer=login.token_issuer,
                            jwks_endpoint=f"{login.token_issuer}/.well-known/jwks.json",
                            additional_claim=[
                                LbListenerRuleActionJwtValidationAdditionalClaim(
                                    format="single-string", name="token_use", values=["access"]
                                ),
                                LbListenerRuleActionJwtValidationAdditionalClaim(
                                    format="single-string", name="client_id", values=[login.api_client_id]
                                ),
                            ],
                        ),
                    ),
                    LbListenerRuleAction(order=2, **forward),
                ],
            )

    @property
    def arn(self) -> str:
        return self.lb.arn

    @property
    def dns_name(self) -> str:
        return self.lb.dns_name
