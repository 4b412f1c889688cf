"""Load and validate the environment files in config/.

Every mistake becomes a ConfigError whose message is ONE line naming the file, the field and what
is allowed; main.py prints it and exits 2. Nothing here raises a traceback at a user.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from config.schema import EnvironmentConfig

CONFIG_DIR = Path(__file__).resolve().parent
ENVIRONMENTS_VARIABLE = "CDKTF_ENVIRONMENTS"
# Another folder of environment files instead of config/ (benchmarks, tests, forks with private configs).
CONFIG_DIR_VARIABLE = "COMFYUI_CONFIG_DIR"


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_VARIABLE)
    return Path(override) if override else CONFIG_DIR


__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "EnvironmentConfig",
    "config_dir",
    "load_environment",
    "load_environments",
    "selected_names",
]


class ConfigError(Exception):
    """A configuration mistake, already phrased for the user as one line."""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _field_names(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Allowed keys of the model found at `loc` (for 'unknown key' errors)."""
    current: object = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        # unwrap Optional[...] / list[...]
        for arg in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
                break
        else:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def _one_line(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        allowed = _field_names(EnvironmentConfig, loc[:-1])
        message = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    elif first["type"] == "missing":
        message = "required field is missing"
    elif (
        "input" in first
        and first["type"] not in ("value_error", "assertion_error")
        and not isinstance(first["input"], (dict, list))
    ):
        message = f"{message} (got {first['input']!r})"
    field = ".".join(str(part) for part in loc)
    more = len(err.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    where = f"{_display(path)}: {field}: " if field else f"{_display(path)}: "
    return (where + message + suffix).replace("\n", " ")


def load_environment(path: Path) -> EnvironmentConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{_display(path)}: cannot read file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{_display(path)}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{_display(path)}: {line}unreadable YAML ({problem})") from None
    if data is None:
        raise ConfigError(f"{_display(path)}: file is empty; it needs at least name, account_id and region")
    if not isinstance(data, dict):
        raise ConfigError(f"{_display(path)}: top level must be a mapping of keys, got {type(data).__name__}")
    try:
        return EnvironmentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(path, err)) from None


def selected_names(context_value: object = None) -> tuple[list[str] | None, str]:
    """Environments asked for by CDKTF_ENVIRONMENTS (wins) or cdktf context `environments`, and where from."""
    raw = os.environ.get(ENVIRONMENTS_VARIABLE)
    source = ENVIRONMENTS_VARIABLE
    if raw is None and context_value is not None:
        raw = ",".join(context_value) if isinstance(context_value, list) else str(context_value)
        source = "cdktf context 'environments'"
    if raw is None or not raw.strip():
        return None, source
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"{source}: no environment names in {raw!r}")
    return names, source


def load_environments(
    directory: Path | None = None, names: Iterable[str] | None = None, source: str = ENVIRONMENTS_VARIABLE
) -> list[EnvironmentConfig]:
    """All environments in the config folder (sorted by file name), or only `names` in the order given."""
    directory = directory or config_dir()
    if not directory.is_dir():
        raise ConfigError(f"{_display(directory)}: config folder does not exist")
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise ConfigError(f"{_display(directory)}: no environment files (*.yaml)")
    environments: dict[str, EnvironmentConfig] = {}
    origin: dict[str, Path] = {}
    for path in files:
        env = load_environment(path)
        if env.name in environments:
            raise ConfigError(
                f"{_display(path)}: name: environment {env.name!r} is already defined in {_display(origin[env.name])}"
            )
        environments[env.name] = env
        origin[env.name] = path
    if names is None:
        return list(environments.values())
    chosen = []
    for name in names:
        if name not in environments:
            raise ConfigError(
                f"{source}: unknown environment {name!r}; defined in {_display(directory)}: "
                f"{', '.join(sorted(environments))}"
            )
        if environments[name] not in chosen:
            chosen.append(environments[name])
    return chosen
