#!/usr/bin/env python3
"""Stack selection, plans and applies for the GitHub workflows (.github/workflows/).

    ci_stacks.py targets --purpose plan|deploy [--environments "dev prod"]   # needs the project's config
    ci_stacks.py order   --environment dev [--stacks "PATTERN ..."] [--purpose deploy]
    ci_stacks.py plan    --environment dev --out plans/dev [--stacks ...] [--purpose deploy]
    ci_stacks.py apply   --plans plans/dev --commit SHA --digest SHA256 [--replan-deferred]

Order comes from cdktf.out/manifest.json (each stack's dependencies), never from a list kept here.
`plan` runs `terraform init` + `terraform plan -lock=false` in each stack directory (the plan role
cannot write, not even a lock file: docs/ci.md) and writes result.json, which plan_summary.py
renders. A stack whose upstream stack changes its outputs is deferred: its plan would read
outputs that do not exist yet. `apply` applies exactly the saved plans, after checking that they
are the files the plan job produced for this commit. Standard library only, except `targets`.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_summary import StackSummary, render_environment, summarize

PROJECT = Path(__file__).resolve().parents[2]
# Tie-break between stacks the manifest leaves unordered (DESIGN order).
COMPONENTS = ("bootstrap", "network", "storage", "cluster", "addons", "model-sync", "workload", "edge", "ci")


def role_variable(kind: str, environment: str) -> str:
    """Repository variable holding an environment's role ARN, e.g. AWS_PLAN_ROLE_ARN_DEV."""
    return f"AWS_{kind.upper()}_ROLE_ARN_{re.sub(r'[^A-Za-z0-9]', '_', environment).upper()}"


@dataclass(frozen=True)
class Stack:
    id: str
    environment: str
    component: str
    dependencies: tuple[str, ...]


def load_stacks(outdir: Path) -> dict[str, Stack]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {}
    for stack_id, entry in manifest["stacks"].items():
        config = json.loads((outdir / entry["synthesizedStackPath"]).read_text())
        environment = _environment_of(stack_id, config)
        component = stack_id.removeprefix(f"{environment}-")
        stacks[stack_id] = Stack(stack_id, environment, component, tuple(entry.get("dependencies", ())))
    return stacks


def _environment_of(stack_id: str, config: dict) -> str:
    # Environment names may contain '-': the provider's default tags say which one it is.
    for provider in config.get("provider", {}).get("aws", []):
        for tags in provider.get("default_tags", []):
            if "Environment" in tags.get("tags", {}):
                return tags["tags"]["Environment"]
    return stack_id.split("-", 1)[0]


def _rank(stack: Stack) -> tuple[int, str]:
    index = COMPONENTS.index(stack.component) if stack.component in COMPONENTS else len(COMPONENTS)
    return index, stack.id


def ordered(stacks: dict[str, Stack], ids: list[str]) -> list[str]:
    """Dependency order of `ids` (dependencies outside `ids` are taken as deployed)."""
    chosen = set(ids)
    pending = {sid: {dep for dep in stacks[sid].dependencies if dep in chosen} for sid in chosen}
    result: list[str] = []
    while pending:
        ready = sorted((sid for sid, deps in pending.items() if not deps), key=lambda sid: _rank(stacks[sid]))
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(pending)}")
        for sid in ready:
            result.append(sid)
            del pending[sid]
        for deps in pending.values():
            deps.difference_update(ready)
    return result


def select(
    stacks: dict[str, Stack],
    environment: str,
    patterns: str = "*",
    *,
    purpose: str = "plan",
    include_bootstrap: bool = False,
) -> list[str]:
    """Stacks of one environment matching any pattern (stack id or component), in deploy order."""
    wanted = [p for p in re.split(r"[\s,]+", patterns.strip()) if p] or ["*"]
    # Bootstrap only when asked (an administrator running this locally: the workflows never ask, the
    # deploy role cannot touch the state bucket); ci is never deployed by this script.
    excluded = set() if include_bootstrap else {"bootstrap"}
    if purpose == "deploy":
        excluded.add("ci")
    ids = [
        s.id
        for s in stacks.values()
        if s.environment == environment
        and s.component not in excluded
        and any(fnmatch.fnmatchcase(s.id, p) or fnmatch.fnmatchcase(s.component, p) for p in wanted)
    ]
    if not any(s.environment == environment for s in stacks.values()):
        raise ValueError(f"no stacks for environment {environment!r} in the synthesized output")
    return ordered(stacks, ids)


def upstream(stacks: dict[str, Stack], stack_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(stacks[stack_id].dependencies)
    while todo:
        dep = todo.pop()
        if dep not in seen and dep in stacks:
            seen.add(dep)
            todo += stacks[dep].dependencies
    return seen


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(command: list[str], cwd: Path, log: Path | None = None) -> subprocess.CompletedProcess:
    print(f"::group::{cwd.name}: {' '.join(command[:2])}", flush=True)
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    print("::endgroup::", flush=True)
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    return result


def _last_error(result: subprocess.CompletedProcess) -> str:
    lines = [line.strip("│ ").strip() for line in (result.stderr or result.stdout).splitlines()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or [line for line in lines if line] or ["failed"])[0][:300]


def _stage(source: Path, target: Path) -> None:
    """Copy what `terraform apply tfplan` needs: config, lock file, assets (not .terraform/)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("cdk.tf.json", ".terraform.lock.hcl"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    if (source / "assets").is_dir():
        shutil.copytree(source / "assets", target / "assets", dirs_exist_ok=True)


def plan_environment(
    outdir: Path,
    environment: str,
    stack_ids: list[str],
    out: Path,
    *,
    commit: str,
    terraform: str = "terraform",
    keep_plan_files: bool = False,
) -> dict:
    """Plan each stack in order; write out/result.json (and, for deploys, the staged plan files)."""
    stacks = load_stacks(outdir)
    out.mkdir(parents=True, exist_ok=True)
    status: dict[str, StackSummary | str] = {}
    entries = []
    for stack_id in stack_ids:
        directory = outdir / "stacks" / stack_id
        entry: dict = {"id": stack_id}
        entries.append(entry)
        if keep_plan_files:
            _stage(directory, out / stack_id)
        blockers = sorted(
            dep
            for dep in upstream(stacks, stack_id)
            if dep in status and (not isinstance(status[dep], StackSummary) or status[dep].outputs_changed)  # type: ignore[union-attr]
        )
        if blockers:
            entry.update(status="deferred", detail=f"deferred: waits for {', '.join(blockers)} to be applied")
            status[stack_id] = "deferred"
            continue
        log = out / f"{stack_id}.log"
        log.write_text("")
        init = _run([terraform, "init", "-input=false", "-no-color"], directory, log)
        planned = init.returncode == 0 and (
            _run([terraform, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"], directory, log)
        )
        if init.returncode != 0 or planned.returncode != 0:
            entry.update(status="failed", detail=f"plan failed: {_last_error(planned or init)}")
            status[stack_id] = "failed"
            continue
        shown = subprocess.run(
            [terraform, "show", "-json", "tfplan"], cwd=directory, capture_output=True, text=True, check=True
        )
        summary = summarize(json.loads(shown.stdout))
        text = subprocess.run(
            [terraform, "show", "-no-color", "tfplan"], cwd=directory, capture_output=True, text=True, check=True
        )
        # The text plan redacts sensitive values; the binary plan and its JSON do not (not uploaded for PRs).
        (out / f"{stack_id}.plan.txt").write_text(text.stdout)
        entry.update(status="planned", summary=summary.to_dict())
        status[stack_id] = summary
        if keep_plan_files:
            _stage(directory, out / stack_id)
            shutil.copy2(directory / "tfplan", out / stack_id / "tfplan")
            entry["sha256"] = sha256(out / stack_id / "tfplan")
    result = {"environment": environment, "commit": commit, "stacks": entries}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def changed(result: dict) -> bool:
    return any(
        s["status"] == "deferred" or (s["status"] == "planned" and StackSummary.from_dict(s["summary"]).has_changes)
        for s in result["stacks"]
    )


class PlanMismatch(Exception):
    """The plan files are not the ones reviewed for this commit."""


def verify(plans: Path, commit: str, digest: str) -> dict:
    result_file = plans / "result.json"
    if sha256(result_file) != digest:
        raise PlanMismatch("result.json does not match the digest the plan job published")
    result = json.loads(result_file.read_text())
    if result["commit"] != commit:
        raise PlanMismatch(f"plans were made for commit {result['commit']}, not {commit}")
    for entry in result["stacks"]:
        if entry["status"] == "failed":
            raise PlanMismatch(f"{entry['id']}: {entry.get('detail', 'plan failed')}")
        if entry["status"] == "planned":
            plan_file = plans / entry["id"] / "tfplan"
            if not plan_file.is_file() or sha256(plan_file) != entry.get("sha256"):
                raise PlanMismatch(f"{entry['id']}: tfplan differs from the reviewed plan")
    return result


def apply_environment(
    plans: Path, commit: str, digest: str, *, terraform: str = "terraform", replan_deferred: bool = False
) -> list[str]:
    """Apply the verified plans in order. Returns the stacks left for a later run (deferred)."""
    result = verify(plans, commit, digest)
    left: list[str] = []
    for entry in result["stacks"]:
        directory = plans / entry["id"]
        if entry["status"] == "planned":
            if not StackSummary.from_dict(entry["summary"]).has_changes:
                print(f"{entry['id']}: no changes")
                continue
            steps = [
                [terraform, "init", "-input=false", "-no-color"],
                [terraform, "apply", "-input=false", "-no-color", "tfplan"],
            ]
        elif replan_deferred and not left:
            # Unreviewed environments only: plan again now that the upstream outputs exist, and apply.
            steps = [
                [terraform, "init", "-input=false", "-no-color"],
                [terraform, "plan", "-input=false", "-no-color", "-out=tfplan"],
                [terraform, "apply", "-input=false", "-no-color", "tfplan"],
            ]
        else:
            left.append(entry["id"])
            continue
        for step in steps:
            if _run(step, directory).returncode != 0:
                raise RuntimeError(f"{entry['id']}: `{' '.join(step[:2])}` failed (log above)")
    return left


def targets(purpose: str, names: list[str] | None, repo_vars: dict) -> dict:
    """Environments to plan or deploy (those whose role variable is set), non-production first."""
    sys.path.insert(0, str(PROJECT))
    from config import load_environments

    environments = load_environments(names=names or None)
    kind = "plan" if purpose == "plan" else "deploy"
    chosen, skipped = [], []
    for env in sorted(environments, key=lambda e: (e.production, e.name)):
        variable = role_variable(kind, env.name)
        if not repo_vars.get(variable):
            skipped.append({"environment": env.name, "skipped": f"repository variable `{variable}` is not set"})
            continue
        chosen.append(
            {
                "environment": env.name,
                "region": env.region,
                "production": env.production,
                "role_variable": variable,
                # Role ARNs are not secrets (the trust policy is the control); matrix values keep
                # the workflows free of computed `vars[...]` lookups.
                "role_arn": repo_vars[variable],
                "plan_role_arn": repo_vars.get(role_variable("plan", env.name), ""),
                "github_environment": env.ci.github_environment or "",
            }
        )
    return {
        "nonproduction": [t for t in chosen if not t["production"]],
        "production": [t for t in chosen if t["production"]],
        "all": chosen,
        "skipped": skipped,
    }


def _github_output(values: dict[str, str]) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    for key, value in values.items():
        print(f"{key}={value}")
        if target:
            with open(target, "a") as handle:
                handle.write(f"{key}={value}\n")


def _step_summary(text: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a") as handle:
            handle.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("order", "plan"):
        sub = commands.add_parser(name)
        sub.add_argument("--outdir", type=Path, default=PROJECT / "cdktf.out")
        sub.add_argument("--environment", required=True)
        sub.add_argument("--stacks", default="*", help="stack ids or components (fnmatch), space/comma separated")
        sub.add_argument("--purpose", choices=("plan", "deploy"), default="plan")
        sub.add_argument("--include-bootstrap", action="store_true")
        if name == "plan":
            sub.add_argument("--out", type=Path, required=True)
            sub.add_argument("--commit", default=os.environ.get("GITHUB_SHA", "local"))
    tgt = commands.add_parser("targets")
    tgt.add_argument("--purpose", choices=("plan", "deploy"), required=True)
    tgt.add_argument("--environments", default="", help="only these (space/comma separated); default all")
    app = commands.add_parser("apply")
    app.add_argument("--plans", type=Path, required=True)
    app.add_argument("--commit", required=True)
    app.add_argument("--digest", required=True)
    app.add_argument("--replan-deferred", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "targets":
        names = [n for n in re.split(r"[\s,]+", args.environments.strip()) if n]
        found = targets(args.purpose, names, json.loads(os.environ.get("REPO_VARS") or "{}"))
        _github_output({key: json.dumps(value, separators=(",", ":")) for key, value in found.items()})
        return 0
    if args.command == "apply":
        try:
            left = apply_environment(args.plans, args.commit, args.digest, replan_deferred=args.replan_deferred)
        except PlanMismatch as err:
            print(f"::error::refusing to apply: {err}")
            return 1
        except RuntimeError as err:
            print(f"::error::{err}")
            return 1
        if left:
            message = f"Deferred to the next run (their upstream outputs changed): {', '.join(left)}"
            print(f"::warning::{message}")
            _step_summary(message)
        return 0
    stacks = load_stacks(args.outdir)
    chosen = select(
        stacks, args.environment, args.stacks, purpose=args.purpose, include_bootstrap=args.include_bootstrap
    )
    if args.command == "order":
        print("\n".join(chosen))
        return 0
    result = plan_environment(
        args.outdir, args.environment, chosen, args.out, commit=args.commit, keep_plan_files=args.purpose == "deploy"
    )
    _step_summary(render_environment(result))
    _github_output({"changes": str(changed(result)).lower(), "digest": sha256(args.out / "result.json")})
    return 1 if any(s["status"] == "failed" for s in result["stacks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
