"""Execute chapters top to bottom in one fresh kernel and write their paired .ipynb.

    python scripts/execute.py notebooks/03_vhp_hvp_toy.md [more.md ...]

The ``.md`` file (MyST, edited by hand) is the source; the ``.ipynb`` twin is
written with its outputs, execution counts 1, 2, 3, ... and jupytext pairing
metadata.  Cells tagged ``raises-exception`` may raise; any other error stops
the run and nothing is written for that chapter.
"""

from __future__ import annotations

import pathlib
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient

FORMATS = "ipynb,md:myst"


def execute(md_path: pathlib.Path) -> float:
    nb = jupytext.read(md_path)
    nb.metadata.setdefault("jupytext", {})["formats"] = FORMATS
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(md_path.parent)}},
    ).execute()
    elapsed = time.perf_counter() - start
    out = md_path.with_suffix(".ipynb")
    jupytext.write(nb, out, fmt="ipynb")
    nbformat.validate(nbformat.read(out, as_version=4))
    return elapsed


if __name__ == "__main__":
    paths = [pathlib.Path(p) for p in sys.argv[1:]]
    if not paths:
        sys.exit("usage: python scripts/execute.py notebooks/NN_slug.md ...")
    for path in paths:
        if path.suffix != ".md":
            sys.exit(f"{path}: give the .md source, not {path.suffix}")
        print(f"executing {path} ...", flush=True)
        print(
            f"  wrote {path.with_suffix('.ipynb')} in {execute(path):.1f} s", flush=True
        )
