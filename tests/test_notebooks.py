"""The chapters' structure: pairs, execution order, exercises, set-up cells, toc.

nbval (run by the same pytest call, see pyproject.toml) re-executes each
notebook and compares its outputs; these tests check what nbval does not.
"""

from __future__ import annotations

import ast
import re

import jupytext
import nbformat
import pytest
import yaml

from conftest import CHAPTERS_IPYNB, CHAPTERS_MD, ROOT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def ids(paths):
    return [p.stem for p in paths]


def cells(nb):
    return [
        (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
        for c in nb.cells
    ]


def test_there_are_chapters():
    assert CHAPTERS_MD, "no notebooks/NN_slug.md found"


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_md_and_ipynb_are_paired_with_identical_cells(md):
    twin = md.with_suffix(".ipynb")
    assert twin.exists(), (
        f"{md.name} has no executed twin {twin.name}: run `make execute`"
    )
    text, nb = jupytext.read(md), jupytext.read(twin)
    assert cells(text) == cells(nb), (
        f"{md.name} and {twin.name} differ: edit the .md, then run "
        f"`.venv/bin/python scripts/execute.py {md.relative_to(ROOT)}`"
    )
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,md:myst"


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids(CHAPTERS_IPYNB))
def test_every_ipynb_has_its_md(path):
    assert path.with_suffix(".md").exists(), f"{path.name} has no .md source"


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids(CHAPTERS_IPYNB))
def test_executed_top_to_bottom_in_one_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1, 2, 3, ...: "
        "re-execute it in a fresh kernel with scripts/execute.py"
    )
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        errors = [o for o in c.outputs if o.output_type == "error"]
        if errors:
            assert "raises-exception" in c.metadata.get("tags", []), (
                f"{path.name}: cell {c.execution_count} raised {errors[0].ename} "
                "but is not tagged raises-exception"
            )


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_chapter_conventions(md):
    nb = jupytext.read(md)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.fullmatch(r"# [^\d\s][^\n]*", nb.cells[0].source.strip()), (
        f"{md.name}: first cell is '# Title', without a number "
        "(the toc numbers chapters)"
    )
    assert "**Learning objectives.**" in text and "**Prerequisites.**" in text
    assert "## Summary" in text and "## Exercises" in text
    n_exercises = len(re.findall(r"\{exercise-start\}", text))
    assert n_exercises >= 3, f"{md.name}: {n_exercises} exercises, at least 3 needed"
    assert len(re.findall(r"\{solution-start\}", text)) == n_exercises
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(BEGIN in c.source for c in code) >= n_exercises
    assert "check.assert_close" in "\n".join(c.source for c in code)


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_exercise_checks_use_the_books_numbers(md):
    """The book numbers exercises N.k in chapter N.

    A check that says 'Exercise k' would not match the book's number.
    """
    chapter = int(md.name[:2])
    text = md.read_text()
    for number in re.findall(r'what=f?"Exercise ([\d.]+)', text):
        assert number.startswith(f"{chapter}."), (
            f"{md.name}: 'Exercise {number}' should read 'Exercise {chapter}.k'"
        )
    stray = re.findall(r"\b[Ee]xercise \d+\b(?![.\d])", text)
    assert not stray, (
        f"{md.name}: unqualified references {stray}; write 'exercise {chapter}.k'"
    )


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_solution_cells_are_fenced_and_checked(md):
    """Inside a solution gate, every code cell fences its answer and then checks it."""
    inside = False
    for c in jupytext.read(md).cells:
        if c.cell_type == "markdown" and "{solution-start}" in c.source:
            inside = True
        elif c.cell_type == "markdown" and "{solution-end}" in c.source:
            inside = False
        elif c.cell_type == "code" and inside:
            src = c.source
            assert src.count(BEGIN) == src.count(END) >= 1, (
                f"{md.name}: unfenced solution:\n{src}"
            )
            after = src.rsplit(END, 1)[1]
            assert "check." in after, (
                f"{md.name}: a solution cell has no check after its fence:\n{src}"
            )
        elif c.cell_type == "code":
            assert BEGIN not in c.source, (
                f"{md.name}: solution fence outside a solution gate"
            )


def _names(source, ctx):
    """Names a piece of code stores (ast.Store) or reads (ast.Load).

    Names bound inside comprehensions are left out.
    """
    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    found = set()

    def visit(node, in_comprehension=False):
        inside = in_comprehension or isinstance(
            node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        )
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ctx)
            and not (inside and ctx is ast.Store)
        ):
            found.add(node.id)
        if ctx is ast.Store and isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
        if ctx is ast.Store and isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(code))
    return found


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_later_cells_do_not_need_what_a_check_defines(md):
    """In the student bundle a stub raises before its check runs.

    So nothing later may need the names the check defines.
    """
    code = [c.source for c in jupytext.read(md).cells if c.cell_type == "code"]
    for i, source in enumerate(code):
        if END not in source:
            continue
        made_by_check = _names(source.rsplit(END, 1)[1], ast.Store)
        for later in code[i + 1 :]:
            needed = (made_by_check & _names(later, ast.Load)) - _names(
                later, ast.Store
            )
            assert not needed, (
                f"{md.name}: {sorted(needed)} is defined after a solution fence "
                "and used later; define it in a set-up cell instead"
            )


# Every chapter's hidden first code cell, to the letter (CONTRIBUTING.md, "Set-up").
SETUP_CELL = """\
# Set-up, hidden in the book. Where the course's helpers package is missing (Colab,
# a downloaded notebook), install it from the repository at the course's version.
# Everywhere, show an error as one line, "ErrorType: message" (the rest of a
# traceback is PyTorch's internals), warnings without file paths, and figures as
# SVG that a phone can read and a dark page can show.
import importlib.util
import warnings

REPOSITORY = "{url}"
HELPERS_VERSION = "{version}"
if importlib.util.find_spec("helpers") is None:
    print(f"Installing the course's helpers {{HELPERS_VERSION}} from {{REPOSITORY}}")
    %pip install --quiet "course-helpers @ git+{{REPOSITORY}}@v{{HELPERS_VERSION}}"
%xmode Minimal
warnings.formatwarning = lambda message, category, *args, **kwargs: (
    f"{{category.__name__}}: {{message}}\\n"
)
from helpers.figures import use_course_style

use_course_style()"""


def setup_cell_source() -> str:
    """The set-up cell for this repository's address and the helpers' version."""
    import helpers

    url = CONFIG["repository"]["url"]
    return SETUP_CELL.format(url=url, version=helpers.__version__)


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_setup_cell_is_the_course_set_up_cell(md):
    """The hidden first code cell: install where missing, short errors, path-free
    warnings, the figure style; the same text in every chapter."""
    first_code = next(c for c in jupytext.read(md).cells if c.cell_type == "code")
    assert first_code.source == setup_cell_source(), (
        f"{md.name}: the first code cell must be the course's set-up cell "
        "(tests/test_notebooks.py, SETUP_CELL), to the letter"
    )
    assert "remove-cell" in first_code.metadata.get("tags", [])


# Commands that MathJax 3 knows only because a book's configuration defines them.
_BOOK_MACROS = r"\\(Hess|Jac|vv|vx|vw|vtheta|loss|diag|tr|T|R|E)(?![A-Za-z])"


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=ids(CHAPTERS_MD))
def test_math_needs_no_macro_definitions(md):
    """JupyterLab and Colab typeset cells in any order, so no cell may rely on a
    macro defined elsewhere (in another cell or in _config.yml): plain LaTeX only."""
    for cell in jupytext.read(md).cells:
        if cell.cell_type != "markdown":
            continue
        assert "\\newcommand" not in cell.source and "\\def\\" not in cell.source, (
            f"{md.name}: a cell defines a macro:\n{cell.source[:200]}"
        )
        used = re.findall(_BOOK_MACROS, cell.source)
        assert not used, (
            f"{md.name}: custom macros {sorted(set(used))} in:\n{cell.source[:200]}"
        )


def test_toc_lists_every_chapter_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    chapters = [f for f in files if f.startswith("notebooks/")]
    assert chapters == sorted(chapters), "chapters in _toc.yml are out of order"
    for part in toc["parts"]:
        has_chapters = any(
            ch["file"].startswith("notebooks/") for ch in part["chapters"]
        )
        assert part.get("numbered", False) == has_chapters, (
            f"part {part['caption']!r}: parts with chapters are numbered, "
            "others are not"
        )
    assert chapters == [f"notebooks/{p.stem}" for p in CHAPTERS_IPYNB]
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f
