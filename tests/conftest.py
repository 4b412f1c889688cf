"""One synth of every stack of every shipped environment per test run (session scope)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tf import Synth, load_synth

PROJECT = Path(__file__).resolve().parent.parent
# Byte-for-byte copies of upstream CRDs, chart values and IAM policies (tests/reference/SOURCES.md).
REFERENCE = PROJECT / "tests" / "reference"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from modules import provider_imports  # noqa: E402

provider_imports.install()


@pytest.fixture(scope="session")
def environments():
    from config import CONFIG_DIR, load_environments

    return {env.name: env for env in load_environments(CONFIG_DIR)}


@pytest.fixture(scope="session")
def synth(tmp_path_factory, environments) -> Synth:
    from stacks.app import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(environments.values(), outdir=str(outdir)).synth()
    return load_synth(outdir)
