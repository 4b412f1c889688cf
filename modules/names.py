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

# Node-side model sync script, installed by GPU node user data at MODEL_SYNC_SCRIPT_PATH and run with
# `--bucket B [--prefix P] --dir D --region R --full` at boot (docs/model-sync.md).
MODEL_SYNC_SCRIPT_SOURCE = "modules/node_files/comfyui-model-sync"  # relative to the project root
MODEL_SYNC_SCRIPT_PATH = "/usr/local/bin/comfyui-model-sync"
# Models-dir entries starting with this are node-local (ready marker, download staging): never synced or deleted.
MODEL_SYNC_RESERVED_PREFIX = ".comfyui-"
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
# ComfyUI writes its user settings/database and previews here (emptyDirs: the root FS is read-only).
CONTAINER_USER_PATH = "/opt/ComfyUI/user"
CONTAINER_TEMP_PATH = "/opt/ComfyUI/temp"
# Some custom nodes download into their own folder, libraries cache under $HOME (image/Dockerfile).
CONTAINER_CUSTOM_NODES_PATH = "/opt/ComfyUI/custom_nodes"
CONTAINER_HOME = "/home/comfyui"
CONTAINER_UID = 1000
CONTAINER_GID = 1000
