"""`comfyctl models upload|list` against moto S3: ComfyUI's folder layout, end-to-end SHA-256
verification (single-part and multipart), skipping what is already there, progress, errors."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from image.comfyctl import cli, models
from tests.conftest import PROJECT

BUCKET = "comfyui-dev-models-111122223333-us-west-2"  # env.bucket_name("models") of config/dev.yaml
MIB = 1024 * 1024


@pytest.fixture
def s3(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr("image.comfyctl.deployment.CDKTF_OUT", tmp_path / "no-stacks")
    with mock_aws():
        client = boto3.client("s3", region_name="us-west-2")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        yield client


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def keys(s3, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def models_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["models", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_upload_file_goes_to_its_folder_with_verified_checksum(s3, tmp_path, capsys):
    data = os.urandom(300_000)
    model = write(tmp_path / "sd_xl_base_1.0.safetensors", data)
    code, out, err = models_cli(capsys, "upload", str(model), "--env", "dev")
    assert code == 0, err
    assert keys(s3) == ["checkpoints/sd_xl_base_1.0.safetensors"]
    head = s3.head_object(Bucket=BUCKET, Key="checkpoints/sd_xl_base_1.0.safetensors", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert out.strip() == f"uploaded 1, skipped 0 (same checksum), 293.0 KiB in s3://{BUCKET}/ verified"
    # Progress: a byte bar per file on stderr, ending at the file's size.
    assert "upload checkpoints/sd_xl_base_1.0.safetensors" in err and "100%" in err


def test_upload_folder_into_a_model_folder(s3, tmp_path, capsys):
    write(tmp_path / "loras" / "styles" / "ink.safetensors", b"a" * 10)
    write(tmp_path / "loras" / "detail.safetensors", b"b" * 10)
    write(tmp_path / "loras" / ".DS_Store", b"junk")
    write(tmp_path / "loras" / ".cache" / "x", b"junk")
    code, _, err = models_cli(capsys, "upload", str(tmp_path / "loras"), "--folder", "loras")
    assert code == 0, err
    assert keys(s3) == ["loras/detail.safetensors", "loras/styles/ink.safetensors"]


def test_upload_a_comfyui_models_folder_keeps_its_layout(s3, tmp_path, capsys):
    root = tmp_path / "models"
    write(root / "checkpoints" / "a.safetensors", b"1")
    write(root / "vae" / "sdxl_vae.safetensors", b"2")
    write(root / "svd" / "svd_xt.safetensors", b"3")  # a custom node's folder
    code, _, err = models_cli(capsys, "upload", str(root))
    assert code == 0, err
    assert keys(s3) == ["checkpoints/a.safetensors", "svd/svd_xt.safetensors", "vae/sdxl_vae.safetensors"]
    assert "note: 'svd' is not one of ComfyUI's model folders" in err


def test_multipart_upload_checksum_and_rerun_skips(s3, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(models, "PART_SIZE", 5 * MIB)  # S3's smallest part, to keep the test small
    data = os.urandom(11 * MIB)
    model = write(tmp_path / "big.safetensors", data)
    code, _, err = models_cli(capsys, "upload", str(model), "--folder", "unet", "--quiet")
    assert code == 0, err
    head = s3.head_object(Bucket=BUCKET, Key="unet/big.safetensors", ChecksumMode="ENABLED")
    parts = [hashlib.sha256(data[i : i + 5 * MIB]).digest() for i in range(0, len(data), 5 * MIB)]
    assert len(parts) == 3
    assert head["ChecksumSHA256"].split("-")[0] == base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    assert head["ETag"].endswith('-3"')

    code, out, err = models_cli(capsys, "upload", str(model), "--folder", "unet", "--quiet")
    assert code == 0
    assert "already there (same checksum), skipped" in err and out.startswith("uploaded 0, skipped 1")

    write(model, data[:-1] + b"\x00")  # a changed local file is sent again
    code, out, _ = models_cli(capsys, "upload", str(model), "--folder", "unet", "--quiet")
    assert code == 0 and out.startswith("uploaded 1, skipped 0")


def test_checksum_mismatch_after_upload_is_reported(s3, tmp_path, capsys, monkeypatch):
    # Bytes that change between the local file and S3 (what the verification exists for).
    session = boto3.session.Session()
    real_client = session.client

    def client(service, **kwargs):
        made = real_client(service, **kwargs)
        if service == "s3":
            upload_file = made.upload_file

            def corrupted(filename, bucket, key, **rest):
                bad = write(tmp_path / "in-transit", Path(filename).read_bytes()[:-1] + b"?")
                return upload_file(str(bad), bucket, key, **rest)

            made.upload_file = corrupted
        return made

    monkeypatch.setattr(session, "client", client)
    monkeypatch.setattr(models, "boto3_session", lambda: session)
    model = write(tmp_path / "m.safetensors", b"model bytes")
    code, out, err = models_cli(capsys, "upload", str(model), "--quiet")
    assert code == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"comfyctl: error: checksum mismatch for s3://{BUCKET}/checkpoints/m.safetensors: local ")
    )
    assert out == ""


def test_prefix_from_model_sync_config(s3, tmp_path, capsys, monkeypatch):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    text = (PROJECT / "config" / "dev.yaml").read_text() + "\nmodel_sync:\n  prefix: comfy/\n"
    (config_dir / "dev.yaml").write_text(text)
    monkeypatch.setenv("COMFYUI_CONFIG_DIR", str(config_dir))
    model = write(tmp_path / "x.safetensors", b"x")
    code, _, err = models_cli(capsys, "upload", str(model), "--folder", "vae", "--quiet")
    assert code == 0, err
    assert keys(s3) == ["comfy/vae/x.safetensors"]
    code, out, _ = models_cli(capsys, "list")
    assert out.splitlines()[0].startswith("vae/x.safetensors\t1 B\t")


def test_list_shows_models_and_filters_by_folder(s3, capsys):
    for key, size in (
        ("checkpoints/a.safetensors", 2 * MIB),
        ("loras/b.safetensors", 10),
        (".comfyui-models-ready", 0),
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)
    code, out, err = models_cli(capsys, "list", "--env", "dev")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["checkpoints/a.safetensors", "2.0 MiB"],
        ["loras/b.safetensors", "10 B"],
    ]
    assert err.strip() == f"2 file(s), 2.0 MiB in s3://{BUCKET}/"
    code, out, _ = models_cli(capsys, "list", "--folder", "loras")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["loras/b.safetensors"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("upload", "missing.safetensors"), "missing.safetensors: no such file or folder"),
        (("upload", "{tmp}/m.safetensors", "--folder", "../etc"), "--folder '../etc': use a folder name"),
        (("upload", "{tmp}/flat"), "a file at the top of"),
        (("upload", "{tmp}/m.safetensors", "--bucket", "no-such-bucket"), "s3://no-such-bucket: no such bucket"),
        (("list", "--bucket", "no-such-bucket"), "s3://no-such-bucket: no such bucket (is dev-storage deployed?)"),
        (("list", "--env", "staging"), "config error: --env: unknown environment 'staging'"),
    ],
)
def test_user_errors_are_one_line(s3, tmp_path, capsys, args, message):
    write(tmp_path / "m.safetensors", b"m")
    write(tmp_path / "flat" / "loose.safetensors", b"m")
    code, _, err = models_cli(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("comfyctl: error: ") and message in last and "Traceback" not in err, err


def test_no_credentials_is_one_line(tmp_path, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr("image.comfyctl.deployment.CDKTF_OUT", tmp_path / "no-stacks")
    code, _, err = models_cli(capsys, "list")
    assert code == 1
    assert err.strip() == "comfyctl: error: no AWS credentials: set AWS_PROFILE (or run `aws sso login`) and retry"
