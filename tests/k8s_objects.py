"""Turn synthesized typed Kubernetes resources (kubernetes_deployment_v1, ...) back into the
Kubernetes objects the provider sends to the API server, so the tests validate what is actually
synthesized against the real schemas.

The conversion is guided by the Kubernetes JSON schema of the kind: Terraform's snake_case block
names become the schema's camelCase fields (`volume_mount` -> `volumeMounts`), single-item blocks
become objects, and strings become integers where the schema (and the provider) says so. A key that
maps to no field of the schema is an error, never silently dropped.

Also: strict validation of CRD objects (kubernetes_manifest) against a CRD's openAPIV3Schema.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from tests.tf import resources

KINDS = {
    "kubernetes_namespace_v1": ("v1", "Namespace"),
    "kubernetes_service_account_v1": ("v1", "ServiceAccount"),
    "kubernetes_config_map_v1": ("v1", "ConfigMap"),
    "kubernetes_deployment_v1": ("apps/v1", "Deployment"),
    "kubernetes_service_v1": ("v1", "Service"),
    "kubernetes_pod_disruption_budget_v1": ("policy/v1", "PodDisruptionBudget"),
    "kubernetes_network_policy_v1": ("networking.k8s.io/v1", "NetworkPolicy"),
    "kubernetes_persistent_volume_v1": ("v1", "PersistentVolume"),
    "kubernetes_persistent_volume_claim_v1": ("v1", "PersistentVolumeClaim"),
}
# Resource arguments that configure Terraform or the provider, not the object.
TERRAFORM_ONLY = {
    "wait_for_rollout",
    "wait_until_bound",
    "wait_for_default_service_account",
    "timeouts",
    "depends_on",
    "provider",
    "lifecycle",
    "count",
    "for_each",
}
# Blocks the provider flattens into their parent (PersistentVolume's source fields live in spec).
FLATTEN = {"persistent_volume_source"}
# Fields the provider reads as octal strings ("0555").
OCTAL = {"default_mode", "mode"}
_LOCAL_REF = re.compile(r"^\$\{(kubernetes_[a-z0-9_]+)\.([^.}]+)\.metadata\[0\]\.(name|namespace)\}$")


class ConversionError(ValueError):
    pass


def schema_version(cluster_version: str) -> str:
    """The newest schema version kubernetes-validate ships that is not newer than the cluster."""
    wanted = tuple(int(part) for part in cluster_version.split(".")[:2])
    shipped = [tuple(int(p) for p in v.split(".")[:2]) for v in kv_utils.all_versions()]
    best = max(v for v in shipped if v <= wanted)
    return f"{best[0]}.{best[1]}"


@cache
def _schemas(version: str) -> tuple[dict, dict]:
    base = Path(kv_utils.__file__).parent / "kubernetes-json-schema" / f"v{version}.0-local-strict"
    definitions = json.loads((base / "_definitions.json").read_text())["$defs"]
    return base, definitions


def _kind_schema(version: str, api_version: str, kind: str) -> dict:
    base, _ = _schemas(version)
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return json.loads((base / f"{kind.lower()}-{group}.json").read_text())


def _resolve(schema: dict, version: str) -> dict:
    _, definitions = _schemas(version)
    while "$ref" in schema:
        schema = definitions[schema["$ref"].split("#/$defs/", 1)[1]]
    return schema


def _types(schema: dict) -> set[str]:
    kinds = schema.get("type", [])
    return {kinds} if isinstance(kinds, str) else set(kinds)


def _is_int_or_string(schema: dict) -> bool:
    return schema.get("format") == "int-or-string" or (
        "oneOf" in schema and {"integer"} <= set().union(*(_types(option) for option in schema["oneOf"]))
    )


def _camel(key: str) -> str:
    head, *rest = key.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _field(key: str, properties: dict) -> str:
    camel = _camel(key)
    for candidate in (camel, camel + "s", camel + "es"):
        if candidate in properties:
            return candidate
    raise ConversionError(f"{key!r} has no counterpart among {sorted(properties)}")


def _convert(value, schema: dict, version: str, key: str, path: str):
    raw = schema
    schema = _resolve(schema, version)
    if ("$ref" in raw and raw["$ref"].endswith("IntOrString")) or _is_int_or_string(schema):
        # The provider parses int-or-string fields with intstr.Parse: "8188" is a number.
        return int(value) if isinstance(value, str) and value.isdigit() else value
    types = _types(schema)
    if "object" in types and "properties" in schema:
        if isinstance(value, list):
            if len(value) != 1:
                raise ConversionError(f"{path}: a list of {len(value)} where one object belongs")
            value = value[0]
        return _convert_object(value, schema, version, path)
    if "object" in types and isinstance(schema.get("additionalProperties"), dict):
        return {k: _convert(v, schema["additionalProperties"], version, k, f"{path}.{k}") for k, v in value.items()}
    if "array" in types:
        items = schema.get("items", {})
        return [_convert(item, items, version, key, f"{path}[{i}]") for i, item in enumerate(value)]
    if "integer" in types and isinstance(value, str):
        return int(value, 8) if key in OCTAL else int(value)
    if "boolean" in types and isinstance(value, str):
        return value == "true"
    return value


def _convert_object(value: dict, schema: dict, version: str, path: str) -> dict:
    properties = schema.get("properties", {})
    result: dict = {}
    for key, item in value.items():
        if key in FLATTEN:
            flat = item[0] if isinstance(item, list) else item
            result.update(_convert_object(flat, schema, version, path))
            continue
        name = _field(key, properties)
        result[name] = _convert(item, properties[name], version, key, f"{path}.{name}")
    return result


def _resolve_local_refs(value, stack: dict):
    """`${kubernetes_x.y.metadata[0].name}` -> that resource's name (references inside one stack)."""
    if isinstance(value, dict):
        return {k: _resolve_local_refs(v, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_local_refs(v, stack) for v in value]
    if isinstance(value, str) and (match := _LOCAL_REF.match(value)):
        rtype, name, field = match.groups()
        target = stack["resource"][rtype][name]["metadata"]
        return _resolve_local_refs(target[field] if isinstance(target, dict) else target[0][field], stack)
    return value


def to_object(rtype: str, config: dict, version: str, stack: dict | None = None) -> dict:
    api_version, kind = KINDS[rtype]
    config = {k: v for k, v in config.items() if k not in TERRAFORM_ONLY and k != "//"}
    if stack is not None:
        config = _resolve_local_refs(config, stack)
    schema = _kind_schema(version, api_version, kind)
    body = _convert_object(config, schema, version, kind)
    return {"apiVersion": api_version, "kind": kind, **body}


def stack_objects(stack: dict, version: str) -> list[dict]:
    """Every typed Kubernetes resource of a stack as a Kubernetes object."""
    objects = []
    for rtype in KINDS:
        for config in resources(stack, rtype).values():
            objects.append(to_object(rtype, config, version, stack))
    return objects


def validate_core(obj: dict, version: str) -> str:
    """kubernetes-validate, strict (unknown fields are errors). Returns the schema version used."""
    return kubernetes_validate.validate(obj, version, strict=True)


# --- CRDs ---------------------------------------------------------------------------------------


def load_crd_schema(path: Path, version: str = "v1") -> dict:
    crd = yaml.safe_load(path.read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return entry["schema"]["openAPIV3Schema"]
    raise KeyError(f"{path.name} has no version {version}")


def strict(schema: dict) -> dict:
    """Reject unknown fields, as `kubectl --validate=strict` does (the API server would prune them)."""
    schema = copy.deepcopy(schema)

    def walk(node: dict) -> None:
        if not isinstance(node, dict):
            return
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for child in node.get("properties", {}).values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])

    walk(schema)
    # metadata is declared as a bare object in CRDs; it is checked separately.
    return schema


def cel_rules(schema: dict, path: str = "") -> list[tuple[str, str]]:
    """Every x-kubernetes-validations rule in a CRD schema as (json path, rule)."""
    found = [(path, rule["rule"]) for rule in schema.get("x-kubernetes-validations", [])]
    for key, child in schema.get("properties", {}).items():
        found += cel_rules(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        found += cel_rules(schema["items"], f"{path}[]")
    return found
