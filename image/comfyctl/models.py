"""`comfyctl models upload|list`: model files in the models bucket, in ComfyUI's folder layout.

Keys are `<model_sync.prefix><folder>/<path>` (e.g. `checkpoints/sd_xl_base_1.0.safetensors`):
the GPU nodes sync the bucket into ComfyUI's models/ folder, so the layout is ComfyUI's own.

Each file is uploaded with an S3 SHA-256 checksum (S3 checks every part as it arrives) and then
verified end to end: the object's checksum must equal the one computed from the local file (for a
multipart upload, the SHA-256 of the part digests, the way S3 computes it). A file whose object
already has that checksum is skipped, so an interrupted upload can simply be run again.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from image.comfyctl.deployment import boto3_session, load_env, storage_names
from image.comfyctl.errors import CliError
from image.comfyctl.paths import display

# ComfyUI's own model folders (folder_paths.py); custom nodes add more (e.g. `svd`).
STANDARD_FOLDERS = frozenset(
    {
        "audio_encoders",
        "checkpoints",
        "clip",
        "clip_vision",
        "configs",
        "controlnet",
        "diffusers",
        "diffusion_models",
        "embeddings",
        "gligen",
        "hypernetworks",
        "latent_upscale_models",
        "loras",
        "model_patches",
        "photomaker",
        "style_models",
        "text_encoders",
        "unet",
        "upscale_models",
        "vae",
        "vae_approx",
    }
)
PART_SIZE = 64 * 1024 * 1024  # multipart threshold and part size (also what the checksum is computed with)
_FOLDER = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_SKIPPED_FILES = frozenset({".DS_Store", "Thumbs.db"})


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    size: int


def _check_folder(folder: str) -> str:
    folder = folder.strip("/")
    if not _FOLDER.match(folder) or any(part in (".", "..") for part in folder.split("/")):
        raise CliError(f"--folder {folder!r}: use a folder name like 'checkpoints' or 'loras/styles'", exit_code=2)
    return folder


def _visible(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    return not any(part.startswith(".") for part in relative.parts) and path.name not in _SKIPPED_FILES


def plan_uploads(path: Path, folder: str | None, prefix: str = "") -> list[Upload]:
    """What goes where. A file: <folder, default checkpoints>/<name>. A folder with --folder: its
    contents under that folder. A folder without --folder: a ComfyUI models/ folder, kept as it is."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CliError(f"{display(path)}: no such file or folder", exit_code=2)
    if path.is_file():
        target = _check_folder(folder or "checkpoints")
        return [Upload(path, f"{prefix}{target}/{path.name}", path.stat().st_size)]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _visible(p, path))
    if not files:
        raise CliError(f"{display(path)}: no files to upload", exit_code=2)
    if folder is not None:
        target = _check_folder(folder)
        return [Upload(p, f"{prefix}{target}/{p.relative_to(path).as_posix()}", p.stat().st_size) for p in files]
    uploads = []
    for file in files:
        relative = PurePosixPath(file.relative_to(path).as_posix())
        if len(relative.parts) < 2:
            raise CliError(
                f"{display(file)}: a file at the top of {display(path)}; give --folder (e.g. --folder checkpoints) "
                "or upload a ComfyUI models/ folder whose subfolders are model folders",
                exit_code=2,
            )
        _check_folder(str(relative.parent))
        uploads.append(Upload(file, f"{prefix}{relative}", file.stat().st_size))
    return uploads


def local_checksums(path: Path, part_size: int, on_bytes=None) -> tuple[str, str]:
    """(hex SHA-256 of the file, the S3 checksum its upload will carry, base64)."""
    size = path.stat().st_size
    whole = hashlib.sha256()
    parts = []
    with open(path, "rb") as handle:
        while chunk := handle.read(part_size):
            whole.update(chunk)
            parts.append(hashlib.sha256(chunk).digest())
            if on_bytes:
                on_bytes(len(chunk))
    if size < part_size:
        return whole.hexdigest(), base64.b64encode(whole.digest()).decode()
    return whole.hexdigest(), base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()


def remote_checksum(s3, bucket: str, key: str) -> str | None:
    """The object's SHA-256 checksum (composite ones without their '-N' part count), or None."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    checksum = head.get("ChecksumSHA256")
    return checksum.split("-")[0] if checksum else None


def _part_size(size: int) -> int:
    from s3transfer.utils import ChunksizeAdjuster

    # s3transfer grows the part size for files that would need more than 10,000 parts; follow it.
    return ChunksizeAdjuster().adjust_chunksize(PART_SIZE, size)


def _s3_error(err, what: str) -> CliError:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(err, NoCredentialsError):
        return CliError("no AWS credentials: set AWS_PROFILE (or run `aws sso login`) and retry")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return CliError(f"{what}: {error.get('Code')}: {error.get('Message')}")
    return CliError(f"{what}: {err}")


def _require_bucket(s3, bucket: str, env_name: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            raise CliError(f"s3://{bucket}: no such bucket (is {env_name}-storage deployed?)") from None
        raise


def upload(args) -> int:
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm import tqdm

    env = load_env(args.env)
    uploads = plan_uploads(Path(args.path), args.folder, env.model_sync.prefix)
    for folder in sorted({u.key[len(env.model_sync.prefix) :].split("/")[0] for u in uploads} - STANDARD_FOLDERS):
        print(
            f"note: {folder!r} is not one of ComfyUI's model folders; fine if a custom node reads it", file=sys.stderr
        )
    session = boto3_session()
    bucket = args.bucket or storage_names(env, session).models_bucket
    s3 = session.client("s3", region_name=env.region)
    total = sum(u.size for u in uploads)
    print(f"==> {len(uploads)} file(s), {_human(total)} -> s3://{bucket}/", file=sys.stderr)
    uploaded = skipped = 0
    try:
        _require_bucket(s3, bucket, env.name)  # before hashing gigabytes
        for item in uploads:
            part_size = _part_size(item.size)
            bar_options = {"unit": "B", "unit_scale": True, "file": sys.stderr, "disable": args.quiet}
            with tqdm(total=item.size, desc=f"checksum {item.path.name}", leave=False, **bar_options) as bar:
                digest, expected = local_checksums(item.path, part_size, bar.update)
            if remote_checksum(s3, bucket, item.key) == expected:
                print(f"s3://{bucket}/{item.key}: already there (same checksum), skipped", file=sys.stderr)
                skipped += 1
                continue
            config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
            with tqdm(total=item.size, desc=f"upload {item.key}", **bar_options) as bar:
                s3.upload_file(
                    str(item.path),
                    bucket,
                    item.key,
                    ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": digest}},
                    Config=config,
                    Callback=bar.update,
                )
            actual = remote_checksum(s3, bucket, item.key)
            if actual != expected:
                raise CliError(
                    f"checksum mismatch for s3://{bucket}/{item.key}: local {expected}, S3 {actual}; "
                    "run the upload again (it re-sends files whose checksum differs)"
                )
            uploaded += 1
    except (ClientError, BotoCoreError) as err:
        raise _s3_error(err, f"s3://{bucket}") from None
    except S3UploadFailedError as err:
        raise CliError(f"upload to s3://{bucket} failed: {err}") from None
    print(f"uploaded {uploaded}, skipped {skipped} (same checksum), {_human(total)} in s3://{bucket}/ verified")
    return 0


def list_models(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    env = load_env(args.env)
    session = boto3_session()
    bucket = args.bucket or storage_names(env, session).models_bucket
    prefix = env.model_sync.prefix + (_check_folder(args.folder) + "/" if args.folder else "")
    s3 = session.client("s3", region_name=env.region)
    count = size = 0
    try:
        _require_bucket(s3, bucket, env.name)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(env.model_sync.prefix) :]
                if key.endswith("/") or PurePosixPath(key).name.startswith("."):
                    continue  # folder placeholders, the nodes' ready marker
                print(f"{key}\t{_human(item['Size'])}\t{item['LastModified']:%Y-%m-%d %H:%M}")
                count += 1
                size += item["Size"]
    except (ClientError, BotoCoreError) as err:
        raise _s3_error(err, f"s3://{bucket}") from None
    print(f"{count} file(s), {_human(size)} in s3://{bucket}/{prefix}", file=sys.stderr)
    return 0


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def add_parser(subparsers) -> None:
    models = subparsers.add_parser("models", help="upload and list model files in the models bucket")
    commands = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    up = commands.add_parser("upload", help="upload a model file or folder (checksum verified)", description=__doc__)
    up.add_argument("path", help="a model file, a folder of models (with --folder), or a ComfyUI models/ folder")
    up.add_argument("--env", default="dev", help="environment (default dev)")
    up.add_argument(
        "--folder", help="ComfyUI model folder, e.g. checkpoints, loras, vae (default for a file: checkpoints)"
    )
    up.add_argument("--bucket", help="models bucket (default: <env>-storage output, else config)")
    up.add_argument("--quiet", action="store_true", help="no progress bars")
    up.set_defaults(handler=upload)
    ls = commands.add_parser("list", help="list the models in the bucket")
    ls.add_argument("--env", default="dev", help="environment (default dev)")
    ls.add_argument("--folder", help="only this model folder")
    ls.add_argument("--bucket", help="models bucket (default: <env>-storage output, else config)")
    ls.set_defaults(handler=list_models)
