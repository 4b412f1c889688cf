"""The checkov gate: scan every synthesized stack; fail on any failed check not justified in
tests/checkov_skips.yaml, and on any skip that no longer matches anything (stale).

    pipenv run python -m tests.checkov_gate cdktf.out/stacks
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

SKIPS_FILE = Path(__file__).resolve().parent / "checkov_skips.yaml"


@dataclass(frozen=True)
class Finding:
    check_id: str
    stack: str
    resource: str
    name: str

    @property
    def target(self) -> str:
        return f"{self.stack}/{self.resource}"


@dataclass
class Skip:
    check_id: str
    reason: str
    resources: list[str]
    used: int = 0

    def matches(self, finding: Finding) -> bool:
        return finding.check_id == self.check_id and any(
            fnmatch.fnmatchcase(finding.target, pattern) for pattern in self.resources
        )


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    data = yaml.safe_load(path.read_text()) or {}
    skips = []
    for check_id, entry in data.items():
        reason = (entry or {}).get("reason", "").strip()
        if not reason:
            raise ValueError(f"{path.name}: {check_id}: every skip needs a reason")
        unknown = set(entry) - {"reason", "resources"}
        if unknown:
            raise ValueError(f"{path.name}: {check_id}: unknown keys {sorted(unknown)}")
        skips.append(Skip(check_id, reason, list(entry.get("resources", ["*"]))))
    return skips


def checkov_command(stacks_dir: Path, *options: str) -> list[str]:
    """checkov over every synthesized stack, offline; `options` pick the output."""
    return [
        sys.executable,
        "-m",
        "checkov.main",
        "--directory",
        str(stacks_dir),
        "--framework",
        "terraform_json",
        "--quiet",
        "--skip-download",  # no network: do not fetch guidelines or policies from the platform
        *options,
    ]


def run_checkov(stacks_dir: Path) -> list[Finding]:
    command = checkov_command(stacks_dir, "--output", "json", "--compact")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed to run (exit {result.returncode}): {result.stderr[-2000:]}")
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    if isinstance(reports, dict):
        reports = [reports]
    findings = []
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse: {report['results'].get('parsing_errors')}")
        for failed in report.get("results", {}).get("failed_checks", []):
            stack = Path(failed["file_path"]).parent.name
            findings.append(Finding(failed["check_id"], stack, failed["resource"], failed.get("check_name", "")))
    return findings


def evaluate(findings: list[Finding], skips: list[Skip]) -> tuple[list[Finding], list[Skip]]:
    """(unjustified findings, stale skips)."""
    unjustified = []
    for finding in findings:
        matched = [skip for skip in skips if skip.matches(finding)]
        for skip in matched:
            skip.used += 1
        if not matched:
            unjustified.append(finding)
    stale = [skip for skip in skips if skip.used == 0]
    return unjustified, stale


def main(argv: list[str]) -> int:
    stacks_dir = Path(argv[0]) if argv else Path("cdktf.out/stacks")
    if not any(stacks_dir.glob("*/cdk.tf.json")):
        print(f"checkov gate: no synthesized stacks in {stacks_dir}; run `npx cdktf synth` first")
        return 2
    skips = load_skips()
    findings = run_checkov(stacks_dir)
    unjustified, stale = evaluate(findings, skips)
    for finding in unjustified:
        print(f"FAILED {finding.check_id} {finding.target}: {finding.name}")
    for skip in stale:
        print(f"STALE skip {skip.check_id} ({', '.join(skip.resources)}): matches no finding; remove it")
    stacks = len(list(stacks_dir.glob("*/cdk.tf.json")))
    print(
        f"checkov gate: {stacks} stacks, {len(findings)} findings, {len(findings) - len(unjustified)} justified "
        f"by {len(skips) - len(stale)} skips, {len(unjustified)} unjustified, {len(stale)} stale skips"
    )
    return 1 if unjustified or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
