#!/usr/bin/env python
"""The cdktf app: load the environment files, build every stack, synthesize.

    npx cdktf synth                          # all environments in config/
    CDKTF_ENVIRONMENTS=dev npx cdktf synth   # only dev

A configuration mistake prints one line naming the file and field, and exits 2.
"""

from __future__ import annotations

import json
import os
import sys

# jsii prints a banner on every start once Node 20 is past its end of life; the synth is unaffected
# (docs/decisions.md: Node version). Other versions' warnings still show.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from config import ConfigError, load_environments, selected_names


def _context_environments() -> object:
    # The cdktf CLI hands cdktf.json's "context" (and --context) to the app in this variable.
    raw = os.environ.get("CDKTF_CONTEXT_JSON")
    if not raw:
        return None
    try:
        return json.loads(raw).get("environments")
    except (ValueError, AttributeError):
        return None


def main() -> int:
    try:
        names, source = selected_names(_context_environments())
        environments = load_environments(names=names, source=source)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    # Imported after validation so that a config mistake is reported in well under a second.
    from modules import provider_imports

    provider_imports.install()
    from stacks.app import build_app

    try:
        build_app(environments).synth()
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
