"""Typed schema of one environment file (config/<env>.yaml).

Every model forbids unknown keys and is frozen: constructs receive the section they need and
cannot change it. Defaults are chosen so that a file with only `name`, `account_id`, `region`
and `production: false` synthesizes. docs/configuration.md documents every field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from modules.instance_types import al2023_ami_type
from modules.subnets import plan_subnets

# Commercial AWS regions. A region missing here is a one-line config error, not a failed apply.
AWS_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

# EC2 instance families that carry NVIDIA GPUs and run the AL2023 NVIDIA AMI.
GPU_INSTANCE_FAMILIES = (
    "g4dn",
    "g5",
    "g6",
    "g6e",
    "g6f",
    "gr6",
    "gr6f",
    "g7e",
    "p3",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6-b200",
    "p6-b300",
    "p6e-gb200",
)
INSTANCE_SIZES = (
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "3xlarge",
    "4xlarge",
    "6xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "32xlarge",
    "48xlarge",
    "metal",
)
# Values CloudWatch Logs accepts for retention_in_days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal)$")
_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:(role|user|assumed-role)/[\w+=,.@/-]+$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):[0-9]{12}:certificate/[0-9a-f-]{36}$")


def _check_log_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of CloudWatch's retention values {list(LOG_RETENTION_DAYS)}")
    return days


def _check_region(region: str) -> str:
    if region not in AWS_REGIONS:
        raise ValueError(f"unknown AWS region {region!r}; allowed: {', '.join(AWS_REGIONS)}")
    return region


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like '30s', '10m' or '720h'")
    return value


def _check_instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.match(value):
        raise ValueError(f"{value!r} is not an EC2 instance type like 't3a.xlarge'")
    return value


def _check_principal(value: str) -> str:
    if not _IAM_PRINCIPAL.match(value):
        raise ValueError(f"{value!r} is not an IAM role or user ARN")
    return value


def _check_private_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR notation ({err})") from None
    return str(net)


def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR notation ({err})") from None


def _no_overlaps(cidrs: list[str]) -> list[str]:
    networks = [ipaddress.IPv4Network(cidr) for cidr in cidrs]
    for index, network in enumerate(networks):
        for earlier in networks[:index]:
            if network.overlaps(earlier):
                raise ValueError(f"{network} overlaps {earlier}; list each range once")
    return cidrs


LogRetention = Annotated[int, AfterValidator(_check_log_retention)]
Region = Annotated[str, AfterValidator(_check_region)]
Duration = Annotated[str, AfterValidator(_check_duration)]
InstanceType = Annotated[str, AfterValidator(_check_instance_type)]
Principal = Annotated[str, AfterValidator(_check_principal)]
Cidr = Annotated[str, AfterValidator(_check_cidr)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,19}$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class NetworkConfig(Model):
    cidr: Annotated[str, AfterValidator(_check_private_cidr)] = Field(
        "10.0.0.0/16",
        description="VPC range (RFC 1918, /16 to /22). Private subnets take the first half, public subnets 8x smaller start the second half.",
    )
    az_count: int = Field(
        3, ge=2, le=6, description="Availability zones the VPC spans (one private and one public subnet each)."
    )
    availability_zones: list[str] | None = Field(
        None, description="Explicit zone names; by default the first `az_count` available zones of the region."
    )
    nat: Literal["single", "per_az"] = Field(
        "single",
        description="`single`: one NAT gateway for the VPC (cheaper); `per_az`: one per AZ, so an AZ outage does not cut egress.",
    )
    flow_logs_retention_days: LogRetention = Field(
        365, description="Retention of the VPC flow logs log group (a CloudWatch retention value)."
    )

    @field_validator("cidr")
    @classmethod
    def _rfc1918_and_size(cls, value: str) -> str:
        net = ipaddress.IPv4Network(value)
        if not net.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        if not 16 <= net.prefixlen <= 22:
            raise ValueError(f"{value}: prefix must be between /16 and /22 (VPC limit /16; room for subnets)")
        return value

    @model_validator(mode="after")
    def _zones_match_count(self) -> NetworkConfig:
        try:
            plan_subnets(self.cidr, self.az_count)
        except ValueError as err:
            raise ValueError(f"cidr: {err}") from None
        if self.availability_zones is not None:
            if len(self.availability_zones) != self.az_count:
                raise ValueError(
                    f"availability_zones lists {len(self.availability_zones)} zones but az_count is {self.az_count}"
                )
            if len(set(self.availability_zones)) != len(self.availability_zones):
                raise ValueError("availability_zones has duplicates")
        return self


class BucketConfig(Model):
    kms: bool = Field(False, description="SSE-KMS with a customer managed key (rotation on) instead of SSE-S3.")
    versioning: bool = Field(
        False, description="Keep object versions (noncurrent versions expire after `noncurrent_expire_days`)."
    )
    expire_days: int | None = Field(None, ge=1, description="Expire current objects after N days (None: keep).")
    noncurrent_expire_days: int = Field(
        30, ge=1, description="Expire noncurrent versions after N days (versioned buckets)."
    )
    force_destroy: bool = Field(
        False, description="Let `terraform destroy` delete a non-empty bucket (never in production)."
    )


class StorageConfig(Model):
    models: BucketConfig = Field(
        BucketConfig(versioning=True),
        description="Models bucket (what every GPU node copies to local disk). Versioned by default.",
    )
    inputs: BucketConfig = Field(
        BucketConfig(expire_days=90), description="Inputs bucket (mounted into ComfyUI's input folder with Mountpoint)."
    )
    outputs: BucketConfig = Field(
        BucketConfig(expire_days=30),
        description="Outputs bucket (ComfyUI's results, copied from the pod's local disk).",
    )
    access_logs_expire_days: int = Field(
        365, ge=1, description="S3 server access logs for the three buckets go to a dedicated log bucket."
    )


class ImageConfig(Model):
    repository: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$", max_length=200)] = Field(
        "comfyui", description="ECR repository name for the ComfyUI image."
    )
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = Field(
        "v0.3.64", description="Tag deployed by the workload stack; `digest` (sha256:...) wins when set."
    )
    digest: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")] | None = Field(
        None, description="Image digest (`sha256:...`) to deploy; wins over `tag` when set."
    )
    keep_images: int = Field(30, ge=1, le=1000, description="How many images the ECR lifecycle policy keeps.")


class SystemNodesConfig(Model):
    instance_types: list[InstanceType] = Field(
        default_factory=lambda: ["t3a.xlarge"],
        min_length=1,
        description="Instance types of the managed CPU node group that runs system pods (one architecture).",
    )
    desired: int = Field(2, ge=1, description="Desired node count.")
    min: int = Field(2, ge=1, description="Minimum node count.")
    max: int = Field(4, ge=1, description="Maximum node count.")
    disk_gb: int = Field(50, ge=20, le=1000, description="Encrypted gp3 root volume size per node, GiB.")

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodesConfig:
        if not self.min <= self.desired <= self.max:
            raise ValueError(f"need min <= desired <= max, got {self.min} <= {self.desired} <= {self.max}")
        return self

    @field_validator("instance_types")
    @classmethod
    def _one_architecture(cls, instance_types: list[str]) -> list[str]:
        # One managed node group runs one AMI type: Graviton and x86 types cannot share it.
        al2023_ami_type(instance_types)
        return instance_types


class AddonVersionsConfig(Model):
    """EKS managed add-on versions (`aws eks describe-addon-versions --kubernetes-version X`)."""

    vpc_cni: str = Field("v1.20.4-eksbuild.2", description="vpc-cni add-on version (network policy enforcement on).")
    coredns: str = Field("v1.12.4-eksbuild.1", description="coredns add-on version.")
    kube_proxy: str = Field(
        "v1.34.1-eksbuild.2", description="kube-proxy add-on version (matches the cluster's minor version)."
    )
    pod_identity_agent: str = Field("v1.3.9-eksbuild.3", description="eks-pod-identity-agent add-on version.")

    @field_validator("*")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$", value):
            raise ValueError(f"{value!r} is not an EKS add-on version like 'v1.20.4-eksbuild.2'")
        return value


class ClusterConfig(Model):
    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,99}$")] | None = Field(
        None, description='Defaults to "<project>-<env>".'
    )
    version: Annotated[str, StringConstraints(pattern=r"^1\.(2[89]|3[0-9])$")] = Field(
        "1.34", description="EKS Kubernetes version (`1.x`). Upgrade one minor version at a time: docs/cluster.md."
    )
    admin_principals: list[Principal] = Field(
        default_factory=list, description="IAM roles/users given cluster-admin through access entries."
    )
    public_endpoint_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="The API endpoint is private; these CIDRs (if any) may also reach it publicly.",
    )
    log_retention_days: LogRetention = Field(
        365, description="Control-plane (api, audit, authenticator) logs: a year of audit trail by default."
    )
    service_cidr: Annotated[str, AfterValidator(_check_private_cidr)] = Field(
        "172.20.0.0/16", description="Kubernetes Service range; must not overlap the VPC."
    )
    system_nodes: SystemNodesConfig = Field(
        SystemNodesConfig(), description="The managed CPU node group for system pods (Karpenter, controllers, CoreDNS)."
    )
    addons: AddonVersionsConfig = Field(
        AddonVersionsConfig(),
        description="EKS managed add-on versions (`aws eks describe-addon-versions --kubernetes-version X`).",
    )

    @field_validator("public_endpoint_cidrs")
    @classmethod
    def _no_world(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            if ipaddress.IPv4Network(cidr).prefixlen == 0:
                raise ValueError("0.0.0.0/0 is not an allowlist; leave the list empty for a private-only endpoint")
        return _no_overlaps(cidrs)


class GpuConfig(Model):
    instance_families: list[str] = Field(
        default_factory=lambda: ["g6e", "g6", "g5"],
        min_length=1,
        description="GPU instance families Karpenter may launch (NVIDIA families only).",
    )
    instance_sizes: list[str] = Field(
        default_factory=lambda: ["xlarge", "2xlarge", "4xlarge"],
        min_length=1,
        description="Instance sizes Karpenter may launch within those families.",
    )
    capacity_types: list[Literal["spot", "on-demand"]] = Field(
        default_factory=lambda: ["spot", "on-demand"], min_length=1, description="`spot` and/or `on-demand`."
    )
    gpu_limit: int = Field(
        8, ge=1, le=1000, description="Karpenter NodePool limit on nvidia.com/gpu across all GPU nodes."
    )
    ami_alias: Annotated[str, StringConstraints(pattern=r"^al2023@(latest|v[0-9]{8})$")] = Field(
        "al2023@v20251108",
        description="AL2023 NVIDIA AMI alias (`al2023@vYYYYMMDD`); production refuses `al2023@latest`.",
    )
    root_volume_gb: int = Field(
        100,
        ge=40,
        le=16000,
        description="Encrypted gp3 root volume of each GPU node, GiB (holds the image; models go to instance store).",
    )
    root_volume_throughput: int = Field(
        250,
        ge=125,
        le=1000,
        description="gp3 throughput of the root volume in MiB/s (the image is pulled and unpacked onto it).",
    )
    consolidate_after: Duration = Field(
        "10m", description="How long a GPU node must be empty before Karpenter removes it."
    )
    expire_after: Duration = Field(
        "720h", description="Maximum node lifetime before Karpenter replaces it (picks up new AMIs)."
    )
    spot_fallback: bool = Field(
        False, description="Add a lower-weight on-demand NodePool used when spot capacity is short."
    )
    models_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./-]+$")] = Field(
        "/opt/comfyui/models",
        description="Where the node keeps its local copy of the models bucket (instance store when present).",
    )

    @field_validator("instance_families")
    @classmethod
    def _gpu_families(cls, families: list[str]) -> list[str]:
        for family in families:
            if family not in GPU_INSTANCE_FAMILIES:
                raise ValueError(
                    f"{family!r} is not a GPU instance family; allowed: {', '.join(GPU_INSTANCE_FAMILIES)}"
                )
        if len(set(families)) != len(families):
            raise ValueError("duplicate instance family")
        return families

    @field_validator("instance_sizes")
    @classmethod
    def _sizes(cls, sizes: list[str]) -> list[str]:
        for size in sizes:
            if size not in INSTANCE_SIZES:
                raise ValueError(f"{size!r} is not an instance size; allowed: {', '.join(INSTANCE_SIZES)}")
        return sizes

    @field_validator("capacity_types")
    @classmethod
    def _unique_capacity(cls, types: list[str]) -> list[str]:
        if len(set(types)) != len(types):
            raise ValueError("duplicate capacity type")
        return types

    @model_validator(mode="after")
    def _fallback_needs_spot(self) -> GpuConfig:
        # With spot_fallback the main pool is spot-only and a second pool adds on-demand.
        if self.spot_fallback and "spot" not in self.capacity_types:
            raise ValueError("spot_fallback: true needs 'spot' in capacity_types")
        return self


class ModelSyncConfig(Model):
    prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.-]+/)*$")] = Field(
        "", description='Only keys under this prefix of the models bucket are synced ("" = whole bucket).'
    )
    batch_size: int = Field(
        1000,
        ge=1,
        le=10000,
        description="Messages per Lambda invocation. Large, so a burst of uploads is one batch and one SSM command (1000 S3 event messages are about 1.5 MB of the 6 MB invocation payload).",
    )
    batching_window_seconds: int = Field(
        20, ge=0, le=300, description="How long the event source mapping gathers messages before invoking the Lambda."
    )
    max_concurrency: int = Field(
        2,
        ge=2,
        le=1000,
        description="Maximum concurrent Lambda invocations from the queue (event source mapping; 2 is the AWS minimum).",
    )
    max_receive_count: int = Field(
        5, ge=1, le=1000, description="Receives before a message moves to the dead-letter queue."
    )
    log_retention_days: LogRetention = Field(90, description="Retention of the Lambda's log group.")
    lambda_timeout_seconds: int = Field(
        60,
        ge=10,
        le=900,
        description="Lambda timeout; the queue's visibility timeout is 6x this plus the batching window (AWS guidance).",
    )
    node_command_timeout_seconds: int = Field(
        7200,
        ge=60,
        le=172800,
        description="SSM executionTimeout of the node-side script (a full sync of a large bucket takes a while).",
    )
    alarm_actions: list[
        Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$")]
    ] = Field(default_factory=list, description="SNS topic ARNs notified when messages land in the dead-letter queue.")

    @field_validator("prefix")
    @classmethod
    def _no_dot_segments(cls, prefix: str) -> str:
        if {".", ".."} & set(prefix.split("/")):
            raise ValueError(f"{prefix!r}: '.' and '..' are not folder names")
        return prefix

    @model_validator(mode="after")
    def _batching(self) -> ModelSyncConfig:
        # SQS event source mappings reject a batch size above 10 without a batching window.
        if self.batch_size > 10 and self.batching_window_seconds < 1:
            raise ValueError(f"batch_size {self.batch_size} > 10 needs batching_window_seconds >= 1 (SQS rule)")
        return self


class ComfyUIConfig(Model):
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = Field(
        "comfyui", description="Kubernetes namespace of the ComfyUI workload."
    )
    replicas: int = Field(1, ge=0, le=100, description="ComfyUI pods (each takes `gpus` GPUs on a GPU node).")
    port: int = Field(
        8188, ge=1024, le=65535, description="ComfyUI's HTTP/websocket port (container, Service and target group)."
    )
    gpus: int = Field(1, ge=1, le=8, description="GPUs per pod (`nvidia.com/gpu` request and limit).")
    cpu_request: str = Field("3", description="CPU request per pod.")
    cpu_limit: str = Field("7", description="CPU limit per pod.")
    memory_request: str = Field("14Gi", description="Memory request per pod.")
    memory_limit: str = Field("28Gi", description="Memory limit per pod.")
    termination_grace_seconds: int = Field(
        600,
        ge=30,
        le=7200,
        description="How long a pod may take to finish the prompt it is running before it is killed.",
    )
    startup_timeout_seconds: int = Field(
        1800,
        ge=120,
        le=7200,
        description="How long a new pod may wait for the node's boot model sync plus ComfyUI's start before restart.",
    )
    output_staging_gb: int = Field(
        20,
        ge=1,
        le=1000,
        description="Local disk (emptyDir) for outputs until the uploader sidecar has copied them to S3.",
    )


class EdgeConfig(Model):
    access_control: Literal["ip_allowlist", "cognito", "none"] = Field(
        "none", description="`none` is refused in production (no anonymous access to GPUs)."
    )
    ip_allowlist: list[Cidr] = Field(
        default_factory=list, description="Client CIDRs admitted by WAF when `access_control` is `ip_allowlist`."
    )
    domain_name: str | None = Field(None, description="Custom domain; needs both certificates below.")
    cloudfront_certificate_arn: str | None = Field(None, description="ACM certificate in us-east-1 for CloudFront.")
    alb_certificate_arn: str | None = Field(
        None, description="ACM certificate in the environment's region for the ALB's HTTPS listener."
    )
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = Field(
        "PriceClass_100", description="CloudFront price class."
    )
    rate_limit: int = Field(
        2000, ge=10, le=2_000_000_000, description="Requests per 5 minutes per client IP before WAF blocks."
    )
    log_retention_days: LogRetention = Field(
        365,
        description="WAF log group retention and expiry of the ALB/CloudFront access logs (a year: security audit trail).",
    )

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError(f"{value!r} is not a lower-case DNS name like 'comfy.example.com'")
        return value

    @field_validator("ip_allowlist")
    @classmethod
    def _allowlist(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            if ipaddress.IPv4Network(cidr).prefixlen == 0:
                raise ValueError("0.0.0.0/0 admits everyone; use access_control 'none' (outside production) instead")
        return _no_overlaps(cidrs)

    @field_validator("cloudfront_certificate_arn", "alb_certificate_arn")
    @classmethod
    def _acm(cls, value: str | None) -> str | None:
        if value is not None and not _ACM_ARN.match(value):
            raise ValueError(f"{value!r} is not an ACM certificate ARN")
        return value

    @model_validator(mode="after")
    def _access_control(self) -> EdgeConfig:
        if self.cloudfront_certificate_arn and ":acm:us-east-1:" not in self.cloudfront_certificate_arn:
            raise ValueError("cloudfront_certificate_arn must be in us-east-1 (CloudFront requirement)")
        if (self.cloudfront_certificate_arn or self.alb_certificate_arn) and not self.domain_name:
            raise ValueError("certificates need domain_name")
        if self.alb_certificate_arn and not self.cloudfront_certificate_arn:
            # CloudFront checks the ALB's certificate against the viewer's Host (the custom domain).
            raise ValueError("alb_certificate_arn needs cloudfront_certificate_arn (HTTPS to the ALB uses the domain)")
        if self.access_control == "ip_allowlist" and not self.ip_allowlist:
            raise ValueError("access_control 'ip_allowlist' needs at least one CIDR in ip_allowlist")
        if self.access_control == "cognito" and not (
            self.domain_name and self.cloudfront_certificate_arn and self.alb_certificate_arn
        ):
            raise ValueError(
                "access_control 'cognito' needs domain_name, cloudfront_certificate_arn and alb_certificate_arn "
                "(the ALB login runs on an HTTPS listener)"
            )
        return self


class CiConfig(Model):
    github_repository: str | None = Field(
        None, description='"owner/name" of the GitHub repository whose workflows may plan/deploy this environment.'
    )
    deploy_branch: str = Field(
        "main", description="Branch allowed to assume the deploy role, and the GitHub environment it must run in."
    )
    github_environment: str | None = Field(
        None, description="GitHub environment (with required reviewers) the deploy role is limited to."
    )
    create_oidc_provider: bool = Field(
        True, description="The account's GitHub OIDC provider (one per account): false reuses one created elsewhere."
    )

    @field_validator("github_repository")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and (not _GITHUB_REPO.match(value) or "*" in value):
            raise ValueError(f"{value!r} is not a GitHub repository like 'studio/comfyui-infra'")
        return value

    @field_validator("deploy_branch", "github_environment")
    @classmethod
    def _literal_name(cls, value: str | None) -> str | None:
        # Both end up in an OIDC `sub` condition: a wildcard would widen who may deploy.
        if value is not None and not re.match(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,254}$", value):
            raise ValueError(f"{value!r} must be a plain branch/environment name (no wildcards, spaces or ':')")
        return value


class StateConfig(Model):
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = Field(
        None, description='Defaults to "<project>-tfstate-<account>-<region>".'
    )
    region: Region | None = Field(None, description="Region of the state bucket; defaults to the environment's region.")


class EnvironmentConfig(Model):
    name: Name = Field(
        description="Environment name: stack ids are `<name>-<stack>` (lower case, up to 20 characters)."
    )
    project: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,19}$")] = Field(
        "comfyui", description="Prefix of every resource name."
    )
    production: bool = Field(
        True,
        description="Production environments get the strict rules (access control, pinned AMI and image). Safe by default: an environment is production unless its file says otherwise.",
    )
    account_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")] = Field(
        description="AWS account (quoted 12 digits). Providers and backends refuse any other account."
    )
    region: Region = Field(description="AWS region of the environment.")
    state: StateConfig = Field(StateConfig(), description="Remote state bucket (created by `<env>-bootstrap`).")
    network: NetworkConfig = Field(NetworkConfig(), description="VPC.")
    storage: StorageConfig = Field(StorageConfig(), description="S3 buckets.")
    image: ImageConfig = Field(ImageConfig(), description="ComfyUI image in ECR.")
    cluster: ClusterConfig = Field(ClusterConfig(), description="EKS cluster.")
    gpu: GpuConfig = Field(GpuConfig(), description="Karpenter GPU nodes.")
    model_sync: ModelSyncConfig = Field(ModelSyncConfig(), description="S3 → GPU node model distribution.")
    comfyui: ComfyUIConfig = Field(ComfyUIConfig(), description="The ComfyUI Deployment.")
    edge: EdgeConfig = Field(EdgeConfig(), description="CloudFront, WAF, ALB and access control.")
    ci: CiConfig = Field(CiConfig(), description="GitHub Actions OIDC roles (`<env>-ci`, optional).")

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_is_string(cls, value: object) -> object:
        # YAML reads 012345678901 as a number and drops the leading zero: insist on a quoted string.
        if isinstance(value, int):
            raise ValueError("must be a quoted 12-digit string, e.g. '123456789012'")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> EnvironmentConfig:
        vpc = ipaddress.IPv4Network(self.network.cidr)
        services = ipaddress.IPv4Network(self.cluster.service_cidr)
        if vpc.overlaps(services):
            raise ValueError(
                f"cluster.service_cidr: {services} overlaps network.cidr {vpc}; pick a range outside the VPC"
            )
        for zone in self.network.availability_zones or ():
            if not zone.startswith(self.region) or len(zone) != len(self.region) + 1:
                raise ValueError(
                    f"network.availability_zones: {zone!r} is not a zone of {self.region} (e.g. {self.region}a)"
                )
        return self

    @model_validator(mode="after")
    def _name_lengths(self) -> EnvironmentConfig:
        longest = self.bucket_name("access-logs")
        if len(longest) > 63:
            raise ValueError(
                f"project + name make bucket names too long ({longest!r} has {len(longest)} characters, S3 allows 63)"
            )
        return self

    @model_validator(mode="after")
    def _production_rules(self) -> EnvironmentConfig:
        if not self.production:
            return self
        if self.edge.access_control == "none":
            raise ValueError(
                "edge.access_control: 'none' is not allowed in production; use 'ip_allowlist' or 'cognito'"
            )
        if self.gpu.ami_alias.endswith("@latest"):
            raise ValueError(
                "gpu.ami_alias: '@latest' is not allowed in production; pin a version like 'al2023@v20251108'"
            )
        if self.image.digest is None and self.image.tag == "latest":
            raise ValueError("image.tag: 'latest' is not allowed in production; pin a tag or set image.digest")
        for name, bucket in (
            ("models", self.storage.models),
            ("inputs", self.storage.inputs),
            ("outputs", self.storage.outputs),
        ):
            if bucket.force_destroy:
                raise ValueError(f"storage.{name}.force_destroy: not allowed in production")
        return self

    # Derived names: one place, so no stack re-derives them differently.
    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"{self.project}-{self.name}"

    @property
    def ecr_repository(self) -> str:
        """Name of the ECR repository for the ComfyUI image (created by <env>-storage)."""
        return f"{self.project}-{self.name}/{self.image.repository}"

    @property
    def state_bucket(self) -> str:
        return self.state.bucket or f"{self.project}-tfstate-{self.account_id}-{self.region}"

    @property
    def state_region(self) -> str:
        return self.state.region or self.region

    def bucket_name(self, purpose: str) -> str:
        """Globally unique bucket name: project, environment, purpose, account and region."""
        return f"{self.project}-{self.name}-{purpose}-{self.account_id}-{self.region}"
