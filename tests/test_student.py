"""The student bundle: no solution survives, every notebook is valid, the stub is nbgrader's."""

from __future__ import annotations

import importlib.util
import json

import nbformat
import pytest

from conftest import CHAPTERS_IPYNB, ROOT

spec = importlib.util.spec_from_file_location("student_bundle", ROOT / "scripts" / "student_bundle.py")
student_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_bundle)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    student_bundle.write_bundle(out)
    return out


def solution_lines(nb):
    """Every non-blank line between the fences of every solution cell."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code" or student_bundle.BEGIN not in cell.source:
            continue
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == student_bundle.BEGIN:
                inside = True
            elif line.strip() == student_bundle.END:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_no_solution_survives(bundle, path):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(bundle / "notebooks" / path.name, as_version=4)
    nbformat.validate(student)
    text = json.dumps(student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "solution-start" not in text and "solution-end" not in text
    secrets = solution_lines(original)
    assert secrets, f"{path.name} has no solution lines to hide"
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for line in secrets:
        if line not in "\n".join(c.source for c in original.cells
                                 if c.cell_type == "code" and student_bundle.BEGIN not in c.source):
            assert line not in student_code, f"{path.name}: solution line survived: {line!r}"
    stubs = [c for c in student.cells if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert len(stubs) == len([c for c in original.cells if c.cell_type == "code" and student_bundle.BEGIN in c.source])
    for c in stubs:
        assert c.outputs == [] and c.execution_count is None
        assert c.source.startswith("# YOUR CODE HERE\nraise NotImplementedError()")
        assert "check." in c.source, "the check stays so students see whether they are right"
    assert len(student.cells) < len(original.cells)


def test_bundle_is_a_buildable_book(bundle):
    import yaml

    config = yaml.safe_load((bundle / "_config.yml").read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert (bundle / "_toc.yml").exists() and (bundle / "book" / "intro.md").exists()
    assert not list((bundle / "notebooks").glob("*.md")), "the bundle holds notebooks only"


def test_stub_keeps_indentation_and_refuses_broken_fences():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\ncheck.x()"
    assert student_bundle.strip_solution_code(src) == (
        "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\ncheck.x()"
    )
    with pytest.raises(ValueError, match="without END"):
        student_bundle.strip_solution_code("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without BEGIN"):
        student_bundle.strip_solution_code("x = 1\n### END SOLUTION")


def test_unfenced_code_inside_a_solution_is_refused():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("::::{solution-start} ex\n::::"),
        nbformat.v4.new_code_cell("answer = 42"),
        nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
    ])
    with pytest.raises(ValueError, match="has no '### BEGIN SOLUTION' fence"):
        student_bundle.student_notebook(nb, "x.ipynb")


def test_gate_sharing_a_cell_is_refused():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("::::{solution-end}\n::::\n\n::::{exercise-start}\n:label: b\n::::\nNext"),
    ])
    with pytest.raises(ValueError, match="give it a cell of its own"):
        student_bundle.student_notebook(nb, "x.ipynb")
    alone = [nbformat.v4.new_markdown_cell("::::{solution-start} ex-1\n:class: dropdown\n::::"),
             nbformat.v4.new_markdown_cell("::::{solution-end}\n::::")]
    assert student_bundle.student_notebook(nbformat.v4.new_notebook(cells=alone), "y").cells == []
