#!/usr/bin/env python3
"""Summarize `terraform show -json tfplan` documents for a pull request comment or a job summary.

Counts follow Terraform's own "Plan: X to add, Y to change, Z to destroy" (a replace counts as
one add and one destroy), so the comment and the CLI never disagree. Every destroy and replace
gets its own warning line. Standard library only: it runs on a bare runner.

    plan_summary.py stack plan.json                 # one line of counts
    plan_summary.py comment RESULTS_DIR [...]       # the pull request comment (markdown)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The comment is found (and updated in place) by this marker.
MARKER = "<!-- comfyui-on-eks:terraform-plan-summary -->"
# GitHub rejects comments over 65536 characters; leave room for the footer.
MAX_COMMENT = 60000
MAX_WARNINGS_PER_STACK = 20


@dataclass
class StackSummary:
    add: int = 0
    change: int = 0
    destroy: int = 0
    imports: int = 0
    forget: int = 0
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    outputs_changed: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.imports or self.forget or self.outputs_changed)

    @property
    def destructive(self) -> bool:
        return bool(self.replaced or self.deleted)

    def counts(self) -> str:
        text = f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"
        if self.imports:
            text += f", {self.imports} to import"
        if self.forget:
            text += f", {self.forget} to forget"
        return text

    def to_dict(self) -> dict:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "import": self.imports,
            "forget": self.forget,
            "replaced": self.replaced,
            "deleted": self.deleted,
            "outputs_changed": self.outputs_changed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StackSummary:
        return cls(
            add=data["add"],
            change=data["change"],
            destroy=data["destroy"],
            imports=data.get("import", 0),
            forget=data.get("forget", 0),
            replaced=list(data.get("replaced", [])),
            deleted=list(data.get("deleted", [])),
            outputs_changed=data.get("outputs_changed", False),
        )


def summarize(plan: dict) -> StackSummary:
    """Counts and destructive addresses from one `terraform show -json` plan document."""
    if "resource_changes" not in plan and "planned_values" not in plan:
        raise ValueError("not a terraform plan document (no resource_changes/planned_values)")
    summary = StackSummary()
    for rc in plan.get("resource_changes", []):
        if rc.get("mode") == "data":
            continue  # data sources read during apply are not changes to infrastructure
        change = rc.get("change", {})
        actions = change.get("actions", [])
        address = rc["address"] + (f" (deposed {rc['deposed']})" if rc.get("deposed") else "")
        if change.get("importing"):
            summary.imports += 1
        if actions in (["delete", "create"], ["create", "delete"]):
            summary.add += 1
            summary.destroy += 1
            order = "destroy before create" if actions[0] == "delete" else "create before destroy"
            summary.replaced.append(f"{address} ({order})")
        elif actions == ["create"]:
            summary.add += 1
        elif actions == ["update"]:
            summary.change += 1
        elif actions == ["delete"]:
            summary.destroy += 1
            summary.deleted.append(address)
        elif actions == ["forget"]:
            summary.forget += 1
    summary.outputs_changed = any(
        oc.get("actions", ["no-op"]) != ["no-op"] for oc in plan.get("output_changes", {}).values()
    )
    return summary


def _cell(text: str) -> str:
    # Resource keys may hold any character: keep the table and inline code intact.
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def warning_lines(stack: str, summary: StackSummary) -> list[str]:
    lines = [f"> [!WARNING]\n> **{stack}** destroys `{_cell(a)}`" for a in summary.deleted]
    lines += [f"> [!WARNING]\n> **{stack}** replaces `{_cell(a)}`" for a in summary.replaced]
    if len(lines) > MAX_WARNINGS_PER_STACK:
        rest = len(lines) - MAX_WARNINGS_PER_STACK
        lines = [*lines[:MAX_WARNINGS_PER_STACK], f"> [!WARNING]\n> **{stack}**: {rest} more destroy/replace"]
    return lines


# One result file per environment, written by ci_stacks.py: {"environment", "stacks": [...], ...}.
def render_environment(result: dict) -> str:
    env = result["environment"]
    lines = [f"### {env}", ""]
    if result.get("skipped"):
        return "\n".join([*lines, f"Plans skipped: {result['skipped']}", ""])
    lines += ["| Stack | Add | Change | Destroy | Note |", "| --- | ---: | ---: | ---: | --- |"]
    warnings: list[str] = []
    for stack in result["stacks"]:
        status = stack["status"]
        if status == "planned":
            summary = StackSummary.from_dict(stack["summary"])
            notes = (
                ["⚠️ destroys or replaces"] if summary.destructive else ([] if summary.has_changes else ["no changes"])
            )
            notes += [f"{summary.imports} to import"] if summary.imports else []
            notes += [f"{summary.forget} to forget"] if summary.forget else []
            notes += ["outputs change"] if summary.outputs_changed else []
            note = ", ".join(notes)
            lines.append(f"| {stack['id']} | {summary.add} | {summary.change} | {summary.destroy} | {note} |")
            warnings += warning_lines(stack["id"], summary)
        else:
            lines.append(f"| {stack['id']} | – | – | – | {_cell(stack.get('detail', status))} |")
    lines.append("")
    for warning in warnings:
        lines += [warning, ""]
    return "\n".join(lines)


def render_comment(results: list[dict], *, header: str = "", footer: str = "") -> str:
    parts = [MARKER, "## Terraform plan", ""]
    if header:
        parts += [header, ""]
    if not results:
        parts += ["No environment was planned.", ""]
    body = "\n".join(parts) + "\n".join(render_environment(result) for result in sorted(results, key=_env_key))
    if len(body) > MAX_COMMENT:
        body = body[:MAX_COMMENT] + "\n\n… (truncated: see the job summaries and plan artifacts)\n"
    return body + ("\n" + footer + "\n" if footer else "")


def _env_key(result: dict) -> str:
    return result["environment"]


def load_results(paths: list[Path]) -> list[dict]:
    results = []
    for path in paths:
        files = sorted(path.rglob("result.json")) if path.is_dir() else [path]
        results += [json.loads(file.read_text()) for file in files]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser("stack", help="counts of one plan JSON document")
    stack.add_argument("plan_json", type=Path)
    comment = commands.add_parser("comment", help="markdown comment from result.json files")
    comment.add_argument("results", type=Path, nargs="*")
    comment.add_argument("--skipped", default="[]", help='JSON list of {"environment", "skipped": reason}')
    comment.add_argument("--header", default="")
    comment.add_argument("--footer", default="")
    args = parser.parse_args(argv)
    if args.command == "stack":
        summary = summarize(json.loads(args.plan_json.read_text()))
        print(summary.counts())
        for line in warning_lines(args.plan_json.parent.name, summary):
            print(line.replace("> [!WARNING]\n> ", "WARNING: "))
        return 0
    results = load_results([path for path in args.results if path.exists()]) + json.loads(args.skipped or "[]")
    sys.stdout.write(render_comment(results, header=args.header, footer=args.footer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
