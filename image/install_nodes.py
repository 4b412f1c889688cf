#!/usr/bin/env python3
"""Install the custom nodes listed in nodes.json into a ComfyUI folder. Runs inside `docker build`.

nodes.json is rendered by `comfyctl image build` from image/custom_nodes.yaml (mode "git") or from
the custom_nodes folder of a local ComfyUI (mode "local"). Standard library only.

1. git mode: fetch each node at exactly its pinned commit and check that HEAD is that commit;
2. ONE `pip install` over ComfyUI's requirements.txt, every node's requirements file and the pinned
   extras, so the resolver sees every constraint at once and stops on a conflict;
3. each node's install.py, for nodes that ask for it;
4. `pip check`: anything left inconsistent fails the build, with pip's explanation.

custom_nodes/.comfyctl-nodes.json records what was installed (name, repository, commit).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path


class InstallError(Exception):
    pass


def run(command: list[str], cwd: Path | None = None, what: str = "") -> None:
    print("+ " + shlex.join(command), flush=True)
    result = subprocess.run(command, cwd=cwd, check=False)
    if result.returncode != 0:
        raise InstallError(f"{what or command[0]} failed (exit {result.returncode})")


def fetch(git: list[str], repository: str, commit: str, dest: Path) -> None:
    """Shallow fetch of exactly `commit` (no branch name involved), then verify HEAD."""
    if dest.exists():
        raise InstallError(f"{dest} already exists; two sources for the same custom node folder?")
    run([*git, "init", "--quiet", str(dest)], what="git init")
    run([*git, "-C", str(dest), "fetch", "--quiet", "--depth", "1", repository, commit], what=f"fetch {repository}")
    run([*git, "-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"], what="git checkout")
    head = subprocess.run(
        [*git, "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if head != commit:
        raise InstallError(f"{repository}: checked out {head}, expected {commit}")
    # History is not needed at run time; the commit is recorded in .comfyctl-nodes.json.
    shutil.rmtree(dest / ".git")


def install(manifest: dict, comfyui: Path, pip: list[str], python: list[str], git: list[str]) -> list[dict]:
    custom_nodes = comfyui / "custom_nodes"
    custom_nodes.mkdir(parents=True, exist_ok=True)
    nodes = manifest.get("nodes", [])
    requirement_args: list[str] = []
    extras: list[str] = []
    scripts: list[Path] = []
    installed = []
    for number, node in enumerate(nodes, start=1):
        dest = custom_nodes / node["name"]
        if manifest.get("mode") == "git":
            print(f"==> [{number}/{len(nodes)}] {node['name']} @ {node['commit'][:12]}", flush=True)
            fetch(git, node["repository"], node["commit"], dest)
        elif not dest.is_dir():
            raise InstallError(f"custom node folder {dest} is missing from the build context")
        step = node.get("install", "requirements")
        if step == "requirements":
            requirements = dest / node.get("requirements", "requirements.txt")
            if requirements.is_file():
                requirement_args += ["--requirement", str(requirements)]
            elif manifest.get("mode") == "git":
                raise InstallError(
                    f"{node['name']}: {node.get('requirements', 'requirements.txt')} not found at commit "
                    f"{node['commit']}; fix `requirements:` or `install:` in custom_nodes.yaml"
                )
        elif step == "install.py":
            if not (dest / "install.py").is_file():
                raise InstallError(f"{node['name']}: install.py not found; fix `install:` in custom_nodes.yaml")
            scripts.append(dest)
        extras += node.get("pip", [])
        installed.append({key: node[key] for key in ("name", "repository", "commit") if node.get(key)})
    base = comfyui / "requirements.txt"
    if not base.is_file():
        raise InstallError(f"{base} not found: is {comfyui} a ComfyUI checkout?")
    print("==> dependencies: ComfyUI + custom nodes, one resolver run", flush=True)
    run([*pip, "install", "--no-cache-dir", "--requirement", str(base), *requirement_args, *extras], what="pip install")
    for folder in scripts:
        print(f"==> {folder.name}: install.py", flush=True)
        run([*python, "install.py"], cwd=folder, what=f"{folder.name}/install.py")
    print("==> pip check", flush=True)
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        sys.stdout.write(check.stdout + check.stderr)
        raise InstallError("dependency conflicts after installing the custom nodes (pip check, above)")
    (custom_nodes / ".comfyctl-nodes.json").write_text(json.dumps(installed, indent=2) + "\n")
    return installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="nodes.json rendered by comfyctl")
    parser.add_argument("--comfyui", type=Path, required=True, help="the ComfyUI folder")
    # Overridable so the tests can run this script with stand-ins.
    parser.add_argument("--pip", default=f"{sys.executable} -m pip", help="pip command (default: this python's)")
    parser.add_argument("--python", default=sys.executable, help="python that runs install.py scripts")
    parser.add_argument("--git", default="git", help="git command")
    args = parser.parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text())
        installed = install(manifest, args.comfyui, shlex.split(args.pip), shlex.split(args.python), [args.git])
    except InstallError as err:
        print(f"install_nodes: error: {err}", file=sys.stderr)
        return 1
    print(f"==> {len(installed)} custom node(s) installed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
