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

Hidden tests: lines after the check between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` (the last lines of the solution cell) become a cell of
their own (role ``hidden``), graded separately: the student bundle and
nbgrader's release show only its first comment line, nbgrader's source keeps
the tests and ``generate_assignment`` removes them from the release.

Written answers: a markdown cell inside the solution gate tagged
``written-answer`` holds a model answer and its rubric (a line starting with
``**Rubric``). It becomes a markdown answer cell (role ``written``, the stub
``YOUR ANSWER HERE``; nbgrader's source keeps the model answer) followed by a
rubric cell (role ``rubric``) that shows students only how many points the
answer is worth; nbgrader's source holds the model answer and rubric there
between ``### BEGIN MARK SCHEME`` / ``### END MARK SCHEME``, which
``generate_assignment`` removes and ``autograde`` puts back for the formgrader.

Integrity: every check and hidden-test cell starts with :data:`RESTORE`, which
undoes what an answer cell may have rebound in ``helpers.check``, ``check``,
``numpy`` or ``torch.testing`` (``src/helpers/grading.py``).

Points: a check is worth :data:`DEFAULT_POINTS`; a tag ``points-N`` on the
solution's code cell (``N`` a positive integer or decimal, e.g. ``points-2``
or ``points-0.5``) makes it worth ``N``. ``hidden-points-N`` on the same cell
sets the hidden tests' points (default 1) and ``points-N`` on a written-answer
cell its points (default 1). When the chapter's ``.md`` lies beside the
``.ipynb``, these tags are read from the ``.md``, so changing points needs no
re-execution.

:func:`plain_markdown` rewrites the MyST the book renders (exercise
directives, ``{ref}``, ``{numref}``, ``{cite}``, ``{doc}``, admonitions) as plain
Markdown for the notebooks of both bundles.
"""

from __future__ import annotations

import copy
import dataclasses
import pathlib
import re
import sys

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
BEGIN_SCHEME, END_SCHEME = "### BEGIN MARK SCHEME", "### END MARK SCHEME"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's stub for a markdown answer
WRITTEN_TAG = "written-answer"
RESTORE = (
    "from helpers import grading  # undoes any rebinding of the checks by an answer\n"
    "check = grading.restore()"
)
HIDDEN_HEADER = "# Hidden tests: they run when the notebook is graded."
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
POINTS_TAG = re.compile(r"^(?:hidden-)?points-(\d+(?:\.\d+)?)$")
RUBRIC = re.compile(r"^\*\*Rubric", re.M)
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
    """Split a solution cell at its last END line: (answer with fences, check).

    The check includes the hidden tests, if any (see :func:`split_hidden`).
    """
    strip_solution_code(source)  # refuses broken fences
    lines = source.splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not ends:
        raise ValueError(f"{where}: expected a {BEGIN!r} ... {END!r} fence, found none")
    last = ends[-1]
    answer = "\n".join(lines[: last + 1])
    check = "\n".join(lines[last + 1 :]).strip("\n")
    if not split_hidden(check, where)[0].strip():
        raise ValueError(
            f"{where}: expected a check after {END!r} (e.g. check.assert_close(...)), "
            "found nothing"
        )
    return answer, check


def split_hidden(check: str, where: str = "solution") -> tuple[str, str | None]:
    """(visible check, hidden tests with their fences or None).

    The hidden tests are the last lines of the cell, between BEGIN_HIDDEN and
    END_HIDDEN, one region.
    """
    lines = check.splitlines()
    begins = [i for i, ln in enumerate(lines) if ln.strip() == BEGIN_HIDDEN]
    ends = [i for i, ln in enumerate(lines) if ln.strip() == END_HIDDEN]
    if not begins and not ends:
        return check, None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(
            f"{where}: expected one {BEGIN_HIDDEN!r} ... {END_HIDDEN!r} region, got "
            f"{len(begins)} BEGIN and {len(ends)} END lines"
        )
    if any(ln.strip() for ln in lines[ends[0] + 1 :]):
        raise ValueError(
            f"{where}: expected the hidden tests at the end of the cell, found code "
            f"after {END_HIDDEN!r}"
        )
    visible = "\n".join(lines[: begins[0]]).strip("\n")
    hidden = "\n".join(lines[begins[0] : ends[0] + 1])
    return visible, hidden


@dataclasses.dataclass
class Exercise:
    """One exercise of a chapter, as the bundles grade it."""

    label: str  # the exercise's label, e.g. ex-09-poisson; nbgrader's grade_id
    number: str  # the number the book shows, e.g. "9.1"
    points: float  # the visible check's
    solution: str = ""  # the original solution cell's source, fences included
    hidden: str | None = None  # the hidden tests, fences included
    hidden_points: float = DEFAULT_POINTS
    written: list[tuple[float, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class StudentCell:
    """A cell as a student sees it.

    role: "plain", "answer", "check", "hidden" (the hidden tests' cell, holding
    them in its source only where the bundle keeps them), "written" (a markdown
    answer; its source is the model answer and rubric) or "rubric"; ``index``
    numbers the written answers of one exercise from 0.
    """

    cell: nbformat.NotebookNode
    role: str = "plain"
    exercise: Exercise | None = None
    index: int = 0


def _points(tags: list[str], where: str) -> tuple[float, float, list[str]]:
    """(points, hidden points, the other tags) from a cell's tags."""
    points, hidden, rest = DEFAULT_POINTS, DEFAULT_POINTS, []
    for tag in tags:
        if tag.startswith(("points-", "hidden-points-")):
            match = POINTS_TAG.match(tag)
            if not match or float(match.group(1)) <= 0:
                raise ValueError(
                    f"{where}: expected a tag points-N or hidden-points-N with N > 0 "
                    f"(e.g. points-2), got {tag!r}"
                )
            if tag.startswith("hidden-"):
                hidden = float(match.group(1))
            else:
                points = float(match.group(1))
        else:
            rest.append(tag)
    return points, hidden, rest


def chapter_number(name: str) -> int:
    match = re.match(r"(\d\d)_", name)
    if not match:
        raise ValueError(f"expected a chapter file named NN_slug, got {name!r}")
    return int(match.group(1))


def _is_written(cell) -> bool:
    return cell.cell_type == "markdown" and WRITTEN_TAG in cell.metadata.get("tags", [])


def _is_solution_code(cell) -> bool:
    return cell.cell_type == "code" and (BEGIN in cell.source or END in cell.source)


def source_tags(md: pathlib.Path) -> tuple[list[list[str]], list[list[str]]]:
    """The tags of the solution code cells and of the written answers in the .md."""
    import jupytext

    nb = jupytext.read(md)
    code = [c.metadata.get("tags", []) for c in nb.cells if _is_solution_code(c)]
    written = [c.metadata.get("tags", []) for c in nb.cells if _is_written(c)]
    return code, written


def _use_source_tags(nb: nbformat.NotebookNode, md: pathlib.Path, name: str) -> None:
    """Replace the points tags of the executed cells by those of the .md source."""
    code_tags, written_tags = source_tags(md)
    code = [c for c in nb.cells if _is_solution_code(c)]
    written = [c for c in nb.cells if _is_written(c)]
    if len(code) != len(code_tags) or len(written) != len(written_tags):
        print(
            f"warning: {name}: {md.name} holds {len(code_tags)} solutions and "
            f"{len(written_tags)} written answers, the executed notebook "
            f"{len(code)} and {len(written)}; using the notebook's points tags: "
            "re-execute it (scripts/execute.py)",
            file=sys.stderr,
        )
        return
    for cells, tag_lists in ((code, code_tags), (written, written_tags)):
        for cell, tags in zip(cells, tag_lists, strict=True):
            points = [t for t in tags if t.startswith(("points-", "hidden-points-"))]
            kept = [
                t
                for t in cell.metadata.get("tags", [])
                if not t.startswith(("points-", "hidden-points-"))
            ]
            cell.metadata["tags"] = kept + points


def _new(cell, source: str, role: str, tags: list[str]):
    new = copy.deepcopy(cell)
    new.source = source
    if new.cell_type == "code":
        new.outputs = []
        new.execution_count = None
    if tags:
        new.metadata["tags"] = tags
    else:
        new.metadata.pop("tags", None)
    if role != "answer" and "id" in new:
        new["id"] = cell["id"][:52] + "-" + role[:7]
    return new


def student_cells(
    nb: nbformat.NotebookNode, name: str, md: pathlib.Path | None = None
) -> list[StudentCell]:
    """The chapter's cells as a student sees them (see the module docstring).

    ``md``: the chapter's MyST source, whose points tags win over the executed
    notebook's (by default the ``.md`` beside ``name``, when ``name`` is a path
    and it exists).
    """
    nb = copy.deepcopy(nb)
    if md is None and isinstance(name, pathlib.Path):
        candidate = name.with_suffix(".md")
        md = candidate if candidate.exists() else None
    name = pathlib.Path(name).name
    if md is not None:
        _use_source_tags(nb, md, name)
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
    exercise: Exercise | None = None
    code_in_gate = 0
    for cell in nb.cells:
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
            exercise = Exercise(gate, numbers.get(gate, "?"), DEFAULT_POINTS)
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
            gate = exercise = None
            continue
        if _is_written(cell):
            if gate is None:
                raise ValueError(
                    f"{name}: a cell tagged {WRITTEN_TAG!r} outside a solution gate:\n"
                    f"{src[:200]}"
                )
            where = f"{name}, written answer of {gate!r}"
            points, _, tags = _points(cell.metadata.get("tags", []), where)
            tags = [t for t in tags if t != WRITTEN_TAG]
            if not RUBRIC.search(src):
                raise ValueError(
                    f"{where}: expected a model answer and a line starting with "
                    f"'**Rubric' (what earns each point), got:\n{src[:200]}"
                )
            index = len(exercise.written)
            exercise.written.append((points, src))
            for role in ("written", "rubric"):
                new = _new(cell, src, role, tags)
                out.append(StudentCell(new, role, exercise, index))
            continue
        if cell.cell_type == "markdown" and SOLUTION_DIRECTIVE.search(src):
            continue
        if gate is not None and cell.cell_type == "markdown":
            continue  # the solution's prose
        if _is_solution_code(cell):
            if gate is None:
                raise ValueError(
                    f"{name}: a code cell with {BEGIN!r} outside a solution gate:\n"
                    f"{src[:200]}"
                )
            code_in_gate += 1
            where = f"{name}, solution {gate!r}"
            points, hidden_points, tags = _points(cell.metadata.get("tags", []), where)
            answer, check = split_solution(src, where)
            visible, hidden = split_hidden(check, where)
            exercise.points, exercise.solution = points, src
            exercise.hidden, exercise.hidden_points = hidden, hidden_points
            parts = [("answer", answer), ("check", RESTORE + "\n" + visible)]
            if hidden is not None:
                parts.append(("hidden", HIDDEN_HEADER + "\n" + RESTORE + "\n" + hidden))
            for role, source in parts:
                out.append(StudentCell(_new(cell, source, role, tags), role, exercise))
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


def strip_hidden(source: str) -> str:
    """The hidden-test cell as a student sees it: without the hidden region."""
    return split_hidden(source)[0]


def rubric_note(points: float) -> str:
    """What a student sees in place of the rubric."""
    return (
        f"*The answer above is graded by hand: {points:g} point{'s' * (points != 1)}.*"
    )


def student_view(item: StudentCell) -> nbformat.NotebookNode:
    """The cell as the student bundle writes it (and nbgrader's release shows it)."""
    cell = item.cell
    if item.role == "answer":
        cell.source = strip_solution_code(cell.source)
    elif item.role == "hidden":
        cell.source = strip_hidden(cell.source)
    elif item.role == "written":
        cell.source = TEXT_STUB
    elif item.role == "rubric":
        cell.source = rubric_note(item.exercise.written[item.index][0])
    return cell


def exercises(cells: list[StudentCell]) -> list[Exercise]:
    return [c.exercise for c in cells if c.role == "answer"]


def drop_pairing(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A bundled notebook is not paired with a .md: saving it writes no twin."""
    nb.metadata.pop("jupytext", None)
    return nb


# --- MyST as plain Markdown, for the notebooks of both bundles -----------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROLE = re.compile(r"\{(ref|numref|cite|cite:p|cite:t|doc|download|eq|math)\}`([^`]*)`")
TITLED = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
DIRECTIVE_OPEN = re.compile(r"^(\s*)(:{3,}|`{3,})\{([a-z][a-z-]*)\}[ \t]*(.*)$")
OPTION = re.compile(r"^\s*:[a-z-]+:")
TARGET = re.compile(r"^\s*\(([A-Za-z0-9_:-]+)\)=\s*$")
COMMENT = re.compile(r"^%")  # a MyST comment line: the book does not show it


def bibliography(path: pathlib.Path | None = None) -> dict[str, str]:
    """key -> "Author(s) year", from book/references.bib (author_year style)."""
    path = path or ROOT / "book" / "references.bib"
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for entry in re.split(r"\n(?=@)", path.read_text()):
        key = re.match(r"@\w+\{([^,\s]+),", entry.strip())
        if not key:
            continue
        author = re.search(r"\bauthor\s*=\s*\{(.*?)\},?\s*\n", entry, re.S)
        year = re.search(r"\byear\s*=\s*\{?(\d{4})", entry)
        names = (
            [
                a.split(",")[0].strip(" {}") if "," in a else a.split()[-1].strip(" {}")
                for a in re.split(r"\s+and\s+", author.group(1))
            ]
            if author
            else [key.group(1)]
        )
        who = (
            names[0]
            if len(names) == 1
            else " and ".join(names)
            if len(names) == 2
            else names[0] + " et al."
        )
        out[key.group(1)] = f"{who} {year.group(1) if year else ''}".strip()
    return out


def _page_title(target: str) -> str:
    path = (ROOT / "notebooks" / target).resolve()
    for candidate in (path.with_suffix(".md"), path):
        if candidate.is_file():
            for line in candidate.read_text().splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return target.rsplit("/", 1)[-1]


def _figure_numbers(cells: list[StudentCell], number: int) -> dict[str, str]:
    names = [
        c.cell.metadata.get("mystnb", {}).get("figure", {}).get("name")
        for c in cells
        if c.cell.cell_type == "code"
    ]
    names = [n for n in names if n]
    return {n: f"Fig. {number}.{i}" for i, n in enumerate(names, 1)}


def _role(kind: str, text: str, refs: dict[str, str], cites: dict[str, str]) -> str:
    titled = TITLED.match(text)
    title, target = (titled.group(1), titled.group(2)) if titled else (None, text)
    if kind in {"cite", "cite:p", "cite:t"}:
        names = [cites.get(k.strip(), k.strip()) for k in text.split(",")]
        return "(" + "; ".join(names) + ")" if kind != "cite:t" else "; ".join(names)
    if kind == "math":
        return f"${text}$"
    if kind == "eq":
        return f"({text})"
    if kind == "doc":
        return title or f"*{_page_title(target)}*"
    if kind == "numref":
        found = refs.get(target, target)
        return title.replace("%s", found.split()[-1]) if title else found
    if kind == "download":
        return title or target
    return title or refs.get(target, target)  # ref


def plain_markdown(
    cells: list[StudentCell], name: str, cites: dict[str, str] | None = None
) -> list[StudentCell]:
    """Rewrite the MyST of the markdown cells as plain Markdown (in place).

    Exercise directives become a heading "Exercise N.k" (the end marker is
    dropped), ``{ref}``/``{numref}`` become the text or the number the book
    shows, ``{cite}`` becomes "(Author year)", ``{doc}`` the page's title, other
    directives (``{note}`` ...) a block quote headed by their name, and
    ``(label)=`` targets and ``%`` comment lines are dropped.
    """
    number = chapter_number(name) if re.match(r"\d\d_", name) else 0
    cites = bibliography() if cites is None else cites
    refs: dict[str, str] = {}
    count = 0
    for item in cells:
        src = item.cell.source
        if item.cell.cell_type == "markdown" and EXERCISE_START.search(src):
            label = EXERCISE_LABEL.search(src)
            count += 1
            if label:
                refs[label.group(1)] = f"exercise {number}.{count}"
    refs.update(_figure_numbers(cells, number))
    out = []
    for item in cells:
        cell = item.cell
        if cell.cell_type != "markdown":
            out.append(item)
            continue
        src = cell.source
        lines, result, fences = src.splitlines(), [], []
        i = 0
        while i < len(lines):
            line = lines[i]
            opened = DIRECTIVE_OPEN.match(line)
            if TARGET.match(line) or COMMENT.match(line):
                i += 1
                continue
            if opened and opened.group(3) in {"exercise-start", "exercise-end"}:
                label = EXERCISE_LABEL.search("\n".join(lines[i : i + 3]))
                i += 1
                while i < len(lines) and OPTION.match(lines[i]):
                    i += 1
                if i < len(lines) and lines[i].strip() == opened.group(2):
                    i += 1  # the directive's closing fence
                if opened.group(3) == "exercise-start":
                    heading = (
                        refs.get(label.group(1), "exercise") if label else "exercise"
                    )
                    result.append("### " + heading[0].upper() + heading[1:])
                continue
            if opened:
                indent, fence, kind, title = opened.groups()
                fences.append(indent + fence)
                header = kind.capitalize() + (f": {title}" if title else "")
                result.append(f"> **{header}.**")
                i += 1
                while i < len(lines) and OPTION.match(lines[i]):
                    i += 1
                continue
            if fences and line.strip() == fences[-1].strip():
                fences.pop()
                i += 1
                continue
            result.append(("> " + line).rstrip() if fences else line)
            i += 1
        text = "\n".join(result).strip("\n")
        if not text.strip():
            continue  # a cell that held only an exercise-end
        cell.source = ROLE.sub(
            lambda m: _role(m.group(1), m.group(2), refs, cites), text
        )
        out.append(item)
    return out
