"""The workflows' driver (.github/scripts/ci_stacks.py): stack order, selection, environments to
plan/deploy, and plan -> verify -> apply with the real terraform binary on local-only stacks."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / ".github" / "scripts"))
import ci_stacks  # noqa: E402
from ci_stacks import PlanMismatch, apply_environment, load_stacks, plan_environment, select, targets  # noqa: E402

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")


# --- order and selection on the real synthesized app ---------------------------------------------


def test_order_follows_the_manifest_dependencies(synth, environments):
    stacks = load_stacks(synth.outdir)
    for name in environments:
        order = select(stacks, name, purpose="plan", include_bootstrap=True)
        assert order[0] == f"{name}-bootstrap"
        for position, stack_id in enumerate(order):
            for dependency in stacks[stack_id].dependencies:
                assert order.index(dependency) < position, (stack_id, dependency)
        assert {stacks[sid].environment for sid in order} == {name}


def test_bootstrap_only_when_asked_and_ci_never_deployed(synth, environments):
    stacks = load_stacks(synth.outdir)
    for name in environments:
        plan = select(stacks, name, purpose="plan")
        deploy = select(stacks, name, purpose="deploy", include_bootstrap=True)
        assert f"{name}-bootstrap" not in plan and f"{name}-ci" in plan
        assert f"{name}-ci" not in deploy and f"{name}-bootstrap" in deploy
        assert set(plan) - {f"{name}-ci"} == set(select(stacks, name, purpose="deploy"))


def test_stack_patterns_match_ids_or_components(synth):
    stacks = load_stacks(synth.outdir)
    assert select(stacks, "dev", "storage network", purpose="deploy") == ["dev-network", "dev-storage"]
    assert select(stacks, "dev", "dev-network,nothing-*", purpose="deploy") == ["dev-network"]
    assert select(stacks, "dev", "prod-*", purpose="deploy") == []
    with pytest.raises(ValueError, match="no stacks for environment 'qa'"):
        select(stacks, "qa")


def _fake_outdir(root: Path, stacks: dict[str, dict], dependencies: dict[str, list[str]]) -> Path:
    """A cdktf.out with local-backend stacks of terraform_data (built into terraform: no download)."""
    manifest = {"stacks": {}}
    for stack_id, config in stacks.items():
        (root / "stacks" / stack_id).mkdir(parents=True)
        (root / "stacks" / stack_id / "cdk.tf.json").write_text(json.dumps(config))
        manifest["stacks"][stack_id] = {
            "synthesizedStackPath": f"stacks/{stack_id}/cdk.tf.json",
            "dependencies": dependencies.get(stack_id, []),
        }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_environment_names_with_hyphens_come_from_the_default_tags(tmp_path):
    tagged = {"provider": {"aws": [{"default_tags": [{"tags": {"Environment": "dev-eu"}}]}]}}
    outdir = _fake_outdir(tmp_path, {"dev-eu-network": tagged, "dev-eu-storage": tagged}, {})
    stacks = load_stacks(outdir)
    assert stacks["dev-eu-network"].environment == "dev-eu"
    assert select(stacks, "dev-eu", "network") == ["dev-eu-network"]


def test_a_dependency_cycle_is_an_error(tmp_path):
    outdir = _fake_outdir(tmp_path, {"t-a": {}, "t-b": {}}, {"t-a": ["t-b"], "t-b": ["t-a"]})
    with pytest.raises(ValueError, match="cycle"):
        select(load_stacks(outdir), "t")


# --- environments to plan / deploy ----------------------------------------------------------------


def test_targets_are_the_environments_with_a_role_variable(environments):
    arn = "arn:aws:iam::111122223333:role/comfyui-dev-ci-plan"
    found = targets("plan", None, {"AWS_PLAN_ROLE_ARN_DEV": arn})
    assert [t["environment"] for t in found["all"]] == ["dev"]
    assert found["all"][0]["role_arn"] == arn and found["all"][0]["region"] == environments["dev"].region
    assert found["skipped"] == [
        {"environment": "prod", "skipped": "repository variable `AWS_PLAN_ROLE_ARN_PROD` is not set"}
    ]
    assert targets("plan", None, {})["all"] == []


def test_deploy_targets_put_production_last_with_its_github_environment():
    variables = {f"AWS_{k}_ROLE_ARN_{e}": f"arn-{k}-{e}" for k in ("PLAN", "DEPLOY") for e in ("DEV", "PROD")}
    found = targets("deploy", None, variables)
    assert [t["environment"] for t in found["nonproduction"]] == ["dev"]
    [prod] = found["production"]
    assert prod["environment"] == "prod" and prod["github_environment"] == "prod"
    assert prod["role_arn"] == "arn-DEPLOY-PROD" and prod["plan_role_arn"] == "arn-PLAN-PROD"
    assert [t["environment"] for t in targets("deploy", ["prod"], variables)["all"]] == ["prod"]


# --- plan, verify, apply (real terraform) -----------------------------------------------------------


def _chain(tmp_path: Path) -> Path:
    """t-network (has an output) <- t-cluster (depends on it); t-storage (independent, no outputs)."""
    return _fake_outdir(
        tmp_path / "cdktf.out",
        {
            "t-network": {
                "resource": {"terraform_data": {"vpc": {"input": "10.0.0.0/16"}}},
                "output": {"vpc": {"value": "${terraform_data.vpc.output}"}},
            },
            "t-storage": {"resource": {"terraform_data": {"bucket": {"input": "models"}}}},
            "t-cluster": {"resource": {"terraform_data": {"eks": {"input": "1.34"}}}},
        },
        {"t-cluster": ["t-network"]},
    )


@pytest.fixture
def planned(tmp_path):
    outdir = _chain(tmp_path)
    order = select(load_stacks(outdir), "t", purpose="deploy")
    out = tmp_path / "plans"
    result = plan_environment(outdir, "t", order, out, commit="c0ffee", terraform=TERRAFORM, keep_plan_files=True)
    return out, result


@needs_terraform
def test_plan_defers_stacks_whose_upstream_outputs_change(planned):
    out, result = planned
    status = {s["id"]: s for s in result["stacks"]}
    assert [s["id"] for s in result["stacks"]] == ["t-network", "t-storage", "t-cluster"]
    assert status["t-network"]["summary"]["add"] == 1 and status["t-network"]["summary"]["outputs_changed"]
    assert status["t-storage"]["status"] == "planned"
    assert status["t-cluster"]["status"] == "deferred" and "t-network" in status["t-cluster"]["detail"]
    assert json.loads((out / "result.json").read_text()) == result
    assert (out / "t-network.plan.txt").read_text().count("terraform_data.vpc will be created") == 1
    # What apply needs travels with the plan; provider caches do not.
    assert (out / "t-network" / "tfplan").is_file() and (out / "t-cluster" / "cdk.tf.json").is_file()
    assert not (out / "t-network" / ".terraform").exists()
    assert ci_stacks.changed(result)


@needs_terraform
def test_apply_refuses_plans_that_are_not_the_reviewed_ones(planned):
    out, _ = planned
    digest = ci_stacks.sha256(out / "result.json")
    with pytest.raises(PlanMismatch, match="digest"):
        apply_environment(out, "c0ffee", "0" * 64, terraform=TERRAFORM)
    with pytest.raises(PlanMismatch, match="not deadbeef"):
        apply_environment(out, "deadbeef", digest, terraform=TERRAFORM)
    (out / "t-storage" / "tfplan").write_bytes(b"tampered")
    with pytest.raises(PlanMismatch, match="t-storage: tfplan differs"):
        apply_environment(out, "c0ffee", digest, terraform=TERRAFORM)
    assert not (out / "t-network" / "terraform.tfstate").exists(), "nothing may be applied before verification"


@needs_terraform
def test_apply_applies_reviewed_plans_in_order_and_leaves_deferred_stacks(planned):
    out, _ = planned
    left = apply_environment(out, "c0ffee", ci_stacks.sha256(out / "result.json"), terraform=TERRAFORM)
    assert left == ["t-cluster"]
    state = json.loads((out / "t-network" / "terraform.tfstate").read_text())
    assert state["outputs"]["vpc"]["value"] == "10.0.0.0/16"
    assert (out / "t-storage" / "terraform.tfstate").is_file()
    assert not (out / "t-cluster" / "terraform.tfstate").exists()


@needs_terraform
def test_unreviewed_environments_plan_deferred_stacks_again_and_apply_them(planned):
    out, _ = planned
    left = apply_environment(
        out, "c0ffee", ci_stacks.sha256(out / "result.json"), terraform=TERRAFORM, replan_deferred=True
    )
    assert left == []
    state = json.loads((out / "t-cluster" / "terraform.tfstate").read_text())
    assert [r["name"] for r in state["resources"]] == ["eks"]


@needs_terraform
def test_a_failing_plan_is_reported_and_blocks_its_dependents(tmp_path):
    outdir = _fake_outdir(
        tmp_path / "cdktf.out",
        {"t-network": {"resource": {"terraform_data": {"x": {"input": "${var.missing}"}}}}, "t-cluster": {}},
        {"t-cluster": ["t-network"]},
    )
    result = plan_environment(
        outdir, "t", ["t-network", "t-cluster"], tmp_path / "plans", commit="c", terraform=TERRAFORM
    )
    network, cluster = result["stacks"]
    assert network["status"] == "failed" and "Reference to undeclared input variable" in network["detail"]
    assert cluster["status"] == "deferred"
    with pytest.raises(PlanMismatch, match="t-network"):
        ci_stacks.verify(tmp_path / "plans", "c", ci_stacks.sha256(tmp_path / "plans" / "result.json"))


def test_role_variable_names():
    assert ci_stacks.role_variable("plan", "dev") == "AWS_PLAN_ROLE_ARN_DEV"
    assert ci_stacks.role_variable("deploy", "eu-prod") == "AWS_DEPLOY_ROLE_ARN_EU_PROD"
