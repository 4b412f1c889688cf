#!/usr/bin/env python3
"""Lifecycle checks for the ComfyUI container (mounted from a ConfigMap; standard library only).

comfyui_lifecycle.py startup-check --marker PATH [--url URL]
    Startup probe: exit 0 once the node's boot model sync wrote its ready marker AND ComfyUI
    answers /system_stats. Until then the pod is not started, so it never serves without models.

comfyui_lifecycle.py drain --timeout SECONDS [--url URL] [--interval SECONDS]
    preStop hook: wait until ComfyUI's queue is empty (nothing running, nothing pending), so a
    prompt in progress finishes before the container gets SIGTERM (consolidation, rollout, spot
    interruption). Bounded by SECONDS (terminationGracePeriodSeconds minus a shutdown margin).
    Exit 0: drained or ComfyUI is gone; exit 1: timed out with work left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8188"


def log(message: str) -> None:
    # Hook output is otherwise invisible; the container's stdout (PID 1) lands in `kubectl logs`.
    line = f"comfyui-lifecycle: {message}\n"
    try:
        with open("/proc/1/fd/1", "w") as stdout:
            stdout.write(line)
    except OSError:
        pass
    sys.stdout.write(line)
    sys.stdout.flush()


def get_json(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL from the pod spec)
        return json.load(response)


def startup_check(args: argparse.Namespace) -> int:
    if not os.path.exists(args.marker):
        print(f"models not ready: {args.marker} does not exist yet (boot model sync still running)")
        return 1
    try:
        stats = get_json(f"{args.url}/system_stats", timeout=args.request_timeout)
    except (OSError, ValueError) as err:
        print(f"ComfyUI does not answer /system_stats yet: {err}")
        return 1
    if "system" not in stats:
        print("ComfyUI /system_stats answered without a 'system' section")
        return 1
    return 0


def queue_lengths(url: str, timeout: float) -> tuple[int, int]:
    queue = get_json(f"{url}/queue", timeout=timeout)
    return len(queue.get("queue_running") or []), len(queue.get("queue_pending") or [])


def drain(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    unreachable = 0
    last = None
    while True:
        try:
            running, pending = queue_lengths(args.url, args.request_timeout)
            unreachable = 0
        except (OSError, ValueError) as err:
            unreachable += 1
            if unreachable >= args.unreachable_limit:
                log(f"ComfyUI does not answer /queue ({err}); nothing left to drain")
                return 0
        else:
            if running == 0 and pending == 0:
                log("queue is empty; the container may stop")
                return 0
            if (running, pending) != last:
                log(f"draining: {running} running, {pending} pending; waiting up to {args.timeout}s in total")
                last = (running, pending)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log(f"drain timed out after {args.timeout}s with work left; the prompt in progress is lost")
            return 1
        time.sleep(min(args.interval, remaining))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    startup = commands.add_parser("startup-check")
    startup.add_argument("--marker", required=True)
    startup.add_argument("--url", default=DEFAULT_URL)
    startup.add_argument("--request-timeout", type=float, default=3.0)
    drain_parser = commands.add_parser("drain")
    drain_parser.add_argument("--timeout", type=float, required=True)
    drain_parser.add_argument("--url", default=DEFAULT_URL)
    drain_parser.add_argument("--interval", type=float, default=5.0)
    drain_parser.add_argument("--request-timeout", type=float, default=5.0)
    drain_parser.add_argument("--unreachable-limit", type=int, default=3)
    args = parser.parse_args(argv)
    return startup_check(args) if args.command == "startup-check" else drain(args)


if __name__ == "__main__":
    sys.exit(main())
