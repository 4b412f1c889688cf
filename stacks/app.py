"""Builds every stack of every environment, in deployment order.

Order: bootstrap -> network -> storage -> cluster -> addons -> model-sync -> workload -> edge.
Values cross stacks as cdktf cross-stack references (remote state outputs), never by re-deriving names.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdktf import App, TerraformStack

from config.schema import EnvironmentConfig
from stacks.bootstrap import BootstrapStack
from stacks.network import NetworkStack
from stacks.storage import StorageStack


def build_environment(app: App, env: EnvironmentConfig) -> dict[str, TerraformStack]:
    bootstrap = BootstrapStack(app, env)
    network = NetworkStack(app, env)
    storage = StorageStack(app, env)
    # The state bucket must exist before any other stack can initialise its backend.
    for stack in (network, storage):
        stack.add_dependency(bootstrap)
    stacks: list[TerraformStack] = [bootstrap, network, storage]
    # cluster + addons (issue 3)
    # model-sync (issue 4)
    # workload (issue 5)
    # edge (issue 6)
    # ci (issue 8)
    return {stack.stack_id: stack for stack in stacks}


def build_app(environments: Iterable[EnvironmentConfig], outdir: str | None = None) -> App:
    app = App(outdir=outdir) if outdir else App()
    for env in environments:
        build_environment(app, env)
    return app
