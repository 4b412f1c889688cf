"""Wall time and peak memory of a full synth with 1, 2 and 4 environments.

    pipenv run python bench/synth.py [--runs 3] [--envs 1,2,4]

Each run is `python main.py` in a fresh temp dir, with COMFYUI_CONFIG_DIR pointing at generated
environment files (copies of config/dev.yaml with their own name and CIDR). Peak memory is the
largest sum of RSS over the whole process tree (Python plus the jsii Node.js runtime), sampled
every 20 ms from /proc. Reports the median of the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def write_environments(directory: Path, count: int) -> None:
    base = yaml.safe_load((PROJECT / "config" / "dev.yaml").read_text())
    for index in range(count):
        env = dict(base)
        env["name"] = f"bench{index}"
        env["network"] = {**base.get("network", {}), "cidr": f"10.{40 + index}.0.0/16"}
        if "ci" in base:
            # One GitHub OIDC provider per account: only the first environment creates it.
            env["ci"] = {**base["ci"], "create_oidc_provider": index == 0}
        (directory / f"bench{index}.yaml").write_text(yaml.safe_dump(env))


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(root: int) -> int:
    tree = _children()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        stack.extend(tree.get(pid, []))
    return total


def run_once(count: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        configs = Path(tmp) / "config"
        configs.mkdir()
        write_environments(configs, count)
        env = {
            **os.environ,
            "COMFYUI_CONFIG_DIR": str(configs),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
        env.pop("CDKTF_ENVIRONMENTS", None)
        env.pop("CDKTF_CONTEXT_JSON", None)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(PROJECT / "main.py")], cwd=tmp, env=env, stdout=subprocess.DEVNULL
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"synth with {count} environments failed (exit {process.returncode})")
        stacks = len(list((Path(tmp) / "cdktf.out" / "stacks").iterdir()))
        return elapsed, peak, stacks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--envs", default="1,2,4", help="comma-separated environment counts")
    args = parser.parse_args()
    counts = [int(part) for part in args.envs.split(",")]
    rows = []
    for count in counts:
        results = [run_once(count) for _ in range(args.runs)]
        times = [r[0] for r in results]
        peaks = [r[1] for r in results]
        rows.append((count, results[0][2], statistics.median(times), min(times), statistics.median(peaks)))
    print(f"synth benchmark: median of {args.runs} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("| environments | stacks | wall time (median) | wall time (best) | peak memory (median) |")
    print("|---:|---:|---:|---:|---:|")
    for count, stacks, median, best, peak in rows:
        print(f"| {count} | {stacks} | {median:.1f} s | {best:.1f} s | {peak / 2**20:,.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
