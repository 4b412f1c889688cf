"""Config rules the workload relies on: production refuses unpinned images and AMIs, and the GPU and
ComfyUI settings are checked with one-line errors."""

from __future__ import annotations

import pytest
import yaml

from config import CONFIG_DIR, ConfigError, load_environment


def write_env(tmp_path, base: str, **sections) -> object:
    data = yaml.safe_load((CONFIG_DIR / f"{base}.yaml").read_text())
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / f"{base}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def one_line_error(path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_production_refuses_latest_ami(tmp_path):
    message = one_line_error(write_env(tmp_path, "prod", gpu={"ami_alias": "al2023@latest"}))
    assert "gpu.ami_alias: '@latest' is not allowed in production" in message


def test_production_refuses_latest_image_tag(tmp_path):
    message = one_line_error(write_env(tmp_path, "prod", image={"tag": "latest"}))
    assert "image.tag: 'latest' is not allowed in production" in message


def test_production_accepts_latest_tag_only_with_a_digest(tmp_path):
    env = load_environment(write_env(tmp_path, "prod", image={"tag": "latest", "digest": "sha256:" + "0" * 64}))
    assert env.image.digest


def test_development_may_follow_latest(tmp_path):
    env = load_environment(write_env(tmp_path, "dev", gpu={"ami_alias": "al2023@latest"}, image={"tag": "latest"}))
    assert env.gpu.ami_alias == "al2023@latest"


def test_spot_fallback_needs_spot(tmp_path):
    message = one_line_error(write_env(tmp_path, "dev", gpu={"capacity_types": ["on-demand"], "spot_fallback": True}))
    assert "gpu: spot_fallback: true needs 'spot' in capacity_types" in message


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("gpu", {"root_volume_throughput": 2000}, "gpu.root_volume_throughput"),
        ("gpu", {"instance_families": ["m5"]}, "gpu.instance_families"),
        ("gpu", {"consolidate_after": "soon"}, "gpu.consolidate_after"),
        ("comfyui", {"startup_timeout_seconds": 10}, "comfyui.startup_timeout_seconds"),
        ("comfyui", {"output_staging_gb": 0}, "comfyui.output_staging_gb"),
        ("comfyui", {"gpus": 0}, "comfyui.gpus"),
    ],
)
def test_bad_gpu_and_comfyui_values_are_one_line_errors(tmp_path, section, values, field):
    message = one_line_error(write_env(tmp_path, "dev", **{section: values}))
    assert f": {field}" in message
