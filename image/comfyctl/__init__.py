"""comfyctl: build and push the ComfyUI image, run workflows against the service, manage models.

    pipenv run comfyctl image build --env dev [--local PATH] [--push]
    pipenv run comfyctl run image/workflows/sdxl_refiner_api.json --url https://comfy.example.com
    pipenv run comfyctl models upload ./sd_xl_base_1.0.safetensors --env dev --folder checkpoints
    pipenv run comfyctl models list --env dev

docs/image-and-client.md describes every command.
"""
