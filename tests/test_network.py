"""<env>-network: subnet math, gateways, routes, S3 endpoint, flow logs, discovery tags."""

from __future__ import annotations

import ipaddress

import pytest

from modules.subnets import plan_subnets
from tests.tf import data_sources, one, resources


@pytest.mark.parametrize("az_count", [2, 3, 4])
@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/20", "192.168.0.0/22"])
def test_subnet_plan(cidr, az_count):
    plan = plan_subnets(cidr, az_count)
    vpc = ipaddress.IPv4Network(cidr)
    subnets = [ipaddress.IPv4Network(s) for s in plan.private + plan.public]
    assert len(plan.private) == len(plan.public) == az_count
    for index, subnet in enumerate(subnets):
        assert subnet.subnet_of(vpc)
        for other in subnets[index + 1 :]:
            assert not subnet.overlaps(other)
    private = ipaddress.IPv4Network(plan.private[0])
    public = ipaddress.IPv4Network(plan.public[0])
    # Pods take their IPs from private subnets: those are 8x the public ones.
    assert private.num_addresses == 8 * public.num_addresses
    # Private subnets fill at most the first half, public start in the second half.
    assert all(
        ipaddress.IPv4Network(s).network_address < vpc.network_address + vpc.num_addresses // 2 for s in plan.private
    )
    assert all(
        ipaddress.IPv4Network(s).network_address >= vpc.network_address + vpc.num_addresses // 2 for s in plan.public
    )


def test_subnet_plan_known_values():
    plan = plan_subnets("10.0.0.0/16", 3)
    assert plan.private == ("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19")
    assert plan.public == ("10.0.128.0/22", "10.0.132.0/22", "10.0.136.0/22")


def test_subnet_plan_rejects_too_small():
    with pytest.raises(ValueError, match="too small"):
        plan_subnets("10.0.0.0/24", 3)


def test_vpc_and_subnets(synth, environments):
    for name, env in environments.items():
        stack = synth.stack(f"{name}-network")
        vpc = one(stack, "aws_vpc")
        assert vpc["cidr_block"] == env.network.cidr
        assert vpc["enable_dns_hostnames"] is True and vpc["enable_dns_support"] is True
        subnets = resources(stack, "aws_subnet")
        plan = plan_subnets(env.network.cidr, env.network.az_count)
        public = {s["cidr_block"]: s for s in subnets.values() if "kubernetes.io/role/elb" in s["tags"]}
        private = {s["cidr_block"]: s for s in subnets.values() if "kubernetes.io/role/internal-elb" in s["tags"]}
        assert sorted(public) == sorted(plan.public)
        assert sorted(private) == sorted(plan.private)
        for subnet in private.values():
            assert subnet["tags"]["karpenter.sh/discovery"] == env.cluster_name
            assert subnet["tags"]["kubernetes.io/role/internal-elb"] == "1"
        for subnet in public.values():
            assert subnet["map_public_ip_on_launch"] is False
            assert "karpenter.sh/discovery" not in subnet["tags"]
        # One subnet of each kind per AZ, AZs from the region's available zones.
        zones = [s["availability_zone"] for s in private.values()]
        assert len(set(zones)) == env.network.az_count
        assert data_sources(stack, "aws_availability_zones")


def test_nat_gateways_follow_config(synth, environments):
    for name, env in environments.items():
        stack = synth.stack(f"{name}-network")
        nats = resources(stack, "aws_nat_gateway")
        expected = env.network.az_count if env.network.nat == "per_az" else 1
        assert len(nats) == expected == len(resources(stack, "aws_eip"))
        private_defaults = [route for route in resources(stack, "aws_route").values() if "nat_gateway_id" in route]
        assert len(private_defaults) == env.network.az_count
        assert len({route["nat_gateway_id"] for route in private_defaults}) == expected
        assert all(route["destination_cidr_block"] == "0.0.0.0/0" for route in private_defaults)
        igw_routes = [route for route in resources(stack, "aws_route").values() if "gateway_id" in route]
        assert len(igw_routes) == 1


def test_both_nat_modes_are_exercised(environments):
    assert {env.network.nat for env in environments.values()} == {"single", "per_az"}


def test_s3_gateway_endpoint_on_private_route_tables(synth, environments):
    for name, env in environments.items():
        stack = synth.stack(f"{name}-network")
        endpoint = one(stack, "aws_vpc_endpoint")
        assert endpoint["vpc_endpoint_type"] == "Gateway"
        assert endpoint["service_name"] == f"com.amazonaws.{env.region}.s3"
        tables = resources(stack, "aws_route_table")
        private_tables = {
            f"${{aws_route_table.{key}.id}}" for key, t in tables.items() if "private" in t["tags"]["Name"]
        }
        assert set(endpoint["route_table_ids"]) == private_tables
        assert len(private_tables) == env.network.az_count


def test_flow_logs_to_encrypted_log_group(synth, environments):
    for name, env in environments.items():
        stack = synth.stack(f"{name}-network")
        flow = one(stack, "aws_flow_log")
        assert flow["traffic_type"] == "ALL"
        assert flow["log_destination_type"] == "cloud-watch-logs"
        group_name, group = next(iter(resources(stack, "aws_cloudwatch_log_group").items()))
        assert flow["log_destination"] == f"${{aws_cloudwatch_log_group.{group_name}.arn}}"
        assert group["retention_in_days"] == env.network.flow_logs_retention_days
        assert group["kms_key_id"].startswith("${aws_kms_key.")
        key = one(stack, "aws_kms_key")
        assert key["enable_key_rotation"] is True


def test_default_security_group_has_no_rules(synth, environments):
    for name in environments:
        group = one(synth.stack(f"{name}-network"), "aws_default_security_group")
        assert "ingress" not in group and "egress" not in group


def test_network_outputs(synth, environments):
    for name in environments:
        outputs = synth.stack(f"{name}-network")["output"]
        assert {"vpc_id", "vpc_cidr", "private_subnet_ids", "public_subnet_ids"} <= set(outputs)
