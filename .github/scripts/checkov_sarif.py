#!/usr/bin/env python3
"""checkov's SARIF for code scanning, minus the findings tests/checkov_skips.yaml justifies.

The gate (tests/checkov_gate.py) decides pass/fail; this only feeds code scanning, so an alert
there is always an unjustified finding, never a known and explained skip.

    pipenv run python .github/scripts/checkov_sarif.py cdktf.out/stacks checkov.sarif
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))
from tests.checkov_gate import Finding, checkov_command, load_skips  # noqa: E402

_RESOURCE_NAME = re.compile(r'^\s*"([^"]+)"\s*:\s*\{')


def resource_of(result: dict, stacks_dir: Path) -> tuple[str, str] | None:
    """(stack, "type.name") of a SARIF result, from its file and the snippet's first line."""
    location = result["locations"][0]["physicalLocation"]
    stack = Path(location["artifactLocation"]["uri"]).parent.name
    snippet = location.get("region", {}).get("snippet", {}).get("text", "")
    match = _RESOURCE_NAME.match(snippet.splitlines()[0]) if snippet else None
    config_file = stacks_dir / stack / "cdk.tf.json"
    if not match or not config_file.is_file():
        return None
    for rtype, items in json.loads(config_file.read_text()).get("resource", {}).items():
        if match.group(1) in items:
            return stack, f"{rtype}.{match.group(1)}"
    return None


def filter_sarif(sarif: dict, stacks_dir: Path) -> tuple[dict, int]:
    skips = load_skips()
    dropped = 0
    for run in sarif.get("runs", []):
        kept = []
        for result in run.get("results", []):
            where = resource_of(result, stacks_dir)
            finding = Finding(result["ruleId"], *where, "") if where else None
            if finding and any(skip.matches(finding) for skip in skips):
                dropped += 1
            else:
                kept.append(result)
        run["results"] = kept
    return sarif, dropped


def main(argv: list[str]) -> int:
    stacks_dir, output = Path(argv[0]), Path(argv[1])
    with tempfile.TemporaryDirectory() as reports:
        command = checkov_command(stacks_dir, "--output", "sarif", "--output-file-path", reports, "--soft-fail")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        sarif = json.loads((Path(reports) / "results_sarif.sarif").read_text())
    sarif, dropped = filter_sarif(sarif, stacks_dir)
    output.write_text(json.dumps(sarif, indent=1))
    kept = sum(len(run.get("results", [])) for run in sarif.get("runs", []))
    print(f"{output}: {kept} finding(s) for code scanning, {dropped} justified in tests/checkov_skips.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
