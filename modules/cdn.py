"""VpcOriginDistribution: CloudFront in front of the internal ALB, through a CloudFront VPC origin.

ComfyUI is an app, not a website: caching is off (AWS managed CachingDisabled) and every viewer
header, cookie and query string goes to the origin (AllViewer), so login cookies, bearer tokens
and websocket upgrades pass through. Viewers are redirected to HTTPS; with a custom domain the
viewer certificate requires TLS 1.2 (TLSv1.2_2021). CloudFront to ALB uses HTTPS (TLS 1.2) when the
ALB has a certificate for that domain, HTTP inside the VPC otherwise.

DistributionAccessLogs: CloudFront standard logging v2 (CloudWatch Logs delivery) to S3; no bucket
ACLs needed, unlike legacy logging. Build it on a us-east-1 provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudfront_distribution import (
    CloudfrontDistribution,
    CloudfrontDistributionDefaultCacheBehavior,
    CloudfrontDistributionOrigin,
    CloudfrontDistributionOriginVpcOriginConfig,
    CloudfrontDistributionRestrictions,
    CloudfrontDistributionRestrictionsGeoRestriction,
    CloudfrontDistributionViewerCertificate,
)
from cdktf_cdktf_provider_aws.cloudfront_vpc_origin import (
    CloudfrontVpcOrigin,
    CloudfrontVpcOriginVpcOriginEndpointConfig,
    CloudfrontVpcOriginVpcOriginEndpointConfigOriginSslProtocols,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery import CloudwatchLogDelivery
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery_destination import (
    CloudwatchLogDeliveryDestination,
    CloudwatchLogDeliveryDestinationDeliveryDestinationConfiguration,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery_source import CloudwatchLogDeliverySource
from cdktf_cdktf_provider_aws.data_aws_cloudfront_cache_policy import DataAwsCloudfrontCachePolicy
from cdktf_cdktf_provider_aws.data_aws_cloudfront_origin_request_policy import DataAwsCloudfrontOriginRequestPolicy
from cdktf_cdktf_provider_aws.data_aws_cloudfront_response_headers_policy import (
    DataAwsCloudfrontResponseHeadersPolicy,
)
from constructs import Construct

# AWS managed policies, looked up by name (their ids are global constants, names are readable).
CACHING_DISABLED = "Managed-CachingDisabled"
ALL_VIEWER = "Managed-AllViewer"
SECURITY_HEADERS = "Managed-SecurityHeadersPolicy"
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
VIEWER_TLS_POLICY = "TLSv1.2_2021"
ORIGIN_ID = "comfyui-alb"


@dataclass(frozen=True)
class VpcOriginDistributionSettings:
    name: str
    alb_arn: str
    alb_dns_name: str
    web_acl_arn: str
    price_class: str
    # Custom domain + its us-east-1 ACM certificate; None: the *.cloudfront.net name.
    domain_name: str | None = None
    certificate_arn: str | None = None
    # HTTPS to the ALB (it has a certificate for domain_name); HTTP inside the VPC otherwise.
    https_to_origin: bool = False
    # IPv6 viewers: off with an IPv4 allowlist, so dual-stack clients connect over IPv4 and match it.
    ipv6: bool = True
    # Seconds CloudFront waits for the ALB (1-60 without a quota increase).
    origin_read_timeout: int = 60

    def __post_init__(self) -> None:
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise ValueError("domain_name and certificate_arn go together")
        if self.https_to_origin and self.domain_name is None:
            raise ValueError("https_to_origin needs domain_name: the ALB certificate is checked against it")


class VpcOriginDistribution(Construct):
    def __init__(self, scope: Construct, id_: str, settings: VpcOriginDistributionSettings) -> None:
        super().__init__(scope, id_)
        self.vpc_origin = CloudfrontVpcOrigin(
            self,
            "vpc-origin",
            vpc_origin_endpoint_config=[
                CloudfrontVpcOriginVpcOriginEndpointConfig(
                    name=settings.name,
                    arn=settings.alb_arn,
                    http_port=80,
                    https_port=443,
                    origin_protocol_policy="https-only" if settings.https_to_origin else "http-only",
                    origin_ssl_protocols=[
                        CloudfrontVpcOriginVpcOriginEndpointConfigOriginSslProtocols(items=["TLSv1.2"], quantity=1)
                    ],
                )
            ],
        )
        caching_disabled = DataAwsCloudfrontCachePolicy(self, "caching-disabled", name=CACHING_DISABLED)
        all_viewer = DataAwsCloudfrontOriginRequestPolicy(self, "all-viewer", name=ALL_VIEWER)
        security_headers = DataAwsCloudfrontResponseHeadersPolicy(self, "security-headers", name=SECURITY_HEADERS)

        if settings.certificate_arn:
            certificate = CloudfrontDistributionViewerCertificate(
                acm_certificate_arn=settings.certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=VIEWER_TLS_POLICY,
            )
        else:
            # *.cloudfront.net: CloudFront's own certificate, whose security policy cannot be chosen.
            certificate = CloudfrontDistributionViewerCertificate(cloudfront_default_certificate=True)

        self.distribution = CloudfrontDistribution(
            self,
            "distribution",
            enabled=True,
            comment=f"{settings.name}: ComfyUI",
            aliases=[settings.domain_name] if settings.domain_name else None,
            price_class=settings.price_class,
            http_version="http2and3",
            is_ipv6_enabled=settings.ipv6,
            web_acl_id=settings.web_acl_arn,
            origin=[
                CloudfrontDistributionOrigin(
                    origin_id=ORIGIN_ID,
                    domain_name=settings.alb_dns_name,
                    vpc_origin_config=CloudfrontDistributionOriginVpcOriginConfig(
                        vpc_origin_id=self.vpc_origin.id,
                        origin_read_timeout=settings.origin_read_timeout,
                        origin_keepalive_timeout=60,
                    ),
                )
            ],
            default_cache_behavior=CloudfrontDistributionDefaultCacheBehavior(
                target_origin_id=ORIGIN_ID,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=ALL_METHODS,
                cached_methods=["GET", "HEAD"],
                cache_policy_id=caching_disabled.id,
                origin_request_policy_id=all_viewer.id,
                response_headers_policy_id=security_headers.id,
            ),
            restrictions=CloudfrontDistributionRestrictions(
                geo_restriction=CloudfrontDistributionRestrictionsGeoRestriction(restriction_type="none")
            ),
            viewer_certificate=certificate,
        )

    @property
    def domain_name(self) -> str:
        return self.distribution.domain_name

    @property
    def arn(self) -> str:
        return self.distribution.arn


@dataclass(frozen=True)
class DistributionAccessLogsSettings:
    name: str
    distribution_arn: str
    bucket_arn: str
    # Objects land under `<prefix>/AWSLogs/<account>/CloudFront/`.
    prefix: str
    # Parquet: columnar and compressed, what Athena reads fastest.
    output_format: str = "parquet"


class DistributionAccessLogs(Construct):
    def __init__(self, scope: Construct, id_: str, settings: DistributionAccessLogsSettings) -> None:
        super().__init__(scope, id_)
        source = CloudwatchLogDeliverySource(
            self,
            "source",
            name=f"{settings.name}-cloudfront",
            log_type="ACCESS_LOGS",
            resource_arn=settings.distribution_arn,
        )
        destination = CloudwatchLogDeliveryDestination(
            self,
            "destination",
            name=f"{settings.name}-cloudfront-s3",
            output_format=settings.output_format,
            delivery_destination_configuration=[
                CloudwatchLogDeliveryDestinationDeliveryDestinationConfiguration(
                    destination_resource_arn=f"{settings.bucket_arn}/{settings.prefix}"
                )
            ],
        )
        CloudwatchLogDelivery(
            self,
            "delivery",
            delivery_source_name=source.name,
            delivery_destination_arn=destination.arn,
        )
