"""The student bundle: no solution survives, notebooks are valid, the stub is nbgrader's

Also the shared reading of the chapters (scripts/bundle_common.py) on small notebooks
built here: splitting a solution into answer and check, points tags, broken gates.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import zipfile

import nbformat
import pytest
import yaml

from conftest import CHAPTERS_IPYNB, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
spec = importlib.util.spec_from_file_location(
    "student_bundle", ROOT / "scripts" / "student_bundle.py"
)
student_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_bundle)
import bundle_common  # noqa: E402
from bundle_leaks import leaks, n_solutions, solution_lines  # noqa: E402


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The chapters as they are now (others may re-execute them during the run)."""
    out = tmp_path_factory.mktemp("chapters")
    for path in CHAPTERS_IPYNB:
        shutil.copy(path, out / path.name)
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, snapshot):
    out = tmp_path_factory.mktemp("student")
    student_bundle.write_bundle(out, snapshot)
    return out


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_no_solution_survives(bundle, snapshot, path):
    original = nbformat.read(snapshot / path.name, as_version=4)
    student = nbformat.read(bundle / "notebooks" / path.name, as_version=4)
    nbformat.validate(student)
    assert solution_lines(original), f"{path.name} has no solution lines to hide"
    assert leaks(original, student, path.name) == []
    assert "jupytext" not in student.metadata
    cells = student.cells
    stubs = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "code" and "raise NotImplementedError()" in c.source
    ]
    assert len(stubs) == n_solutions(original)
    for i in stubs:
        stub, check = cells[i], cells[i + 1]
        assert stub.outputs == [] and stub.execution_count is None
        assert stub.source.startswith("# YOUR CODE HERE\nraise NotImplementedError()")
        assert check.cell_type == "code" and "check." in check.source, (
            f"{path.name}: expected the check cell after the answer cell, got "
            f"{check.source[:80]!r}"
        )
        assert check.outputs == [], "the check's output would show the answer"


def test_other_outputs_are_kept(bundle, snapshot):
    for path in CHAPTERS_IPYNB:
        original = nbformat.read(snapshot / path.name, as_version=4)
        student = nbformat.read(bundle / "notebooks" / path.name, as_version=4)
        kept = {
            c.get("id"): c.outputs
            for c in student.cells
            if c.cell_type == "code" and c.outputs
        }
        for cell in original.cells:
            if cell.cell_type == "code" and bundle_common.BEGIN not in cell.source:
                assert kept.get(cell.get("id"), []) == cell.outputs, (
                    f"{path.name}: outputs of cell {cell.get('id')} changed"
                )


def test_bundle_is_a_buildable_book_without_launch_buttons(bundle):
    config = yaml.safe_load((bundle / "_config.yml").read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True
    launch = config["launch_buttons"]
    assert launch["colab_url"] == "" and launch["binderhub_url"] == "", (
        "launch buttons would open the repository's notebooks, with solutions"
    )
    assert (bundle / "_toc.yml").exists() and (bundle / "book" / "intro.md").exists()
    assert not list((bundle / "notebooks").glob("*.md")), (
        "the bundle holds notebooks only"
    )
    intro = (bundle / "book" / "intro.md").read_text()
    assert f"<../{student_bundle.ZIP_NAME}>" in intro
    with zipfile.ZipFile(bundle / student_bundle.ZIP_NAME) as zf:
        names = sorted(zf.namelist())
        assert names == [f"notebooks/{p.name}" for p in CHAPTERS_IPYNB]
        for p in CHAPTERS_IPYNB:
            zipped = zf.read(f"notebooks/{p.name}")
            assert zipped == (bundle / "notebooks" / p.name).read_bytes()


def test_stub_keeps_indentation_and_refuses_broken_fences():
    src = (
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
        "check.x()"
    )
    assert student_bundle.strip_solution_code(src) == (
        "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\ncheck.x()"
    )
    with pytest.raises(ValueError, match="without END"):
        student_bundle.strip_solution_code("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without BEGIN"):
        student_bundle.strip_solution_code("x = 1\n### END SOLUTION")


def test_split_keeps_the_whole_check_in_the_check_cell():
    src = (
        "given = 1\n### BEGIN SOLUTION\nanswer = 2\n### END SOLUTION\n"
        "expected = 2\n"
        "check.assert_close(\n    answer,\n    expected,\n"
        '    not_autograd="a count, not a derivative",\n'
        '    what="Exercise 1.1: x",\n)'
    )
    answer, check = bundle_common.split_solution(src)
    assert answer == "given = 1\n### BEGIN SOLUTION\nanswer = 2\n### END SOLUTION"
    assert check.startswith("expected = 2\ncheck.assert_close(")
    assert check.endswith(
        'not_autograd="a count, not a derivative",\n    what="Exercise 1.1: x",\n)'
    )
    assert bundle_common.solution_body(src) == "given = 1\nanswer = 2\n" + check
    with pytest.raises(ValueError, match="expected a check after"):
        bundle_common.split_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n")
    with pytest.raises(ValueError, match="found none"):
        bundle_common.split_solution("x = 1")


def chapter(tags=None, prose="Why: because.", code=None):
    code = code or "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\ncheck.same(x, 1)"
    cell = nbformat.v4.new_code_cell(code)
    if tags is not None:
        cell.metadata["tags"] = tags
    cell.outputs = [nbformat.v4.new_output("stream", text="✓ x\n")]
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "::::{exercise-start}\n:label: ex-04-a\n::::"
            ),
            nbformat.v4.new_markdown_cell("Statement."),
            nbformat.v4.new_markdown_cell("::::{exercise-end}\n::::"),
            nbformat.v4.new_markdown_cell(
                "::::{solution-start} ex-04-a\n:class: dropdown\n::::"
            ),
            cell,
            nbformat.v4.new_markdown_cell(prose),
            nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
        ]
    )


def test_student_cells_roles_numbers_and_points():
    items = bundle_common.student_cells(
        chapter(tags=["points-2", "keep"]), "04_x.ipynb"
    )
    roles = [i.role for i in items]
    assert roles == ["plain", "plain", "plain", "answer", "check"]
    answer, check = items[3], items[4]
    assert answer.exercise.label == "ex-04-a" and answer.exercise.number == "4.1"
    assert answer.exercise.points == 2.0
    assert answer.cell.metadata["tags"] == ["keep"], "the points tag is consumed"
    assert answer.cell.outputs == [] and check.cell.outputs == []
    assert check.cell.source == "check.same(x, 1)"
    assert "Why: because." not in json.dumps([i.cell for i in items])
    default = bundle_common.student_cells(chapter(), "04_x.ipynb")
    assert default[3].exercise.points == bundle_common.DEFAULT_POINTS
    for bad in ("points-0", "points-two", "points--1"):
        with pytest.raises(ValueError, match=f"got '{bad}'"):
            bundle_common.student_cells(chapter(tags=[bad]), "04_x.ipynb")


def test_unfenced_code_inside_a_solution_is_refused():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("::::{solution-start} ex\n::::"),
            nbformat.v4.new_code_cell("answer = 42"),
            nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
        ]
    )
    with pytest.raises(ValueError, match="has no '### BEGIN SOLUTION' fence"):
        student_bundle.student_notebook(nb, "x.ipynb")


def test_two_solution_cells_in_one_gate_are_refused():
    nb = chapter()
    nb.cells.insert(5, nbformat.v4.new_code_cell(nb.cells[4].source))
    with pytest.raises(ValueError, match="expected exactly one code cell, got 2"):
        bundle_common.student_cells(nb, "04_x.ipynb")


def test_gate_sharing_a_cell_is_refused():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "::::{solution-end}\n::::\n\n"
                "::::{exercise-start}\n:label: b\n::::\nNext"
            ),
        ]
    )
    with pytest.raises(ValueError, match="give it a cell of its own"):
        student_bundle.student_notebook(nb, "x.ipynb")
    alone = [
        nbformat.v4.new_markdown_cell(
            "::::{solution-start} ex-1\n:class: dropdown\n::::"
        ),
        nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
    ]
    with pytest.raises(ValueError, match="expected exactly one code cell, got 0"):
        student_bundle.student_notebook(nbformat.v4.new_notebook(cells=alone), "y")


def test_leak_detector_finds_leaks():
    original = chapter(prose="The answer is one because x equals one.")
    clean = student_bundle.student_notebook(nbformat.from_dict(original), "04_x.ipynb")
    assert leaks(original, clean, "x") == []
    leaky = nbformat.from_dict(clean)
    leaky.cells[3].source = "x = 1"
    leaky.cells.append(
        nbformat.v4.new_markdown_cell("The answer is one because x equals one.")
    )
    found = leaks(original, leaky, "x")
    assert any("solution line 'x = 1'" in f for f in found)
    assert any("solution prose" in f for f in found)
