"""The ComfyUI image (Dockerfile, pinned custom nodes) and comfyctl, the command line around it."""
