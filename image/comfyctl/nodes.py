"""image/custom_nodes.yaml: the custom nodes baked into the image, each pinned to a commit.

    nodes:
      - name: ComfyUI-VideoHelperSuite            # folder under ComfyUI/custom_nodes
        repository: https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite
        commit: 8923bd836bdab8b7bbdf4ed104b7d045e70c66e2   # full 40-character SHA
        install: requirements                     # requirements (default) | install.py | none
        requirements: requirements.txt            # file inside the node (default requirements.txt)
        pip: [cupy-cuda12x==13.6.0]               # extra packages, each pinned with ==
        system_packages: [libgl1]                 # Debian packages the node needs at run time

Every mistake is a CliError of one line naming the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from image.comfyctl.errors import CliError
from image.comfyctl.paths import display

INSTALL_STEPS = ("requirements", "install.py", "none")
NODE_KEYS = ("name", "repository", "commit", "install", "requirements", "pip", "system_packages")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+?(\.git)?/?$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    repository: str
    commit: str
    install: str = "requirements"
    requirements: str = "requirements.txt"
    pip: tuple[str, ...] = ()
    system_packages: tuple[str, ...] = ()

    def manifest(self) -> dict:
        """The entry in nodes.json that image/install_nodes.py reads inside the build."""
        return {
            "name": self.name,
            "repository": self.repository,
            "commit": self.commit,
            "install": self.install,
            "requirements": self.requirements,
            "pip": list(self.pip),
        }


@dataclass(frozen=True)
class NodeList:
    path: Path
    nodes: tuple[NodeSpec, ...] = field(default_factory=tuple)

    @property
    def system_packages(self) -> list[str]:
        return sorted({package for node in self.nodes for package in node.system_packages})

    def by_name(self, name: str) -> NodeSpec | None:
        for node in self.nodes:
            if node.name.lower() == name.lower():
                return node
        return None


def _check_repository(value: str) -> str | None:
    """Why `value` is not an https git URL we accept, or None."""
    parts = urlsplit(value)
    if parts.scheme != "https":
        return f"{value!r} is not an https URL (e.g. https://github.com/owner/repo)"
    if "@" in parts.netloc:
        return f"{value!r} carries credentials; use a public https URL"
    if not _HOST.match(parts.netloc) or parts.query or parts.fragment or not _URL_PATH.match(parts.path):
        return f"{value!r} is not a repository URL like https://github.com/owner/repo"
    return None


def _check_commit(value: object) -> str | None:
    if not isinstance(value, str):
        return f"{value!r} is not a commit SHA; pin the full 40-character commit"
    if _COMMIT.match(value):
        return None
    if _HEX.match(value) and len(value) < 40:
        return f"{value!r} is a short SHA; pin all 40 characters of the commit"
    if _HEX.match(value) and len(value) == 40:
        return f"{value!r}: write the SHA in lower case"
    return f"{value!r} is a branch or tag name, not a commit; pin the full 40-character commit SHA"


def _check_relative(value: str) -> str | None:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        return f"{value!r} must be a path inside the node's folder (no '..', not absolute)"
    return None


def _string_list(where: str, value: object, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise CliError(f"{where}: must be a list, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise CliError(f"{where}: {item!r} is not {what}")
    if len(set(value)) != len(value):
        raise CliError(f"{where}: lists an entry twice")
    return tuple(value)


def parse_nodes(data: object, source: str) -> tuple[NodeSpec, ...]:
    if data is None:
        raise CliError(f"{source}: file is empty; it needs a `nodes:` list (it may be `nodes: []`)")
    if not isinstance(data, dict):
        raise CliError(f"{source}: top level must be a mapping with a `nodes:` list")
    unknown = sorted(set(data) - {"nodes"})
    if unknown:
        raise CliError(f"{source}: {unknown[0]}: unknown key; allowed keys: nodes")
    entries = data.get("nodes")
    if not isinstance(entries, list):
        raise CliError(f"{source}: nodes: must be a list of custom nodes")
    specs: list[NodeSpec] = []
    seen_names: dict[str, int] = {}
    seen_repos: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{source}: nodes[{index}]"
        if not isinstance(entry, dict):
            raise CliError(f"{where}: must be a mapping with name, repository and commit")
        if isinstance(entry.get("name"), str):
            where = f"{where} ({entry['name']})"
        for key in entry:
            if key not in NODE_KEYS:
                raise CliError(f"{where}.{key}: unknown key; allowed keys: {', '.join(NODE_KEYS)}")
        for key in ("name", "repository", "commit"):
            if entry.get(key) in (None, ""):
                raise CliError(f"{where}.{key}: required field is missing")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise CliError(f"{where}.name: {name!r} is not a folder name (letters, digits, '.', '_', '-')")
        if name.lower() in seen_names:
            raise CliError(f"{where}.name: duplicate name {name!r} (also nodes[{seen_names[name.lower()]}])")
        seen_names[name.lower()] = index
        repository = entry["repository"]
        problem = _check_repository(repository) if isinstance(repository, str) else f"{repository!r} is not a URL"
        if problem:
            raise CliError(f"{where}.repository: {problem}")
        repo_key = repository.lower().removesuffix("/").removesuffix(".git")
        if repo_key in seen_repos:
            raise CliError(f"{where}.repository: duplicate repository (also nodes[{seen_repos[repo_key]}])")
        seen_repos[repo_key] = index
        problem = _check_commit(entry["commit"])
        if problem:
            raise CliError(f"{where}.commit: {problem}")
        install = entry.get("install", "requirements")
        if install not in INSTALL_STEPS:
            raise CliError(f"{where}.install: {install!r} is not one of {', '.join(INSTALL_STEPS)}")
        requirements = entry.get("requirements", "requirements.txt")
        problem = _check_relative(requirements) if isinstance(requirements, str) else "must be a file name"
        if problem:
            raise CliError(f"{where}.requirements: {problem}")
        if "requirements" in entry and install != "requirements":
            raise CliError(f"{where}.requirements: only used with `install: requirements` (install is {install!r})")
        pins = _string_list(f"{where}.pip", entry.get("pip", []), _PIN, "a pinned package like 'name==1.2.3'")
        packages = _string_list(
            f"{where}.system_packages", entry.get("system_packages", []), _DEBIAN_PACKAGE, "a Debian package name"
        )
        specs.append(
            NodeSpec(
                name=name,
                repository=repository,
                commit=entry["commit"],
                install=install,
                requirements=requirements,
                pip=pins,
                system_packages=packages,
            )
        )
    return tuple(specs)


def load_nodes(path: Path) -> NodeList:
    source = display(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(f"{source}: cannot read file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise CliError(f"{source}: {line}unreadable YAML ({getattr(err, 'problem', None) or err})") from None
    return NodeList(path=Path(path), nodes=parse_nodes(data, source))
