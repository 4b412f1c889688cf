"""<env>-network: the VPC everything else runs in."""

from __future__ import annotations

from constructs import Construct

from config.schema import EnvironmentConfig
from modules.kms import KmsKey, KmsKeySettings
from modules.vpc import Vpc, VpcSettings
from stacks.base import EnvironmentStack


class NetworkStack(EnvironmentStack):
    component = "network"

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        super().__init__(scope, env)
        logs_key = KmsKey(
            self,
            "logs-key",
            KmsKeySettings(
                alias=f"{env.project}-{env.name}-network-logs",
                description="VPC flow logs encryption",
                account_id=env.account_id,
                region=env.region,
                allow_cloudwatch_logs=True,
            ),
        )
        network = env.network
        self.vpc = Vpc(
            self,
            "vpc",
            VpcSettings(
                name=f"{env.project}-{env.name}",
                cidr=network.cidr,
                az_count=network.az_count,
                availability_zones=network.availability_zones,
                nat_per_az=network.nat == "per_az",
                cluster_name=env.cluster_name,
                account_id=env.account_id,
                region=env.region,
                flow_logs_retention_days=network.flow_logs_retention_days,
                flow_logs_kms_key_arn=logs_key.arn,
            ),
        )
        self.output("vpc_id", self.vpc.vpc.id, "VPC id")
        self.output("vpc_cidr", self.vpc.vpc.cidr_block, "VPC CIDR")
        self.output("private_subnet_ids", self.vpc.private_subnet_ids, "Private subnets (nodes, pods, internal ALB)")
        self.output("public_subnet_ids", self.vpc.public_subnet_ids, "Public subnets (NAT gateways only)")
