"""Finding solution code and prose in a notebook meant for students.

Shared by tests/test_student.py and tests/test_nbgrader.py.
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
import bundle_common  # noqa: E402


def solution_lines(nb):
    """Every non-blank, non-comment line between the fences of every solution cell."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code" or bundle_common.BEGIN not in cell.source:
            continue
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == bundle_common.BEGIN:
                inside = True
            elif line.strip() == bundle_common.END:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def solution_prose(nb):
    """Every non-blank line of the markdown cells inside solution gates."""
    lines, inside = [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if bundle_common.GATE_START.search(cell.source):
            inside = True
        elif bundle_common.GATE_END.search(cell.source):
            inside = False
        elif inside:
            lines += [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
    return lines


def leaks(original, student, name):
    """Solution code or prose of `original` found in `student`; [] if none."""
    found = []
    text = json.dumps(student.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "solution-start", "solution-end"):
        if marker in text:
            found.append(f"{name}: marker {marker!r}")
    # code a student may see: every cell outside the fences, checks included
    public_code = "\n".join(
        bundle_common.strip_solution_code(c.source)
        for c in original.cells
        if c.cell_type == "code"
    )
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for line in solution_lines(original):
        if line not in public_code and line in student_code:
            found.append(f"{name}: solution line {line!r}")
    student_md = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    prose = solution_prose(original)
    public_md = "\n".join(
        c.source
        for c in original.cells
        if c.cell_type == "markdown"
        and not {ln.strip() for ln in c.source.splitlines()} & set(prose)
    )
    for line in prose:
        if len(line) > 12 and line in student_md and line not in public_md:
            found.append(f"{name}: solution prose {line!r}")
    return found


def n_solutions(nb):
    return sum(
        1 for c in nb.cells if c.cell_type == "code" and bundle_common.BEGIN in c.source
    )
