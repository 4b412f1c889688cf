"""The node-side comfyui-model-sync script, run for real in a sandbox.

The sandbox: temp dirs for the models directory, state and lock; a stand-in `aws` on PATH that serves
"S3" from a directory (<root>/<bucket>/<key>) and logs every call (with the AWS config file it saw).
Everything else (bash, flock, base64, gzip, coreutils) is the real thing.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modules.names import MODEL_SYNC_SCRIPT_SOURCE, MODELS_READY_MARKER

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / MODEL_SYNC_SCRIPT_SOURCE
BUCKET = "comfyui-dev-models-111122223333-us-west-2"
REGION = "us-west-2"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"

FAKE_AWS = r'''
"""Stand-in `aws`: S3 is $FAKE_S3_ROOT/<bucket>/<key>; every call is logged to $FAKE_AWS_LOG."""
import datetime, fnmatch, json, os, shutil, sys, time
from pathlib import Path

root = Path(os.environ["FAKE_S3_ROOT"])
args = sys.argv[1:]
region = None
if args[:1] == ["--region"]:
    region, args = args[1], args[2:]
config = os.environ.get("AWS_CONFIG_FILE")


def log(**fields):
    fields.update(args=args, region=region, run=os.environ.get("TEST_RUN", ""), t=time.time(),
                  config=Path(config).read_text() if config else None)
    with open(os.environ["FAKE_AWS_LOG"], "a") as out:
        out.write(json.dumps(fields) + "\n")


def opt(name):
    return args[args.index(name) + 1]


log(op=" ".join(args[:2]))
time.sleep(float(os.environ.get("FAKE_AWS_DELAY", "0")))
if os.environ.get("FAKE_AWS_FAIL", "\0") in " ".join(args):
    print("An error occurred (InternalError) when calling the operation: We encountered an internal error",
          file=sys.stderr)
    sys.exit(1)
if args[:2] == ["s3api", "head-object"]:
    obj = root / opt("--bucket") / opt("--key")
    if not obj.is_file():
        print("An error occurred (404) when calling the HeadObject operation: Not Found", file=sys.stderr)
        sys.exit(254)
    when = datetime.datetime.fromtimestamp(int(obj.stat().st_mtime), datetime.timezone.utc)
    print(f"{obj.stat().st_size}\t{when.isoformat()}")
elif args[:2] == ["s3", "cp"]:
    bucket, _, key = args[2].removeprefix("s3://").partition("/")
    obj = root / bucket / key
    if not obj.is_file():
        print("fatal error: An error occurred (404) when calling the HeadObject operation: Key not found",
              file=sys.stderr)
        sys.exit(1)
    shutil.copyfile(obj, args[3])
    log(op="download", key=key)
elif args[:2] == ["s3", "sync"]:
    # Like the CLI: --exclude patterns are fnmatch patterns rooted at the source and destination.
    bucket, _, prefix = args[2].removeprefix("s3://").partition("/")
    dest = Path(args[3])
    excludes = [args[i + 1] for i, arg in enumerate(args) if arg == "--exclude"]
    excluded = lambda rel: any(fnmatch.fnmatch(rel, pattern) for pattern in excludes)
    wanted = {}
    for obj in (root / bucket).rglob("*"):
        key = obj.relative_to(root / bucket).as_posix()
        if obj.is_file() and key.startswith(prefix) and not excluded(key[len(prefix):]):
            wanted[key[len(prefix):]] = obj
    for rel, obj in sorted(wanted.items()):
        target = dest / rel
        if target.is_file() and target.stat().st_size == obj.stat().st_size and \
                int(target.stat().st_mtime) == int(obj.stat().st_mtime):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obj, target)
        os.utime(target, (obj.stat().st_mtime, obj.stat().st_mtime))
        log(op="download", key=prefix + rel)
    if "--delete" in args:
        for path in sorted(dest.rglob("*"), reverse=True):
            rel = path.relative_to(dest).as_posix()
            if path.is_file() and rel not in wanted and not excluded(rel):
                path.unlink()
                log(op="delete", key=prefix + rel)
else:
    print(f"stand-in aws: unsupported call {args}", file=sys.stderr)
    sys.exit(2)
'''


class Sandbox:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.s3 = tmp / "s3"
        self.bucket = self.s3 / BUCKET
        self.models = tmp / "node" / "opt" / "comfyui" / "models"
        self.state = tmp / "node" / "state"
        self.outside = tmp / "outside"
        self.calls_file = tmp / "aws-calls.jsonl"
        self.lock = tmp / "node" / "run" / "comfyui-model-sync.lock"
        bin_dir = tmp / "bin"
        for path in (self.bucket, self.models, bin_dir, self.outside):
            path.mkdir(parents=True)
        aws = bin_dir / "aws"
        aws.write_text(f"#!{sys.executable}\n{FAKE_AWS}")
        aws.chmod(0o755)
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "FAKE_S3_ROOT": str(self.s3),
            "FAKE_AWS_LOG": str(self.calls_file),
            "MODEL_SYNC_STATE_DIR": str(self.state),
            "MODEL_SYNC_LOCK_FILE": str(self.lock),
            "MODEL_SYNC_SYSLOG": "0",
        }

    def put(self, key: str, content: str = "weights", mtime: int = 1_700_000_000) -> Path:
        path = self.bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.utime(path, (mtime, mtime))
        return path

    def local(self, relative: str, content: str = "old") -> Path:
        path = self.models / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def args(self, *extra: str, prefix: str = "models/") -> list[str]:
        return [
            str(SCRIPT),
            "--bucket",
            BUCKET,
            "--prefix",
            prefix,
            "--dir",
            str(self.models),
            "--region",
            REGION,
            *extra,
        ]

    def run(self, *args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            list(args), env={**self.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def calls(self) -> list[dict]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def downloads(self) -> list[str]:
        return sorted(call["key"] for call in self.calls() if call["op"] == "download")

    def files(self) -> dict[str, str]:
        """Every regular file under the models directory (relative path -> content)."""
        return {
            path.relative_to(self.models).as_posix(): path.read_text()
            for path in sorted(self.models.rglob("*"))
            if path.is_file()
        }

    def last_run(self) -> dict[str, str]:
        text = (self.state / "last-run").read_text().strip()
        return dict(field.split("=", 1) for field in text.split())


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def payload(actions: dict[str, str]) -> str:
    """The Lambda's own encoder, so script and handler agree on the format."""
    path = PROJECT / "lambda" / "model_sync" / "sync_handler.py"
    spec = importlib.util.spec_from_file_location("model_sync_handler_for_node_tests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module.encode_payload(actions)


def test_shellcheck_clean():
    result = subprocess.run([str(SHELLCHECK), "--shell=bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_executable_and_named_in_names_py():
    assert SCRIPT.is_file() and SCRIPT.stat().st_mode & stat.S_IXUSR
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")


def test_full_sync_mirrors_the_prefix_deletes_extras_and_writes_the_ready_marker(box):
    box.put("models/checkpoints/sdxl.safetensors", "sdxl")
    box.put("models/loras/my style v2.safetensors", "lora")
    box.put("models/vae/日本語 ü.pt", "vae")
    box.put("other/not-synced.bin", "outside the prefix")
    box.put("models/bad;name.bin", "unsafe name")  # the Lambda refuses such keys: the full sync skips them too
    box.put(f"models/{MODELS_READY_MARKER}", "a marker uploaded to S3 is not ours")
    box.local("checkpoints/deleted-in-s3.safetensors")
    box.local("loras/my style v2.safetensors", "stale content")

    result = box.run(*box.args("--full"))

    assert result.returncode == 0, result.stderr
    files = box.files()
    marker = files.pop(MODELS_READY_MARKER)
    assert files == {
        "checkpoints/sdxl.safetensors": "sdxl",
        "loras/my style v2.safetensors": "lora",
        "vae/日本語 ü.pt": "vae",
    }
    assert marker.startswith("synced_at=") and f"source=s3://{BUCKET}/models/" in marker
    assert "full sync done" in result.stderr
    assert box.last_run()["result"] == "ok" and box.last_run()["mode"] == "full"
    # The fastest AWS CLI client: CRT, through a script-owned config file; the region is passed too.
    (call,) = [c for c in box.calls() if c["op"] == "s3 sync"]
    assert "preferred_transfer_client = crt" in call["config"] and call["region"] == REGION
    assert "--delete" in call["args"]
    assert not (box.models / ".comfyui-sync-staging").exists()


def test_full_sync_never_deletes_the_marker_and_is_incremental_the_second_time(box):
    box.put("models/a.bin", "a")
    assert box.run(*box.args("--full")).returncode == 0
    first = (box.models / MODELS_READY_MARKER).read_text()
    assert box.downloads() == ["models/a.bin"]
    box.calls_file.unlink()
    time.sleep(1.1)  # the marker records whole seconds

    result = box.run(*box.args("--full"))

    assert result.returncode == 0
    assert box.downloads() == []  # same size and mtime: nothing downloaded again
    assert not [c for c in box.calls() if c["op"] == "delete"]  # the marker (not in S3) was not deleted
    assert (box.models / MODELS_READY_MARKER).read_text() != first  # refreshed


def test_failed_full_sync_writes_no_marker_and_exits_1(box):
    box.put("models/a.bin")
    result = box.run(*box.args("--full"), env={"FAKE_AWS_FAIL": "s3 sync"})
    assert result.returncode == 1
    assert not (box.models / MODELS_READY_MARKER).exists()
    assert "full sync failed" in result.stderr
    assert box.last_run()["result"] == "failed"
    status = box.run(str(SCRIPT), "--dir", str(box.models), "--status")
    assert status.returncode == 0 and "ready: no" in status.stdout and "result=failed" in status.stdout


def test_incremental_copy_downloads_only_what_changed(box):
    box.put("models/new.safetensors", "new", mtime=1_700_000_100)
    box.put("models/changed.safetensors", "v2 weights", mtime=1_700_000_200)
    box.put("models/same.safetensors", "same", mtime=1_700_000_300)
    box.local("changed.safetensors", "v1")
    same = box.local("same.safetensors", "same")
    os.utime(same, (1_700_000_300, 1_700_000_300))

    result = box.run(
        *box.args("--copy", "models/new.safetensors", "models/changed.safetensors", "models/same.safetensors")
    )

    assert result.returncode == 0, result.stderr
    assert box.downloads() == ["models/changed.safetensors", "models/new.safetensors"]
    assert box.files() == {"changed.safetensors": "v2 weights", "new.safetensors": "new", "same.safetensors": "same"}
    new = box.models / "new.safetensors"
    assert int(new.stat().st_mtime) == 1_700_000_100  # the object's LastModified: full syncs skip it later
    assert stat.S_IMODE(new.stat().st_mode) == 0o644  # readable by the ComfyUI container user
    assert box.last_run() | {"finished_at": "", "seconds": ""} == {
        "finished_at": "",
        "mode": "incremental",
        "result": "ok",
        "exit": "0",
        "copied": "2",
        "unchanged": "1",
        "removed": "0",
        "failed": "0",
        "refused": "0",
        "seconds": "",
    }


def test_delete_removes_files_and_empty_folders_but_keeps_objects_that_still_exist(box):
    box.local("loras/style/old.safetensors")
    box.local("loras/keep.safetensors")
    box.local("checkpoints/recreated.safetensors", "old")
    # A noncurrent version was deleted (ObjectRemoved:Delete) but the object itself still exists.
    box.put("models/checkpoints/recreated.safetensors", "current")

    result = box.run(
        *box.args(
            "--delete",
            "models/loras/style/old.safetensors",
            "models/checkpoints/recreated.safetensors",
            "models/never-existed.bin",
        )
    )

    assert result.returncode == 0, result.stderr
    assert box.files() == {"loras/keep.safetensors": "old", "checkpoints/recreated.safetensors": "current"}
    assert not (box.models / "loras" / "style").exists()  # emptied folder pruned
    assert box.models.is_dir()
    assert box.last_run()["removed"] == "1"


def test_copy_of_an_object_that_is_gone_removes_the_local_file(box):
    # Events can arrive out of order across batches: a late "copy" must not resurrect a deleted model.
    box.local("gone.safetensors")
    result = box.run(*box.args("--copy", "models/gone.safetensors"))
    assert result.returncode == 0, result.stderr
    assert box.files() == {}


def test_payload_form_from_the_lambda(box):
    box.put("models/a model (v2).safetensors", "a")
    box.put("models/--looks-like-an-option.bin", "b")
    box.local("old.bin")
    encoded = payload(
        {
            "models/a model (v2).safetensors": "copy",
            "models/--looks-like-an-option.bin": "copy",
            "models/old.bin": "delete",
        }
    )

    result = box.run(*box.args("--payload", encoded))

    assert result.returncode == 0, result.stderr
    assert box.files() == {"a model (v2).safetensors": "a", "--looks-like-an-option.bin": "b"}
    decoded = box.run(str(SCRIPT), "--decode-payload", encoded)
    assert decoded.returncode == 0
    assert decoded.stdout.splitlines() == [
        "copy models/--looks-like-an-option.bin",
        "copy models/a model (v2).safetensors",
        "delete models/old.bin",
    ]


@pytest.mark.parametrize("bad", ["not base64 !", "aGVsbG8=", payload({"a": "copy"})[:-8] + "AAAAAAA="])
def test_invalid_payload_is_a_usage_error(box, bad):
    result = box.run(*box.args("--payload", bad))
    assert result.returncode == 2
    assert box.calls() == []


def test_paths_escaping_the_models_dir_are_refused(box):
    secret = box.outside / "passwd"
    secret.write_text("root:x:0:0")
    (box.models / "evil").symlink_to(box.outside)  # a symlink planted inside the models dir
    box.put("models/evil/pwn.bin", "payload")
    box.put("models/ok.bin", "fine")
    marker = box.local(MODELS_READY_MARKER, "synced_at=earlier")
    hostile = [
        "../../etc/passwd",
        "models/../../outside/passwd",
        "/etc/passwd",
        "models//double.bin",
        "models/./dot.bin",
        "models/evil/pwn.bin",
        f"models/{MODELS_READY_MARKER}",
        "models/.comfyui-sync-staging/x",
        "models/line\nbreak.bin",
        "models/$(reboot).bin",
        "models/;rm -rf x",
        "models/back\\slash.bin",
        "other/outside-prefix.bin",
        "models/",
    ]

    result = box.run(*box.args("--copy", "models/ok.bin", *hostile, "--delete", *hostile))

    assert result.returncode == 3, result.stderr
    assert box.last_run()["refused"] == str(2 * len(hostile)) and box.last_run()["copied"] == "1"
    assert secret.read_text() == "root:x:0:0" and sorted(p.name for p in box.outside.iterdir()) == ["passwd"]
    assert marker.read_text() == "synced_at=earlier"
    assert (box.models / "ok.bin").read_text() == "fine"
    # Refused keys never reach the AWS CLI either.
    touched = {c["args"][c["args"].index("--key") + 1] for c in box.calls() if c["op"] == "s3api head-object"}
    assert touched == {"models/ok.bin"}
    assert result.stderr.count("refused unsafe key") == 2 * len(hostile)


def test_concurrent_runs_serialize_on_the_lock(box):
    box.put("models/a.bin", "a")
    box.put("models/b.bin", "b")
    slow = box.start(*box.args("--copy", "models/a.bin"), env={"TEST_RUN": "first", "FAKE_AWS_DELAY": "0.6"})
    deadline = time.monotonic() + 10
    while not any(c["run"] == "first" for c in box.calls()):  # the first run holds the lock
        assert time.monotonic() < deadline and slow.poll() is None
        time.sleep(0.02)

    second = box.run(*box.args("--copy", "models/b.bin"), env={"TEST_RUN": "second"})
    first_err = slow.communicate(timeout=30)[1]

    assert slow.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    assert "waiting for the lock" in second.stderr
    runs = [c["run"] for c in box.calls()]
    assert runs == sorted(runs, key=["first", "second"].index)  # no interleaving: first's calls, then second's
    assert box.files() == {"a.bin": "a", "b.bin": "b"}


def test_gives_up_after_the_lock_timeout(box):
    box.lock.parent.mkdir(parents=True)
    with box.lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = box.run(*box.args("--lock-timeout", "1", "--full"))
    assert result.returncode == 4
    assert "gave up waiting for the lock" in result.stderr
    assert box.calls() == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--full", "--copy", "models/a"],
        ["models/a"],
        ["--copy", "models/a", "--frobnicate"],
        ["--bucket", "Bad_Bucket", "--full"],
        ["--prefix", "../", "--full"],
        ["--prefix", "no-slash", "--full"],
        ["--dir", "relative", "--full"],
        ["--lock-timeout", "soon", "--full"],
        ["--region"],
    ],
)
def test_usage_errors_exit_2(box, args):
    result = box.run(str(SCRIPT), "--bucket", BUCKET, "--dir", str(box.models), *args)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr or "level=error" in result.stderr
    assert box.calls() == []


def test_status_and_help(box):
    status = box.run(str(SCRIPT), "--dir", str(box.models), "--status")
    assert status.returncode == 0
    assert status.stdout.splitlines() == [
        f"ready: no (no {MODELS_READY_MARKER} in {box.models})",
        f"last run: none recorded in {box.state}",
    ]
    box.put("models/a.bin")
    assert box.run(*box.args("--full")).returncode == 0
    status = box.run(str(SCRIPT), "--dir", str(box.models), "--status")
    assert status.stdout.startswith("ready: yes (synced_at=") and "mode=full result=ok exit=0" in status.stdout
    help_text = box.run(str(SCRIPT), "--help")
    assert help_text.returncode == 0 and "Exit codes" in help_text.stdout
