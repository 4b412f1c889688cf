"""Empty Pipfile.lock's `_meta.sources` after `pipenv lock` (no committed file names a registry host)."""

import json
import pathlib

lock_path = pathlib.Path(__file__).resolve().parent.parent / "Pipfile.lock"
lock = json.loads(lock_path.read_text())
lock["_meta"]["sources"] = []
for section in ("default", "develop"):
    for package in lock[section].values():
        package.pop("index", None)
lock_path.write_text(json.dumps(lock, indent=4, sort_keys=True) + "\n")
print(f"{lock_path.name}: _meta.sources emptied")
