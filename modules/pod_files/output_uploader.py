#!/usr/bin/env python3
"""Copies finished ComfyUI outputs from the pod's local output dir to the outputs bucket.

ComfyUI writes every output to a local emptyDir: video muxers seek back into the file they write
(the MP4 index), which Mountpoint for S3 cannot do. This sidecar copies each file once it has not
changed for --settle seconds to the outputs bucket, mounted by Mountpoint at --dest, under
<dest>/<pod name>/<path> so replicas never overwrite each other's numbered files.
Writes are plain sequential writes of new objects (no rename, no seek, no chmod): what Mountpoint
supports. Local copies are deleted --keep-local seconds after upload, so the emptyDir does not fill
up while ComfyUI's UI can still show recent outputs; the highest-numbered file of each name prefix
(`ComfyUI_00042_.png`) stays, because ComfyUI numbers the next file from what is in the directory
and would otherwise start again at 00001 and overwrite objects already in the bucket.

On SIGTERM (the pod stops; the preStop hook first waited for ComfyUI's queue to drain) it copies
everything left without waiting for --settle, then exits.

    output_uploader.py run --source DIR --dest DIR --heartbeat FILE [--settle S] [--interval S] [--keep-local S]
    output_uploader.py health --heartbeat FILE [--max-age S]     (liveness/readiness probe)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

COPY_BUFFER = 8 * 1024 * 1024
# ComfyUI's numbered names: <prefix>_<counter>_.<ext> (SaveImage, SaveVideo) or <prefix>_<counter>.<ext>.
NUMBERED = re.compile(r"^(?P<prefix>.+)_(?P<counter>[0-9]+)_?\.[^.]+$")


def log(message: str) -> None:
    sys.stdout.write(f"output-uploader: {message}\n")
    sys.stdout.flush()


class Uploader:
    def __init__(self, source: Path, dest: Path, settle: float, keep_local: float) -> None:
        self.source = source
        self.dest = dest
        self.settle = settle
        self.keep_local = keep_local
        # relative path -> (size, mtime_ns, uploaded at) of the version already in the bucket
        self.uploaded: dict[str, tuple[int, int, float]] = {}

    def files(self) -> list[tuple[str, os.stat_result]]:
        found = []
        for directory, subdirs, filenames in os.walk(self.source):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # partial files and our own bookkeeping
                path = Path(directory) / name
                try:
                    found.append((str(path.relative_to(self.source)), path.stat()))
                except FileNotFoundError:
                    continue
        return found

    def copy(self, relative: str) -> None:
        target = self.dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # Mountpoint commits the object on close; a failed copy leaves no partial object behind.
        with open(self.source / relative, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_BUFFER)

    @staticmethod
    def counter_keepers(relatives: list[str]) -> set[str]:
        """The highest-numbered file of each (directory, prefix): ComfyUI's next number comes from it."""
        best: dict[tuple[str, str], tuple[int, str]] = {}
        for relative in relatives:
            directory, name = os.path.split(relative)
            match = NUMBERED.match(name)
            if match:
                key = (directory, match["prefix"])
                counter = int(match["counter"])
                if key not in best or counter > best[key][0]:
                    best[key] = (counter, relative)
        return {relative for _, relative in best.values()}

    def sweep(self, final: bool = False) -> int:
        """Copy every settled (or, when final, every) changed file; return how many failed."""
        now = time.time()
        failed = 0
        files = self.files()
        keepers = self.counter_keepers([relative for relative, _ in files])
        for relative, stat in files:
            version = (stat.st_size, stat.st_mtime_ns)
            done = self.uploaded.get(relative)
            if done and done[:2] == version:
                if now - done[2] >= self.keep_local and relative not in keepers:
                    (self.source / relative).unlink(missing_ok=True)
                    del self.uploaded[relative]
                continue
            if not final and now - stat.st_mtime < self.settle:
                continue  # still being written
            try:
                self.copy(relative)
            except OSError as err:
                failed += 1
                log(f"copy of {relative} failed, will retry: {err}")
                continue
            self.uploaded[relative] = (*version, now)
            log(f"uploaded {relative} ({stat.st_size} bytes)")
        return failed


def run(args: argparse.Namespace) -> int:
    dest = Path(args.dest) / args.pod_name if args.pod_name else Path(args.dest)
    uploader = Uploader(Path(args.source), dest, args.settle, args.keep_local)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    heartbeat = Path(args.heartbeat)
    log(f"copying settled files from {args.source} to {dest} every {args.interval}s")
    while not stop.is_set():
        uploader.sweep()
        heartbeat.touch()
        stop.wait(args.interval)
    failed = uploader.sweep(final=True)
    log("final copy done" if not failed else f"final copy: {failed} file(s) could not be copied")
    return 1 if failed else 0


def health(args: argparse.Namespace) -> int:
    try:
        age = time.time() - os.stat(args.heartbeat).st_mtime
    except FileNotFoundError:
        print("no heartbeat yet")
        return 1
    if age > args.max_age:
        print(f"last sweep {age:.0f}s ago (limit {args.max_age}s)")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--source", required=True)
    run_parser.add_argument("--dest", required=True)
    run_parser.add_argument("--heartbeat", required=True)
    run_parser.add_argument("--pod-name", default=os.environ.get("POD_NAME", ""))
    run_parser.add_argument("--settle", type=float, default=15.0)
    run_parser.add_argument("--interval", type=float, default=5.0)
    run_parser.add_argument("--keep-local", type=float, default=3600.0)
    health_parser = commands.add_parser("health")
    health_parser.add_argument("--heartbeat", required=True)
    health_parser.add_argument("--max-age", type=float, default=120.0)
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else health(args)


if __name__ == "__main__":
    sys.exit(main())
