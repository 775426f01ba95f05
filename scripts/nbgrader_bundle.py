"""Write an nbgrader course directory from the chapters.

    python scripts/nbgrader_bundle.py _build/nbgrader

writes

* ``<out>/source/chNN/NN_slug.ipynb``: each chapter (assignment ``chNN``) as the
  student bundle shows it (``bundle_common.student_cells``: solution gates
  and solution prose removed, outputs and figures of the other cells kept,
  jupytext metadata dropped), except that each exercise's answer cell keeps
  its solution: nbgrader's ``generate_assignment`` replaces it with the same
  stub ``make student`` writes. The answer cell is an nbgrader solution cell
  (``solution: true``, ``grade_id`` the exercise's label); the check that
  follows it is a locked, autograded test cell (``grade_id`` the label plus
  ``-check``) worth the exercise's points (1, or N with a ``points-N`` tag on
  the solution cell in the chapter);
* ``<out>/nbgrader_config.py`` (the repository's) and ``<out>/course_export.py``
  (the per-exercise CSV exporter it names);
* ``<out>/exercises.csv``: assignment, notebook, exercise number, label,
  grade_id and points of every exercise.

Only ``source/`` and those three files are replaced: a gradebook, ``release/``,
``submitted/``, ``autograded/`` and ``feedback/`` already in ``<out>`` are kept.
"""

from __future__ import annotations

import csv
import pathlib
import shutil
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import (  # noqa: E402
    Exercise,
    chapter_number,
    drop_pairing,
    exercises,
    student_cells,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECK_SUFFIX = "-check"


def answer_metadata(exercise: Exercise) -> dict:
    return {
        "grade": False,
        "grade_id": exercise.label,
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }


def check_metadata(exercise: Exercise) -> dict:
    return {
        "grade": True,
        "grade_id": exercise.label + CHECK_SUFFIX,
        "locked": True,
        "points": exercise.points,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }


def assignment_name(path: pathlib.Path) -> str:
    return f"ch{chapter_number(path.name):02d}"


def nbgrader_notebook(
    nb: nbformat.NotebookNode, name: str
) -> tuple[nbformat.NotebookNode, list[Exercise]]:
    """The chapter as nbgrader's source notebook, and its exercises."""
    items = student_cells(nb, name)
    for item in items:
        if item.role == "answer":
            item.cell.metadata["nbgrader"] = answer_metadata(item.exercise)
        elif item.role == "check":
            item.cell.metadata["nbgrader"] = check_metadata(item.exercise)
    nb.cells = [item.cell for item in items]
    return drop_pairing(nb), exercises(items)


def write_course(out: pathlib.Path, chapters: list[pathlib.Path] | None = None):
    """Write the course directory; returns the source notebooks written."""
    chapters = chapters or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "source").exists():
        shutil.rmtree(out / "source")
    shutil.copy(ROOT / "nbgrader_config.py", out / "nbgrader_config.py")
    shutil.copy(ROOT / "scripts" / "course_export.py", out / "course_export.py")
    extras = [
        p
        for p in sorted((ROOT / "notebooks").iterdir())
        if p.is_file() and p.suffix not in {".md", ".ipynb"}
    ]
    rows, written = [], []
    for path in chapters:
        nb, exs = nbgrader_notebook(nbformat.read(path, as_version=4), path.name)
        nbformat.validate(nb)
        folder = out / "source" / assignment_name(path)
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / path.name)
        for extra in extras:
            shutil.copy(extra, folder / extra.name)
        written.append(folder / path.name)
        for ex in exs:
            rows.append(
                {
                    "assignment": assignment_name(path),
                    "notebook": path.stem,
                    "number": ex.number,
                    "exercise": ex.label,
                    "grade_id": ex.label + CHECK_SUFFIX,
                    "points": ex.points,
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
    files = write_course(target)
    n = sum(1 for _ in csv.DictReader((target / "exercises.csv").open()))
    print(f"wrote {len(files)} assignments ({n} exercises) to {target / 'source'}")
    print(f"next: cd {target} && nbgrader generate_assignment ch01 (see the guide)")
