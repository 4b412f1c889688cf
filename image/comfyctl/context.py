"""Render the docker build context for image/Dockerfile into a folder.

git mode (default): Dockerfile, install_nodes.py, nodes.json (from custom_nodes.yaml) and
apt-packages.txt. The build clones ComfyUI and every node at its pinned commit.

local mode (`--local PATH`): the same files plus comfyui/, a copy of an existing ComfyUI folder
without its models, inputs, outputs and ComfyUI-Manager. Every custom node's requirements.txt is
installed in the build; conflicting pins between nodes (or with the image's torch) are refused here,
before the build, and pip's resolver plus `pip check` catch the rest inside it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from image.comfyctl.errors import CliError
from image.comfyctl.nodes import NodeList
from image.comfyctl.paths import DOCKERFILE, INSTALL_NODES, display

# Left out of a local ComfyUI folder. Models come from the models bucket (mounted at run time),
# input/output are the Deployment's S3 volumes; ComfyUI-Manager installs nodes at run time, which an
# immutable image must not do. The rest is bulk that the image does not need.
LOCAL_TOP_EXCLUDES = frozenset({"models", "input", "output", "temp", ".git", "venv", ".venv"})
MANAGER_NODES = frozenset({"comfyui-manager"})
EVERYWHERE_EXCLUDES = frozenset({"__pycache__", ".git", ".DS_Store"})
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
_ARG = re.compile(r"^ARG (TORCH_VERSION|TORCHVISION_VERSION|TORCHAUDIO_VERSION)=(\S+)$", re.MULTILINE)


@dataclass
class RenderedContext:
    path: Path
    mode: str
    nodes: list[dict]
    apt_packages: list[str]
    warnings: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def build_args(self) -> dict[str, str]:
        return {"COMFYUI_SOURCE": self.mode}


def torch_pins(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """torch/torchvision/torchaudio versions as pinned by the Dockerfile's ARG defaults."""
    found = {name.lower().replace("_version", ""): value for name, value in _ARG.findall(dockerfile.read_text())}
    return {package: found[package] for package in TORCH_PACKAGES if package in found}


def _write_common(dest: Path, manifest: dict, apt_packages: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DOCKERFILE, dest / "Dockerfile")
    shutil.copy2(INSTALL_NODES, dest / "install_nodes.py")
    (dest / "nodes.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (dest / "apt-packages.txt").write_text("".join(f"{package}\n" for package in apt_packages))


def render_git(dest: Path, nodes: NodeList, extra_apt: tuple[str, ...] = ()) -> RenderedContext:
    manifest = {"mode": "git", "nodes": [node.manifest() for node in nodes.nodes]}
    apt = sorted(set(nodes.system_packages) | set(extra_apt))
    _write_common(dest, manifest, apt)
    return RenderedContext(path=dest, mode="git", nodes=manifest["nodes"], apt_packages=apt)


# --- local mode -------------------------------------------------------------------------------


def _is_manager(name: str) -> bool:
    return name.lower() in MANAGER_NODES


def _ignore(root: Path):
    custom_nodes = root / "custom_nodes"

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skipped = {name for name in names if name in EVERYWHERE_EXCLUDES or name.endswith(".pyc")}
        if here == root:
            skipped |= {name for name in names if name in LOCAL_TOP_EXCLUDES}
        if here == custom_nodes:
            skipped |= {name for name in names if _is_manager(name)}
        return skipped

    return ignore


def _git_head(folder: Path) -> str | None:
    if not (folder / ".git").exists() or shutil.which("git") is None:
        return None
    result = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


@dataclass(frozen=True)
class Pin:
    name: str
    requirement: Requirement
    source: str


def read_requirements(path: Path, source: str) -> list[Pin]:
    """Requirements of one file that apply to the image (Linux, the image's Python)."""
    pins = []
    environment = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "python_version": "3.12"}
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue  # comments and pip options (-r, -i, -e): pip handles them in the build
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            if "://" in line or line.startswith(("git+", "./", "/")):
                continue  # direct references: the resolver in the build decides
            raise CliError(f"{source}:{number}: {line!r} is not a valid requirement") from None
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pins.append(Pin(canonicalize_name(requirement.name), requirement, f"{source}:{number}"))
    return pins


def _first_conflict(name: str, entries: list[Pin], fixed: str | None) -> str | None:
    exact: list[tuple[Version, Pin | None]] = [(Version(fixed), None)] if fixed else []
    for pin in entries:
        for spec in pin.requirement.specifier:
            if spec.operator == "==" and "*" not in spec.version:
                exact.append((Version(spec.version), pin))
    for version, owner in exact:
        for pin in entries:
            if pin is not owner and not pin.requirement.specifier.contains(version, prereleases=True):
                other = f"{owner.source}" if owner else "the image's PyTorch"
                return f"{pin.requirement} ({pin.source}) conflicts with {name}=={version} ({other})"
    return None


def find_conflicts(pins: list[Pin], fixed: dict[str, str]) -> list[str]:
    """Contradictions no resolver can satisfy: two exact pins, or a pin (or the image's torch) outside a range.

    Ranges that only together exclude every version are left to pip's resolver in the build.
    """
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    found = (_first_conflict(name, entries, fixed.get(name)) for name, entries in sorted(by_name.items()))
    return [conflict for conflict in found if conflict]


def render_local(
    dest: Path, folder: Path, nodes: NodeList | None = None, extra_apt: tuple[str, ...] = ()
) -> RenderedContext:
    folder = Path(folder).expanduser()
    shown = display(folder)
    if not folder.is_dir():
        raise CliError(f"--local {shown}: no such folder")
    if not (folder / "main.py").is_file() or not (folder / "requirements.txt").is_file():
        raise CliError(f"--local {shown}: not a ComfyUI folder (needs main.py and requirements.txt)")
    warnings: list[str] = []
    manifest_nodes = []
    pins = read_requirements(folder / "requirements.txt", f"{shown}/requirements.txt")
    custom_nodes = folder / "custom_nodes"
    apt = set(extra_apt)
    for node_dir in sorted(custom_nodes.iterdir() if custom_nodes.is_dir() else [], key=lambda p: p.name.lower()):
        if not node_dir.is_dir() or node_dir.name.startswith((".", "__")) or _is_manager(node_dir.name):
            continue
        requirements = node_dir / "requirements.txt"
        entry = {"name": node_dir.name, "install": "requirements" if requirements.is_file() else "none"}
        commit = _git_head(node_dir)
        if commit:
            entry["commit"] = commit
        manifest_nodes.append(entry)
        if requirements.is_file():
            pins += read_requirements(requirements, f"{shown}/custom_nodes/{node_dir.name}/requirements.txt")
        elif (node_dir / "install.py").is_file():
            warnings.append(
                f"{node_dir.name}: has install.py but no requirements.txt; install.py is not run in local mode, "
                "so list the packages it installs in a requirements.txt"
            )
        known = nodes.by_name(node_dir.name) if nodes else None
        if known:
            apt |= set(known.system_packages)
    conflicts = find_conflicts(pins, torch_pins())
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise CliError(f"requirements conflict: {conflicts[0]}{more}")
    _write_common(dest, {"mode": "local", "nodes": manifest_nodes}, sorted(apt))
    shutil.copytree(folder, dest / "comfyui", ignore=_ignore(folder), symlinks=True)
    files = sum(1 for path in (dest / "comfyui").rglob("*") if path.is_file())
    return RenderedContext(
        path=dest, mode="local", nodes=manifest_nodes, apt_packages=sorted(apt), warnings=warnings, files=files
    )
