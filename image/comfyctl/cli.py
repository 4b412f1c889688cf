"""comfyctl: one command line for the ComfyUI image, the deployed service and its models.

    comfyctl image build --env dev [--local PATH] [--push] [--platform linux/amd64]
    comfyctl run WORKFLOW_API_JSON --url URL [--input img.png] [--set NODE.INPUT=VALUE] [--out DIR]
    comfyctl models upload PATH [--env dev] [--folder checkpoints]
    comfyctl models list [--env dev]

Every failure is one line on stderr and a non-zero exit (2: usage or configuration, 1: the rest).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from image.comfyctl.errors import CliError

DEFAULT_TIMEOUT = 900.0


def run_workflow(args) -> int:
    from image.comfyctl.client import ComfyClient, Progress, apply_sets, load_workflow, randomize_seeds

    if not args.url:
        raise CliError("--url is required (or set COMFYUI_URL), e.g. --url https://comfy.example.com", exit_code=2)
    if args.timeout <= 0:
        raise CliError("--timeout must be a positive number of seconds", exit_code=2)
    workflow_path = Path(args.workflow)
    workflow = load_workflow(workflow_path)
    explicit = apply_sets(workflow, args.set)
    progress = Progress(quiet=args.quiet)
    if not args.no_randomize_seed:
        for name, value in randomize_seeds(workflow, keep=explicit).items():
            progress.say(f"seed {name} = {value}")
    client = ComfyClient(args.url, token=args.token, cookies=args.cookie, progress=progress)
    result = client.run(
        workflow,
        out_dir=Path(args.out),
        timeout=args.timeout,
        inputs=[Path(p) for p in args.input],
        workflow_dir=workflow_path.resolve().parent,
    )
    names = ", ".join(str(path) for path in result.files) or "no output files"
    cached = " (cached)" if result.cached else ""
    print(f"prompt {result.prompt_id} done in {result.seconds:.1f}s{cached}: {len(result.files)} file(s): {names}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from image.comfyctl import build, models

    parser = argparse.ArgumentParser(
        prog="comfyctl", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build.add_parser(commands)

    run = commands.add_parser("run", help="run an API-format workflow against the service and download its outputs")
    run.add_argument("workflow", help="workflow in API format (ComfyUI: Workflow > Export (API))")
    run.add_argument("--url", default=os.environ.get("COMFYUI_URL"), help="service URL (default $COMFYUI_URL)")
    run.add_argument(
        "--input", action="append", default=[], metavar="FILE", help="input image for a LoadImage node (repeatable)"
    )
    run.add_argument(
        "--set", action="append", default=[], metavar="NODE.INPUT=VALUE", help="override an input (repeatable)"
    )
    run.add_argument("--out", default="outputs", help="where output files go (default ./outputs)")
    run.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds for the whole run (default {DEFAULT_TIMEOUT:g})",
    )
    run.add_argument("--no-randomize-seed", action="store_true", help="keep the seeds in the workflow")
    run.add_argument("--token", default=os.environ.get("COMFYUI_TOKEN"), help="bearer token (default $COMFYUI_TOKEN)")
    run.add_argument(
        "--cookie", action="append", default=[], metavar="NAME=VALUE", help="cookie to send, e.g. a login session"
    )
    run.add_argument("--quiet", action="store_true", help="only the summary line")
    run.set_defaults(handler=run_workflow)

    models.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CliError as err:
        print(f"comfyctl: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("comfyctl: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a local file or folder the user named (e.g. --out not writable)
        where = f": {err.filename}" if err.filename else ""
        print(f"comfyctl: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
