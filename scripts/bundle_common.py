"""What a student sees: the one reading of the chapters behind both bundles.

``scripts/student_bundle.py`` (``make student``) and ``scripts/nbgrader_bundle.py``
(``make nbgrader``) both call :func:`student_cells`, so the two bundles agree on
every cell a student sees; they differ only in what they do with an exercise's
answer cell (the student bundle writes the stub, nbgrader's source keeps the
solution and gets nbgrader's cell metadata, and ``generate_assignment`` writes
the same stub).

From an executed chapter, :func:`student_cells`

* drops the solution gates (``solution-start`` ... ``solution-end``), every
  markdown cell between them (the solution's prose) and non-gated
  ``{solution}`` directives;
* splits the one code cell of each solution at its last ``### END SOLUTION``
  line into an *answer* cell (everything up to that line: the fenced solution)
  and a *check* cell (everything after it: the whole check, keyword arguments
  and continuation lines included), both with outputs cleared, since their
  outputs show the answer;
* keeps every other cell as it is, outputs and figures included.

Points: an exercise is worth :data:`DEFAULT_POINTS`; a tag ``points-N`` on the
solution's code cell (``N`` a positive integer or decimal, e.g. ``points-2``
or ``points-0.5``) makes it worth ``N``.
"""

from __future__ import annotations

import copy
import dataclasses
import re

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
DEFAULT_POINTS = 1.0
GATE_START = re.compile(r"^\s*(`{3,}|:{3,})\{solution-start\}", re.M)
GATE_END = re.compile(r"^\s*(`{3,}|:{3,})\{solution-end\}", re.M)
GATE_LABEL = re.compile(r"^\s*(`{3,}|:{3,})\{solution-start\}[ \t]*(\S*)", re.M)
SOLUTION_DIRECTIVE = re.compile(r"^\s*(`{3,}|:{3,})\{solution\}", re.M)
EXERCISE_START = re.compile(r"^\s*(`{3,}|:{3,})\{exercise-start\}", re.M)
EXERCISE_LABEL = re.compile(r"^\s*:label:[ \t]*(\S+)", re.M)
GATE_ALONE = re.compile(
    r"^\s*(`{3,}|:{3,})\{solution-(start|end)\}[^\n]*\n(\s*:[a-z-]+:[^\n]*\n)*\s*\1\s*$"
)
POINTS_TAG = re.compile(r"^points-(\d+(?:\.\d+)?)$")
GRADE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def strip_solution_code(source: str) -> str:
    """Replace each BEGIN/END SOLUTION region by the stub, at BEGIN's indent."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB)
        elif stripped == END:
            if not inside:
                raise ValueError("### END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without END")
    return "\n".join(out)


def solution_body(source: str) -> str:
    """The answer a student would type: the fenced lines, without the fences."""
    strip_solution_code(source)  # refuses broken fences
    fences = {BEGIN, END}
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in fences)


def split_solution(source: str, where: str = "solution") -> tuple[str, str]:
    """Split a solution cell at its last END line: (answer with fences, check)."""
    strip_solution_code(source)  # refuses broken fences
    lines = source.splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not ends:
        raise ValueError(f"{where}: expected a {BEGIN!r} ... {END!r} fence, found none")
    last = ends[-1]
    answer = "\n".join(lines[: last + 1])
    check = "\n".join(lines[last + 1 :]).strip("\n")
    if not check.strip():
        raise ValueError(
            f"{where}: expected a check after {END!r} (e.g. check.assert_close(...)), "
            "found nothing"
        )
    return answer, check


@dataclasses.dataclass
class Exercise:
    """One exercise of a chapter, as the bundles grade it."""

    label: str  # the exercise's label, e.g. ex-09-poisson; nbgrader's grade_id
    number: str  # the number the book shows, e.g. "9.1"
    points: float
    solution: str  # the original solution cell's source, fences included


@dataclasses.dataclass
class StudentCell:
    """A cell as a student sees it; role is "plain", "answer" or "check"."""

    cell: nbformat.NotebookNode
    role: str = "plain"
    exercise: Exercise | None = None


def _points(tags: list[str], where: str) -> tuple[float, list[str]]:
    points, rest = DEFAULT_POINTS, []
    for tag in tags:
        if tag.startswith("points-"):
            match = POINTS_TAG.match(tag)
            if not match or float(match.group(1)) <= 0:
                raise ValueError(
                    f"{where}: expected a tag points-N with N > 0 (e.g. points-2), "
                    f"got {tag!r}"
                )
            points = float(match.group(1))
        else:
            rest.append(tag)
    return points, rest


def chapter_number(name: str) -> int:
    match = re.match(r"(\d\d)_", name)
    if not match:
        raise ValueError(f"expected a chapter file named NN_slug, got {name!r}")
    return int(match.group(1))


def student_cells(nb: nbformat.NotebookNode, name: str) -> list[StudentCell]:
    """The chapter's cells as a student sees them (see the module docstring)."""
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "markdown" and (
            GATE_START.search(src) or GATE_END.search(src)
        ):
            if not GATE_ALONE.match(src.strip() + "\n"):
                raise ValueError(
                    f"{name}: a solution-start or solution-end shares its markdown "
                    "cell with other text; give it a cell of its own (separate with "
                    "+++):\n"
                    f"{src[:300]}"
                )
    number = chapter_number(name) if re.match(r"\d\d_", name) else 0
    numbers: dict[str, str] = {}
    out: list[StudentCell] = []
    gate: str | None = None  # the label of the solution we are inside
    code_in_gate = 0
    for cell in nb.cells:
        cell = copy.deepcopy(cell)
        src = cell.source
        if cell.cell_type == "markdown" and EXERCISE_START.search(src):
            label = EXERCISE_LABEL.search(src)
            if label:
                numbers[label.group(1)] = f"{number}.{len(numbers) + 1}"
        if cell.cell_type == "markdown" and GATE_START.search(src):
            if gate is not None:
                raise ValueError(f"{name}: solution-start inside a solution")
            gate = GATE_LABEL.search(src).group(2)
            if not gate or not GRADE_ID.match(gate):
                raise ValueError(
                    f"{name}: expected solution-start followed by its exercise's label "
                    f"(letters, digits, - and _), got {gate!r}"
                )
            code_in_gate = 0
            continue
        if cell.cell_type == "markdown" and GATE_END.search(src):
            if gate is None:
                raise ValueError(f"{name}: solution-end without solution-start")
            if code_in_gate != 1:
                raise ValueError(
                    f"{name}: solution {gate!r} expected exactly one code cell, "
                    f"got {code_in_gate}"
                )
            gate = None
            continue
        if cell.cell_type == "markdown" and SOLUTION_DIRECTIVE.search(src):
            continue
        if gate is not None and cell.cell_type == "markdown":
            continue  # the solution's prose
        if cell.cell_type == "code" and (BEGIN in src or END in src):
            if gate is None:
                raise ValueError(
                    f"{name}: a code cell with {BEGIN!r} outside a solution gate:\n"
                    f"{src[:200]}"
                )
            code_in_gate += 1
            where = f"{name}, solution {gate!r}"
            points, tags = _points(cell.metadata.get("tags", []), where)
            answer, check = split_solution(src, where)
            exercise = Exercise(gate, numbers.get(gate, "?"), points, src)
            for role, source in (("answer", answer), ("check", check)):
                new = copy.deepcopy(cell)
                new.source = source
                new.outputs = []
                new.execution_count = None
                if tags:
                    new.metadata["tags"] = tags
                else:
                    new.metadata.pop("tags", None)
                if role == "check" and "id" in new:
                    new["id"] = cell["id"][:56] + "-check"
                out.append(StudentCell(new, role, exercise))
            continue
        if gate is not None and cell.cell_type == "code":
            raise ValueError(
                f"{name}: a code cell inside a solution has no {BEGIN!r} fence:\n"
                f"{src[:200]}"
            )
        out.append(StudentCell(cell))
    if gate is not None:
        raise ValueError(f"{name}: solution-start without solution-end")
    labels = [c.exercise.label for c in out if c.role == "answer"]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name}: expected one solution per exercise, got {labels}")
    return out


def exercises(cells: list[StudentCell]) -> list[Exercise]:
    return [c.exercise for c in cells if c.role == "answer"]


def drop_pairing(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A bundled notebook is not paired with a .md: saving it writes no twin."""
    nb.metadata.pop("jupytext", None)
    return nb
