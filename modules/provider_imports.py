"""Load only the provider submodules the app uses.

Each prebuilt provider package's __init__ imports every one of its submodules (about 2,200 for
AWS) so that jsii knows every type up front. The app uses a few dozen, and each submodule
registers its own types when imported, so skipping the package __init__ cuts the import cost
of the AWS provider by about half a gigabyte and ten seconds. The synthesized Terraform is
byte-for-byte the same: `.ci/run` synthesizes with and without this and compares.

Set COMFYUI_EAGER_PROVIDERS=1 to import the packages the normal way.
"""

from __future__ import annotations

import importlib.util
import os
import sys

PROVIDER_PACKAGES = ("cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_kubernetes", "cdktf_cdktf_provider_helm")
EAGER_VARIABLE = "COMFYUI_EAGER_PROVIDERS"


def install() -> None:
    """Register the provider packages without running their __init__ (call before importing stacks)."""
    if os.environ.get(EAGER_VARIABLE) == "1":
        return
    for name in PROVIDER_PACKAGES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ImportError(f"{name} is not installed (pipenv sync)")
        # A package module with its __path__ set but its body not executed: `import pkg.sub` then
        # loads just `sub` (which loads the jsii assembly through `pkg._jsii` itself).
        sys.modules[name] = importlib.util.module_from_spec(spec)
