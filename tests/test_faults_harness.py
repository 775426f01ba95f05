"""The fault-injection harness itself: every entry point errs once, each rule fails.

A small synthetic chapter calls every public derivative entry point and checks
each against its closed form; it is run clean and under both faults by
``tests/faults.py``, and :func:`faults.judge` must find exactly the problems
planted in it.
"""

from __future__ import annotations

import re

import faults
import jupytext
import nbformat
import pytest

SETUP = """\
import torch
import torch.autograd.forward_ad as fwAD
from helpers import check

x0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
v = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
one = torch.tensor(1.0, dtype=torch.float64)


def f(t):
    return (t**3).sum()


g_true, H_true = 3 * x0**2, torch.diag(6 * x0)
"""

ENTRY_POINTS = """\
x = x0.clone().requires_grad_()
af, tf = torch.autograd.functional, torch.func
got = {
    "autograd.grad": torch.autograd.grad(f(x), x)[0],
    "functional.vjp": af.vjp(f, x0, one)[1],
    "functional.jvp": af.jvp(f, x0, v)[1],
    "functional.vhp": af.vhp(f, x0, v)[1],
    "functional.hvp": af.hvp(f, x0, v)[1],
    "functional.jacobian": af.jacobian(f, x0),
    "functional.hessian": af.hessian(f, x0),
    "func.grad": tf.grad(f)(x0),
    "func.grad_and_value": tf.grad_and_value(f)(x0)[0],
    "func.vjp": tf.vjp(f, x0)[1](one)[0],
    "func.jvp": tf.jvp(f, (x0,), (v,))[1],
    "func.jacrev": tf.jacrev(f)(x0),
    "func.jacfwd": tf.jacfwd(f)(x0),
    "func.hessian": tf.hessian(f)(x0),
    "func.linearize": tf.linearize(f, x0)[1](v),
    "vmap(grad)": tf.vmap(tf.grad(f))(x0.expand(2, 3))[1],
}
x.grad = None
f(x).backward()
got["Tensor.backward"] = x.grad.clone()
y = x * 1.0
y.retain_grad()
torch.autograd.backward(f(y))
got["retained .grad"] = y.grad
with fwAD.dual_level():
    got["forward_ad"] = fwAD.unpack_dual(f(fwAD.make_dual(x0, v))).tangent
want = {"autograd.grad": g_true, "functional.vjp": g_true,
        "functional.jvp": g_true @ v, "functional.vhp": H_true @ v,
        "functional.hvp": H_true @ v, "functional.jacobian": g_true,
        "functional.hessian": H_true, "func.grad": g_true,
        "func.grad_and_value": g_true, "func.vjp": g_true, "func.jvp": g_true @ v,
        "func.jacrev": g_true, "func.jacfwd": g_true, "func.hessian": H_true,
        "func.linearize": g_true @ v, "vmap(grad)": g_true,
        "Tensor.backward": g_true, "retained .grad": g_true,
        "forward_ad": g_true @ v}
for name, value in got.items():
    check.assert_close(value, want[name], what=name)
"""

COMPOSED = """\
g = torch.autograd.grad(f(x), x, create_graph=True)[0]
check.assert_close(torch.autograd.grad(g @ v, x)[0], H_true @ v, what="double backward")
fwd_rev = torch.func.jvp(torch.func.grad(f), (x0,), (v,))[1]
check.assert_close(fwd_rev, H_true @ v, what="jvp(grad)")
p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
opt = torch.optim.SGD([p], lr=0.1)
((p - 1) ** 2).sum().backward()
opt.step()
check.assert_close(p.detach(), torch.full((2,), 0.2, dtype=torch.float64),
                   what="one SGD step")
"""

PLANTED = """\
check.assert_close(torch.autograd.functional.vjp(f, x0, one)[0], 8.0 - 1.0 + 0.125,
                   what="value beside a derivative")
check.assert_close(torch.autograd.functional.vjp(f, x0, one)[0], 8.0 - 1.0 + 0.125,
                   what="declared value",
                   not_autograd="the function value returned beside the product.")
H_auto = torch.autograd.functional.hessian(f, x0)
check.assert_close(torch.autograd.functional.hvp(f, x0, v)[1], H_auto @ v,
                   what="autograd expected")
check.assert_close(torch.autograd.functional.hvp(f, x0, v)[1], H_auto @ v,
                   what="declared autograd expected",
                   expected_from_autograd="a consistency check of two routes.")
lin = torch.autograd.functional.hessian(lambda t: (2 * t).sum(), x0)
check.assert_close(lin, torch.zeros(3, 3, dtype=torch.float64),
                   what="zero Hessian")
"""

BROKEN = """\
check.assert_close(torch.autograd.grad(f(x), x)[0], 2 * g_true, what="wrong formula")
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    where = tmp_path_factory.mktemp("harness")
    md = where / "99_harness.md"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Harness")]
        + [
            nbformat.v4.new_code_cell(s)
            for s in (SETUP, ENTRY_POINTS, COMPOSED, PLANTED)
        ]
        + [nbformat.v4.new_code_cell(BROKEN, metadata={"tags": ["raises-exception"]})]
    )
    jupytext.write(nb, md, fmt="md:myst")
    return {f: faults.run_chapter(md, f, where) for f in faults.RUNS}


def _by_what(run):
    return {r["what"]: r for r in run.records}


def _scaled_by(message: str, factor: float) -> bool:
    """The check named the factor, or (a single number, where helpers.check names
    no factor since any number is a multiple of any other) printed values whose
    ratio is the factor."""
    if f"off by a factor of {factor:g}." in message:
        return True
    found = re.search(r"actual (\S+), expected (\S+), difference", message)
    if not found:
        return False
    actual, expected = (float(x) for x in found.groups())
    return "(shape ()" in message and abs(actual / expected - factor) < 1e-5


def test_every_entry_point_errs_once_under_scale(runs):
    assert not runs["none"].errors.keys() - {4}, runs["none"].errors
    clean, scale = _by_what(runs["none"]), _by_what(runs["scale"])
    names = [r["what"] for r in runs["none"].records if r["cell"] == 1]
    assert len(names) == 19
    for name in names:
        assert clean[name]["passed"], clean[name]["message"]
        assert not scale[name]["passed"], f"{name} is not faulted"
        assert _scaled_by(scale[name]["message"], 1.001), scale[name]
    for name in ("double backward", "jvp(grad)"):  # two derivatives, two faults
        assert _scaled_by(scale[name]["message"], 1.002), scale[name]
    assert not runs["scale"].errors.keys() - {4}, runs["scale"].errors


def test_skew_breaks_ratios_and_exact_zeros(runs):
    skew = _by_what(runs["skew"])
    for r in runs["none"].records:
        if r["cell"] == 1:
            assert not skew[r["what"]]["passed"], r["what"]
    assert _by_what(runs["scale"])["zero Hessian"]["passed"]
    assert not skew["zero Hessian"]["passed"]


def test_the_optimizer_reads_the_faulty_gradient(runs):
    assert _by_what(runs["none"])["one SGD step"]["passed"]
    assert not _by_what(runs["scale"])["one SGD step"]["passed"]


def test_judge_finds_exactly_the_planted_problems(runs):
    for with_clean in (True, False):
        chosen = {f: r for f, r in runs.items() if with_clean or f != "none"}
        problems = faults.judge(chosen).problems
        found = sorted((p.split(": ")[1], p.split("'")[1]) for p in problems)
        # "autograd expected" fails under skew (the two routes skew differently),
        # so only rule 3 sees that its expected side came from autograd
        assert found == [
            ("rule 2", "value beside a derivative"),
            ("rule 3", "autograd expected"),
        ], problems


def test_judge_rule_1_needs_the_clean_run(runs):
    clean = runs["none"]
    record = next(r for r in clean.records if r["what"] == "func.grad")
    broken = faults.Run(
        clean.chapter,
        "none",
        [dict(record, passed=False, message="boom")],
        tags=clean.tags,
    )
    problems = faults.judge({**runs, "none": broken}).problems
    assert any("rule 1" in p and "func.grad" in p for p in problems), problems
    errored = faults.Run(
        clean.chapter,
        "none",
        clean.records,
        errors={2: "ValueError: x"},
        tags=clean.tags,
    )
    problems = faults.judge({**runs, "none": errored}).problems
    assert any("rule 1: code cell 2 raised" in p for p in problems), problems
