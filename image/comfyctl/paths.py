"""Where the project's files are, independent of the current directory."""

from pathlib import Path

IMAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = IMAGE_DIR.parent
DOCKERFILE = IMAGE_DIR / "Dockerfile"
INSTALL_NODES = IMAGE_DIR / "install_nodes.py"
CUSTOM_NODES_FILE = IMAGE_DIR / "custom_nodes.yaml"
CDKTF_OUT = PROJECT_DIR / "cdktf.out" / "stacks"


def display(path: Path) -> str:
    """A path relative to the current directory when it is below it (shorter error messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
