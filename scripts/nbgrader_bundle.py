"""Write an nbgrader course directory from the chapters.

    python scripts/nbgrader_bundle.py _build/nbgrader [notebooks/NN_slug.ipynb ...]

writes (for every chapter, or the chapters named)

* ``<out>/source/chNN/NN_slug.ipynb``: each chapter (assignment ``chNN``) as the
  student bundle shows it (``bundle_common.student_cells`` and
  ``plain_markdown``: solution gates and solution prose removed, MyST as plain
  Markdown, outputs and figures of the other cells kept, jupytext metadata
  dropped), except that the instructor's cells keep what ``generate_assignment``
  takes out of the release:

  - the answer cell keeps its solution (nbgrader solution cell, ``grade_id``
    the exercise's label); the release gets the stub ``make student`` writes;
  - the check is a locked, autograded test cell (``grade_id`` label + ``-check``)
    worth the exercise's points (1, or N with a ``points-N`` tag);
  - hidden tests are a second locked test cell (label + ``-hidden``, worth 1 or
    ``hidden-points-N``) holding them between ``### BEGIN HIDDEN TESTS`` and
    ``### END HIDDEN TESTS``;
  - a written answer is a manually graded markdown answer cell (label +
    ``-written``) holding the model answer, followed by a locked markdown cell
    (label + ``-rubric``) with the model answer and rubric between
    ``### BEGIN MARK SCHEME`` and ``### END MARK SCHEME``: the release shows
    only the points, ``autograde`` restores the rubric for the formgrader;
* ``<out>/course_config.py`` (the repository's ``nbgrader_config.py``, always
  rewritten), ``<out>/nbgrader_config.py`` (written only when missing: it loads
  ``course_config.py`` and then holds the instructor's own settings, such as
  ``c.Exchange.root``, which ``make nbgrader`` never overwrites), and
  ``<out>/course_export.py`` (the per-exercise CSV exporter the config names);
* ``<out>/exercises.csv``: assignment, notebook, exercise number, label,
  grade_id, kind (check, hidden or written) and points of every graded cell.

Only ``source/`` and ``course_config.py``, ``course_export.py`` and
``exercises.csv`` are replaced: ``nbgrader_config.py``, a gradebook,
``release/``, ``submitted/``, ``autograded/`` and ``feedback/`` already in
``<out>`` are kept.
"""

from __future__ import annotations

import csv
import pathlib
import shutil
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import (  # noqa: E402
    BEGIN_SCHEME,
    END_SCHEME,
    Exercise,
    StudentCell,
    chapter_number,
    drop_pairing,
    exercises,
    plain_markdown,
    rubric_note,
    student_cells,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECK_SUFFIX = "-check"
SUFFIXES = {"check": "-check", "hidden": "-hidden", "written": "-written"}
CONFIG_STUB = '''"""nbgrader settings of this course directory: the course's, then yours

`make nbgrader` writes this file only when it is missing, and never changes it:
put your own settings below (they override the course's). The course's settings
are in course_config.py, which `make nbgrader` rewrites.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it reads this file)
load_subconfig("course_config.py")  # noqa: F821  (the course's settings)

# Your settings, for example the exchange directory on a shared machine or hub:
# c.Exchange.root = "/srv/nbgrader/exchange"
'''


def grade_id(item: StudentCell) -> str:
    """The grade_id of an answer, check, hidden, written or rubric cell."""
    label = item.exercise.label
    if item.role == "answer":
        return label
    suffix = "-rubric" if item.role == "rubric" else SUFFIXES[item.role]
    return label + suffix + (f"-{item.index + 1}" if item.index else "")


def cell_metadata(item: StudentCell) -> dict:
    """nbgrader's metadata for a cell of an exercise."""
    meta = {
        "grade": item.role in {"check", "hidden", "written"},
        "grade_id": grade_id(item),
        "locked": item.role in {"check", "hidden", "rubric"},
        "schema_version": 3,
        "solution": item.role in {"answer", "written"},
        "task": False,
    }
    if item.role == "check":
        meta["points"] = item.exercise.points
    elif item.role == "hidden":
        meta["points"] = item.exercise.hidden_points
    elif item.role == "written":
        meta["points"] = item.exercise.written[item.index][0]
    return meta


def answer_metadata(exercise: Exercise) -> dict:
    return cell_metadata(StudentCell(None, "answer", exercise))


def check_metadata(exercise: Exercise) -> dict:
    return cell_metadata(StudentCell(None, "check", exercise))


def graded_cells(exercise: Exercise) -> list[tuple[str, str, float]]:
    """(kind, grade_id, points) of each graded cell of the exercise."""
    out = [("check", exercise.label + CHECK_SUFFIX, exercise.points)]
    if exercise.hidden is not None:
        out.append(("hidden", exercise.label + "-hidden", exercise.hidden_points))
    for i, (points, _) in enumerate(exercise.written):
        suffix = "-written" + (f"-{i + 1}" if i else "")
        out.append(("written", exercise.label + suffix, points))
    return out


def assignment_name(path: pathlib.Path) -> str:
    return f"ch{chapter_number(path.name):02d}"


def nbgrader_notebook(
    nb: nbformat.NotebookNode, name
) -> tuple[nbformat.NotebookNode, list[Exercise]]:
    """The chapter as nbgrader's source notebook, and its exercises.

    ``name``: the file name, or its path (then the ``.md`` beside it, if any,
    gives the points tags).
    """
    items = plain_markdown(student_cells(nb, name), pathlib.Path(name).name)
    for item in items:
        if item.role == "plain":
            continue
        item.cell.metadata["nbgrader"] = cell_metadata(item)
        if item.role == "rubric":  # its source: the model answer and rubric
            points = item.exercise.written[item.index][0]
            item.cell.source = (
                f"{rubric_note(points)}\n{BEGIN_SCHEME}\n{item.cell.source}\n"
                f"{END_SCHEME}"
            )
    nb = nbformat.from_dict(nb)
    nb.cells = [item.cell for item in items]
    return drop_pairing(nb), exercises(items)


def write_course(out: pathlib.Path, chapters: list[pathlib.Path] | None = None):
    """Write the course directory; returns the source notebooks written."""
    chapters = chapters or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "source").exists():
        shutil.rmtree(out / "source")
    shutil.copy(ROOT / "nbgrader_config.py", out / "course_config.py")
    config = out / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG_STUB)
    elif "course_config.py" not in config.read_text():
        print(
            f"warning: {config} does not load course_config.py; add the line\n"
            '    load_subconfig("course_config.py")\n'
            "after `c = get_config()` (your settings were kept)",
            file=sys.stderr,
        )
    shutil.copy(ROOT / "scripts" / "course_export.py", out / "course_export.py")
    extras = [
        p
        for p in sorted((ROOT / "notebooks").iterdir())
        if p.is_file() and p.suffix not in {".md", ".ipynb"}
    ]
    rows, written = [], []
    for path in chapters:
        nb, exs = nbgrader_notebook(nbformat.read(path, as_version=4), path)
        nbformat.validate(nb)
        folder = out / "source" / assignment_name(path)
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / path.name)
        for extra in extras:
            shutil.copy(extra, folder / extra.name)
        written.append(folder / path.name)
        for ex in exs:
            for kind, gid, points in graded_cells(ex):
                rows.append(
                    {
                        "assignment": assignment_name(path),
                        "notebook": path.stem,
                        "number": ex.number,
                        "exercise": ex.label,
                        "grade_id": gid,
                        "kind": kind,
                        "points": points,
                    }
                )
    with (out / "exercises.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=list(rows[0]) if rows else ["assignment"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return written


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "_build/nbgrader")
    chosen = [pathlib.Path(p) for p in sys.argv[2:]] or None  # default: every chapter
    files = write_course(target, chosen)
    rows = list(csv.DictReader((target / "exercises.csv").open()))
    n = len({(r["assignment"], r["exercise"]) for r in rows})
    print(
        f"wrote {len(files)} assignments ({n} exercises, {len(rows)} graded cells) "
        f"to {target / 'source'}"
    )
    venv = ROOT / ".venv" / "bin" / "activate"
    print(
        f"next: source {venv} && cd {target} && nbgrader generate_assignment ch01 "
        "(see book/instructors.md; activating .venv puts nbgrader's alembic on PATH)"
    )
