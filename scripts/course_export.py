"""nbgrader export plugin: one CSV row per student and exercise.

``make nbgrader`` copies this file into the course directory, whose
``nbgrader_config.py`` makes it the default exporter, so that

    cd _build/nbgrader && nbgrader export

writes ``grades.csv`` with the columns of :data:`COLUMNS`: for every
assignment (chapter), every student in the gradebook and every graded cell of
every exercise (its visible check, its hidden tests, its written answers: the
``kind`` column), the score nbgrader gave it (0 when the student submitted
nothing). A written answer not yet graded in the formgrader scores 0 with
``needs_manual_grade`` True. ``exercises.csv``, written beside it by ``make nbgrader``,
gives each exercise's number in the book; rows follow that order.
``--to FILE`` writes elsewhere; ``--assignment`` and ``--student`` filter as
with nbgrader's own exporter.
"""

from __future__ import annotations

import csv
import pathlib
import re

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

COLUMNS = [
    "assignment",
    "student_id",
    "exercise",
    "number",
    "grade_id",
    "kind",
    "score",
    "max_score",
    "needs_manual_grade",
]
SUFFIX = re.compile(r"-(check|hidden|written|rubric)(-\d+)?$")


def exercise_numbers(path: pathlib.Path) -> dict[tuple[str, str], tuple[int, str]]:
    """(assignment, grade_id) -> (order, number) from exercises.csv, if present."""
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        (row["assignment"], row["grade_id"]): (i, row["number"])
        for i, row in enumerate(rows)
    }


def split_grade_id(name: str) -> tuple[str, str]:
    """(exercise label, kind) of a graded cell's grade_id."""
    match = SUFFIX.search(name)
    if not match:
        return name, "check"
    return name[: match.start()], match.group(1)


class PerExerciseCsvExportPlugin(ExportPlugin):
    """Export one row per (assignment, student, graded cell)."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        students = {str(s) for s in self.student}
        assignments = {str(a) for a in self.assignment}
        numbers = exercise_numbers(pathlib.Path("exercises.csv"))
        rows = []
        for assignment in gradebook.assignments:
            if assignments and assignment.name not in assignments:
                continue
            cells = [
                (notebook.name, cell)
                for notebook in assignment.notebooks
                for cell in notebook.grade_cells
            ]
            cells.sort(
                key=lambda nc: numbers.get((assignment.name, nc[1].name), (10**6, ""))[
                    0
                ]
            )
            for student in gradebook.students:
                if students and student.id not in students:
                    continue
                for notebook_name, cell in cells:
                    try:
                        grade = gradebook.find_grade(
                            cell.name, notebook_name, assignment.name, student.id
                        )
                        score, manual = grade.score, grade.needs_manual_grade
                    except MissingEntry:
                        score, manual = 0.0, False
                    name = cell.name
                    label, kind = split_grade_id(name)
                    rows.append(
                        {
                            "assignment": assignment.name,
                            "student_id": student.id,
                            "exercise": label,
                            "number": numbers.get((assignment.name, name), (0, ""))[1],
                            "grade_id": name,
                            "kind": kind,
                            "score": score,
                            "max_score": cell.max_score,
                            "needs_manual_grade": manual,
                        }
                    )
        self.log.info("Exporting %d per-exercise scores to %s", len(rows), dest)
        with open(dest, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
