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
from stacks.cluster import ClusterStack
from stacks.edge import EdgeStack
from stacks.model_sync import ModelSyncStack
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
    cluster = ClusterStack(app, env, network=network, storage=storage)
    addons = AddonsStack(app, env, cluster=cluster, network=network)
    cluster.add_dependency(network)
    cluster.add_dependency(storage)
    # The Helm provider needs the cluster to exist before this stack can even plan.
    addons.add_dependency(cluster)
    stacks += [cluster, addons]
    # model-sync (issue 4): models bucket events -> SQS -> Lambda -> SSM on GPU nodes.
    model_sync = ModelSyncStack(app, env, storage=storage)
    model_sync.add_dependency(storage)
    stacks.append(model_sync)
    # workload (issue 5): Karpenter GPU NodePool/EC2NodeClass and ComfyUI. Its CRDs and controllers come
    # from the addons' Helm releases, which must exist before this stack can plan.
    from stacks.workload import WorkloadStack

    workload = WorkloadStack(app, env, cluster=cluster, addons=addons, storage=storage, network=network)
    workload.add_dependency(addons)
    stacks.append(workload)
    # edge (issue 6): CloudFront -> internal ALB -> ComfyUI Service. Needs the workload's Service and the
    # addons' TargetGroupBinding CRD and controller at deploy time, so it goes last.
    edge = EdgeStack(app, env, network=network)
    edge.add_dependency(addons)
    edge.add_dependency(workload)
    stacks.append(edge)
    if env.ci.github_repository:
        # GitHub Actions OIDC roles (optional). Deployed by an administrator; no stack reads its state.
        from stacks.ci import CiStack

        ci = CiStack(app, env)
        ci.add_dependency(bootstrap)
        stacks.append(ci)
    return {stack.stack_id: stack for stack in stacks}


def build_app(environments: Iterable[EnvironmentConfig], outdir: str | None = None) -> App:
    app = App(outdir=outdir) if outdir else App()
    for env in environments:
        build_environment(app, env)
    return app
