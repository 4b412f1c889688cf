"""Every stack of every environment: ids, backends, provider guard and tags."""

from __future__ import annotations

from tests.tf import resources

COMPONENTS_IN_ORDER = ["bootstrap", "network", "storage", "cluster", "addons", "model-sync", "workload", "edge"]
# Every stack's direct dependencies (cross-stack references plus explicit deploy-order edges).
DEPENDENCIES = {
    "bootstrap": set(),
    "network": {"bootstrap"},
    "storage": {"bootstrap"},
    "cluster": {"network", "storage"},
    "addons": {"cluster", "network"},
    "model-sync": {"storage"},
    "workload": {"addons", "cluster", "storage", "network"},
    "edge": {"addons", "workload", "network"},
    "ci": {"bootstrap"},
}


def test_every_environment_has_every_stack(synth, environments):
    expected = {f"{name}-{component}" for name in environments for component in COMPONENTS_IN_ORDER}
    assert expected <= set(synth.stacks)


def test_bootstrap_uses_local_state(synth, environments):
    for name in environments:
        terraform = synth.stack(f"{name}-bootstrap")["terraform"]
        assert "s3" not in terraform.get("backend", {})
        assert terraform["backend"]["local"]["path"] == f"terraform.{name}-bootstrap.tfstate"


def test_s3_backend_per_stack(synth, environments):
    for stack_id, stack in synth.stacks.items():
        env_name, component = stack_id.split("-", 1)
        if component == "bootstrap":
            continue
        env = environments[env_name]
        backend = stack["terraform"]["backend"]["s3"]
        assert backend == {
            "bucket": env.state_bucket,
            "key": f"{env_name}/{stack_id}.tfstate",
            "region": env.state_region,
            "encrypt": True,
            "use_lockfile": True,
            "allowed_account_ids": [env.account_id],
        }, stack_id


def test_state_keys_are_unique(synth):
    keys = [
        (stack["terraform"]["backend"]["s3"]["bucket"], stack["terraform"]["backend"]["s3"]["key"])
        for stack in synth.stacks.values()
        if "s3" in stack["terraform"]["backend"]
    ]
    assert len(keys) == len(set(keys))


def test_aws_providers_are_pinned_to_the_account_and_tagged(synth, environments):
    for stack_id, stack in synth.stacks.items():
        env = environments[stack_id.split("-", 1)[0]]
        providers = stack["provider"]["aws"]
        assert providers, stack_id
        for provider in providers:
            assert provider["allowed_account_ids"] == [env.account_id], stack_id
            assert provider["default_tags"] == [
                {"tags": {"Project": env.project, "Environment": env.name, "ManagedBy": "cdktf", "Stack": stack_id}}
            ], stack_id
            assert provider["region"] in (env.region, "us-east-1"), stack_id


def test_deploy_order(synth, environments):
    # cdktf records stack dependencies in the manifest; `cdktf deploy` and the CI workflows follow it.
    import json

    manifest = json.loads((synth.outdir / "manifest.json").read_text())["stacks"]
    for name in environments:
        for component, upstream in DEPENDENCIES.items():
            stack_id = f"{name}-{component}"
            if stack_id not in manifest:
                assert component == "ci", stack_id
                continue
            assert set(manifest[stack_id]["dependencies"]) == {f"{name}-{u}" for u in upstream}, stack_id
        # The documented order is a valid topological order of that graph.
        position = {component: index for index, component in enumerate(COMPONENTS_IN_ORDER)}
        for component in COMPONENTS_IN_ORDER:
            assert all(position[u] < position[component] for u in DEPENDENCIES[component]), component


def test_no_forbidden_managed_policies_anywhere(synth):
    for stack_id, stack in synth.stacks.items():
        for name, attachment in resources(stack, "aws_iam_role_policy_attachment").items():
            arn = attachment["policy_arn"]
            assert "FullAccess" not in arn and "AdministratorAccess" not in arn, f"{stack_id}: {name} {arn}"
        text = str(stack)
        assert "AdministratorAccess" not in text and "FullAccess" not in text, stack_id
