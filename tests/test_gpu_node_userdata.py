"""GPU node user data: MIME structure, shellcheck, and sandbox boots with 0, 1 and 4 instance-store
devices and a reboot (tests/gpu_node_sandbox.py runs it unprivileged with stand-in tools)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modules import gpu_user_data, names
from modules.gpu_user_data import GpuUserDataSettings, render_user_data
from tests.gpu_node_sandbox import STAND_IN_MODEL_SYNC, NodeSandbox, cloud_config, file_content, mime_parts

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
BUCKET = "comfyui-dev-models-111122223333-us-west-2"
MODELS_PATH = "/opt/comfyui/models"


def settings(**overrides) -> GpuUserDataSettings:
    values = {"models_path": MODELS_PATH, "models_bucket": BUCKET, "models_prefix": "", "region": "us-west-2"}
    return GpuUserDataSettings(**{**values, **overrides})


MODEL_SYNC = gpu_user_data.MODEL_SYNC_SOURCE


def render(s: GpuUserDataSettings) -> str:
    return render_user_data(s, MODEL_SYNC)


@pytest.fixture
def user_data() -> str:
    return render(settings())


@pytest.fixture
def sandbox(tmp_path, user_data) -> NodeSandbox:
    box = NodeSandbox(tmp_path, user_data)
    # Volume tests use a stand-in sync; test_real_model_sync_* runs the real one.
    box.replace_file(names.MODEL_SYNC_SCRIPT_PATH, STAND_IN_MODEL_SYNC)
    return box


def test_mime_parts_are_nodeconfig_and_cloud_config(user_data):
    parts = mime_parts(user_data)
    assert list(parts) == ["application/node.eks.aws", "text/cloud-config"]
    node_config = yaml.safe_load(parts["application/node.eks.aws"])
    assert node_config["apiVersion"] == "node.eks.aws/v1alpha1" and node_config["kind"] == "NodeConfig"
    # Only kubelet graceful shutdown: cluster, labels and taints are Karpenter's part of the merge.
    assert node_config["spec"] == {
        "kubelet": {"config": {"shutdownGracePeriod": "45s", "shutdownGracePeriodCriticalPods": "15s"}}
    }
    assert len(user_data.encode()) <= gpu_user_data.MAX_USER_DATA_BYTES


def test_write_files_install_the_project_files_verbatim(user_data):
    files = {entry["path"]: entry for entry in cloud_config(user_data)["write_files"]}
    assert set(files) == {gpu_user_data.ENV_FILE_PATH, names.MODEL_SYNC_SCRIPT_PATH, gpu_user_data.SETUP_SCRIPT_PATH}
    # Decoded as cloud-init does, the scripts are byte for byte the files in modules/node_files/.
    assert file_content(files[gpu_user_data.SETUP_SCRIPT_PATH]) == gpu_user_data.SETUP_SCRIPT_SOURCE.read_bytes()
    assert file_content(files[names.MODEL_SYNC_SCRIPT_PATH]) == MODEL_SYNC.read_bytes()
    assert files[gpu_user_data.SETUP_SCRIPT_PATH]["permissions"] == "0755"
    assert files[names.MODEL_SYNC_SCRIPT_PATH]["permissions"] == "0755"
    assert gpu_user_data.SETUP_SCRIPT_PATH.startswith("/var/lib/cloud/scripts/per-boot/")
    env = dict(
        line.split("=", 1)
        for line in file_content(files[gpu_user_data.ENV_FILE_PATH]).decode().splitlines()
        if not line.startswith("#")
    )
    assert env["MODELS_BUCKET"] == BUCKET and env["MODELS_PATH"] == MODELS_PATH
    assert env["MODELS_READY_MARKER"] == names.MODELS_READY_MARKER
    assert env["MODEL_SYNC_SCRIPT"] == names.MODEL_SYNC_SCRIPT_PATH


def test_env_file_refuses_values_a_shell_would_split():
    with pytest.raises(ValueError, match="MODELS_PREFIX"):
        render(settings(models_prefix="a b/"))


def test_terraform_escaping_keeps_scripts_verbatim_and_the_bucket_live():
    text = gpu_user_data.user_data_for_terraform(settings(models_bucket="${aws_s3_bucket.models.bucket}"), MODEL_SYNC)
    assert "MODELS_BUCKET=${aws_s3_bucket.models.bucket}\n" in text
    # Every other `${` is escaped for Terraform; unescaping gives the rendered document back.
    rest = text.replace("${aws_s3_bucket.models.bucket}", BUCKET)
    assert rest.count("${") == rest.count("$${")
    assert rest.replace("$${", "${").replace("%%{", "%{") == render(settings())


def test_shellcheck_clean():
    scripts = [gpu_user_data.SETUP_SCRIPT_SOURCE]
    result = subprocess.run([str(SHELLCHECK), "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_stand_ins(tmp_path):
    # The sandbox's own tools must be correct bash too, or a test could pass for the wrong reason.
    box = NodeSandbox(tmp_path, render(settings()))
    tools = sorted(str(path) for path in box.bin.iterdir())
    result = subprocess.run([str(SHELLCHECK), "--shell=bash", *tools], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _sync_calls(box: NodeSandbox) -> list[str]:
    return box.calls("comfyui-model-sync")


def _assert_synced(box: NodeSandbox) -> None:
    run = box.calls("systemd-run")
    assert len(run) == 1
    assert "--unit=comfyui-model-sync-boot" in run[0] and "--no-block" in run[0]
    sync_args = f"--bucket {BUCKET} --prefix  --dir {box.node_path(MODELS_PATH)} --region us-west-2 --full"
    assert run[0].endswith(f"{box.root}{names.MODEL_SYNC_SCRIPT_PATH} {sync_args}")
    assert _sync_calls(box) == [f"comfyui-model-sync {sync_args}"]
    assert (box.node_path(MODELS_PATH) / names.MODELS_READY_MARKER).exists()


def test_no_instance_store_falls_back_to_the_root_volume(sandbox):
    sandbox.add_instance_store(0)
    result = sandbox.boot()
    assert result.returncode == 0, result.stderr
    assert "no instance-store NVMe device found" in result.stdout
    assert f"models stay on the root volume in {MODELS_PATH}" in result.stdout
    assert sandbox.calls("mkfs.xfs") == [] and sandbox.calls("mdadm") == [] and sandbox.calls("mount") == []
    assert sandbox.node_path(MODELS_PATH).is_dir()
    _assert_synced(sandbox)


def test_one_device_is_formatted_and_mounted(sandbox):
    sandbox.add_instance_store(1)
    result = sandbox.boot()
    assert result.returncode == 0, result.stderr
    device = sandbox.devices[0]
    assert sandbox.calls("mdadm") == []
    assert sandbox.calls("mkfs.xfs") == [f"mkfs.xfs -K -L comfyui-models {device}"]
    assert sandbox.calls("mount") == [f"mount -o noatime {device} {sandbox.node_path(MODELS_PATH)}"]
    assert sandbox.mounts() == [str(sandbox.node_path(MODELS_PATH))]
    _assert_synced(sandbox)


def test_four_devices_become_one_raid0(sandbox):
    sandbox.add_instance_store(4)
    result = sandbox.boot()
    assert result.returncode == 0, result.stderr
    raid = sandbox.node_path("/dev/md/comfyui-models")
    create = [call for call in sandbox.calls("mdadm") if "--create" in call]
    # Each device once (udev's `_1` and -part links are not extra devices), the EBS root volume never.
    members = " ".join(str(device) for device in sandbox.devices)
    assert create == [f"mdadm --create {raid} --run --level=0 --raid-devices=4 --name=comfyui-models {members}"]
    assert sandbox.calls("mkfs.xfs") == [f"mkfs.xfs -K -L comfyui-models {raid}"]
    assert sandbox.calls("mount") == [f"mount -o noatime {raid} {sandbox.node_path(MODELS_PATH)}"]
    assert "creating RAID0" in result.stdout
    _assert_synced(sandbox)


@pytest.mark.parametrize("devices", [1, 4])
def test_reboot_remounts_without_formatting(sandbox, devices):
    sandbox.add_instance_store(devices)
    assert sandbox.boot().returncode == 0
    sandbox.reboot()
    result = sandbox.boot()
    assert result.returncode == 0, result.stderr
    assert "(reboot): mounting it, not formatting" in result.stdout
    assert sandbox.calls("mkfs.xfs") == []
    assert [call for call in sandbox.calls("mdadm") if "--create" in call] == []
    target = sandbox.devices[0] if devices == 1 else sandbox.node_path("/dev/md/comfyui-models")
    if devices > 1:
        assert sandbox.calls("mdadm") == ["mdadm --assemble --scan"]
    assert sandbox.calls("mount") == [f"mount -o noatime {target} {sandbox.node_path(MODELS_PATH)}"]
    # The boot sync runs again after a reboot (it only transfers differences).
    assert len(sandbox.calls("systemd-run")) == 1


def test_second_run_in_the_same_boot_changes_nothing(sandbox):
    sandbox.add_instance_store(2)
    assert sandbox.boot().returncode == 0
    sandbox.mark_calls()
    result = sandbox.boot()
    assert result.returncode == 0, result.stderr
    assert "already mounted" in result.stdout
    assert sandbox.calls("mkfs.xfs") == [] and sandbox.calls("mdadm") == [] and sandbox.calls("mount") == []


def test_missing_settings_file_is_a_clear_error(sandbox):
    sandbox.node_path(gpu_user_data.ENV_FILE_PATH).unlink()
    result = sandbox.boot()
    assert result.returncode == 1
    assert "settings file" in result.stderr and "is missing" in result.stderr


def test_failed_format_stops_before_mount_and_sync(sandbox):
    sandbox.add_instance_store(1)
    (sandbox.bin / "mkfs.xfs").write_text("#!/usr/bin/env bash\necho 'mkfs.xfs: device busy' >&2\nexit 1\n")
    result = sandbox.boot()
    assert result.returncode != 0
    assert sandbox.calls("mount") == [] and sandbox.calls("systemd-run") == []


def test_real_model_sync_fills_the_instance_store_and_writes_the_marker(tmp_path, user_data):
    # The script from modules/node_files/, as installed by write_files, against a stand-in `aws`.
    box = NodeSandbox(tmp_path / "node", user_data)
    box.add_instance_store(2)
    bucket = tmp_path / "buckets" / BUCKET
    (bucket / "checkpoints").mkdir(parents=True)
    (bucket / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(b"weights")
    (bucket / "loras").mkdir()
    (bucket / "loras" / "detail.safetensors").write_bytes(b"lora")
    result = box.boot(
        {
            "SANDBOX_BUCKETS": str(tmp_path / "buckets"),
            "MODEL_SYNC_STATE_DIR": str(tmp_path / "sync-state"),
            "MODEL_SYNC_LOCK_FILE": str(tmp_path / "sync.lock"),
            "MODEL_SYNC_SYSLOG": "0",
        }
    )
    assert result.returncode == 0, result.stderr
    models = box.node_path(MODELS_PATH)
    assert (models / "checkpoints" / "sd_xl_base_1.0.safetensors").read_bytes() == b"weights"
    assert (models / "loras" / "detail.safetensors").read_bytes() == b"lora"
    assert (models / names.MODELS_READY_MARKER).exists(), (box.state / "unit.log").read_text()
    # One full sync of the bucket into the instance-store models dir; the script's own flags are
    # tested in test_model_sync_node.py.
    (call,) = box.calls("aws")
    assert call.startswith(f"aws --region us-west-2 s3 sync s3://{BUCKET}/ {models}/ --delete ")
    assert " --exclude .comfyui-* " in call
