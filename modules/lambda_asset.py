"""Lambda source directories packaged reproducibly with TerraformAsset (type ARCHIVE).

Only source files are packaged: a clean copy without __pycache__/*.pyc (or other stray files) is staged,
and the asset hash is a SHA-256 over the sorted relative paths and contents. So the asset path and the
function's source_code_hash change exactly when the code does: not when a test run leaves bytecode
behind, and not with file mtimes or the machine that synthesizes. Staged files get a fixed mtime, so the zip
itself is byte-for-byte reproducible as well.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, TerraformAsset
from constructs import Construct

# What a Lambda source directory may contribute to the package.
PACKAGED_SUFFIXES = (".py", ".json", ".txt")
_EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
ZIP_EPOCH = 315532800


def source_files(source_dir: Path) -> list[Path]:
    """Packaged files, relative to source_dir, in a stable order."""
    files = []
    for path in source_dir.rglob("*"):
        relative = path.relative_to(source_dir)
        if path.is_file() and path.suffix in PACKAGED_SUFFIXES and not (_EXCLUDED_PARTS & set(relative.parts)):
            files.append(relative)
    return sorted(files, key=lambda p: p.as_posix())


def content_digest(source_dir: Path) -> bytes:
    digest = hashlib.sha256()
    for relative in source_files(source_dir):
        data = (source_dir / relative).read_bytes()
        digest.update(f"{relative.as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.digest()


@dataclass(frozen=True)
class LambdaPackage:
    asset: TerraformAsset
    # base64 SHA-256 of the packaged sources: the Lambda's source_code_hash (re-deploys when code changes).
    source_code_hash: str

    @property
    def path(self) -> str:
        return self.asset.path


def _staging_dir() -> Path:
    staging = Path(tempfile.mkdtemp(prefix="cdktf-lambda-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    return staging


def lambda_package(scope: Construct, id_: str, source_dir: Path) -> LambdaPackage:
    source_dir = source_dir.resolve()
    files = source_files(source_dir)
    if not files:
        raise ValueError(f"{source_dir}: no Lambda sources ({', '.join(PACKAGED_SUFFIXES)})")
    digest = content_digest(source_dir)
    # TerraformAsset zips the directory it is given at synth time: give it only the packaged files.
    staging = _staging_dir()
    for relative in files:
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_dir / relative, staging / relative)
        # Fixed mtimes (the zip epoch, 1980-01-01) so the archive's bytes are reproducible too.
        os.utime(staging / relative, (ZIP_EPOCH, ZIP_EPOCH))
    asset = TerraformAsset(
        scope,
        id_,
        path=str(staging),
        type=AssetType.ARCHIVE,
        asset_hash=digest.hex()[:32].upper(),
    )
    return LambdaPackage(asset=asset, source_code_hash=base64.b64encode(digest).decode("ascii"))
