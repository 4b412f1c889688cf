"""Helpers to read synthesized Terraform JSON (cdktf.out/stacks/<id>/cdk.tf.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Synth:
    outdir: Path
    stacks: dict[str, dict]

    def stack(self, stack_id: str) -> dict:
        return self.stacks[stack_id]

    def stack_ids(self, component: str) -> list[str]:
        return sorted(sid for sid in self.stacks if sid.split("-", 1)[1] == component)


def load_synth(outdir: Path) -> Synth:
    stacks = {}
    for path in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        stacks[path.parent.name] = json.loads(path.read_text())
    return Synth(outdir=outdir, stacks=stacks)


def _strip(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "//"}


def resources(stack: dict, rtype: str) -> dict[str, dict]:
    return {name: _strip(cfg) for name, cfg in stack.get("resource", {}).get(rtype, {}).items()}


def data_sources(stack: dict, dtype: str) -> dict[str, dict]:
    return {name: _strip(cfg) for name, cfg in stack.get("data", {}).get(dtype, {}).items()}


def one(stack: dict, rtype: str) -> dict:
    found = resources(stack, rtype)
    assert len(found) == 1, f"expected exactly one {rtype}, found {sorted(found)}"
    return next(iter(found.values()))


def path_of(config_with_meta: dict) -> str:
    return config_with_meta.get("//", {}).get("metadata", {}).get("path", "")


def by_path(stack: dict, rtype: str, suffix: str) -> dict:
    """The resource of type `rtype` whose construct path ends with `suffix`."""
    matches = [
        _strip(cfg) for cfg in stack.get("resource", {}).get(rtype, {}).values() if path_of(cfg).endswith(suffix)
    ]
    assert len(matches) == 1, f"{rtype} ending in {suffix!r}: found {len(matches)}"
    return matches[0]


def ref(rtype: str, name: str, attribute: str = "id") -> str:
    return f"${{{rtype}.{name}.{attribute}}}"


POLICY_ATTRIBUTES = ("policy", "assume_role_policy")


def policy_documents(stack: dict) -> Iterator[tuple[str, dict]]:
    """Every IAM-style JSON policy document in a stack: (`type.name.attribute`, parsed document)."""
    for section in ("resource", "data"):
        for rtype, items in stack.get(section, {}).items():
            for name, cfg in items.items():
                for attribute in POLICY_ATTRIBUTES:
                    value = cfg.get(attribute)
                    if isinstance(value, str) and value.lstrip().startswith("{"):
                        document = json.loads(value)
                        if "Statement" in document:
                            yield f"{rtype}.{name}.{attribute}", document
