"""The nbgrader course directory, through real nbgrader (requirements-instructors.txt).

On every chapter: ``generate_assignment`` releases no solution code or prose, no
hidden test and no model answer; every exercise has exactly one graded check; and
the release shows a student the same cells as the student bundle.

Autograded end to end (one ``autograde`` run), then exported:

* chapter 1 (``REAL``): the solutions score full marks (hidden tests and all;
  the first exercise is worth 2, from a ``points-2`` tag added to the chapter's
  ``.md`` here: points are read from the source without re-executing); a
  submission that rebinds the comparison functions and writes wrong answers
  scores 0 on every visible check, and its gradients in exercise 1.3, right but
  from two calls of ``torch.autograd.grad`` where one was asked for, lose the
  hidden points;
* a synthetic chapter (tests/synthetic_chapter.py, fast) with hidden tests and
  a written answer: the solution scores full marks on what is autograded, a
  wrong-method answer that passes the visible check loses the hidden points, a
  monkeypatching submission with wrong answers scores 0 on every exercise, a
  submission whose checks were edited to ``pass`` scores 0 (nbgrader restores
  locked cells), and the written answer waits for a manual grade, shows in the
  formgrader's page with its rubric, and counts once graded through the
  gradebook (as the formgrader does).

Timing: see the report of issue 25 (measured on a 2-core machine shared with
other jobs).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import kernel_forkserver
import nbformat
import pytest
from chapter_groups import fork_server_socket

from conftest import CHAPTERS_IPYNB, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bundle_common  # noqa: E402
import nbgrader_bundle  # noqa: E402
import simulate_students  # noqa: E402
import student_bundle  # noqa: E402
import synthetic_chapter  # noqa: E402
from bundle_leaks import leaks  # noqa: E402

if importlib.util.find_spec("nbgrader") is None:
    pytest.fail(
        "nbgrader is not installed: pip install -r requirements-instructors.txt "
        "(make test does)",
        pytrace=False,
    )

# The real chapter autograded: chapter 1, the shortest, whose three exercises all
# have hidden tests (about 3 s per execution here; chapter 5, used before, took 15).
TAGGED = "01_autograd_refresher"  # its first exercise gets a points-2 tag here
REAL = "ch01"
# bob's wrong-method answer to exercise 1.3: the right gradients, so it passes the
# visible check, but from two calls of torch.autograd.grad where one was asked for
WRONG_EXERCISE = "ex-01-one-call"
WRONG_METHOD = {
    WRONG_EXERCISE: "def input_and_param_grads(loss, x, module):\n"
    "    names, params = zip(*module.named_parameters(), strict=True)\n"
    "    (gx,) = torch.autograd.grad(loss(x), x)\n"
    "    g_params = torch.autograd.grad(loss(x), params)\n"
    '    return {"x": gx} | dict(zip(names, g_params, strict=True))\n\n\n'
    "grads_ex = input_and_param_grads(loss_ex, x_in, layer_ex)"
}
SYNTHETIC = "ch90"
# Each is one execution of a notebook by autograde. Real chapters take most of the
# time, so only two (the synthetic chapter shows the untouched release, the
# tampered checks and a single wrong method); nobody else submitted: they score 0.
SUBMISSIONS = {
    (REAL, "alice"): "full",
    (REAL, "bob"): "monkeypatch",  # and the wrong method on exercise 1.3
    (SYNTHETIC, "alice"): "full",
    (SYNTHETIC, "bob"): "wrong-method",
    (SYNTHETIC, "dave"): "monkeypatch",
    (SYNTHETIC, "carol"): "untouched",
    (SYNTHETIC, "erin"): "tampered",
}
STUDENTS = sorted({student for _, student in SUBMISSIONS})


def nbgrader(course: pathlib.Path, *args: str) -> str:
    """Run ``python -m nbgrader ARGS`` in ``course``; its kernels are forked by this
    worker's kernel fork server, as the chapters' are (tests/kernel_forkserver.py)."""
    bindir = str(pathlib.Path(sys.executable).parent)  # nbgrader runs `alembic`
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    command = kernel_forkserver.module_command("nbgrader", fork_server_socket())
    run = subprocess.run(
        [*command, *args],
        cwd=course,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (
        f"nbgrader {' '.join(args)} failed ({run.returncode}):\n{run.stderr[-3000:]}"
    )
    return run.stdout + run.stderr


def tag_first_solution(md: pathlib.Path, out: pathlib.Path) -> None:
    """Copy the chapter's .md with a points-2 tag on its first solution."""
    import jupytext

    nb = jupytext.read(md)
    first = next(c for c in nb.cells if bundle_common.BEGIN in c.source)
    first.metadata.setdefault("tags", []).append("points-2")
    jupytext.write(nb, out / md.name, fmt="md:myst")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The chapters as they are now (others may re-execute them during the run)."""
    out = tmp_path_factory.mktemp("chapters")
    for path in CHAPTERS_IPYNB:
        shutil.copy(path, out / path.name)
        md = path.with_suffix(".md")
        if path.stem == TAGGED:
            tag_first_solution(md, out)
        elif md.exists():
            shutil.copy(md, out / md.name)
    nbformat.write(synthetic_chapter.chapter(), out / synthetic_chapter.NAME)
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory, snapshot):
    out = tmp_path_factory.mktemp("nbgrader")
    (out / "nbgrader_config.py").write_text(
        "c = get_config()\nload_subconfig('course_config.py')\n"
        "c.Exchange.root = '/tmp/kept-by-make-nbgrader'\n"
    )
    chapters = [snapshot / p.name for p in CHAPTERS_IPYNB]
    nbgrader_bundle.write_course(out, chapters + [snapshot / synthetic_chapter.NAME])
    nbgrader(out, "generate_assignment", "*")
    return out


def test_make_nbgrader_keeps_the_instructors_config(course):
    assert "kept-by-make-nbgrader" in (course / "nbgrader_config.py").read_text()
    assert (course / "course_config.py").read_text() == (
        ROOT / "nbgrader_config.py"
    ).read_text()
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert config.Exchange.root == "/tmp/kept-by-make-nbgrader"
    assert config.CourseDirectory.course_id == "second-order-autodiff", "course's"


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
    checks = [g["grade_id"] for g in graded if g["grade_id"].endswith("-check")]
    assert checks == [f"{lb}-check" for lb in labels]
    for g in graded:
        assert g["points"] > 0, g
        assert g["locked"] != g["solution"], "a check is locked, an answer is not"
    answers = [
        grading(c)["grade_id"]
        for c in released.cells
        if grading(c).get("solution") and c.cell_type == "code"
    ]
    assert answers == labels, "one answer cell per exercise, named by its label"
    text = json.dumps(released.cells)
    for marker in ("BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME", "**Rubric"):
        assert marker not in text, f"{path.name}: {marker} released"
    for cell in released.cells:
        if grading(cell).get("solution") and cell.cell_type == "code":
            assert cell.source.startswith(
                "# YOUR CODE HERE\nraise NotImplementedError()"
            )
        elif grading(cell).get("solution"):
            assert cell.source == bundle_common.TEXT_STUB


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_release_shows_what_the_student_bundle_shows(course, snapshot, path):
    released = release(course, path)
    original = nbformat.read(snapshot / path.name, as_version=4)
    student = student_bundle.student_notebook(
        nbformat.read(snapshot / path.name, as_version=4),
        snapshot / path.name,
        plain=True,
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


def submit(course, assignment, student, kind):
    if assignment == SYNTHETIC:
        if kind in synthetic_chapter.ANSWERS:
            paths = simulate_students.submit(course, assignment, student, "untouched")
            simulate_students.fill(paths[0], synthetic_chapter.ANSWERS[kind])
            return
        if kind == "tampered":
            tamper(simulate_students.submit(course, assignment, student, "untouched"))
            return
    paths = simulate_students.submit(course, assignment, student, kind)
    if (assignment, student) == (REAL, "bob"):
        simulate_students.fill(paths[0], WRONG_METHOD)


@pytest.fixture(scope="module")
def scores(course):
    for (assignment, student), kind in SUBMISSIONS.items():
        submit(course, assignment, student, kind)
    nbgrader(course, "autograde", "*")
    nbgrader(course, "export")
    with (course / "grades.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def expected_score(assignment, student, row, first):
    """What each simulated student should score on one graded cell."""
    kind = SUBMISSIONS.get((assignment, student), "nothing submitted")
    full = float(row["max_score"])
    if row["kind"] == "written":
        return 0.0  # not graded by hand yet
    if kind == "full":
        return full
    if kind == "wrong-method":  # passes the visible checks, fails the hidden tests
        return 0.0 if row["kind"] == "hidden" else full
    if kind == "monkeypatch" and assignment != SYNTHETIC:
        # the real chapter's answers are its solutions scaled by 1.001 behind rebound
        # comparisons: every visible check fails; a hidden test of a right method
        # may pass, except 1.3's, whose method bob got wrong too
        if row["exercise"] == WRONG_EXERCISE:  # the right value, wrong method
            return full if row["kind"] == "check" else 0.0
        return 0.0 if row["kind"] == "check" else None
    return 0.0  # untouched, tampered, monkeypatch, nothing submitted


def test_autograded_scores(course, scores):
    with (course / "exercises.csv").open(newline="") as fh:
        exercises = [row for row in csv.DictReader(fh)]
    first = {}
    for row in exercises:
        first.setdefault(row["assignment"], row["exercise"])
    points = {(r["assignment"], r["grade_id"]): float(r["points"]) for r in exercises}
    assert points[(REAL, first[REAL] + "-check")] == 2.0, "points-2 tag in the .md"
    assert (REAL, WRONG_EXERCISE + "-hidden") in points
    assert points[(SYNTHETIC, "ex-90-rayleigh-written")] == 2.0
    got = {(r["assignment"], r["student_id"], r["grade_id"]): r for r in scores}
    graded = {a for a, _ in SUBMISSIONS}
    problems = []
    for (assignment, gid), max_score in points.items():
        if assignment not in graded:
            continue
        for student in STUDENTS:
            row = got[(assignment, student, gid)]
            assert float(row["max_score"]) == max_score
            expected = expected_score(
                assignment, student, row, row["exercise"] == first[assignment]
            )
            if expected is not None and float(row["score"]) != expected:
                problems.append(
                    f"{student} ({SUBMISSIONS.get((assignment, student))}) on "
                    f"{assignment} {gid}: expected {expected}, got {row['score']}"
                )
    assert not problems, "\n".join(problems)
    kinds = {(r["assignment"], r["kind"]) for r in exercises}
    assert {(SYNTHETIC, "hidden"), (SYNTHETIC, "written")} <= kinds


def test_autograde_restores_the_locked_check(course, scores):
    """A student who edits the checks cannot pass them: nbgrader restores them."""
    autograded = nbformat.read(
        course / "autograded" / "erin" / SYNTHETIC / synthetic_chapter.NAME,
        as_version=4,
    )
    source = nbformat.read(
        course / "source" / SYNTHETIC / synthetic_chapter.NAME, as_version=4
    )
    checks = [c.source for c in source.cells if grading(c).get("locked")]
    assert checks == [c.source for c in autograded.cells if grading(c).get("locked")]
    assert any("BEGIN HIDDEN TESTS" in c for c in checks), "hidden tests restored"
    errors = [
        o.get("ename")
        for c in autograded.cells
        if grading(c).get("grade") and c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert len(errors) == 3, "each restored check fails without an answer"


def test_monkeypatching_is_undone(course, scores):
    """The rebound comparisons printed their fake ✓, and the checks still failed."""
    autograded = nbformat.read(
        course / "autograded" / "dave" / SYNTHETIC / synthetic_chapter.NAME,
        as_version=4,
    )
    errors = {
        grading(c)["grade_id"]: o.get("ename")
        for c in autograded.cells
        if grading(c).get("grade") and c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    }
    assert set(errors) == {
        "ex-90-rayleigh-check",
        "ex-90-rayleigh-hidden",
        "ex-90-double-check",
    }
    assert set(errors.values()) == {"AssertionError"}, errors


def test_written_answer_in_the_formgrader(course, scores):
    """A written answer waits for a grade, shows its rubric, counts once graded."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.api import Gradebook
    from nbgrader.server_extensions.formgrader import handlers

    gid = "ex-90-rayleigh-written"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(gid, "90_synthetic", SYNTHETIC, "alice")
        assert grade.needs_manual_grade and grade.max_score == 2.0
        untouched = gb.find_grade(gid, "90_synthetic", SYNTHETIC, "carol")
        assert not untouched.needs_manual_grade and untouched.score == 0.0
        submission = gb.find_submission_notebook("90_synthetic", SYNTHETIC, "alice")
        submission_id = submission.id
        # what the formgrader's score box does (nbgrader's GradeHandler.put)
        grade.manual_score = 1.5
        grade.needs_manual_grade = False
        gb.db.commit()
    autograded = course / "autograded" / "alice" / SYNTHETIC / synthetic_chapter.NAME
    exporter = HTMLExporter(
        template_name="formgrade", extra_template_basedirs=[handlers.template_path]
    )
    resources = {
        "assignment_id": SYNTHETIC,
        "notebook_id": "90_synthetic",
        "submission_id": submission_id,
        "index": 0,
        "total": 1,
        "base_url": "",
        "student": "alice",
        "last_name": "",
        "first_name": "",
        "notebook_path": "x",
    }
    html, _ = exporter.from_filename(str(autograded), resources=resources)
    model = simulate_students.model_answer(synthetic_chapter.WRITTEN_1)
    answer = html.index(model.split()[2])  # the student's (model) answer
    rubric = html.index("1 point: a product costs a constant number of gradients")
    assert answer < rubric, "the rubric follows the answer in the formgrader"
    assert f'data-id="{gid}"' in html or gid in html
    nbgrader(course, "export", "--to=manual.csv")
    with (course / "manual.csv").open(newline="") as fh:
        rows = {(r["student_id"], r["grade_id"]): r for r in csv.DictReader(fh)}
    assert float(rows[("alice", gid)]["score"]) == 1.5
    assert rows[("alice", gid)]["needs_manual_grade"] == "False"


def test_simulated_mistake_is_a_real_mistake():
    solution = "### BEGIN SOLUTION\nH = f(x)\nv = 2\n### END SOLUTION"
    assert simulate_students.answer_variable("H = f(x)\nv = 2", "check.ok(H)") == "H"
    wrong = simulate_students.wrong_answer(solution, "check.ok(H, v)")
    assert wrong.startswith("H = f(x)\nv = 2\n") and "\nv = _torch.utils" in wrong
    with pytest.raises(ValueError, match="expected the check to read a name"):
        simulate_students.answer_variable("a = 1", "check.ok(b)")
