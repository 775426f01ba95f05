"""Write the student bundle: the course with every solution taken out.

    python scripts/student_bundle.py _build/student

From the committed, executed notebooks it writes ``<out>/notebooks/*.ipynb``,
reading each chapter with ``bundle_common.student_cells`` (the same reading
``make nbgrader`` uses, so the two bundles show a student the same cells):

* the solution gates, the solution prose and ``{solution}`` directives are
  removed;
* each exercise's solution becomes an answer cell in which the fenced region
  is replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (the
  stub nbgrader writes), followed by a cell holding the check; both have their
  outputs cleared;
* every other cell keeps its outputs and figures; jupytext's pairing metadata
  is dropped.

It also writes ``<out>/student-notebooks.zip`` (the student notebooks) and
copies the book's pages and configuration with sphinx-exercise's
``hide_solutions`` on and the Colab and Binder launch buttons off (they would
open the repository's notebooks, which hold the solutions); the student
book's front page links the zip instead, and each page's download button
gives that page's student notebook. ``jupyter-book build <out>`` gives the
students' book.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import zipfile

import nbformat
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import (  # noqa: E402
    BEGIN,
    END,
    STUB,
    drop_pairing,
    strip_solution_code,
    student_cells,
)

__all__ = ["BEGIN", "END", "STUB", "strip_solution_code", "student_notebook"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
ZIP_NAME = "student-notebooks.zip"
DOWNLOAD_NOTE = f"""

## The notebooks for students

This is the student edition: the exercises have no solutions. Download
{{download}}`every chapter as a notebook <../{ZIP_NAME}>` (a zip), or a single
chapter with its page's download button, and open it in JupyterLab or upload it
to Colab. The launch buttons are off in this edition, because they would open
the repository's notebooks, which hold the solutions.
"""


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The chapter as the student bundle writes it."""
    cells = []
    for item in student_cells(nb, name):
        if item.role == "answer":
            item.cell.source = strip_solution_code(item.cell.source)
        cells.append(item.cell)
    nb.cells = cells
    return drop_pairing(nb)


def student_config(config: dict) -> dict:
    config = dict(config)
    config["title"] = config["title"] + " (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    launch = dict(config.get("launch_buttons") or {})
    launch["colab_url"] = ""  # empty: sphinx-book-theme shows no Colab button
    launch["binderhub_url"] = ""
    launch["jupyterhub_url"] = ""
    launch["thebe"] = False
    config["launch_buttons"] = launch
    return config


def write_bundle(
    out: pathlib.Path, notebooks: pathlib.Path | None = None
) -> list[pathlib.Path]:
    """Write the bundle from the notebooks in `notebooks` (default: the chapters)."""
    notebooks = notebooks or ROOT / "notebooks"
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "book", out / "book")
    intro = out / "book" / "intro.md"
    intro.write_text(intro.read_text().rstrip("\n") + DOWNLOAD_NOTE)
    shutil.copy(ROOT / "_toc.yml", out / "_toc.yml")
    config = student_config(yaml.safe_load((ROOT / "_config.yml").read_text()))
    (out / "_config.yml").write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    written = []
    for path in sorted(notebooks.glob("*.ipynb")):
        nb = student_notebook(nbformat.read(path, as_version=4), path.name)
        nbformat.validate(nb)
        target = out / "notebooks" / path.name
        nbformat.write(nb, target)
        written.append(target)
    extras = [
        p
        for p in sorted(notebooks.iterdir())
        if p.suffix not in {".md", ".ipynb"} and p.is_file()
    ]
    for extra in extras:
        shutil.copy(extra, out / "notebooks" / extra.name)
    with zipfile.ZipFile(out / ZIP_NAME, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in written + [out / "notebooks" / p.name for p in extras]:
            zf.write(path, f"notebooks/{path.name}")
    return written


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "_build/student")
    files = write_bundle(target)
    print(f"wrote {len(files)} student notebooks to {target / 'notebooks'}")
    print(f"and {target / ZIP_NAME}")
