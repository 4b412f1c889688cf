"""ComfyUI: namespace, service account, S3 and node-local volumes, Deployment, Service, PDB and
NetworkPolicy, all as typed Kubernetes resources (so checkov's CKV_K8S checks see them).

Request path and volumes (docs/workload.md):
- models: the node's local copy (instance store, filled by the boot sync) through a hostPath
  PersistentVolume, mounted read-only. Going through a PV keeps the pod itself free of hostPath,
  so the namespace enforces the `restricted` Pod Security Standard.
- inputs: the inputs bucket via Mountpoint for S3 (static PV/PVC), mounted where ComfyUI reads and
  uploads inputs.
- outputs: ComfyUI writes to a local emptyDir (video muxers seek, which Mountpoint cannot do); the
  `output-uploader` sidecar copies finished files to the outputs bucket (Mountpoint PV/PVC) under
  the pod's name.
- The preStop hook waits for ComfyUI's queue to drain within terminationGracePeriodSeconds, and
  the startup probe waits for the node's models-ready marker and /system_stats.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1, ConfigMapV1Metadata
from cdktf_cdktf_provider_kubernetes.deployment_v1 import (
    DeploymentV1,
    DeploymentV1Metadata,
    DeploymentV1Spec,
    DeploymentV1SpecSelector,
    DeploymentV1SpecStrategy,
    DeploymentV1SpecStrategyRollingUpdate,
    DeploymentV1SpecTemplate,
    DeploymentV1SpecTemplateMetadata,
    DeploymentV1SpecTemplateSpec,
    DeploymentV1SpecTemplateSpecAffinity,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinity,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecution,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTerm,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTermMatchExpressions,
    DeploymentV1SpecTemplateSpecContainer,
    DeploymentV1SpecTemplateSpecContainerEnv,
    DeploymentV1SpecTemplateSpecContainerEnvValueFrom,
    DeploymentV1SpecTemplateSpecContainerEnvValueFromFieldRef,
    DeploymentV1SpecTemplateSpecContainerLifecycle,
    DeploymentV1SpecTemplateSpecContainerLifecyclePreStop,
    DeploymentV1SpecTemplateSpecContainerLifecyclePreStopExec,
    DeploymentV1SpecTemplateSpecContainerLivenessProbe,
    DeploymentV1SpecTemplateSpecContainerLivenessProbeExec,
    DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet,
    DeploymentV1SpecTemplateSpecContainerPort,
    DeploymentV1SpecTemplateSpecContainerReadinessProbe,
    DeploymentV1SpecTemplateSpecContainerReadinessProbeExec,
    DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet,
    DeploymentV1SpecTemplateSpecContainerResources,
    DeploymentV1SpecTemplateSpecContainerSecurityContext,
    DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities,
    DeploymentV1SpecTemplateSpecContainerSecurityContextSeccompProfile,
    DeploymentV1SpecTemplateSpecContainerStartupProbe,
    DeploymentV1SpecTemplateSpecContainerStartupProbeExec,
    DeploymentV1SpecTemplateSpecContainerVolumeMount,
    DeploymentV1SpecTemplateSpecInitContainer,
    DeploymentV1SpecTemplateSpecInitContainerResources,
    DeploymentV1SpecTemplateSpecInitContainerSecurityContext,
    DeploymentV1SpecTemplateSpecInitContainerSecurityContextCapabilities,
    DeploymentV1SpecTemplateSpecInitContainerSecurityContextSeccompProfile,
    DeploymentV1SpecTemplateSpecInitContainerVolumeMount,
    DeploymentV1SpecTemplateSpecSecurityContext,
    DeploymentV1SpecTemplateSpecSecurityContextSeccompProfile,
    DeploymentV1SpecTemplateSpecToleration,
    DeploymentV1SpecTemplateSpecTopologySpreadConstraint,
    DeploymentV1SpecTemplateSpecTopologySpreadConstraintLabelSelector,
    DeploymentV1SpecTemplateSpecVolume,
    DeploymentV1SpecTemplateSpecVolumeConfigMap,
    DeploymentV1SpecTemplateSpecVolumeEmptyDir,
    DeploymentV1SpecTemplateSpecVolumePersistentVolumeClaim,
)
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.network_policy_v1 import (
    NetworkPolicyV1,
    NetworkPolicyV1Metadata,
    NetworkPolicyV1Spec,
    NetworkPolicyV1SpecEgress,
    NetworkPolicyV1SpecEgressPorts,
    NetworkPolicyV1SpecEgressTo,
    NetworkPolicyV1SpecEgressToIpBlock,
    NetworkPolicyV1SpecEgressToNamespaceSelector,
    NetworkPolicyV1SpecEgressToPodSelector,
    NetworkPolicyV1SpecIngress,
    NetworkPolicyV1SpecIngressFrom,
    NetworkPolicyV1SpecIngressFromIpBlock,
    NetworkPolicyV1SpecIngressPorts,
    NetworkPolicyV1SpecPodSelector,
)
from cdktf_cdktf_provider_kubernetes.persistent_volume_claim_v1 import (
    PersistentVolumeClaimV1,
    PersistentVolumeClaimV1Metadata,
    PersistentVolumeClaimV1Spec,
    PersistentVolumeClaimV1SpecResources,
)
from cdktf_cdktf_provider_kubernetes.persistent_volume_v1 import (
    PersistentVolumeV1,
    PersistentVolumeV1Metadata,
    PersistentVolumeV1Spec,
    PersistentVolumeV1SpecClaimRef,
    PersistentVolumeV1SpecPersistentVolumeSource,
    PersistentVolumeV1SpecPersistentVolumeSourceCsi,
    PersistentVolumeV1SpecPersistentVolumeSourceHostPath,
)
from cdktf_cdktf_provider_kubernetes.pod_disruption_budget_v1 import (
    PodDisruptionBudgetV1,
    PodDisruptionBudgetV1Metadata,
    PodDisruptionBudgetV1Spec,
    PodDisruptionBudgetV1SpecSelector,
)
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1, ServiceAccountV1Metadata
from cdktf_cdktf_provider_kubernetes.service_v1 import ServiceV1, ServiceV1Metadata, ServiceV1Spec, ServiceV1SpecPort
from constructs import Construct

from modules import names
from modules.gpu_user_data import terraform_literal

POD_FILES = Path(__file__).resolve().parent / "pod_files"
HOOK_FILES = ("comfyui_lifecycle.py", "output_uploader.py")
HOOKS_PATH = "/opt/comfyui-hooks"
S3_CSI_DRIVER = "s3.csi.aws.com"
# PVs and PVCs bind by this class name; no StorageClass object exists, so nothing is ever provisioned
# and a cluster default StorageClass cannot capture the claims.
STATIC_STORAGE_CLASS = "comfyui-static"
# Kubernetes requires a size on PVs/PVCs; hostPath and Mountpoint ignore it.
NOMINAL_CAPACITY = "1Ti"
LABELS = {"app.kubernetes.io/name": names.COMFYUI_APP, "app.kubernetes.io/component": "server"}
# The preStop drains stop this long before terminationGracePeriodSeconds ends, so ComfyUI exits
# cleanly and the uploader's final copy finishes before the kubelet kills the containers.
SHUTDOWN_MARGIN_SECONDS = 30
SCRATCH_SIZE = "20Gi"
SHM_SIZE = "2Gi"
# EKS Pod Identity agent on every node (link-local): the AWS SDKs fetch credentials there.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"


@dataclass(frozen=True)
class ComfyUISettings:
    namespace: str
    # Kubernetes minor version ("1.34"): pins the Pod Security Standard version.
    cluster_version: str
    # Full image reference (repository URL from <env>-storage plus :tag or @sha256:digest).
    image: str
    replicas: int
    port: int
    gpus: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    termination_grace_seconds: int
    startup_timeout_seconds: int
    output_staging_gb: int
    # Node path of the synced models (GpuConfig.models_path).
    models_host_path: str
    inputs_bucket: str
    outputs_bucket: str
    region: str
    # Where the ALB (and kubelet probes) come from: the VPC's private subnets.
    ingress_cidrs: Sequence[str]


def image_reference(repository_url: str, tag: str, digest: str | None) -> str:
    """`repo@sha256:...` when a digest is pinned, else `repo:tag` (ECR tags are immutable here)."""
    return f"{repository_url}@{digest}" if digest else f"{repository_url}:{tag}"


def s3_mount_options(region: str) -> list[str]:
    """Mountpoint options ComfyUI needs (tests/reference/SOURCES.md, Mountpoint CSI v2.7.0)."""
    return [
        f"region {region}",
        # ComfyUI deletes and re-uploads inputs (upload with overwrite=true truncates the file).
        "allow-delete",
        "allow-overwrite",
        # The containers run as CONTAINER_UID, not as the user Mountpoint mounts with.
        "allow-other",
        f"uid={names.CONTAINER_UID}",
        f"gid={names.CONTAINER_GID}",
    ]


def hooks_checksum() -> str:
    digest = hashlib.sha256()
    for name in HOOK_FILES:
        digest.update((POD_FILES / name).read_bytes())
    return digest.hexdigest()


def _python(script: str, *args: str) -> list[str]:
    return ["python3", f"{HOOKS_PATH}/{script}", *args]


def _mount(name: str, path: str, *, read_only: bool = False, sub_path: str | None = None):
    return DeploymentV1SpecTemplateSpecContainerVolumeMount(
        name=name, mount_path=path, read_only=read_only, sub_path=sub_path
    )


def _container_security() -> DeploymentV1SpecTemplateSpecContainerSecurityContext:
    return DeploymentV1SpecTemplateSpecContainerSecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=str(names.CONTAINER_UID),
        run_as_group=str(names.CONTAINER_GID),
        capabilities=DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities(drop=["ALL"]),
        seccomp_profile=DeploymentV1SpecTemplateSpecContainerSecurityContextSeccompProfile(type="RuntimeDefault"),
    )


class ComfyUI(Construct):
    def __init__(self, scope: Construct, id_: str, settings: ComfyUISettings) -> None:
        super().__init__(scope, id_)
        ns_name = settings.namespace
        pss_version = f"v{settings.cluster_version}"
        self.namespace = NamespaceV1(
            self,
            "namespace",
            metadata=NamespaceV1Metadata(
                name=ns_name,
                labels={
                    **{f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")},
                    **{
                        f"pod-security.kubernetes.io/{mode}-version": pss_version
                        for mode in ("enforce", "audit", "warn")
                    },
                },
            ),
        )
        namespace = self.namespace.metadata.name

        # The Pod Identity association (in <env>-cluster) gives this account its IAM role. The pod
        # does not talk to the Kubernetes API: no API token is mounted.
        self.service_account = ServiceAccountV1(
            self,
            "service-account",
            metadata=ServiceAccountV1Metadata(name=names.COMFYUI_SERVICE_ACCOUNT, namespace=namespace, labels=LABELS),
            automount_service_account_token=False,
        )

        self.hooks = ConfigMapV1(
            self,
            "hooks",
            metadata=ConfigMapV1Metadata(name=f"{names.COMFYUI_APP}-hooks", namespace=namespace, labels=LABELS),
            data={name: terraform_literal((POD_FILES / name).read_text()) for name in HOOK_FILES},
        )

        models_claim = self._claim(
            "models",
            namespace,
            ns_name,
            access_mode="ReadOnlyMany",
            source=PersistentVolumeV1SpecPersistentVolumeSource(
                # Directory (not DirectoryOrCreate): a node whose setup did not run fails visibly.
                host_path=PersistentVolumeV1SpecPersistentVolumeSourceHostPath(
                    path=settings.models_host_path, type="Directory"
                )
            ),
        )
        inputs_claim = self._s3_claim("inputs", namespace, ns_name, settings.inputs_bucket, settings.region)
        outputs_claim = self._s3_claim("outputs", namespace, ns_name, settings.outputs_bucket, settings.region)

        self.deployment = self._deployment(settings, namespace, models_claim, inputs_claim, outputs_claim)

        self.service = ServiceV1(
            self,
            "service",
            metadata=ServiceV1Metadata(name=names.COMFYUI_SERVICE, namespace=namespace, labels=LABELS),
            spec=ServiceV1Spec(
                type="ClusterIP",
                selector=LABELS,
                port=[ServiceV1SpecPort(name="http", port=settings.port, target_port="http", protocol="TCP")],
            ),
        )

        # One pod at a time may be evicted (node expiry, drift); with one replica that still lets
        # maintenance proceed, and the preStop drain protects the running prompt.
        PodDisruptionBudgetV1(
            self,
            "pdb",
            metadata=PodDisruptionBudgetV1Metadata(name=names.COMFYUI_APP, namespace=namespace, labels=LABELS),
            spec=PodDisruptionBudgetV1Spec(
                max_unavailable="1", selector=PodDisruptionBudgetV1SpecSelector(match_labels=LABELS)
            ),
        )

        self._network_policy(settings, namespace)

    # --- volumes --------------------------------------------------------------------------------

    def _claim(
        self,
        purpose: str,
        namespace: str,
        ns_name: str,
        *,
        access_mode: str,
        source: PersistentVolumeV1SpecPersistentVolumeSource,
        mount_options: Sequence[str] | None = None,
    ) -> PersistentVolumeClaimV1:
        claim_name = f"{names.COMFYUI_APP}-{purpose}"
        # PVs are cluster-wide: the namespace in the name keeps two installations apart.
        volume = PersistentVolumeV1(
            self,
            f"{purpose}-pv",
            metadata=PersistentVolumeV1Metadata(name=f"{ns_name}-{purpose}", labels=LABELS),
            spec=[
                PersistentVolumeV1Spec(
                    capacity={"storage": NOMINAL_CAPACITY},
                    access_modes=[access_mode],
                    storage_class_name=STATIC_STORAGE_CLASS,
                    # Deleting the claim must never touch the bucket or the node's models.
                    persistent_volume_reclaim_policy="Retain",
                    mount_options=list(mount_options) if mount_options else None,
                    claim_ref=PersistentVolumeV1SpecClaimRef(name=claim_name, namespace=namespace),
                    persistent_volume_source=source,
                )
            ],
        )
        return PersistentVolumeClaimV1(
            self,
            f"{purpose}-pvc",
            metadata=PersistentVolumeClaimV1Metadata(name=claim_name, namespace=namespace, labels=LABELS),
            spec=PersistentVolumeClaimV1Spec(
                access_modes=[access_mode],
                storage_class_name=STATIC_STORAGE_CLASS,
                volume_name=volume.metadata.name,
                resources=PersistentVolumeClaimV1SpecResources(requests={"storage": NOMINAL_CAPACITY}),
            ),
        )

    def _s3_claim(
        self, purpose: str, namespace: str, ns_name: str, bucket: str, region: str
    ) -> PersistentVolumeClaimV1:
        return self._claim(
            purpose,
            namespace,
            ns_name,
            access_mode="ReadWriteMany",
            mount_options=s3_mount_options(region),
            source=PersistentVolumeV1SpecPersistentVolumeSource(
                csi=PersistentVolumeV1SpecPersistentVolumeSourceCsi(
                    driver=S3_CSI_DRIVER,
                    # Unique per PV, or Kubernetes mounts only one of them.
                    volume_handle=f"{ns_name}-{purpose}-s3",
                    # Credentials: the CSI driver's own Pod Identity role (read/write on inputs and outputs).
                    volume_attributes={"bucketName": bucket, "authenticationSource": "driver"},
                )
            ),
        )

    # --- deployment -----------------------------------------------------------------------------

    def _deployment(
        self,
        settings: ComfyUISettings,
        namespace: str,
        models: PersistentVolumeClaimV1,
        inputs: PersistentVolumeClaimV1,
        outputs: PersistentVolumeClaimV1,
    ) -> DeploymentV1:
        local_url = f"http://127.0.0.1:{settings.port}"
        drain_seconds = str(max(settings.termination_grace_seconds - SHUTDOWN_MARGIN_SECONDS, 1))
        marker = f"{names.CONTAINER_MODELS_PATH}/{names.MODELS_READY_MARKER}"
        startup_period = 10
        uploader_heartbeat = "/tmp/uploader-heartbeat"  # noqa: S108 (the container's own emptyDir /tmp)
        drain = DeploymentV1SpecTemplateSpecContainerLifecyclePreStop(
            exec=DeploymentV1SpecTemplateSpecContainerLifecyclePreStopExec(
                command=_python("comfyui_lifecycle.py", "drain", "--timeout", drain_seconds, "--url", local_url)
            )
        )

        comfyui = DeploymentV1SpecTemplateSpecContainer(
            name="comfyui",
            image=settings.image,
            # Tags are immutable in ECR: Always only re-checks the manifest, never re-pulls layers.
            image_pull_policy="Always",
            port=[DeploymentV1SpecTemplateSpecContainerPort(name="http", container_port=settings.port, protocol="TCP")],
            env=[
                # The image's CMD listens on $COMFYUI_PORT: config, not a rebuild, decides the port.
                DeploymentV1SpecTemplateSpecContainerEnv(name="COMFYUI_PORT", value=str(settings.port)),
            ],
            resources=DeploymentV1SpecTemplateSpecContainerResources(
                requests={
                    "cpu": settings.cpu_request,
                    "memory": settings.memory_request,
                    "nvidia.com/gpu": str(settings.gpus),
                },
                limits={
                    "cpu": settings.cpu_limit,
                    "memory": settings.memory_limit,
                    "nvidia.com/gpu": str(settings.gpus),
                },
            ),
            security_context=_container_security(),
            startup_probe=DeploymentV1SpecTemplateSpecContainerStartupProbe(
                exec=DeploymentV1SpecTemplateSpecContainerStartupProbeExec(
                    command=_python("comfyui_lifecycle.py", "startup-check", "--marker", marker, "--url", local_url)
                ),
                period_seconds=startup_period,
                timeout_seconds=8,
                failure_threshold=math.ceil(settings.startup_timeout_seconds / startup_period),
            ),
            readiness_probe=DeploymentV1SpecTemplateSpecContainerReadinessProbe(
                http_get=DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet(path="/system_stats", port="http"),
                period_seconds=10,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            # Generous: a busy GPU must not look dead. Two minutes without an answer restarts it.
            liveness_probe=DeploymentV1SpecTemplateSpecContainerLivenessProbe(
                http_get=DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet(path="/system_stats", port="http"),
                period_seconds=20,
                timeout_seconds=10,
                failure_threshold=6,
            ),
            lifecycle=DeploymentV1SpecTemplateSpecContainerLifecycle(pre_stop=[drain]),
            volume_mount=[
                _mount("models", names.CONTAINER_MODELS_PATH, read_only=True),
                _mount("inputs", names.CONTAINER_INPUT_PATH),
                _mount("outputs-staging", names.CONTAINER_OUTPUT_PATH),
                _mount("scratch", "/tmp", sub_path="tmp"),  # noqa: S108 (emptyDir)
                _mount("scratch", names.CONTAINER_USER_PATH, sub_path="user"),
                _mount("scratch", names.CONTAINER_TEMP_PATH, sub_path="temp"),
                # Library caches ($HOME/.cache, .triton) and nodes that download into their folder.
                _mount("scratch", names.CONTAINER_HOME, sub_path="home"),
                _mount("scratch", names.CONTAINER_CUSTOM_NODES_PATH, sub_path="custom_nodes"),
                _mount("shm", "/dev/shm"),  # noqa: S108 (PyTorch shared memory)
                _mount("hooks", HOOKS_PATH, read_only=True),
            ],
        )

        uploader = DeploymentV1SpecTemplateSpecContainer(
            name="output-uploader",
            # The ComfyUI image already has python3 and is on the node: no second image to pull.
            image=settings.image,
            image_pull_policy="Always",
            command=_python(
                "output_uploader.py",
                "run",
                "--source",
                names.CONTAINER_OUTPUT_PATH,
                "--dest",
                "/mnt/outputs",
                "--heartbeat",
                uploader_heartbeat,
            ),
            env=[
                DeploymentV1SpecTemplateSpecContainerEnv(
                    name="POD_NAME",
                    value_from=DeploymentV1SpecTemplateSpecContainerEnvValueFrom(
                        field_ref=DeploymentV1SpecTemplateSpecContainerEnvValueFromFieldRef(field_path="metadata.name")
                    ),
                )
            ],
            resources=DeploymentV1SpecTemplateSpecContainerResources(
                requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "512Mi"}
            ),
            security_context=_container_security(),
            readiness_probe=DeploymentV1SpecTemplateSpecContainerReadinessProbe(
                exec=DeploymentV1SpecTemplateSpecContainerReadinessProbeExec(
                    command=_python("output_uploader.py", "health", "--heartbeat", uploader_heartbeat)
                ),
                period_seconds=30,
                timeout_seconds=5,
            ),
            liveness_probe=DeploymentV1SpecTemplateSpecContainerLivenessProbe(
                exec=DeploymentV1SpecTemplateSpecContainerLivenessProbeExec(
                    command=_python(
                        "output_uploader.py", "health", "--heartbeat", uploader_heartbeat, "--max-age", "300"
                    )
                ),
                initial_delay_seconds=30,
                period_seconds=60,
                timeout_seconds=5,
            ),
            # Keep copying until ComfyUI has drained; SIGTERM then triggers the final copy.
            lifecycle=DeploymentV1SpecTemplateSpecContainerLifecycle(pre_stop=[drain]),
            volume_mount=[
                _mount("outputs-staging", names.CONTAINER_OUTPUT_PATH),
                _mount("outputs", "/mnt/outputs"),
                _mount("scratch", "/tmp", sub_path="uploader-tmp"),  # noqa: S108 (emptyDir)
                _mount("hooks", HOOKS_PATH, read_only=True),
            ],
        )

        # The root filesystem is read-only, yet some custom nodes write into their own folder: start
        # from a writable copy of the image's custom_nodes.
        custom_nodes_copy = DeploymentV1SpecTemplateSpecInitContainer(
            name="writable-custom-nodes",
            image=settings.image,
            image_pull_policy="Always",
            command=["cp", "-R", "--preserve=mode,timestamps", f"{names.CONTAINER_CUSTOM_NODES_PATH}/.", "/writable/"],
            resources=DeploymentV1SpecTemplateSpecInitContainerResources(
                requests={"cpu": "100m", "memory": "64Mi"}, limits={"cpu": "1", "memory": "256Mi"}
            ),
            security_context=DeploymentV1SpecTemplateSpecInitContainerSecurityContext(
                allow_privilege_escalation=False,
                privileged=False,
                read_only_root_filesystem=True,
                run_as_non_root=True,
                run_as_user=str(names.CONTAINER_UID),
                run_as_group=str(names.CONTAINER_GID),
                capabilities=DeploymentV1SpecTemplateSpecInitContainerSecurityContextCapabilities(drop=["ALL"]),
                seccomp_profile=DeploymentV1SpecTemplateSpecInitContainerSecurityContextSeccompProfile(
                    type="RuntimeDefault"
                ),
            ),
            volume_mount=[
                DeploymentV1SpecTemplateSpecInitContainerVolumeMount(
                    name="scratch", mount_path="/writable", sub_path="custom_nodes"
                )
            ],
        )

        match_gpu_pool = DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTermMatchExpressions(  # noqa: E501
            key=names.GPU_NODE_LABEL_KEY, operator="In", values=[names.GPU_POOL_TAG_VALUE]
        )
        pod = DeploymentV1SpecTemplateSpec(
            service_account_name=self.service_account.metadata.name,
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=settings.termination_grace_seconds,
            security_context=DeploymentV1SpecTemplateSpecSecurityContext(
                run_as_non_root=True,
                run_as_user=str(names.CONTAINER_UID),
                run_as_group=str(names.CONTAINER_GID),
                fs_group=str(names.CONTAINER_GID),
                fs_group_change_policy="OnRootMismatch",
                seccomp_profile=DeploymentV1SpecTemplateSpecSecurityContextSeccompProfile(type="RuntimeDefault"),
            ),
            toleration=[
                DeploymentV1SpecTemplateSpecToleration(key=names.GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")
            ],
            affinity=DeploymentV1SpecTemplateSpecAffinity(
                node_affinity=DeploymentV1SpecTemplateSpecAffinityNodeAffinity(
                    required_during_scheduling_ignored_during_execution=DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecution(
                        node_selector_term=[
                            DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTerm(
                                match_expressions=[match_gpu_pool]
                            )
                        ]
                    )
                )
            ),
            # Spread over zones when capacity allows; GPU capacity is scarce, so never block on it.
            topology_spread_constraint=[
                DeploymentV1SpecTemplateSpecTopologySpreadConstraint(
                    max_skew=1,
                    topology_key=key,
                    when_unsatisfiable="ScheduleAnyway",
                    label_selector=[
                        DeploymentV1SpecTemplateSpecTopologySpreadConstraintLabelSelector(match_labels=LABELS)
                    ],
                )
                for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
            ],
            init_container=[custom_nodes_copy],
            container=[comfyui, uploader],
            volume=[
                DeploymentV1SpecTemplateSpecVolume(
                    name="models",
                    persistent_volume_claim=DeploymentV1SpecTemplateSpecVolumePersistentVolumeClaim(
                        claim_name=models.metadata.name, read_only=True
                    ),
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="inputs",
                    persistent_volume_claim=DeploymentV1SpecTemplateSpecVolumePersistentVolumeClaim(
                        claim_name=inputs.metadata.name
                    ),
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="outputs",
                    persistent_volume_claim=DeploymentV1SpecTemplateSpecVolumePersistentVolumeClaim(
                        claim_name=outputs.metadata.name
                    ),
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="outputs-staging",
                    empty_dir=DeploymentV1SpecTemplateSpecVolumeEmptyDir(size_limit=f"{settings.output_staging_gb}Gi"),
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="scratch", empty_dir=DeploymentV1SpecTemplateSpecVolumeEmptyDir(size_limit=SCRATCH_SIZE)
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="shm",
                    empty_dir=DeploymentV1SpecTemplateSpecVolumeEmptyDir(medium="Memory", size_limit=SHM_SIZE),
                ),
                DeploymentV1SpecTemplateSpecVolume(
                    name="hooks",
                    config_map=DeploymentV1SpecTemplateSpecVolumeConfigMap(
                        name=self.hooks.metadata.name, default_mode="0555"
                    ),
                ),
            ],
        )
        return DeploymentV1(
            self,
            "deployment",
            metadata=DeploymentV1Metadata(name=names.COMFYUI_APP, namespace=namespace, labels=LABELS),
            spec=DeploymentV1Spec(
                replicas=str(settings.replicas),
                selector=DeploymentV1SpecSelector(match_labels=LABELS),
                # A new GPU pod needs a new node: start it before the old one goes (maxUnavailable 0).
                strategy=DeploymentV1SpecStrategy(
                    type="RollingUpdate",
                    rolling_update=DeploymentV1SpecStrategyRollingUpdate(max_surge="1", max_unavailable="0"),
                ),
                # Node launch and image pull come on top of the startup probe's budget.
                progress_deadline_seconds=settings.startup_timeout_seconds + 900,
                template=DeploymentV1SpecTemplate(
                    metadata=DeploymentV1SpecTemplateMetadata(
                        labels=LABELS,
                        # A change to the hook scripts rolls the pods (ConfigMap edits alone would not).
                        annotations={"comfyui/hooks-sha256": hooks_checksum()},
                    ),
                    spec=pod,
                ),
            ),
            # GPU capacity can take many minutes: `terraform apply` does not wait for the rollout
            # (docs/workload.md: kubectl rollout status).
            wait_for_rollout=False,
        )

    # --- network policy -------------------------------------------------------------------------

    def _network_policy(self, settings: ComfyUISettings, namespace: str) -> None:
        def tcp(port: int | str) -> NetworkPolicyV1SpecEgressPorts:
            return NetworkPolicyV1SpecEgressPorts(port=str(port), protocol="TCP")

        NetworkPolicyV1(
            self,
            "network-policy",
            metadata=NetworkPolicyV1Metadata(name=names.COMFYUI_APP, namespace=namespace, labels=LABELS),
            spec=NetworkPolicyV1Spec(
                pod_selector=NetworkPolicyV1SpecPodSelector(match_labels=LABELS),
                policy_types=["Ingress", "Egress"],
                # The internal ALB and the kubelet's probes live in the private subnets.
                ingress=[
                    NetworkPolicyV1SpecIngress(
                        from_=[
                            NetworkPolicyV1SpecIngressFrom(ip_block=NetworkPolicyV1SpecIngressFromIpBlock(cidr=cidr))
                            for cidr in settings.ingress_cidrs
                        ],
                        ports=[NetworkPolicyV1SpecIngressPorts(port=str(settings.port), protocol="TCP")],
                    )
                ],
                egress=[
                    NetworkPolicyV1SpecEgress(
                        to=[
                            NetworkPolicyV1SpecEgressTo(
                                namespace_selector=NetworkPolicyV1SpecEgressToNamespaceSelector(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=NetworkPolicyV1SpecEgressToPodSelector(
                                    match_labels={"k8s-app": "kube-dns"}
                                ),
                            )
                        ],
                        ports=[
                            NetworkPolicyV1SpecEgressPorts(port="53", protocol="UDP"),
                            NetworkPolicyV1SpecEgressPorts(port="53", protocol="TCP"),
                        ],
                    ),
                    NetworkPolicyV1SpecEgress(
                        to=[
                            NetworkPolicyV1SpecEgressTo(
                                ip_block=NetworkPolicyV1SpecEgressToIpBlock(cidr=POD_IDENTITY_AGENT_CIDR)
                            )
                        ],
                        ports=[tcp(80)],
                    ),
                    # S3, ECR, model hubs: HTTPS only.
                    NetworkPolicyV1SpecEgress(
                        to=[NetworkPolicyV1SpecEgressTo(ip_block=NetworkPolicyV1SpecEgressToIpBlock(cidr="0.0.0.0/0"))],
                        ports=[tcp(443)],
                    ),
                ],
            ),
        )
