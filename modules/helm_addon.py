"""HelmAddon: one pinned Helm release whose values come from helm_values/<release>.yaml."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_helm.release import Release
from constructs import Construct

from modules.charts import Chart, render_values


@dataclass(frozen=True)
class HelmAddonSettings:
    chart: Chart
    # Values for the `${name}` placeholders of the values file; None: the release takes no values file.
    variables: Mapping[str, str] | None = field(default_factory=dict)
    create_namespace: bool = False
    # The CRDs come from a separate release (Helm installs crds/ once and never upgrades them).
    skip_crds: bool = False
    timeout_seconds: int = 600


class HelmAddon(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        settings: HelmAddonSettings,
        *,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> None:
        super().__init__(scope, id_)
        chart = settings.chart
        self.release = Release(
            self,
            "release",
            name=chart.release,
            chart=chart.chart,
            repository=chart.repository,
            version=chart.version,
            namespace=chart.namespace,
            create_namespace=settings.create_namespace or None,
            values=[render_values(chart, settings.variables)] if settings.variables is not None else None,
            skip_crds=settings.skip_crds or None,
            # A failed install or upgrade is rolled back instead of leaving a half-applied release.
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            timeout=settings.timeout_seconds,
            max_history=10,
            depends_on=list(depends_on) or None,
        )
