"""Subnet plan for a VPC: pure arithmetic, no cdktf imports (cheap to test and to reuse).

The first half of the VPC is split into private subnets (EKS pods take one IP each from these),
the start of the second half into public subnets eight times smaller (NAT gateways and nothing
else). The rest of the second half stays free for later use.

    /16, 3 AZs -> private /19 x3 (8,190 IPs each), public /22 x3 (1,022 IPs each)
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetPlan:
    private: tuple[str, ...]
    public: tuple[str, ...]


def plan_subnets(cidr: str, az_count: int) -> SubnetPlan:
    vpc = ipaddress.IPv4Network(cidr, strict=True)
    if az_count < 1:
        raise ValueError("az_count must be at least 1")
    private_bits = max(1, math.ceil(math.log2(az_count))) + 1
    public_bits = private_bits + 3
    if vpc.prefixlen + public_bits > 28:
        raise ValueError(f"{cidr} is too small for {az_count} AZs (public subnets would be smaller than /28)")
    private = list(vpc.subnets(new_prefix=vpc.prefixlen + private_bits))[:az_count]
    second_half = list(vpc.subnets(new_prefix=vpc.prefixlen + 1))[1]
    public = list(second_half.subnets(new_prefix=vpc.prefixlen + public_bits))[:az_count]
    return SubnetPlan(private=tuple(map(str, private)), public=tuple(map(str, public)))
