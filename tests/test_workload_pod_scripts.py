"""The scripts that run inside the ComfyUI pod: startup probe, preStop drain and the output uploader.

They run as real processes against a fake ComfyUI that answers with the captured responses in
tests/reference/comfyui-api/ (queue_busy.json, queue_idle.json, system_stats.json)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REFERENCE

POD_FILES = Path(__file__).resolve().parent.parent / "modules" / "pod_files"
LIFECYCLE = POD_FILES / "comfyui_lifecycle.py"
UPLOADER = POD_FILES / "output_uploader.py"
API = REFERENCE / "comfyui-api"


class FakeComfyUI:
    """Answers /queue with `busy` for the first N calls, then idle; /system_stats as captured."""

    def __init__(self, busy_polls: int = 0, queue: dict | None = None, stats: dict | None = None) -> None:
        self.busy_polls = busy_polls
        self.busy = queue or json.loads((API / "queue_busy.json").read_text())
        self.idle = json.loads((API / "queue_idle.json").read_text())
        self.stats = stats if stats is not None else json.loads((API / "system_stats.json").read_text())
        self.queue_calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/queue":
                    fake.queue_calls += 1
                    body = fake.busy if fake.queue_calls <= fake.busy_polls else fake.idle
                elif self.path == "/system_stats":
                    body = fake.stats
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeComfyUI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def lifecycle(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(LIFECYCLE), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return result, time.monotonic() - start


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


# --- startup probe ---------------------------------------------------------------------------


def test_startup_waits_for_the_models_ready_marker(tmp_path):
    marker = tmp_path / ".comfyui-models-ready"
    with FakeComfyUI() as comfy:
        result, _ = lifecycle("startup-check", "--marker", str(marker), "--url", comfy.url)
        assert result.returncode == 1 and "models not ready" in result.stdout
        marker.touch()
        result, _ = lifecycle("startup-check", "--marker", str(marker), "--url", comfy.url)
        assert result.returncode == 0, result.stdout


def test_startup_waits_for_comfyui_to_answer(tmp_path):
    marker = tmp_path / ".comfyui-models-ready"
    marker.touch()
    result, _ = lifecycle("startup-check", "--marker", str(marker), "--url", closed_port_url())
    assert result.returncode == 1 and "does not answer /system_stats" in result.stdout
    with FakeComfyUI(stats={"unexpected": True}) as comfy:
        result, _ = lifecycle("startup-check", "--marker", str(marker), "--url", comfy.url)
        assert result.returncode == 1


# --- preStop drain -----------------------------------------------------------------------------


def test_drain_waits_until_running_and_pending_are_empty():
    with FakeComfyUI(busy_polls=3) as comfy:
        result, elapsed = lifecycle("drain", "--timeout", "20", "--interval", "0.2", "--url", comfy.url)
    assert result.returncode == 0, result.stdout
    assert comfy.queue_calls == 4
    assert "draining: 1 running, 2 pending" in result.stdout
    assert "queue is empty" in result.stdout
    assert elapsed >= 0.6


def test_drain_waits_for_pending_prompts_too():
    pending_only = {
        "queue_running": [],
        "queue_pending": json.loads((API / "queue_busy.json").read_text())["queue_pending"],
    }
    with FakeComfyUI(busy_polls=2, queue=pending_only) as comfy:
        result, _ = lifecycle("drain", "--timeout", "20", "--interval", "0.1", "--url", comfy.url)
    assert result.returncode == 0
    assert comfy.queue_calls == 3
    assert "0 running, 2 pending" in result.stdout


def test_drain_is_bounded_by_its_timeout():
    with FakeComfyUI(busy_polls=10_000) as comfy:
        result, elapsed = lifecycle("drain", "--timeout", "1.5", "--interval", "0.2", "--url", comfy.url)
    assert result.returncode == 1
    assert "timed out" in result.stdout
    assert 1.4 <= elapsed < 5


def test_drain_returns_at_once_when_comfyui_is_gone():
    result, elapsed = lifecycle("drain", "--timeout", "60", "--interval", "0.1", "--url", closed_port_url())
    assert result.returncode == 0
    assert "nothing left to drain" in result.stdout
    assert elapsed < 5


# --- output uploader ---------------------------------------------------------------------------


def write(path: Path, data: bytes, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def load_uploader():
    import importlib.util

    spec = importlib.util.spec_from_file_location("output_uploader", UPLOADER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uploader_copies_settled_files_only(tmp_path):
    uploader_module = load_uploader()
    source, dest = tmp_path / "staging", tmp_path / "bucket"
    write(source / "ComfyUI_00001_.png", b"png", age=60)
    write(source / "video" / "clip_00001_.mp4", b"mp4" * 1000, age=60)
    write(source / "video" / "clip_00002_.mp4", b"still being muxed")  # just written
    write(source / ".partial", b"x", age=60)
    uploader = uploader_module.Uploader(source, dest, settle=15, keep_local=3600)
    assert uploader.sweep() == 0
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "ComfyUI_00001_.png",
        "video/clip_00001_.mp4",
    ]
    assert (dest / "video" / "clip_00001_.mp4").read_bytes() == b"mp4" * 1000
    # Unchanged files are not copied again; a file that settles later is.
    (dest / "ComfyUI_00001_.png").unlink()
    stamp = time.time() - 60
    os.utime(source / "video" / "clip_00002_.mp4", (stamp, stamp))
    assert uploader.sweep() == 0
    assert not (dest / "ComfyUI_00001_.png").exists()
    assert (dest / "video" / "clip_00002_.mp4").read_bytes() == b"still being muxed"


def test_uploader_writes_like_mountpoint_allows(tmp_path, monkeypatch):
    # Mountpoint for S3: sequential writes of new files only; no rename, chmod, utime or copystat.
    uploader_module = load_uploader()

    def refuse(*args, **kwargs):
        raise OSError(95, "Operation not supported by Mountpoint")

    for name in ("rename", "replace", "chmod", "utime"):
        monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr("shutil.copystat", refuse)
    monkeypatch.setattr("shutil.copymode", refuse)
    source, dest = tmp_path / "staging", tmp_path / "bucket"
    write(source / "a_00001_.webm", b"video", age=0)
    uploader = uploader_module.Uploader(source, dest, settle=0, keep_local=3600)
    assert uploader.sweep() == 0
    assert (dest / "a_00001_.webm").read_bytes() == b"video"


def test_uploader_prunes_local_copies_but_keeps_each_prefix_counter(tmp_path):
    uploader_module = load_uploader()
    source, dest = tmp_path / "staging", tmp_path / "bucket"
    for counter in (1, 2, 3):
        write(source / f"ComfyUI_{counter:05d}_.png", b"img", age=60)
    write(source / "video" / "clip_00007.mp4", b"v", age=60)
    write(source / "notes.txt", b"n", age=60)
    uploader = uploader_module.Uploader(source, dest, settle=1, keep_local=0)
    uploader.sweep()  # uploads
    uploader.sweep()  # prunes what was uploaded, except the highest number of each prefix
    left = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert left == ["ComfyUI_00003_.png", "video/clip_00007.mp4"]
    assert len([p for p in dest.rglob("*") if p.is_file()]) == 5


def test_uploader_retries_a_failed_copy(tmp_path):
    uploader_module = load_uploader()
    source, dest = tmp_path / "staging", tmp_path / "bucket"
    write(source / "x_00001_.png", b"x", age=60)
    dest.write_text("the mount is not there yet")  # every copy fails with an OSError
    uploader = uploader_module.Uploader(source, dest, settle=1, keep_local=3600)
    assert uploader.sweep() == 1
    assert not uploader.uploaded
    dest.unlink()
    assert uploader.sweep() == 0
    assert (dest / "x_00001_.png").read_bytes() == b"x"


def test_uploader_flushes_everything_on_sigterm_under_the_pod_name(tmp_path):
    source, dest, heartbeat = tmp_path / "staging", tmp_path / "bucket", tmp_path / "heartbeat"
    source.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            str(UPLOADER),
            "run",
            "--source",
            str(source),
            "--dest",
            str(dest),
            "--heartbeat",
            str(heartbeat),
            "--settle",
            "3600",
            "--interval",
            "0.2",
        ],
        env={**os.environ, "POD_NAME": "comfyui-7d9f-abcde"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not heartbeat.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heartbeat.exists()
        health = subprocess.run([sys.executable, str(UPLOADER), "health", "--heartbeat", str(heartbeat)], check=False)
        assert health.returncode == 0
        # Fresh files would wait for --settle; SIGTERM copies them at once.
        write(source / "video" / "final_00001_.mp4", b"last frames")
        time.sleep(0.3)
        assert not (dest / "comfyui-7d9f-abcde" / "video" / "final_00001_.mp4").exists()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert (dest / "comfyui-7d9f-abcde" / "video" / "final_00001_.mp4").read_bytes() == b"last frames"
    assert "final copy done" in output


def test_uploader_health_fails_without_a_recent_sweep(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    missing = subprocess.run([sys.executable, str(UPLOADER), "health", "--heartbeat", str(heartbeat)], check=False)
    assert missing.returncode == 1
    write(heartbeat, b"", age=600)
    stale = subprocess.run(
        [sys.executable, str(UPLOADER), "health", "--heartbeat", str(heartbeat), "--max-age", "120"], check=False
    )
    assert stale.returncode == 1


@pytest.mark.parametrize("script", [LIFECYCLE, UPLOADER])
def test_pod_scripts_use_only_the_standard_library(script):
    # They run with the ComfyUI image's python3; nothing may need a package the image might lack.
    import ast

    tree = ast.parse(script.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
