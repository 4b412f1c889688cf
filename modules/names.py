"""Names and paths that more than one stack or file must agree on. Change them here only.

No cdktf imports: the Lambda packaging, the node scripts' tests and the CLI read these too.
"""

# Tag on every GPU node (set by the EC2NodeClass in <env>-workload). The model-sync Lambda finds
# GPU nodes by it plus the cluster tag Karpenter sets, and its SSM permission is scoped to both.
GPU_POOL_TAG_KEY = "comfyui/pool"
GPU_POOL_TAG_VALUE = "gpu"
CLUSTER_TAG_KEY = "eks:eks-cluster-name"

# NodePool names and the node label/taint that mark GPU nodes.
GPU_NODEPOOL = "gpu"
GPU_FALLBACK_NODEPOOL = "gpu-on-demand"
GPU_NODE_LABEL_KEY = "comfyui/pool"
GPU_TAINT_KEY = "nvidia.com/gpu"

# Node-side model sync script (lambda/../node/comfyui-model-sync), installed by GPU node user data.
MODEL_SYNC_SCRIPT_PATH = "/usr/local/bin/comfyui-model-sync"
# Written into the models directory after a successful full sync; ComfyUI's startup probe waits for it.
MODELS_READY_MARKER = ".comfyui-models-ready"

# Kubernetes objects of the ComfyUI workload.
COMFYUI_APP = "comfyui"
COMFYUI_SERVICE_ACCOUNT = "comfyui"
COMFYUI_SERVICE = "comfyui"
# Container paths (match image/Dockerfile and the Deployment's mounts).
CONTAINER_MODELS_PATH = "/opt/ComfyUI/models"
CONTAINER_INPUT_PATH = "/opt/ComfyUI/input"
CONTAINER_OUTPUT_PATH = "/opt/ComfyUI/output"
CONTAINER_UID = 1000
CONTAINER_GID = 1000
