"""Vpc: subnets over N AZs, internet and NAT gateways, routes, S3 gateway endpoint, flow logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import Fn
from cdktf_cdktf_provider_aws.data_aws_availability_zones import (
    DataAwsAvailabilityZones,
    DataAwsAvailabilityZonesFilter,
)
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc as AwsVpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from constructs import Construct

from modules.iam import Role, RoleSettings, policy_document, service_trust, statement
from modules.logs import LogGroupSettings, log_group
from modules.subnets import plan_subnets

# Tags the AWS Load Balancer Controller and Karpenter use to discover subnets.
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True)
class VpcSettings:
    name: str
    cidr: str
    az_count: int
    # Explicit zone names; None: the first `az_count` available zones of the region.
    availability_zones: Sequence[str] | None
    nat_per_az: bool
    # Subnets carry `karpenter.sh/discovery=<cluster_name>` so the cluster's nodes find them.
    cluster_name: str
    account_id: str
    region: str
    flow_logs_retention_days: int
    flow_logs_kms_key_arn: str


class Vpc(Construct):
    def __init__(self, scope: Construct, id_: str, settings: VpcSettings) -> None:
        super().__init__(scope, id_)
        plan = plan_subnets(settings.cidr, settings.az_count)
        if settings.availability_zones is not None:
            zones = list(settings.availability_zones)
        else:
            # A closed candidate set (zones a-f of the region): a zone AWS adds later never shifts
            # which zones the subnets use. Zones missing in this account are simply not returned.
            available = DataAwsAvailabilityZones(
                self,
                "zones",
                state="available",
                filter=[
                    DataAwsAvailabilityZonesFilter(name="opt-in-status", values=["opt-in-not-required"]),
                    DataAwsAvailabilityZonesFilter(
                        name="zone-name", values=[f"{settings.region}{letter}" for letter in "abcdef"]
                    ),
                ],
            )
            zones = [Fn.element(available.names, index) for index in range(settings.az_count)]

        self.vpc = AwsVpc(
            self,
            "vpc",
            cidr_block=settings.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": settings.name},
        )
        # Take over the default security group and leave it with no rules: nothing may use it.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, tags={"Name": f"{settings.name}-default-unused"})

        igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": settings.name})
        public_routes = RouteTable(self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{settings.name}-public"})
        Route(
            self,
            "public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
        )

        self.public_subnets: list[Subnet] = []
        self.private_subnets: list[Subnet] = []
        self.private_route_tables: list[RouteTable] = []
        nat_gateways: list[NatGateway] = []
        for index in range(settings.az_count):
            public = Subnet(
                self,
                f"public-{index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.public[index],
                availability_zone=zones[index],
                map_public_ip_on_launch=False,
                tags={"Name": f"{settings.name}-public-{index}", PUBLIC_ELB_TAG: "1"},
            )
            RouteTableAssociation(self, f"public-{index}-rta", subnet_id=public.id, route_table_id=public_routes.id)
            self.public_subnets.append(public)
            if settings.nat_per_az or index == 0:
                eip = Eip(self, f"nat-eip-{index}", domain="vpc", tags={"Name": f"{settings.name}-nat-{index}"})
                nat_gateways.append(
                    NatGateway(
                        self,
                        f"nat-{index}",
                        allocation_id=eip.id,
                        subnet_id=public.id,
                        tags={"Name": f"{settings.name}-nat-{index}"},
                        depends_on=[igw],
                    )
                )

        for index in range(settings.az_count):
            private = Subnet(
                self,
                f"private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.private[index],
                availability_zone=zones[index],
                tags={
                    "Name": f"{settings.name}-private-{index}",
                    INTERNAL_ELB_TAG: "1",
                    KARPENTER_DISCOVERY_TAG: settings.cluster_name,
                },
            )
            routes = RouteTable(
                self, f"private-rt-{index}", vpc_id=self.vpc.id, tags={"Name": f"{settings.name}-private-{index}"}
            )
            nat = nat_gateways[index] if settings.nat_per_az else nat_gateways[0]
            Route(
                self,
                f"private-{index}-default",
                route_table_id=routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
            )
            RouteTableAssociation(self, f"private-{index}-rta", subnet_id=private.id, route_table_id=routes.id)
            self.private_subnets.append(private)
            self.private_route_tables.append(routes)

        # Model and image traffic to S3 stays off the NAT gateways (cost and throughput).
        self.s3_endpoint = VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{settings.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in self.private_route_tables],
            tags={"Name": f"{settings.name}-s3"},
        )

        flow_log_group = log_group(
            self,
            "flow-logs",
            LogGroupSettings(
                name=f"/vpc/{settings.name}/flow-logs",
                retention_days=settings.flow_logs_retention_days,
                kms_key_arn=settings.flow_logs_kms_key_arn,
            ),
        )
        flow_role = Role(
            self,
            "flow-logs-role",
            RoleSettings(
                name=f"{settings.name}-vpc-flow-logs",
                description="VPC flow logs delivery to CloudWatch Logs",
                assume_role_policy=service_trust(
                    "vpc-flow-logs.amazonaws.com",
                    condition={"StringEquals": {"aws:SourceAccount": settings.account_id}},
                ),
                inline_policies={
                    "deliver-flow-logs": policy_document(
                        statement(
                            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            [flow_log_group.arn, f"{flow_log_group.arn}:*"],
                        )
                    )
                },
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
        )

    @property
    def private_subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.private_subnets]

    @property
    def public_subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.public_subnets]
