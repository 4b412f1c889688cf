"""Render the configuration reference (docs/configuration.md) from the schema itself.

    pipenv run python -m config.reference > docs/configuration.md

A test fails when the committed file differs from what this prints, so the reference never drifts
from the schema.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from config.schema import EnvironmentConfig

HEADER = """# Configuration reference

One YAML file per environment in `config/` (`dev.yaml`, `prod.yaml` ship as examples). Every key
below is optional unless marked **required**; unknown keys are errors. A mistake stops `cdktf synth`
with one line naming the file and the field, for example:

    config error: config/dev.yaml: network.az_count: Input should be greater than or equal to 2 (got 1)

Which environments synthesize: every file in `config/`, or the names in `CDKTF_ENVIRONMENTS=dev,prod`
(or the cdktf context key `environments`). `COMFYUI_CONFIG_DIR` points at another folder of files.

Production (`production: true`, the default) also refuses: `edge.access_control: none`,
`gpu.ami_alias: al2023@latest`, `image.tag: latest` without a digest, and `force_destroy` on buckets.

This file is generated from `config/schema.py`: `pipenv run python -m config.reference > docs/configuration.md`.
"""


def _type_name(annotation: object) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        parts = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        optional = type(None) in get_args(annotation)
        return " \\| ".join(parts) + (" \\| null" if optional else "")
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (list, typing.List):  # noqa: UP006
        return f"list of {_type_name(get_args(annotation)[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _limits(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MinLen) and item.min_length:
            parts.append(f"at least {item.min_length}")
    return ", ".join(parts)


def _default(field: FieldInfo, value: object) -> str:
    if field.is_required():
        return "**required**"
    if value is PydanticUndefined or isinstance(value, BaseModel):
        return ""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    return f"`{value}`"


def _field_default(field: FieldInfo) -> object:
    if field.is_required():
        return PydanticUndefined
    return field.default_factory() if field.default_factory is not None else field.default


def _section(model: type[BaseModel], path: str, out: list[str], defaults: BaseModel | None = None) -> None:
    """One table per section; `defaults` is the section's default instance (e.g. storage.models is
    versioned by default although BucketConfig is not)."""
    title = f"`{path}`" if path else "Top level"
    out.append(f"\n## {title}\n")
    doc = (model.__doc__ or "").strip()
    if doc and model is not EnvironmentConfig:
        out.append(doc.splitlines()[0] + "\n")
    out.append("| key | type | default | allowed | description |")
    out.append("|---|---|---|---|---|")
    nested = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = [arg for arg in (annotation, *get_args(annotation)) if isinstance(arg, type)]
        section = next((arg for arg in inner if issubclass(arg, BaseModel)), None)
        key = f"{path}.{name}" if path else name
        description = (field.description or "").replace("|", "\\|")
        value = getattr(defaults, name) if defaults is not None else _field_default(field)
        if section is not None:
            nested.append((section, key, value if isinstance(value, BaseModel) else None))
            out.append(f"| `{name}` | section | | | {description} See [`{key}`](#{key.replace('.', '')}). |")
        else:
            out.append(
                f"| `{name}` | {_type_name(annotation)} | {_default(field, value)} | {_limits(field)} | {description} |"
            )
    for section, key, section_defaults in nested:
        _section(section, key, out, section_defaults)


def render() -> str:
    out = [HEADER.rstrip("\n")]
    _section(EnvironmentConfig, "", out)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
