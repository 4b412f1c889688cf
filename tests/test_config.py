"""Environment files: every mistake is one line naming the file, the field and what is allowed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config import CONFIG_DIR, ConfigError, load_environment, load_environments, selected_names
from tests.conftest import PROJECT

BASE = textwrap.dedent(
    """\
    name: {name}
    production: false
    account_id: "111122223333"
    region: us-west-2
    """
)


def write(directory: Path, text: str, filename: str = "env.yaml") -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def error_for(tmp_path: Path, extra: str, base: str = BASE.format(name="env")) -> str:
    path = write(tmp_path, base + textwrap.dedent(extra))
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path)) or message.startswith(path.name) or str(path.name) in message
    return message


def test_shipped_environments_load():
    envs = {env.name: env for env in load_environments(CONFIG_DIR)}
    assert {"dev", "prod"} <= set(envs)
    assert envs["dev"].production is False
    assert envs["prod"].production is True
    assert envs["prod"].network.nat == "per_az"


def test_minimal_file_takes_defaults(tmp_path):
    env = load_environment(write(tmp_path, BASE.format(name="mini")))
    assert env.network.az_count == 3
    assert env.cluster_name == "comfyui-mini"
    assert env.state_bucket == "comfyui-tfstate-111122223333-us-west-2"
    assert env.state_region == "us-west-2"
    assert env.bucket_name("models") == "comfyui-mini-models-111122223333-us-west-2"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("colour: blue\n", "colour: unknown key; allowed keys: account_id, ci, cluster"),
        (
            "network:\n  cidrr: 10.0.0.0/16\n",
            "network.cidrr: unknown key; allowed keys: availability_zones, az_count, cidr",
        ),
        ("network:\n  az_count: three\n", "network.az_count: Input should be a valid integer"),
        ("network:\n  az_count: 9\n", "network.az_count: Input should be less than or equal to 6"),
        ("network:\n  cidr: 10.0.0.0/33\n", "network.cidr: '10.0.0.0/33' is not an IPv4 network"),
        ("network:\n  cidr: 10.0.0.1/16\n", "network.cidr: '10.0.0.1/16' is not an IPv4 network"),
        ("network:\n  cidr: 8.8.0.0/16\n", "network.cidr: 8.8.0.0/16 is not a private (RFC 1918) range"),
        ("network:\n  nat: some\n", "network.nat: Input should be 'single' or 'per_az'"),
        (
            "cluster:\n  service_cidr: 10.0.0.0/16\nnetwork:\n  cidr: 10.0.0.0/16\n",
            "cluster.service_cidr: 10.0.0.0/16 overlaps network.cidr",
        ),
        (
            "edge:\n  access_control: ip_allowlist\n  ip_allowlist: [10.0.0.0/8, 10.1.0.0/16]\n",
            "edge.ip_allowlist: 10.1.0.0/16 overlaps 10.0.0.0/8",
        ),
        ("gpu:\n  capacity_types: [spot, reserved]\n", "gpu.capacity_types.1: Input should be 'spot' or 'on-demand'"),
        ("gpu:\n  instance_families: []\n", "gpu.instance_families: List should have at least 1 item"),
        ("gpu:\n  instance_families: [m5]\n", "gpu.instance_families: 'm5' is not a GPU instance family"),
        ("gpu:\n  instance_sizes: [huge]\n", "gpu.instance_sizes: 'huge' is not an instance size"),
        (
            "cluster:\n  system_nodes:\n    instance_types: [t3a]\n",
            "cluster.system_nodes.instance_types.0: 't3a' is not an EC2 instance type",
        ),
        ("cluster:\n  version: '1.5'\n", "cluster.version: String should match pattern"),
        ("cluster:\n  admin_principals: [bob]\n", "cluster.admin_principals.0: 'bob' is not an IAM role or user ARN"),
        (
            "cluster:\n  public_endpoint_cidrs: [0.0.0.0/0]\n",
            "cluster.public_endpoint_cidrs: 0.0.0.0/0 is not an allowlist",
        ),
        ("edge:\n  access_control: cognito\n", "edge: access_control 'cognito' needs domain_name"),
        ("edge:\n  access_control: ip_allowlist\n", "edge: access_control 'ip_allowlist' needs at least one CIDR"),
        ("model_sync:\n  prefix: /abs\n", "model_sync.prefix: String should match pattern"),
        (
            "network:\n  flow_logs_retention_days: 42\n",
            "network.flow_logs_retention_days: must be one of CloudWatch's retention values",
        ),
    ],
)
def test_bad_field_is_one_line(tmp_path, extra, expected):
    assert expected in error_for(tmp_path, extra)


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ('"12345"', "account_id: String should match pattern '^[0-9]{12}$'"),
        ('"12345678901a"', "account_id: String should match pattern"),
        ("123456789012", "account_id: must be a quoted 12-digit string"),
    ],
)
def test_account_id_must_be_twelve_digits(tmp_path, account, expected):
    base = BASE.format(name="env").replace('"111122223333"', account)
    assert expected in error_for(tmp_path, "", base=base)


def test_bad_region(tmp_path):
    base = BASE.format(name="env").replace("us-west-2", "us-west-9")
    message = error_for(tmp_path, "", base=base)
    assert "region: unknown AWS region 'us-west-9'; allowed: af-south-1" in message


def test_missing_required_field(tmp_path):
    base = BASE.format(name="env").replace('account_id: "111122223333"\n', "")
    assert "account_id: required field is missing" in error_for(tmp_path, "", base=base)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", "edge.access_control: 'none' is not allowed in production"),
        (
            "edge: {access_control: ip_allowlist, ip_allowlist: [203.0.113.0/24]}\ngpu: {ami_alias: al2023@latest}\n",
            "gpu.ami_alias: '@latest' is not allowed in production",
        ),
        (
            "edge: {access_control: ip_allowlist, ip_allowlist: [203.0.113.0/24]}\nimage: {tag: latest}\n",
            "image.tag: 'latest' is not allowed in production",
        ),
        (
            "edge: {access_control: ip_allowlist, ip_allowlist: [203.0.113.0/24]}\n"
            "storage: {outputs: {force_destroy: true}}\n",
            "storage.outputs.force_destroy: not allowed in production",
        ),
    ],
)
def test_production_rules(tmp_path, extra, expected):
    base = BASE.format(name="live").replace("production: false", "production: true")
    assert expected in error_for(tmp_path, extra, base=base)


def test_environments_are_production_unless_they_say_otherwise(tmp_path):
    base = BASE.format(name="stage").replace("production: false\n", "")
    assert "'none' is not allowed in production" in error_for(tmp_path, "", base=base)


def test_names_too_long_for_buckets(tmp_path):
    base = BASE.format(name="a-very-long-env-name").replace("region: us-west-2", "region: ap-southeast-4")
    message = error_for(tmp_path, "project: a-very-long-project\n", base=base)
    assert "S3 allows 63" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "line 2: unreadable YAML"),
        ("name: dev\n  bad: indent\n", "unreadable YAML"),
        ("", "file is empty"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_unreadable_yaml(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected):
        load_environment(path)


def test_duplicate_environment_name(tmp_path):
    write(tmp_path, BASE.format(name="dev"), "a.yaml")
    write(tmp_path, BASE.format(name="dev"), "b.yaml")
    with pytest.raises(ConfigError, match=r"b.yaml: name: environment 'dev' is already defined in .*a.yaml"):
        load_environments(tmp_path)


def test_selection_narrows_and_rejects_unknown(tmp_path, monkeypatch):
    write(tmp_path, BASE.format(name="dev"), "dev.yaml")
    write(tmp_path, BASE.format(name="qa"), "qa.yaml")
    assert [env.name for env in load_environments(tmp_path)] == ["dev", "qa"]
    assert [env.name for env in load_environments(tmp_path, ["qa"])] == ["qa"]
    with pytest.raises(ConfigError, match=r"CDKTF_ENVIRONMENTS: unknown environment 'prod'; defined in .*: dev, qa"):
        load_environments(tmp_path, ["prod"])

    monkeypatch.setenv("CDKTF_ENVIRONMENTS", "qa, dev")
    assert selected_names(["ignored"]) == (["qa", "dev"], "CDKTF_ENVIRONMENTS")
    monkeypatch.delenv("CDKTF_ENVIRONMENTS")
    assert selected_names(["dev"]) == (["dev"], "cdktf context 'environments'")
    assert selected_names("dev,qa") == (["dev", "qa"], "cdktf context 'environments'")
    assert selected_names(None) == (None, "CDKTF_ENVIRONMENTS")


def run_main(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    import os

    environment = {k: v for k, v in os.environ.items() if k not in ("CDKTF_CONTEXT_JSON", "CDKTF_ENVIRONMENTS")}
    environment.update(COMFYUI_CONFIG_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, str(PROJECT / "main.py")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_main_prints_one_line_and_exits_2(tmp_path):
    write(tmp_path, BASE.format(name="dev") + "network:\n  az_count: 1\n", "dev.yaml")
    result = run_main(tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["config error: dev.yaml: network.az_count: Input should be greater than or equal to 2 (got 1)"]
    assert not (tmp_path / "cdktf.out").exists()


def test_main_unknown_environment_from_variable_and_context(tmp_path):
    write(tmp_path, BASE.format(name="dev"), "dev.yaml")
    result = run_main(tmp_path, CDKTF_ENVIRONMENTS="dev,staging")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "config error: CDKTF_ENVIRONMENTS: unknown environment 'staging'; defined in .: dev"
    )
    result = run_main(tmp_path, CDKTF_CONTEXT_JSON='{"environments": "staging"}')
    assert result.returncode == 2
    assert "cdktf context 'environments': unknown environment 'staging'" in result.stderr


def test_configuration_reference_is_current():
    from config.reference import render
    from config.schema import EnvironmentConfig

    committed = (PROJECT / "docs" / "configuration.md").read_text()
    assert committed == render(), "regenerate: pipenv run python -m config.reference > docs/configuration.md"
    # Every field of every section is documented with a description.
    from pydantic import BaseModel

    sections = [("", EnvironmentConfig)]
    while sections:
        path, model = sections.pop()
        for name, field in model.model_fields.items():
            assert field.description, f"{path}{name}"
            for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    sections.append((f"{path}{name}.", arg))
    assert "| `az_count` | int | `3` | ≥ 2, ≤ 6 |" in committed
