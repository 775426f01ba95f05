"""Estimate each chapter's reading-and-exercise time from what it holds.

    python scripts/time_estimate.py                 # print the table
    python scripts/time_estimate.py --write FILE    # replace the table in FILE

It reads each chapter as a student sees it (``bundle_common.student_cells``:
no solutions) and counts the prose words, the code lines outside the
exercises' answer and check cells, and the exercises by kind (a statement
starting with **Warm-up** or **Stretch**, or neither) and the written answers.
The estimate is a model, not a measurement of students:

    reading   = words / WORDS_PER_MINUTE + code lines * MINUTES_PER_CODE_LINE
    exercises = sum of MINUTES_PER_EXERCISE[kind]
                + written answers * MINUTES_PER_WRITTEN_ANSWER

The exercise minutes are calibrated on the one measurement the course has: a
walkthrough reported in issue 25, in which the exercises of chapters 5 and 10
(a warm-up, two ordinary exercises and a stretch each) were solved without the
solutions in 35-65 and 30-55 minutes. 5 + 10 + 10 + 20 = 45 minutes lies inside
both ranges. The reading rate is not measured.

rounded up to 5 minutes. Two schedules follow, each week's exercise minutes
set against its session minutes. With ``--write`` the output replaces the lines
between ``% begin time-estimate`` and ``% end time-estimate`` in FILE.
"""

from __future__ import annotations

import math
import pathlib
import re
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import EXERCISE_START, student_cells  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE = 120  # technical prose with mathematics, read with care
MINUTES_PER_CODE_LINE = 0.25  # reading a line of code and its output
MINUTES_PER_EXERCISE = {"warm-up": 5, "exercise": 10, "stretch": 20}  # issue 25
MINUTES_PER_WRITTEN_ANSWER = 5  # a paragraph; not measured
BEGIN_MARK, END_MARK = "% begin time-estimate", "% end time-estimate"
DIRECTIVE = re.compile(r"^\s*(:{3,}|`{3,})|^\s*:[a-z-]+:", re.M)


def round5(minutes: float) -> int:
    return 5 * math.ceil(minutes / 5)


def chapter_counts(path: pathlib.Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    words = code = 0
    kinds = {"warm-up": 0, "exercise": 0, "stretch": 0}
    in_statement = False
    written = 0
    for item in student_cells(nb, path.name):
        cell = item.cell
        if item.role in {"written", "rubric"}:
            written += item.role == "written"
            continue  # the model answer and rubric, not what a student reads
        if cell.cell_type == "markdown":
            text = "\n".join(
                ln for ln in cell.source.splitlines() if not DIRECTIVE.match(ln)
            )
            words += len(text.split())
            start = EXERCISE_START.search(cell.source)
            if start:
                in_statement = True
                text = "\n".join(
                    ln
                    for ln in cell.source[start.end() :].splitlines()
                    if not DIRECTIVE.match(ln)
                )
            if in_statement and text.strip():
                head = text.strip().lower()
                kind = (
                    "warm-up"
                    if head.startswith("**warm-up")
                    else "stretch"
                    if head.startswith("**stretch")
                    else "exercise"
                )
                kinds[kind] += 1
                in_statement = False
        elif item.role == "plain" and "remove-cell" not in cell.metadata.get(
            "tags", []
        ):
            code += sum(1 for ln in cell.source.splitlines() if ln.strip())
    reading = words / WORDS_PER_MINUTE + code * MINUTES_PER_CODE_LINE
    exercises = sum(MINUTES_PER_EXERCISE[k] * n for k, n in kinds.items())
    exercises += written * MINUTES_PER_WRITTEN_ANSWER
    return {
        "chapter": path.stem,
        "words": words,
        "code": code,
        "kinds": kinds,
        "written": written,
        "reading": round5(reading),
        "exercises": round5(exercises),
    }


SESSION_MINUTES = 90
SCHEDULES = {
    # name ({weeks} is filled in): (chapters per week, sessions per week)
    "{weeks} weeks, one chapter and one 90-minute session a week": (1, 1),
    "{weeks} weeks, two chapters and two 90-minute sessions a week": (2, 2),
}


def table(rows: list[dict]) -> str:
    lines = [
        "| chapter | prose words | code lines | exercises (warm-up / other / "
        "stretch) | reading (min) | exercises (min) | total (min) |",
        "| --- | ---: | ---: | :---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        k = r["kinds"]
        lines.append(
            f"| {int(r['chapter'][:2])} | {r['words']} | {r['code']} | "
            f"{k['warm-up']} / {k['exercise']} / {k['stretch']} | {r['reading']} | "
            f"{r['exercises']} | {r['reading'] + r['exercises']} |"
        )
    total = sum(r["reading"] + r["exercises"] for r in rows)
    lines.append(f"| all | | | | | | {total} |")
    return "\n".join(lines)


def schedule(rows: list[dict], per_week: int, sessions: int) -> tuple[str, bool]:
    """A week table; fits is False if a week's exercises exceed its sessions."""
    lines = [
        "| week | chapters | reading before the sessions (min) | "
        "exercises in the sessions (min) | session time (min) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    fits = True
    for week, i in enumerate(range(0, len(rows), per_week), start=1):
        group = rows[i : i + per_week]
        chapters = ", ".join(str(int(r["chapter"][:2])) for r in group)
        reading = sum(r["reading"] for r in group)
        exercises = sum(r["exercises"] for r in group)
        fits &= exercises <= sessions * SESSION_MINUTES
        lines.append(
            f"| {week} | {chapters} | {reading} | {exercises} | "
            f"{sessions * SESSION_MINUTES} |"
        )
    return "\n".join(lines), fits


def report(rows: list[dict]) -> str:
    parts = [table(rows)]
    for name, (per_week, sessions) in SCHEDULES.items():
        text, fits = schedule(rows, per_week, sessions)
        name = name.format(weeks=-(-len(rows) // per_week))
        verdict = "" if fits else " (DOES NOT FIT: a week's exercises exceed it)"
        parts.append(f"**Schedule: {name}{verdict}.**\n\n{text}")
    return "\n\n".join(parts)


def replace_table(text: str, new: str) -> str:
    if text.count(BEGIN_MARK) != 1 or text.count(END_MARK) != 1:
        raise ValueError(f"expected one {BEGIN_MARK!r} and one {END_MARK!r} line")
    head, rest = text.split(BEGIN_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    return f"{head}{BEGIN_MARK}\n{new}\n{END_MARK}{tail}"


def current_table(text: str) -> str:
    """The table between the markers of `text`."""
    replace_table(text, "")  # refuses missing or repeated markers
    return text.split(BEGIN_MARK, 1)[1].split(END_MARK, 1)[0].strip("\n")


def all_rows() -> list[dict]:
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [chapter_counts(p) for p in chapters]


if __name__ == "__main__":
    out = report(all_rows())
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        target = pathlib.Path(sys.argv[2])
        target.write_text(replace_table(target.read_text(), out))
        print(f"wrote the estimates into {target}")
    elif len(sys.argv) == 1:
        print(out)
    else:
        sys.exit(__doc__)
