"""Shared paths and helpers for the tests."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS_MD = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
CHAPTERS_IPYNB = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def update_report(variable: str, section: str, body: str) -> None:
    """Write ``body`` as section ``section`` of the report file that the
    environment variable ``variable`` names (nothing if it is unset).

    The file holds one ``== section`` header per chapter, sorted; xdist workers
    update it one at a time under a lock, each replacing only its own section.
    """
    target = os.environ.get(variable)
    if not target:
        return
    path = pathlib.Path(target)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_text() if path.exists() else ""
        sections = dict(re.findall(r"(?ms)^== (\S+)\n(.*?)(?=^== |\Z)", old))
        sections[section] = body if body.endswith("\n") else body + "\n"
        path.write_text("".join(f"== {k}\n{v}" for k, v in sorted(sections.items())))


def browser_kit() -> types.ModuleType:
    """``scripts/browser_kit.py`` as one module object for every test file, so
    that the browser and JupyterLab tests share its one browser."""
    if "browser_kit" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "browser_kit", ROOT / "scripts" / "browser_kit.py"
        )
        sys.modules["browser_kit"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["browser_kit"])
    return sys.modules["browser_kit"]


def check_jsonschema(schema: str, *paths: pathlib.Path | str) -> tuple[int, dict]:
    """Run check-jsonschema with one of its vendored schemas on ``paths``, in one
    call (each call takes seconds); return its exit code and its JSON report."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
         "--output-format", "JSON", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout)
