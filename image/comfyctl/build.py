"""`comfyctl image build`: validate, render the context, `docker buildx build`, log in to ECR, push.

The tag is `git describe` of this project when a tag is reachable, else `<YYYYMMDD>-<short sha>`
(`-dirty` when the tree has changes, `-local` for local mode). Production never gets `latest`;
ECR repositories here are immutable, so each build pushes a new tag and the digest is printed with
the exact line for config/<env>.yaml.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from image.comfyctl import context as ctx
from image.comfyctl.deployment import boto3_session, load_env, registry_of, storage_names
from image.comfyctl.errors import CliError
from image.comfyctl.nodes import load_nodes
from image.comfyctl.paths import CUSTOM_NODES_FILE, PROJECT_DIR, display

DEFAULT_PLATFORM = "linux/amd64"  # the GPU node pools are x86 (g5, g6, g6e)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def step(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def require_docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise CliError(
            "docker is not installed or not on PATH: install Docker Engine (Linux) or Docker Desktop, then retry"
        )
    result = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CliError(
            "docker buildx is not available (`docker buildx version` failed): install the Docker Buildx plugin "
            "(Debian/Ubuntu package docker-buildx-plugin) or use Docker Desktop"
        )
    return docker


def _git(*args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    result = subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def default_tag(local: bool, now: dt.datetime | None = None) -> tuple[str, str]:
    """(tag, revision) for this build from the project's git state."""
    now = now or dt.datetime.now(dt.UTC)
    sha = _git("rev-parse", "--short=12", "HEAD")
    revision = _git("rev-parse", "HEAD") or "unknown"
    described = _git("describe", "--tags", "--abbrev=12")
    tag = described or f"{now:%Y%m%d}-{sha or 'nogit'}"
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status:
        # Immutable repository: a second build from the same dirty tree must not collide.
        tag += f"-dirty.{now:%H%M%S}"
    if local:
        tag += "-local"
    return tag, revision


@dataclass
class BuildPlan:
    env_name: str
    production: bool
    repository_url: str
    repository_source: str
    tag: str
    revision: str
    platform: str
    push: bool
    context: ctx.RenderedContext
    build_args: dict[str, str]
    metadata_file: Path

    @property
    def image(self) -> str:
        return f"{self.repository_url}:{self.tag}"

    def command(self, docker: str = "docker") -> list[str]:
        command = [docker, "buildx", "build", "--platform", self.platform, "--tag", self.image]
        for key, value in self.build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        command += ["--metadata-file", str(self.metadata_file)]
        command.append("--push" if self.push else "--load")
        command.append(str(self.context.path))
        return command


def ecr_login(docker: str, env, registry: str, session) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    step(f"logging in to {registry}")
    try:
        client = session.client("ecr", region_name=env.region)
        data = client.get_authorization_token(registryIds=[env.account_id])["authorizationData"][0]
    except NoCredentialsError:
        raise CliError(
            "no AWS credentials for the ECR login: set AWS_PROFILE (or run `aws sso login`) and retry"
        ) from None
    except ClientError as err:
        error = err.response.get("Error", {})
        raise CliError(f"ECR login failed: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as err:
        raise CliError(f"ECR login failed: {err}") from None
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    result = subprocess.run(
        [docker, "login", "--username", user, "--password-stdin", registry],
        input=password,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise CliError(f"docker login to {registry} failed: {(result.stderr or result.stdout).strip()}")


def read_digest(metadata_file: Path) -> str | None:
    try:
        return json.loads(metadata_file.read_text()).get("containerimage.digest")
    except (OSError, ValueError, AttributeError):
        return None


def build(args) -> int:
    env = load_env(args.env)
    if args.tag is not None:
        if not _TAG.match(args.tag):
            raise CliError(f"--tag {args.tag!r} is not a valid image tag", exit_code=2)
        tag, revision = args.tag, _git("rev-parse", "HEAD") or "unknown"
    else:
        tag, revision = default_tag(local=args.local is not None)
    if tag == "latest" and env.production:
        raise CliError(
            f"refusing to tag a production image 'latest' (environment {env.name!r}): "
            "use a version tag and pin image.digest in the config",
            exit_code=2,
        )

    nodes_file = Path(args.nodes) if args.nodes else CUSTOM_NODES_FILE
    nodes = load_nodes(nodes_file)
    step(f"{display(nodes_file)}: {len(nodes.nodes)} custom node(s) valid")
    docker = None if args.dry_run else require_docker()

    session = boto3_session() if args.push else None
    if args.repository:
        repository_url, source = args.repository, "--repository"
    else:
        names = storage_names(env, session)
        repository_url, source = names.ecr_repository_url, names.source

    workdir = Path(args.context_dir) if args.context_dir else Path(tempfile.mkdtemp(prefix="comfyctl-build-"))
    try:
        step(f"rendering the build context into {workdir / 'context'}")
        if args.local:
            rendered = ctx.render_local(workdir / "context", Path(args.local), nodes, tuple(args.system_package))
            step(f"local ComfyUI: {rendered.files} files, {len(rendered.nodes)} custom node(s)")
        else:
            rendered = ctx.render_git(workdir / "context", nodes, tuple(args.system_package))
        for warning in rendered.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        build_args = {
            **rendered.build_args,
            "COMFYUI_PORT": str(env.comfyui.port),
            "IMAGE_VERSION": tag,
            "IMAGE_REVISION": revision,
            "IMAGE_CREATED": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if args.torch_index:
            build_args["TORCH_INDEX"] = args.torch_index
        plan = BuildPlan(
            env_name=env.name,
            production=env.production,
            repository_url=repository_url,
            repository_source=source,
            tag=tag,
            revision=revision,
            platform=args.platform,
            push=args.push,
            context=rendered,
            build_args=build_args,
            metadata_file=workdir / "metadata.json",
        )
        step(f"image {plan.image} (repository from {source})")
        if args.dry_run:
            if not args.context_dir:
                step("dry run: the rendered context is removed on exit; --context-dir DIR keeps it")
            print(shlex.join(plan.command()))
            return 0
        if args.push:
            ecr_login(docker, env, repository_url.split("/", 1)[0] or registry_of(env), session)
        step(shlex.join(plan.command(docker)))
        result = subprocess.run(plan.command(docker), check=False)
        if result.returncode != 0:
            raise CliError(f"docker buildx build failed (exit {result.returncode}); see the build output above")
        digest = read_digest(plan.metadata_file)
        if not args.push:
            print(f"built {plan.image} (loaded into the local docker; add --push to push it)")
            return 0
        if digest is None:
            raise CliError(f"pushed {plan.image} but buildx reported no digest ({plan.metadata_file})")
        print(f"pushed {plan.image}@{digest}")
        print(f"put this in config/{env.name}.yaml:")
        print(f"image:\n  tag: {tag}\n  digest: {digest}")
        return 0
    finally:
        if not args.context_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def add_parser(subparsers) -> None:
    image = subparsers.add_parser("image", help="build and push the ComfyUI image")
    image_commands = image.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    parser = image_commands.add_parser(
        "build",
        help="render the build context, docker buildx build, push to the environment's ECR repository",
        description=__doc__,
    )
    parser.add_argument("--env", required=True, help="environment name (config/<env>.yaml)")
    parser.add_argument("--local", metavar="PATH", help="build from an existing ComfyUI folder instead of git")
    parser.add_argument("--push", action="store_true", help="log in to ECR and push (default: load locally)")
    parser.add_argument("--platform", default=DEFAULT_PLATFORM, help=f"target platform (default {DEFAULT_PLATFORM})")
    parser.add_argument("--tag", help="image tag (default: git describe, or date + short sha)")
    parser.add_argument("--repository", help="repository URL (default: <env>-storage output, else config)")
    parser.add_argument("--nodes", metavar="FILE", help="custom nodes list (default image/custom_nodes.yaml)")
    parser.add_argument(
        "--system-package", action="append", default=[], metavar="NAME", help="extra Debian package (repeatable)"
    )
    parser.add_argument("--torch-index", metavar="URL", help="package index for a different PyTorch CUDA build")
    parser.add_argument("--context-dir", metavar="DIR", help="render into DIR and keep it (default: a temp dir)")
    parser.add_argument("--dry-run", action="store_true", help="render and print the build command; run nothing")
    parser.set_defaults(handler=build)
