"""A sandbox that boots the GPU node user data unprivileged in a temp dir.

It does what cloud-init does with our MIME document (write_files under a fake root, then run the
per-boot script), with stand-ins for the block-device and systemd tools on PATH. The stand-ins keep
the "kernel" state (arrays, labels, mounts) in files, so a reboot is: forget mounts and assembled
arrays, keep what is on the disks, boot again.
"""

from __future__ import annotations

import base64
import email
import gzip
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modules import gpu_user_data, names

# Stand-in AWS CLI for the real comfyui-model-sync: `s3 sync s3://B/P DIR` copies from a folder
# per bucket under $SANDBOX_BUCKETS.
STAND_IN_AWS = r"""
echo "aws $*" >> "$SANDBOX_STATE/calls.log"
args=()
while (($#)); do case "$1" in --region) shift 2 ;; *) args+=("$1"); shift ;; esac; done
if [[ "${args[0]} ${args[1]}" == "s3 sync" ]]; then
  cp -R "$SANDBOX_BUCKETS/${args[2]#s3://}/." "${args[3]}"
  exit 0
fi
echo "aws stand-in: unexpected ${args[*]}" >&2
exit 255
"""

# Each stand-in appends "<tool> <args>" to $SANDBOX_STATE/calls.log, then acts on the state files.
STAND_INS = {
    "mdadm": r"""
echo "mdadm $*" >> "$SANDBOX_STATE/calls.log"
case "$1" in
  --create)
    target="$2"; shift 2
    devices=()
    for arg in "$@"; do [[ "$arg" == --* ]] || devices+=("$arg"); done
    [[ ! -e "$SANDBOX_STATE/raid" ]] || { echo "mdadm: array exists" >&2; exit 1; }
    printf '%s\n' "$target" "${devices[@]}" > "$SANDBOX_STATE/raid"
    mkdir -p "$(dirname "$target")"; touch "$target" ;;
  --assemble)
    # Assemble from the superblocks on the member devices (the raid state file).
    if [[ -e "$SANDBOX_STATE/raid" ]]; then target="$(head -1 "$SANDBOX_STATE/raid")"; touch "$target"; fi ;;
  *) echo "mdadm stand-in: unexpected $*" >&2; exit 2 ;;
esac
""",
    "mkfs.xfs": r"""
echo "mkfs.xfs $*" >> "$SANDBOX_STATE/calls.log"
label=""; target=""
while (($#)); do case "$1" in -L) label="$2"; shift 2 ;; -*) shift ;; *) target="$1"; shift ;; esac; done
[[ -e "$target" ]] || { echo "mkfs.xfs: $target: no such device" >&2; exit 1; }
echo "$label $target" >> "$SANDBOX_STATE/labels"
""",
    "blkid": r"""
echo "blkid $*" >> "$SANDBOX_STATE/calls.log"
[[ "$1" == "-L" ]] || { echo "blkid stand-in: unexpected $*" >&2; exit 2; }
while read -r label device; do
  if [[ "$label" == "$2" && -e "$device" ]]; then echo "$device"; exit 0; fi
done < <(cat "$SANDBOX_STATE/labels" 2>/dev/null)
exit 2
""",
    "mount": r"""
echo "mount $*" >> "$SANDBOX_STATE/calls.log"
args=("$@"); device="${args[-2]}"; dir="${args[-1]}"
[[ -e "$device" && -d "$dir" ]] || { echo "mount: bad device or dir" >&2; exit 32; }
echo "$dir" >> "$SANDBOX_STATE/mounts"
""",
    "mountpoint": r"""
[[ "$1" == "-q" ]] && shift
grep -qxF "$1" "$SANDBOX_STATE/mounts" 2>/dev/null
""",
    "systemctl": r"""
echo "systemctl $*" >> "$SANDBOX_STATE/calls.log"
[[ "$1" == "is-active" ]] && exit 3
exit 0
""",
    "systemd-run": r"""
echo "systemd-run $*" >> "$SANDBOX_STATE/calls.log"
envfile=""; command=()
# systemd-run's own options come first; everything from the first other word is the command.
for arg in "$@"; do
  if ((${#command[@]})); then command+=("$arg"); continue; fi
  case "$arg" in
    --property=EnvironmentFile=*) envfile="${arg#--property=EnvironmentFile=}" ;;
    --*) ;;
    *) command+=("$arg") ;;
  esac
done
# Run the unit's command now, with the unit's environment, so the test can see what it did.
(
  set -a
  # shellcheck source=/dev/null
  [[ -z "$envfile" ]] || source "$envfile"
  set +a
  "${command[@]}"
) >> "$SANDBOX_STATE/unit.log" 2>&1
""",
    "udevadm": r"""
echo "udevadm $*" >> "$SANDBOX_STATE/calls.log"
""",
    "aws": STAND_IN_AWS,
    "nvme": r"""
echo "nvme $*" >> "$SANDBOX_STATE/calls.log"
echo "Node             SN                   Model"
echo "/dev/nvme0n1     vol0123456789abcdef0 Amazon Elastic Block Store"
""",
}

# Stand-in for comfyui-model-sync when a test does not exercise the real one: it records its
# arguments and writes the ready marker into --dir, as the real one does after a full sync.
STAND_IN_MODEL_SYNC = r"""#!/usr/bin/env bash
set -euo pipefail
echo "comfyui-model-sync $*" >> "$SANDBOX_STATE/calls.log"
dir=""
while (($#)); do case "$1" in --dir) dir="$2"; shift 2 ;; *) shift ;; esac; done
touch "$dir/MARKER"
""".replace("MARKER", names.MODELS_READY_MARKER)


@dataclass
class NodeSandbox:
    base: Path
    user_data: str
    root: Path = field(init=False)
    bin: Path = field(init=False)
    state: Path = field(init=False)
    devices: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.state = self.base / "state"
        for directory in (self.root, self.bin, self.state):
            directory.mkdir(parents=True)
        for tool, body in STAND_INS.items():
            path = self.bin / tool
            path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
            path.chmod(0o755)
        self.write_files = cloud_config(self.user_data)["write_files"]
        for entry in self.write_files:
            target = self.root / entry["path"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file_content(entry))
            target.chmod(int(entry["permissions"], 8))

    def add_instance_store(self, count: int) -> None:
        """`count` instance-store namespaces as udev links them, plus the root EBS volume (ignored)."""
        by_id = self.root / "dev" / "disk" / "by-id"
        by_id.mkdir(parents=True, exist_ok=True)
        ebs = self.root / "dev" / "nvme0n1"
        ebs.touch()
        (by_id / "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0").symlink_to(ebs)
        for index in range(1, count + 1):
            device = self.root / "dev" / f"nvme{index}n1"
            device.touch()
            self.devices.append(device)
            serial = f"AWS{index:04d}ABCDEF"
            for suffix in ("", "_1"):
                (by_id / f"nvme-Amazon_EC2_NVMe_Instance_Storage_{serial}{suffix}").symlink_to(device)
            (by_id / f"nvme-Amazon_EC2_NVMe_Instance_Storage_{serial}-part1").symlink_to(device)

    def replace_file(self, node_path: str, content: str) -> None:
        target = self.root / node_path.lstrip("/")
        target.write_text(content)
        target.chmod(0o755)

    def boot(self, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "NODE_ROOT": str(self.root),
            "SANDBOX_STATE": str(self.state),
            "HOME": str(self.base),
            "LANG": "C",
            **(extra_env or {}),
        }
        script = self.root / gpu_user_data.SETUP_SCRIPT_PATH.lstrip("/")
        return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)

    def reboot(self) -> None:
        """Power cycle: mounts and assembled arrays are gone, the data on the instance store stays."""
        (self.state / "mounts").unlink(missing_ok=True)
        raid = self.state / "raid"
        if raid.exists():
            Path(raid.read_text().splitlines()[0]).unlink(missing_ok=True)
        self.mark_calls()

    def mark_calls(self) -> None:
        with open(self.state / "calls.log", "a") as log:
            log.write("--- reboot\n")

    def calls(self, tool: str, since_last_reboot: bool = True) -> list[str]:
        path = self.state / "calls.log"
        lines = path.read_text().splitlines() if path.exists() else []
        if since_last_reboot and "--- reboot" in lines:
            lines = lines[len(lines) - lines[::-1].index("--- reboot") :]
        return [line for line in lines if line.split(" ", 1)[0] == tool]

    def mounts(self) -> list[str]:
        path = self.state / "mounts"
        return path.read_text().splitlines() if path.exists() else []

    def node_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")


def mime_parts(user_data: str) -> dict[str, str]:
    message = email.message_from_string(user_data)
    assert message.get_content_type() == "multipart/mixed"
    return {part.get_content_type(): part.get_payload() for part in message.get_payload()}


def file_content(entry: dict) -> bytes:
    """A write_files entry's bytes, decoded the way cloud-init does."""
    encoding = entry.get("encoding", "text/plain")
    if encoding == "gz+b64":
        return gzip.decompress(base64.b64decode(entry["content"]))
    assert encoding == "text/plain", encoding
    return entry["content"].encode()


def cloud_config(user_data: str) -> dict:
    text = mime_parts(user_data)["text/cloud-config"]
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)
