"""The nbgrader course directory, through real nbgrader (requirements-instructors.txt).

On all twelve chapters: ``generate_assignment`` releases no solution code or prose,
every exercise has exactly one graded cell, and the release shows a student the
same cells as the student bundle. On two chapters (GRADED), simulated students are
autograded and exported: all solutions score full marks, the untouched release
scores 0, one wrong answer loses exactly that exercise's points (2, from a
``points-2`` tag added here). A submission whose checks were edited to ``pass``
scores 0 (nbgrader restores locked cells). In this session the module took 3 min 41 s
and 4 min 57 s wall-clock with seven submissions on a 2-core machine shared with
other jobs (load average above 9); it now autogrades four (see SUBMISSIONS).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import CHAPTERS_IPYNB, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bundle_common  # noqa: E402
import nbgrader_bundle  # noqa: E402
import simulate_students  # noqa: E402
import student_bundle  # noqa: E402
from bundle_leaks import leaks  # noqa: E402

if importlib.util.find_spec("nbgrader") is None:
    pytest.fail(
        "nbgrader is not installed: pip install -r requirements-instructors.txt "
        "(make test does)",
        pytrace=False,
    )

GRADED = ["01_autograd_refresher", "03_vhp_hvp_toy"]  # autograded end to end
TAGGED = "03_vhp_hvp_toy"  # its first exercise gets a points-2 tag here
# Four executions in all, to keep the test short: every answer right (alice), the
# release untouched (carol), one wrong answer worth 2 points (bob, first exercise),
# the checks edited to `pass` (dave). Nobody else submitted: they score 0.
SUBMISSIONS = {
    ("ch01", "alice"): "full",
    ("ch01", "carol"): "untouched",
    ("ch03", "bob"): "wrong",
    ("ch03", "dave"): "tampered",
}


def nbgrader(course: pathlib.Path, *args: str) -> str:
    bindir = str(pathlib.Path(sys.executable).parent)  # nbgrader runs `alembic`
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (
        f"nbgrader {' '.join(args)} failed ({run.returncode}):\n{run.stderr[-3000:]}"
    )
    return run.stdout + run.stderr


def tag_first_solution(path: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if bundle_common.BEGIN in c.source)
    first.metadata.setdefault("tags", []).append("points-2")
    nbformat.write(nb, out / path.name)
    return out / path.name


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The chapters as they are now (others may re-execute them during the run)."""
    out = tmp_path_factory.mktemp("chapters")
    for path in CHAPTERS_IPYNB:
        if path.stem == TAGGED:
            tag_first_solution(path, out)
        else:
            shutil.copy(path, out / path.name)
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory, snapshot):
    out = tmp_path_factory.mktemp("nbgrader")
    nbgrader_bundle.write_course(out, [snapshot / p.name for p in CHAPTERS_IPYNB])
    nbgrader(out, "generate_assignment", "*")
    return out


def release(course, path):
    folder = nbgrader_bundle.assignment_name(path)
    return nbformat.read(course / "release" / folder / path.name, as_version=4)


def grading(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_release_leaks_nothing_and_grades_each_exercise_once(course, snapshot, path):
    original = nbformat.read(snapshot / path.name, as_version=4)
    released = release(course, path)
    nbformat.validate(released)
    assert leaks(original, released, path.name) == []
    assert "jupytext" not in released.metadata, "saving would write a .md twin"
    labels = [
        m.group(1)
        for c in original.cells
        if c.cell_type == "markdown" and bundle_common.EXERCISE_START.search(c.source)
        for m in [bundle_common.EXERCISE_LABEL.search(c.source)]
    ]
    assert len(labels) >= 3, f"{path.name}: expected at least 3 exercises"
    graded = [grading(c) for c in released.cells if grading(c).get("grade")]
    assert [g["grade_id"] for g in graded] == [f"{lb}-check" for lb in labels]
    for g in graded:
        assert g["locked"] and g["points"] > 0 and not g["solution"], g
    answers = [
        grading(c)["grade_id"] for c in released.cells if grading(c).get("solution")
    ]
    assert answers == labels, "one answer cell per exercise, named by its label"
    for cell in released.cells:
        if grading(cell).get("solution"):
            assert cell.source.startswith(
                "# YOUR CODE HERE\nraise NotImplementedError()"
            )


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_release_shows_what_the_student_bundle_shows(course, snapshot, path):
    released = release(course, path)
    original = nbformat.read(snapshot / path.name, as_version=4)
    student = student_bundle.student_notebook(
        nbformat.read(snapshot / path.name, as_version=4), path.name
    ).cells
    assert [(c.cell_type, c.source) for c in released.cells] == [
        (c.cell_type, c.source) for c in student
    ]
    for rel, stu in zip(released.cells, student, strict=True):
        if rel.cell_type == "code":
            assert rel.outputs == stu.outputs, f"{path.name}: outputs differ"
    n_figures = sum(
        "image/png" in o.get("data", {})
        for c in released.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    n_original = sum(
        "image/png" in o.get("data", {})
        for c in original.cells
        if c.cell_type == "code" and bundle_common.BEGIN not in c.source
        for o in c.outputs
    )
    assert n_figures == n_original, "the release keeps the chapter's figures"


def tamper(paths):
    """Replace every check by `pass` (and leave the answers as stubs)."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if grading(cell).get("grade"):
                cell.source = "pass  # the check, edited away"
        nbformat.write(nb, path)


@pytest.fixture(scope="module")
def scores(course):
    for (assignment, student), kind in SUBMISSIONS.items():
        if kind == "tampered":
            tamper(simulate_students.submit(course, assignment, student, "untouched"))
        else:
            simulate_students.submit(course, assignment, student, kind)
    nbgrader(course, "autograde", "*")
    nbgrader(course, "export")
    with (course / "grades.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def exercises_of(rows, assignment):
    return [r["exercise"] for r in rows if r["assignment"] == assignment]


def test_autograded_scores(course, scores):
    with (course / "exercises.csv").open(newline="") as fh:
        exercises = [row for row in csv.DictReader(fh) if row["notebook"] in GRADED]
    points = {(r["assignment"], r["exercise"]): float(r["points"]) for r in exercises}
    assert points[("ch03", exercises_of(exercises, "ch03")[0])] == 2.0, "points-2 tag"
    got = {(r["assignment"], r["student_id"], r["exercise"]): r for r in scores}
    students = sorted({student for _, student in SUBMISSIONS})
    totals = dict.fromkeys(students, 0.0)
    for (assignment, label), max_score in points.items():
        first = label == exercises_of(exercises, assignment)[0]
        for student in students:
            kind = SUBMISSIONS.get((assignment, student), "nothing submitted")
            expected = {"full": max_score, "wrong": 0.0 if first else max_score}.get(
                kind, 0.0
            )
            row = got[(assignment, student, label)]
            assert float(row["max_score"]) == max_score
            assert float(row["score"]) == expected, (
                f"{student} ({kind}) on {assignment} {label}: "
                f"expected {expected}, got {row['score']}"
            )
            totals[student] += float(row["score"])
    full = {
        a: sum(v for (b, _), v in points.items() if b == a) for a in ("ch01", "ch03")
    }
    assert totals == {
        "alice": full["ch01"],
        "bob": full["ch03"] - 2.0,
        "carol": 0.0,
        "dave": 0.0,
    }


def test_autograde_restores_the_locked_check(course, scores):
    """A student who edits the checks cannot pass them: nbgrader restores them."""
    (assignment, student), _ = next(
        item for item in SUBMISSIONS.items() if item[1] == "tampered"
    )
    path = next(p for p in CHAPTERS_IPYNB if p.stem.startswith(assignment[2:]))
    autograded = nbformat.read(
        course / "autograded" / student / assignment / path.name, as_version=4
    )
    master = release(course, path)
    checks = [c.source for c in master.cells if grading(c).get("grade")]
    assert checks == [c.source for c in autograded.cells if grading(c).get("grade")]
    errors = [
        o.get("ename")
        for c in autograded.cells
        if grading(c).get("grade")
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert len(errors) == len(checks), "each restored check fails without an answer"


def test_simulated_mistake_is_a_real_mistake():
    solution = "### BEGIN SOLUTION\nH = f(x)\nv = 2\n### END SOLUTION"
    assert simulate_students.answer_variable("H = f(x)\nv = 2", "check.ok(H)") == "H"
    wrong = simulate_students.wrong_answer(solution, "check.ok(H, v)")
    assert wrong.startswith("H = f(x)\nv = 2\n") and "\nv = _torch.utils" in wrong
    with pytest.raises(ValueError, match="expected the check to read a name"):
        simulate_students.answer_variable("a = 1", "check.ok(b)")
