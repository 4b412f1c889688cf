"""Builds every stack of every environment, in deployment order.

Order: bootstrap -> network -> storage -> cluster -> addons -> model-sync -> workload -> edge.
Values cross stacks as cdktf cross-stack references (remote state outputs), never by re-deriving names.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdktf import App, TerraformStack

from config.schema import EnvironmentConfig
from stacks.addons import AddonsStack
from stacks.bootstrap import BootstrapStack
from stacks.ci import CiStack
from stacks.cluster import ClusterStack
from stacks.edge import EdgeStack
from stacks.model_sync import ModelSyncStack
from stacks.network import NetworkStack
from stacks.storage import StorageStack
from stacks.workload import WorkloadStack


def build_environment(app: App, env: EnvironmentConfig) -> dict[str, TerraformStack]:
    bootstrap = BootstrapStack(app, env)
    network = NetworkStack(app, env)
    storage = StorageStack(app, env)
    cluster = ClusterStack(app, env, network=network, storage=storage)
    addons = AddonsStack(app, env, cluster=cluster, network=network)
    model_sync = ModelSyncStack(app, env, storage=storage)
    workload = WorkloadStack(app, env, cluster=cluster, addons=addons, storage=storage, network=network)
    edge = EdgeStack(app, env, network=network)
    stacks: list[TerraformStack] = [bootstrap, network, storage, cluster, addons, model_sync, workload, edge]

    # Deploy order. Cross-stack references add most edges; these are the ones that matter although no
    # value crosses: the state bucket must exist before any backend initialises; Kubernetes and Helm
    # providers plan against a cluster that exists; CRD objects (NodePool, EC2NodeClass,
    # TargetGroupBinding) need the CRDs the addons' Helm releases install; the edge binds to the
    # workload's Service.
    dependencies = {
        network: [bootstrap],
        storage: [bootstrap],
        cluster: [network, storage],
        addons: [cluster],
        model_sync: [storage],
        workload: [addons],
        edge: [addons, workload],
    }
    if env.ci.github_repository:
        # GitHub Actions OIDC roles (optional). Deployed by an administrator; no stack reads its state.
        ci = CiStack(app, env)
        stacks.append(ci)
        dependencies[ci] = [bootstrap]
    for stack, upstream in dependencies.items():
        for dependency in upstream:
            stack.add_dependency(dependency)
    return {stack.stack_id: stack for stack in stacks}


def build_app(environments: Iterable[EnvironmentConfig], outdir: str | None = None) -> App:
    app = App(outdir=outdir) if outdir else App()
    for env in environments:
        build_environment(app, env)
    return app
