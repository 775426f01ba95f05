"""A two-exercise chapter in the course's source format, fast to autograde.

Used by tests/test_nbgrader.py and tests/test_student.py. Exercise 90.1 has a
visible check, hidden tests (another input, one call to ``hvp``, no explicit
Hessian) and a written answer worth 2 points; exercise 90.2 is a plain check.
``ANSWERS`` holds what simulated students write.
"""

from __future__ import annotations

import nbformat

NAME = "90_synthetic.ipynb"

SETUP = '''\
import numpy as np
import torch

from helpers import check


def hvp(f, x, v):
    """H(x) v by forward-over-reverse: one Hessian-vector product."""
    return torch.func.jvp(torch.func.grad(f), (x,), (v,))[1]


def cubic(x):
    return (x**3).sum() / 6  # its Hessian is diag(x)


x0 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)'''

SOLUTION_1 = """\
### BEGIN SOLUTION
def rayleigh(f, x, v):
    return v @ hvp(f, x, v) / (v @ v)


rq = rayleigh(cubic, x0, torch.ones(3, dtype=torch.float64))
### END SOLUTION
check.assert_close(
    rq,
    torch.tensor(2.0, dtype=torch.float64),
    what="Exercise 90.1: the Rayleigh quotient",
    not_autograd="a synthetic chapter that tests the grading tools",
)
### BEGIN HIDDEN TESTS
from helpers import grading

counted, original_hvp = grading.CallCounter(hvp), hvp
hvp = counted
try:
    with grading.no_explicit_hessian("Exercise 90.1"):
        other = rayleigh(
            cubic,
            torch.tensor([4.0, 1.0], dtype=torch.float64),
            torch.tensor([1.0, 1.0], dtype=torch.float64),
        )
finally:
    hvp = original_hvp
check.assert_close(
    other,
    torch.tensor(2.5, dtype=torch.float64),
    what="Exercise 90.1 (hidden): another input",
    not_autograd="a synthetic chapter that tests the grading tools",
)
assert counted.calls == 1, f"expected one call to hvp, got {counted.calls}"
### END HIDDEN TESTS"""

WRITTEN_1 = """\
**Model answer.** One product costs a small constant times one gradient,
whatever $n$ is; forming the Hessian takes $n$ products and $n^2$ numbers.

**Rubric.** 1 point: a product costs a constant number of gradients. 1 point:
the Hessian needs $n$ products (or $n^2$ memory)."""

SOLUTION_2 = """\
### BEGIN SOLUTION
y = 2 * x0
### END SOLUTION
check.assert_close(
    y,
    torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64),
    what="Exercise 90.2: twice x0",
    not_autograd="a synthetic chapter that tests the grading tools",
)"""

ANSWERS = {
    # right on the visible check, wrong on the method: loses the hidden points
    "wrong-method": {
        "ex-90-rayleigh": (
            "def rayleigh(f, x, v):\n"
            "    H = torch.func.hessian(f)(x)\n"
            "    return v @ H @ v / (v @ v)\n\n\n"
            "rq = rayleigh(cubic, x0, torch.ones(3, dtype=torch.float64))"
        ),
        "ex-90-double": "y = 2 * x0",
    },
    # wrong answers behind rebound comparison functions
    "monkeypatch": {
        "ex-90-rayleigh": (
            'check.assert_close = lambda *a, **k: print("✓")\n'
            "import helpers.check\n"
            "helpers.check.assert_close = check.assert_close\n"
            "torch.testing.assert_close = check.assert_close\n"
            "np.allclose = lambda *a, **k: True\n"
            "def rayleigh(f, x, v):\n"
            "    return torch.tensor(0.0, dtype=torch.float64)\n"
            "rq = torch.tensor(0.0, dtype=torch.float64)"
        ),
        "ex-90-rayleigh-written": "Because it is faster.",
        "ex-90-double": (
            "import helpers\n"
            "helpers.check = type('Fake', (), {'assert_close': staticmethod(print)})\n"
            "check = helpers.check\n"
            "y = torch.zeros(3, dtype=torch.float64)"
        ),
    },
}


def chapter() -> nbformat.NotebookNode:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    written = md(WRITTEN_1)
    written.metadata["tags"] = ["written-answer", "points-2"]
    cells = [
        md("# A synthetic chapter"),
        code(SETUP),
        md(
            "::::{exercise-start}\n:label: ex-90-rayleigh\n::::\n\n"
            "**Warm-up: a Rayleigh quotient.** Write `rayleigh(f, x, v)`, "
            "$v^\\top H v / v^\\top v$ with **one** call to `hvp` and without the "
            "explicit Hessian, and store `rayleigh(cubic, x0, ones)` in `rq`. Why "
            "is one product cheaper than the Hessian?\n\n::::{exercise-end}\n::::"
        ),
        md("::::{solution-start} ex-90-rayleigh\n:class: dropdown\n::::"),
        code(SOLUTION_1),
        md("The product never forms $H$."),
        written,
        md("::::{solution-end}\n::::"),
        md(
            "::::{exercise-start}\n:label: ex-90-double\n::::\n\n"
            "**Twice.** Store `2 * x0` in `y` (see {ref}`exercise 90.1 "
            "<ex-90-rayleigh>`).\n\n::::{exercise-end}\n::::"
        ),
        md("::::{solution-start} ex-90-double\n:class: dropdown\n::::"),
        code(SOLUTION_2),
        md("::::{solution-end}\n::::"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb
