"""Fail when a chapter's .md and its executed .ipynb do not hold the same cells.

    python scripts/check_pairing.py notebooks/03_vhp_hvp_toy.md [more files ...]

Given chapter files (``notebooks/NN_slug.md`` or ``.ipynb``; other paths are
ignored), it compares each chapter's MyST source with its executed twin, cell by
cell (type, source, tags), as tests/test_notebooks.py does. The pre-commit hook
in .pre-commit-config.yaml runs it on the staged chapter files, so a commit
cannot carry an edited .md whose .ipynb was not re-executed (or not staged).
It never writes a file. Exit status 1 when a pair differs or is incomplete.
"""

from __future__ import annotations

import pathlib
import re
import sys

import jupytext

CHAPTER = re.compile(r"(?:^|/)notebooks/\d\d_[^/]+\.(md|ipynb)$")


def cells(nb) -> list[tuple[str, str, list[str]]]:
    return [
        (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
        for c in nb.cells
    ]


def problem(md: pathlib.Path) -> str | None:
    """What is wrong with the pair whose source is ``md``, or None."""
    twin = md.with_suffix(".ipynb")
    if not md.exists():
        return f"{twin}: its source {md.name} is missing"
    if not twin.exists():
        return f"{md}: its executed twin {twin.name} is missing"
    source, executed = cells(jupytext.read(md)), cells(jupytext.read(twin))
    if source == executed:
        return None
    first = next(
        (i for i, (a, b) in enumerate(zip(source, executed, strict=False)) if a != b),
        min(len(source), len(executed)),
    )
    return (
        f"{md} and {twin.name} differ from cell {first + 1} on "
        f"({len(source)} and {len(executed)} cells)"
    )


def main(paths: list[str]) -> int:
    chapters = sorted(
        {pathlib.Path(p).with_suffix(".md") for p in paths if CHAPTER.search(p)}
    )
    problems = [msg for md in chapters if (msg := problem(md))]
    for msg in problems:
        print(msg)
    if problems:
        print(
            "Re-execute each chapter with `.venv/bin/python scripts/execute.py "
            "notebooks/NN_slug.md` and stage both files."
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main([p.replace("\\", "/") for p in sys.argv[1:]]))
