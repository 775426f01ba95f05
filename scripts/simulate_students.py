"""Simulated submissions, to try the nbgrader flow (and to test it).

    python scripts/simulate_students.py COURSE_DIR ASSIGNMENT STUDENT KIND [LABEL]

copies the released notebooks of ``ASSIGNMENT`` (``COURSE_DIR/release/...``) to
``COURSE_DIR/submitted/STUDENT/ASSIGNMENT/``, as an LMS export or
``nbgrader collect`` would, with the answer cells filled in according to KIND:

* ``full``: every answer is the chapter's solution (fences removed, as a
  student would type it);
* ``untouched``: the release as it is (every answer is the stub);
* ``wrong``: every answer is the solution, except exercise ``LABEL`` (default:
  the first exercise), whose answer is the solution followed by a line that
  scales every float in its result by 1.001 and adds 0.001;
* ``blank``: only exercise ``LABEL`` is answered (the solution), the rest are
  stubs;
* ``monkeypatch``: every answer is wrong as in ``wrong``, and every answer
  cell first rebinds the comparison functions (``check.assert_close``,
  ``helpers.check.assert_close``, ``torch.testing.assert_close``,
  ``numpy.allclose``, ``numpy.testing.assert_allclose``) to accept anything:
  the checks must still fail (``helpers.grading.restore``).

Written answers (markdown answer cells) get the model answer with ``full``,
``wrong`` and ``monkeypatch``, and are left as the stub otherwise.

The solutions come from ``COURSE_DIR/source``. To fill in a notebook a
(simulated) student fetched through nbgrader's exchange instead:

    python scripts/simulate_students.py --answer NOTEBOOK SOURCE_NOTEBOOK KIND [LABEL]
"""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import sys

import nbformat

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import solution_body  # noqa: E402

PERTURB = (
    "import torch as _torch  # simulated mistake\n"
    "{var} = _torch.utils._pytree.tree_map(\n"
    "    lambda a: a * 1.001 + 1e-3\n"
    "    if isinstance(a, float) or (isinstance(a, _torch.Tensor)\n"
    "                                and a.is_floating_point()) else a,\n"
    "    {var})"
)


MONKEYPATCH = """\
import numpy as _np  # simulated cheat: make every comparison pass
import torch as _torch
import helpers.check as _hc
def _accept(*args, **kwargs):
    print("✓ (accepted by a rebound comparison)")
    return True
check.assert_close = _hc.assert_close = _torch.testing.assert_close = _accept
_np.allclose = _np.testing.assert_allclose = _accept
"""


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def answer_variable(solution: str, check: str) -> str:
    """The last name the solution assigns that the check reads."""
    assigned: list[str] = []
    for node in ast.walk(ast.parse(solution)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned.append(node.id)
    used = {
        n.id
        for n in ast.walk(ast.parse(check))
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    candidates = [name for name in assigned if name in used]
    if not candidates:
        raise ValueError(
            f"expected the check to read a name the solution assigns; solution assigns "
            f"{sorted(set(assigned))}, check reads {sorted(used)}"
        )
    return candidates[-1]


def wrong_answer(solution: str, check: str) -> str:
    body = solution_body(solution)
    return body + "\n" + PERTURB.format(var=answer_variable(body, check))


KINDS = ("full", "untouched", "wrong", "blank", "monkeypatch")


def model_answer(source: str) -> str:
    """A written answer's model answer: its text before the rubric."""
    return re.split(r"^\*\*Rubric", source, maxsplit=1, flags=re.M)[0].strip()


def fill(path: pathlib.Path, answers: dict[str, str]) -> None:
    """Write ``answers`` (grade_id -> source) into the answer cells of ``path``."""
    nb = nbformat.read(path, as_version=4)
    ids = {_meta(c).get("grade_id") for c in nb.cells if _meta(c).get("solution")}
    unknown = set(answers) - ids
    if unknown:
        raise ValueError(f"expected answer cells among {sorted(ids)}, got {unknown}")
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if _meta(cell).get("solution") and gid in answers:
            cell.source = answers[gid]
    nbformat.write(nb, path)


def answer(
    path: pathlib.Path, source_path: pathlib.Path, kind: str, label: str | None = None
) -> None:
    """Fill the answer cells of the released notebook `path` in place."""
    if kind not in KINDS:
        raise ValueError(f"expected kind one of {KINDS}, got {kind!r}")
    nb = nbformat.read(path, as_version=4)
    source = nbformat.read(source_path, as_version=4)
    solutions = {
        _meta(c).get("grade_id"): c.source
        for c in source.cells
        if _meta(c).get("solution") and c.cell_type == "code"
    }
    written = {
        _meta(c).get("grade_id"): c.source
        for c in source.cells
        if _meta(c).get("solution") and c.cell_type == "markdown"
    }
    checks = {
        _meta(c).get("grade_id"): c.source
        for c in source.cells
        if _meta(c).get("grade")
    }
    chosen = label or next(iter(solutions), None)
    if kind in {"wrong", "blank"} and chosen not in solutions:
        raise ValueError(
            f"expected an exercise label among {list(solutions)}, got {chosen!r}"
        )
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if not _meta(cell).get("solution"):
            continue
        if gid in written:
            if kind in {"full", "wrong", "monkeypatch"}:
                cell.source = model_answer(written[gid])
            continue
        if kind == "full" or (kind == "wrong" and gid != chosen):
            cell.source = solution_body(solutions[gid])
        elif kind == "wrong":
            cell.source = wrong_answer(solutions[gid], checks[gid + "-check"])
        elif kind == "monkeypatch":
            cell.source = MONKEYPATCH + wrong_answer(
                solutions[gid], checks[gid + "-check"]
            )
        elif kind == "blank" and gid == chosen:
            cell.source = solution_body(solutions[gid])
    nbformat.write(nb, path)


def submit(
    course: pathlib.Path,
    assignment: str,
    student: str,
    kind: str,
    label: str | None = None,
) -> list[pathlib.Path]:
    """Copy the release to submitted/STUDENT/ASSIGNMENT and fill it in."""
    if kind not in KINDS:
        raise ValueError(f"expected kind one of {KINDS}, got {kind!r}")
    target = course / "submitted" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(course / "release" / assignment, target)
    written = sorted(target.glob("*.ipynb"))
    for path in written:
        answer(path, course / "source" / assignment / path.name, kind, label)
    return written


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--answer"] and len(args) in (4, 5):
        answer(pathlib.Path(args[1]), pathlib.Path(args[2]), *args[3:])
        print(f"filled {args[1]} ({args[3]})")
    elif len(args) in (4, 5):
        for f in submit(pathlib.Path(args[0]), *args[1:]):
            print(f"wrote {f}")
    else:
        sys.exit(__doc__)
