"""User data for GPU nodes: a MIME multi-part document that Karpenter merges with its own NodeConfig.

Parts, in order:
  1. application/node.eks.aws: a nodeadm NodeConfig with only what Karpenter does not set itself
     (kubelet graceful node shutdown, so a shutting-down node still runs ComfyUI's preStop drain).
  2. text/cloud-config: write_files installs the node's settings file, the model sync script
     (modules/node_files/comfyui-model-sync) and the setup script (modules/node_files/
     gpu-node-setup.sh) as a cloud-init per-boot script: it runs before kubelet on every boot.
     The scripts travel gzip+base64 (cloud-init's `gz+b64`): plain they would not fit EC2's 16 KiB.

Deterministic output; tests/golden/ holds a readable rendering per environment (scripts decoded),
so a change to node bootstrap shows up as a reviewable diff. No cdktf imports.
"""

from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from pathlib import Path

import yaml

from modules import names

NODE_FILES = Path(__file__).resolve().parent / "node_files"
SETUP_SCRIPT_SOURCE = NODE_FILES / "gpu-node-setup.sh"
MODEL_SYNC_SOURCE = NODE_FILES / "comfyui-model-sync"

# Paths on the node.
ENV_FILE_PATH = "/etc/comfyui/gpu-node.env"
# cloud-init runs every executable here on each boot, in its final stage (before nodeadm starts kubelet).
SETUP_SCRIPT_PATH = "/var/lib/cloud/scripts/per-boot/comfyui-gpu-node-setup.sh"
BOUNDARY = "==COMFYUI-GPU-NODE=="
# EC2 accepts 16 KiB of user data; Karpenter appends its NodeConfig (cluster endpoint, CA, kubelet
# flags, labels, taints: about 3 KiB), so ours must leave room for it.
MAX_USER_DATA_BYTES = 16384 - 4096

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@+-]*$")
_TERRAFORM_TOKEN = re.compile(r"^\$\{[^}\s]+\}$")


@dataclass(frozen=True)
class GpuUserDataSettings:
    models_path: str
    # Models bucket name; a Terraform reference (`${...}`) from <env>-storage in the real stack.
    models_bucket: str
    # Only keys under this prefix are synced ("" = whole bucket).
    models_prefix: str
    region: str
    # kubelet graceful node shutdown: total, and the part reserved for critical (system) pods.
    shutdown_grace_seconds: int = 45
    shutdown_grace_critical_seconds: int = 15


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so embedded scripts stay readable in the golden files."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def dump_yaml(data: object) -> str:
    """YAML with multi-line strings as literal blocks (also used for the golden files' readable view)."""
    return yaml.dump(data, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def _env_file(settings: GpuUserDataSettings) -> str:
    values = {
        "MODELS_PATH": settings.models_path,
        "MODELS_BUCKET": settings.models_bucket,
        "MODELS_PREFIX": settings.models_prefix,
        "MODELS_READY_MARKER": names.MODELS_READY_MARKER,
        "MODEL_SYNC_SCRIPT": names.MODEL_SYNC_SCRIPT_PATH,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
    }
    for key, value in values.items():
        # Sourced by bash and read by systemd's EnvironmentFile=: no quoting, so no spaces or quotes.
        if not (_SAFE_VALUE.match(value) or _TERRAFORM_TOKEN.match(value)):
            raise ValueError(f"GPU node setting {key}={value!r} has characters an environment file cannot hold")
    lines = [f"# Written by the GPU node user data ({ENV_FILE_PATH}); read by the setup and model sync scripts."]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _node_config(settings: GpuUserDataSettings) -> str:
    document = {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "kubelet": {
                "config": {
                    "shutdownGracePeriod": f"{settings.shutdown_grace_seconds}s",
                    "shutdownGracePeriodCriticalPods": f"{settings.shutdown_grace_critical_seconds}s",
                }
            }
        },
    }
    return dump_yaml(document)


def _packed_script(path: str, source: Path) -> dict:
    # mtime=0: the same script always gives the same bytes (golden files, no spurious node drift).
    packed = base64.b64encode(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0)).decode("ascii")
    return {"path": path, "owner": "root:root", "permissions": "0755", "encoding": "gz+b64", "content": packed}


def _cloud_config(settings: GpuUserDataSettings, model_sync_source: Path) -> str:
    files = [
        {"path": ENV_FILE_PATH, "owner": "root:root", "permissions": "0644", "content": _env_file(settings)},
        _packed_script(names.MODEL_SYNC_SCRIPT_PATH, model_sync_source),
        _packed_script(SETUP_SCRIPT_PATH, SETUP_SCRIPT_SOURCE),
    ]
    return "#cloud-config\n" + dump_yaml({"write_files": files})


def _part(maintype: str, subtype: str, text: str) -> MIMENonMultipart:
    part = MIMENonMultipart(maintype, subtype, charset="us-ascii")
    # 7bit, no base64: nodeadm and cloud-init read plain parts, and the golden files stay readable.
    part["Content-Transfer-Encoding"] = "7bit"
    part.set_payload(text)
    return part


def render_user_data(settings: GpuUserDataSettings, model_sync_source: Path = MODEL_SYNC_SOURCE) -> str:
    """The MIME document for EC2NodeClass.spec.userData (plain text; the caller escapes it for Terraform)."""
    document = MIMEMultipart("mixed", boundary=BOUNDARY)
    document.attach(_part("application", "node.eks.aws", _node_config(settings)))
    document.attach(_part("text", "cloud-config", _cloud_config(settings, model_sync_source)))
    text = document.as_string()
    size = len(text.encode("ascii"))
    if size > MAX_USER_DATA_BYTES:
        raise ValueError(
            f"GPU node user data is {size} bytes; keep it under {MAX_USER_DATA_BYTES} so Karpenter's NodeConfig fits"
        )
    return text


def terraform_literal(text: str) -> str:
    """Escape Terraform template sequences so `${VAR}` in a script reaches the node verbatim."""
    return text.replace("${", "$${").replace("%{", "%%{")


_BUCKET_PLACEHOLDER = "COMFYUI-MODELS-BUCKET-PLACEHOLDER"


def user_data_for_terraform(settings: GpuUserDataSettings, model_sync_source: Path = MODEL_SYNC_SOURCE) -> str:
    """render_user_data escaped for a Terraform string, with the bucket reference left live."""
    text = render_user_data(
        GpuUserDataSettings(**{**settings.__dict__, "models_bucket": _BUCKET_PLACEHOLDER}), model_sync_source
    )
    if text.count(_BUCKET_PLACEHOLDER) != 1:
        raise ValueError("the models bucket must appear exactly once in the GPU node user data")
    return terraform_literal(text).replace(_BUCKET_PLACEHOLDER, settings.models_bucket)
