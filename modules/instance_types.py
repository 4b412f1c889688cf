"""EC2 instance type facts the config and the node group need. Pure Python (no cdktf): cheap to test."""

from __future__ import annotations

import re

# Graviton families carry a "g" after the generation digit (m7g, c7gn, r6gd, t4g, g5g, hpc7g); a1 is the first one.
_ARM_FAMILY = re.compile(r"^([a-z]+[0-9]+[a-z]*g[a-z]*|a1)$")


def architecture(instance_type: str) -> str:
    """ "arm64" or "x86_64" for an instance type like "t3a.xlarge"."""
    family = instance_type.split(".", 1)[0]
    return "arm64" if _ARM_FAMILY.match(family) else "x86_64"


def al2023_ami_type(instance_types: list[str] | tuple[str, ...]) -> str:
    """The EKS managed node group AMI type (AL2023, CPU) for one architecture of instance types."""
    architectures = {architecture(instance_type) for instance_type in instance_types}
    if len(architectures) != 1:
        raise ValueError(f"instance types mix architectures ({', '.join(sorted(architectures))})")
    return "AL2023_ARM_64_STANDARD" if architectures == {"arm64"} else "AL2023_x86_64_STANDARD"
