#!/usr/bin/env bash
# GPU node setup for ComfyUI. The user data installs this as a cloud-init per-boot script, so it
# runs on the first boot and on every reboot, always before kubelet starts (AL2023's nodeadm-run
# service waits for cloud-final).
#
#   1. Instance-store NVMe devices become one XFS volume mounted at MODELS_PATH: one device is
#      formatted as is, several are striped (mdadm RAID0) first. No instance store: a directory on
#      the root volume, with a log line saying so.
#   2. The boot model sync (comfyui-model-sync --full) starts in the background as a systemd unit,
#      so kubelet, image pull and the sync run in parallel. The sync writes the ready marker that
#      the ComfyUI pod's startup probe waits for.
#
# Idempotent: on a reboot the existing volume is found by its label, re-assembled and mounted;
# it is never formatted twice. Settings: /etc/comfyui/gpu-node.env (written by the same user data).
# NODE_ROOT (tests only) prefixes /dev and /etc paths so the script can run unprivileged.
set -euo pipefail

NODE_ROOT="${NODE_ROOT:-}"
ENV_FILE="${NODE_ROOT}/etc/comfyui/gpu-node.env"
FS_LABEL="comfyui-models"
RAID_DEVICE="${NODE_ROOT}/dev/md/comfyui-models"
SYNC_UNIT="comfyui-model-sync-boot"

log() {
  echo "comfyui-gpu-node-setup: $*"
}

fail() {
  log "ERROR: $*" >&2
  exit 1
}

load_settings() {
  [[ -r "$ENV_FILE" ]] || fail "settings file $ENV_FILE is missing"
  # shellcheck source=/dev/null
  source "$ENV_FILE"
  : "${MODELS_PATH:?MODELS_PATH missing in $ENV_FILE}"
  : "${MODEL_SYNC_SCRIPT:?MODEL_SYNC_SCRIPT missing in $ENV_FILE}"
  : "${MODELS_READY_MARKER:?MODELS_READY_MARKER missing in $ENV_FILE}"
  : "${MODELS_BUCKET:?MODELS_BUCKET missing in $ENV_FILE}"
  : "${AWS_REGION:?AWS_REGION missing in $ENV_FILE}"
  MODELS_PREFIX="${MODELS_PREFIX:-}"
  MODELS_DIR="${NODE_ROOT}${MODELS_PATH}"
}

# Instance-store volumes, one line each (resolved /dev/nvmeXn1 paths, sorted, no duplicates).
# udev links each namespace twice (with and without a `_1` suffix) and adds -partN for partitions.
instance_store_devices() {
  local link links
  if command -v udevadm >/dev/null 2>&1; then
    udevadm settle --timeout=30 || true
  fi
  shopt -s nullglob
  links=("${NODE_ROOT}"/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*)
  shopt -u nullglob
  for link in "${links[@]}"; do
    [[ -e "$link" ]] || continue
    [[ "$link" == *-part* ]] && continue
    readlink -f "$link"
  done | sort -u
}

# The device that already carries our filesystem (a reboot), or nothing.
existing_volume() {
  local count="$1"
  if ((count > 1)); then
    # Arrays are normally auto-assembled by udev; assemble explicitly in case they were not.
    mdadm --assemble --scan >/dev/null 2>&1 || true
  fi
  blkid -L "$FS_LABEL" 2>/dev/null || true
}

setup_models_volume() {
  local devices=() target
  mkdir -p "$MODELS_DIR"
  if mountpoint -q "$MODELS_DIR"; then
    log "$MODELS_PATH is already mounted; nothing to do"
    return
  fi
  mapfile -t devices < <(instance_store_devices)
  if ((${#devices[@]} == 0)); then
    if command -v nvme >/dev/null 2>&1; then
      nvme list 2>&1 | sed 's/^/comfyui-gpu-node-setup: nvme list: /' || true
    fi
    log "no instance-store NVMe device found: models stay on the root volume in $MODELS_PATH" \
      "(size it with gpu.root_volume_gb, or pick instance types with local NVMe)"
    chmod 0755 "$MODELS_DIR"
    return
  fi
  log "instance-store devices (${#devices[@]}): ${devices[*]}"

  target="$(existing_volume "${#devices[@]}")"
  if [[ -n "$target" ]]; then
    log "found the existing models filesystem on $target (reboot): mounting it, not formatting"
  else
    if ((${#devices[@]} == 1)); then
      target="${devices[0]}"
    else
      target="$RAID_DEVICE"
      log "creating RAID0 $target over ${#devices[@]} devices"
      mdadm --create "$target" --run --level=0 --raid-devices="${#devices[@]}" --name="$FS_LABEL" "${devices[@]}"
      if command -v udevadm >/dev/null 2>&1; then
        udevadm settle --timeout=30 || true
      fi
    fi
    # -K: skip discard; instance-store blocks are already unmapped on a new instance.
    log "formatting $target as XFS (label $FS_LABEL)"
    mkfs.xfs -K -L "$FS_LABEL" "$target"
  fi
  mount -o noatime "$target" "$MODELS_DIR"
  # Root writes (the sync), the ComfyUI container user reads.
  chmod 0755 "$MODELS_DIR"
  log "mounted $target at $MODELS_PATH"
}

start_boot_sync() {
  local script="${NODE_ROOT}${MODEL_SYNC_SCRIPT}"
  [[ -x "$script" ]] || fail "model sync script $script is missing or not executable"
  if systemctl is-active --quiet "$SYNC_UNIT.service"; then
    log "boot sync is already running ($SYNC_UNIT)"
    return
  fi
  # A transient unit outlives cloud-init, logs to the journal and retries after failures.
  systemd-run --unit="$SYNC_UNIT" --description="ComfyUI boot model sync" --no-block --collect \
    --property=Restart=on-failure --property=RestartSec=30 \
    "$script" --bucket "$MODELS_BUCKET" --prefix "$MODELS_PREFIX" --dir "$MODELS_DIR" --region "$AWS_REGION" --full
  log "boot sync started in the background (journalctl -u $SYNC_UNIT); kubelet starts meanwhile;" \
    "ComfyUI becomes ready once $MODELS_PATH/$MODELS_READY_MARKER exists"
}

main() {
  load_settings
  setup_models_volume
  start_boot_sync
}

main "$@"
