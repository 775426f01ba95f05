"""Write the student bundle: the course with every solution taken out.

    python scripts/student_bundle.py _build/student

From the committed, executed notebooks it writes ``<out>/notebooks/*.ipynb`` in
which

* each code region fenced by ``### BEGIN SOLUTION`` / ``### END SOLUTION`` is
  replaced by ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (the
  stub nbgrader writes), and that cell's outputs are cleared;
* the solution gates (``solution-start`` ... ``solution-end``) and every
  markdown cell between them are removed, so the code cell that remains is the
  student's to fill in, followed by its check;
* non-gated ``{solution}`` directives are removed.

It also copies the book's pages and configuration, with sphinx-exercise's
``hide_solutions`` switched on, so ``jupyter-book build <out>`` gives the
students' book.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
GATE_START = re.compile(r"^\s*(`{3,}|:{3,})\{solution-start\}", re.M)
GATE_END = re.compile(r"^\s*(`{3,}|:{3,})\{solution-end\}", re.M)
SOLUTION_DIRECTIVE = re.compile(r"^\s*(`{3,}|:{3,})\{solution\}", re.M)


def strip_solution_code(source: str) -> str:
    """Replace each BEGIN/END SOLUTION region by the stub, at the BEGIN line's indent."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB)
        elif stripped == END:
            if not inside:
                raise ValueError("### END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without END")
    return "\n".join(out)


GATE_ALONE = re.compile(
    r"^\s*(`{3,}|:{3,})\{solution-(start|end)\}[^\n]*\n(\s*:[a-z-]+:[^\n]*\n)*\s*\1\s*$"
)


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (GATE_START.search(cell.source) or GATE_END.search(cell.source)):
            if not GATE_ALONE.match(cell.source.strip() + "\n"):
                raise ValueError(
                    f"{name}: a solution-start or solution-end shares its markdown cell with "
                    f"other text; give it a cell of its own (separate with +++):\n{cell.source[:300]}"
                )
    cells = []
    in_gate = False
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "markdown" and GATE_START.search(src):
            if in_gate:
                raise ValueError(f"{name}: solution-start inside a solution")
            in_gate = True
            continue
        if cell.cell_type == "markdown" and GATE_END.search(src):
            if not in_gate:
                raise ValueError(f"{name}: solution-end without solution-start")
            in_gate = False
            continue
        if cell.cell_type == "markdown" and SOLUTION_DIRECTIVE.search(src):
            continue
        if in_gate and cell.cell_type == "markdown":
            continue
        if cell.cell_type == "code" and (BEGIN in src or END in src):
            cell.source = strip_solution_code(src)
            cell.outputs = []
            cell.execution_count = None
        elif in_gate and cell.cell_type == "code":
            raise ValueError(
                f"{name}: a code cell inside a solution has no {BEGIN!r} fence:\n{src[:200]}"
            )
        cells.append(cell)
    if in_gate:
        raise ValueError(f"{name}: solution-start without solution-end")
    nb.cells = cells
    nb.metadata.pop("jupytext", None)  # the student copy is not paired with a .md
    return nb


def write_bundle(out: pathlib.Path) -> list[pathlib.Path]:
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "book", out / "book")
    shutil.copy(ROOT / "_toc.yml", out / "_toc.yml")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = config["title"] + " (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    written = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = student_notebook(nbformat.read(path, as_version=4), path.name)
        nbformat.validate(nb)
        target = out / "notebooks" / path.name
        nbformat.write(nb, target)
        written.append(target)
    for extra in sorted((ROOT / "notebooks").iterdir()):
        if extra.suffix not in {".md", ".ipynb"} and extra.is_file():
            shutil.copy(extra, out / "notebooks" / extra.name)
    return written


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "_build/student")
    files = write_bundle(target)
    print(f"wrote {len(files)} student notebooks to {target / 'notebooks'}")
