"""Run a chapter with autograd made slightly wrong, recording every check.

``run_chapter(md, fault)`` executes ``notebooks/NN_slug.md`` cell by cell in a
fresh kernel (as ``scripts/execute.py`` does), after a hidden first cell that

1. turns on ``helpers.check``'s record mode (``HELPERS_CHECK_RECORD``), so a
   failing ``assert_close`` appends a JSON line instead of raising, and
2. for ``fault != "none"``, wraps the public entry points of autograd so that
   every derivative they return to the chapter is wrong:

   - ``torch.autograd.grad``, ``torch.autograd.backward`` and
     ``Tensor.backward`` (the increment written to each leaf's ``.grad``),
   - ``torch.autograd.functional``: ``vjp``, ``jvp``, ``vhp``, ``hvp``,
     ``jacobian``, ``hessian``,
   - ``torch.func``: ``grad``, ``grad_and_value``, ``vjp`` (its ``vjp_fn``),
     ``jvp``, ``jacrev``, ``jacfwd``, ``hessian``, ``linearize`` (its
     ``jvp_fn``); a transform made inside ``vmap`` or another transform is
     wrapped too, so ``vmap(grad(f))`` and ``jvp(grad(f), ...)`` are wrong,
   - ``torch.autograd.forward_ad.unpack_dual`` (the tangent).

   Values returned beside a derivative (the function value of ``vjp``,
   ``jvp``, ``vhp``, ``hvp``, ``grad_and_value``, auxiliary outputs) are not
   changed.  Only calls made from outside the ``torch`` package are changed, so
   torch's own use of autograd (``torch.func`` on top of ``torch.autograd``,
   ``torch.autograd.functional.hessian`` on top of ``jacobian``, ``gradcheck``,
   the optimizers, which only read ``.grad``) is untouched and each public call
   errs once.

The faults (``FAULTS``):

- ``"scale"``: every derivative entry times 1.001;
- ``"skew"``: entry ``k`` (flat index in each tensor) times
  ``1 + 1e-3 (1 + 3 u_k)`` with ``u_k = frac(k (sqrt 5 - 1) / 2)``, a factor
  between 1.001 and 1.004 that is 1.001 for a single number (as under
  ``scale``) and different for any two entries of a tensor, so that ratios,
  symmetries and normalised directions break while every entry moves at least
  as much as under ``scale``; every entry that is exactly zero gets
  ``1e-3 (1 + k mod 5)`` added, so exact zeros break too.

``make test`` runs each chapter once under ``skew`` (``CHAPTER_FAULTS``); its
clean run is nbval's own run of the chapter, recorded (see
:func:`nbval_record_env` and ``tests/conftest.py``).  The harness test
(``tests/test_faults_harness.py``) runs both faults on a small chapter.

A second hidden cell, in the kernel only, keeps figures from being rendered
(``_NO_FIGURES``): a run here is judged by its checks, not by its outputs.

Each check's record gets the index of the code cell that made it.  The result
of a run is a :class:`Run`: the records, the cells that raised, the tags of
every cell.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import pathlib
import pickle
import tempfile
import textwrap
import time
from dataclasses import dataclass, field

import jupytext
import nbformat
from nbclient import NotebookClient

FAULTS = ("scale", "skew")
CHAPTER_FAULTS = ("skew",)  # what make test runs each chapter under
CLEAN_RUNS: dict[str, Run] = {}  # chapter stem -> its clean run, shared by the tests
RUNS = ("none", *FAULTS)

_FAULT_SOURCE = r"""
import os as _os
_os.environ["HELPERS_CHECK_RECORD"] = {record!r}
_os.environ["HELPERS_CHECK_VALUES"] = {values!r}
del _os


def _install_fault(kind):
    import functools
    import sys
    import weakref

    import torch
    import torch.autograd.forward_ad as fwd
    import torch.autograd.functional as taf
    import torch.func as tf
    from torch.utils._pytree import tree_map

    def from_outside(depth=2):
        name = sys._getframe(depth).f_globals.get("__name__", "")
        return not (name == "torch" or name.startswith("torch."))

    patterns = {{}}  # (shape, dtype, device) -> (factor, offset), made once each

    def skew_pattern(t):
        key = (tuple(t.shape), t.dtype, t.device)
        if key not in patterns:
            k = torch.arange(t.numel(), device=t.device).reshape(t.shape)
            u = torch.remainder(k.double() * 0.6180339887498949, 1.0).to(t.dtype)
            patterns[key] = (1 + 1e-3 * (1 + 3 * u), 1e-3 * (1 + (k % 5)).to(t.dtype))
        return patterns[key]

    def bad(t):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return t
        if kind == "scale":
            return t * 1.001
        if t._is_zerotensor():
            t = torch.zeros(t.shape, dtype=t.dtype, device=t.device)
        factor, offset = skew_pattern(t)
        return torch.where(t == 0, t + offset, t * factor)

    def bad_tree(tree):
        return tree_map(bad, tree)

    def patch(owner, name, make):
        orig = getattr(owner, name)
        new = make(orig)
        functools.update_wrapper(new, orig)
        setattr(owner, name, new)

    # torch.autograd.grad: every returned gradient
    def wrap_grad(orig):
        def grad(*args, **kwargs):
            out = orig(*args, **kwargs)
            return bad_tree(out) if from_outside() else out
        return grad

    patch(torch.autograd, "grad", wrap_grad)

    # backward: the increment each leaf's (or retained tensor's) .grad receives
    retained = []

    def wrap_retain_grad(orig):
        def retain_grad(self):
            retained.append(weakref.ref(self))
            return orig(self)
        return retain_grad

    patch(torch.Tensor, "retain_grad", wrap_retain_grad)

    def leaves_of(tensors):
        if isinstance(tensors, torch.Tensor):
            tensors = [tensors]
        seen, stack, found = set(), [], []
        for t in tensors:
            if isinstance(t, torch.Tensor):
                if t.grad_fn is not None:
                    stack.append(t.grad_fn)
                elif t.requires_grad:
                    found.append(t)
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            var = getattr(node, "variable", None)
            if isinstance(var, torch.Tensor):
                found.append(var)
            stack.extend(n for n, _ in node.next_functions)
        for ref in retained:  # non-leaf tensors whose .grad this backward fills
            t = ref()
            if t is not None and t.retains_grad and t.grad_fn in seen:
                found.append(t)
        unique = {{id(t): t for t in found}}
        return list(unique.values())

    def faulty_backward(orig, tensors, args, kwargs):
        create_graph = kwargs.get("create_graph", False)
        inputs = kwargs.get("inputs")
        leaves = leaves_of(tensors) if inputs is None else list(
            [inputs] if isinstance(inputs, torch.Tensor) else inputs)
        before = {{id(t): (None if t.grad is None else t.grad.detach().clone())
                  for t in leaves}}
        result = orig(*args, **kwargs)
        for t in leaves:
            if t.grad is None:
                continue
            old = before[id(t)]
            delta = t.grad if old is None else t.grad - old
            if create_graph:
                t.grad = bad(delta) if old is None else old + bad(delta)
            else:
                with torch.no_grad():
                    t.grad.copy_(bad(delta) if old is None else old + bad(delta))
        return result

    def wrap_autograd_backward(orig):
        def backward(tensors, *args, **kwargs):
            call = functools.partial(orig, tensors)
            if not from_outside():
                return call(*args, **kwargs)
            return faulty_backward(call, tensors, args, kwargs)
        return backward

    def wrap_tensor_backward(orig):
        def backward(self, *args, **kwargs):
            call = functools.partial(orig, self)
            if not from_outside():
                return call(*args, **kwargs)
            return faulty_backward(call, self, args, kwargs)
        return backward

    patch(torch.autograd, "backward", wrap_autograd_backward)
    patch(torch.Tensor, "backward", wrap_tensor_backward)

    # torch.autograd.functional: (value, derivative) pairs or derivatives
    def wrap_pair(orig):
        def f(*args, **kwargs):
            out = orig(*args, **kwargs)
            if not from_outside():
                return out
            return (out[0], bad_tree(out[1]))
        return f

    def wrap_all(orig):
        def f(*args, **kwargs):
            out = orig(*args, **kwargs)
            return bad_tree(out) if from_outside() else out
        return f

    for name in ("vjp", "jvp", "vhp", "hvp"):
        patch(taf, name, wrap_pair)
    for name in ("jacobian", "hessian"):
        patch(taf, name, wrap_all)

    # torch.func transforms: wrap the function the transform returns
    def wrap_transform(orig, post):
        def transform(func, *args, **kwargs):
            made = orig(func, *args, **kwargs)
            has_aux = kwargs.get("has_aux", False)

            @functools.wraps(made)
            def run(*a, **k):
                return post(made(*a, **k), has_aux)
            return run
        return transform

    def post_derivative(out, has_aux):  # grad, jacrev, jacfwd, hessian
        return (bad_tree(out[0]), out[1]) if has_aux else bad_tree(out)

    def post_grad_and_value(out, has_aux):  # (grad, value) or (grad, (value, aux))
        return (bad_tree(out[0]), out[1])

    for name, post in (("grad", post_derivative), ("jacrev", post_derivative),
                       ("jacfwd", post_derivative), ("hessian", post_derivative),
                       ("grad_and_value", post_grad_and_value)):
        patch(tf, name, lambda orig, post=post: wrap_transform(orig, post))

    def wrap_func_jvp(orig):
        def jvp(*args, **kwargs):
            out = orig(*args, **kwargs)
            if not from_outside():
                return out
            if kwargs.get("has_aux", False):
                return (out[0], bad_tree(out[1]), out[2])
            return (out[0], bad_tree(out[1]))
        return jvp

    def wrap_func_vjp(orig):
        def vjp(*args, **kwargs):
            out = orig(*args, **kwargs)
            if not from_outside():
                return out
            inner = out[1]

            @functools.wraps(inner)
            def vjp_fn(*a, **k):
                return bad_tree(inner(*a, **k))
            return (out[0], vjp_fn, *out[2:])
        return vjp

    def wrap_linearize(orig):
        def linearize(*args, **kwargs):
            out, inner = orig(*args, **kwargs)
            if not from_outside():
                return out, inner

            @functools.wraps(inner)
            def jvp_fn(*a, **k):
                return bad_tree(inner(*a, **k))
            return out, jvp_fn
        return linearize

    patch(tf, "jvp", wrap_func_jvp)
    patch(tf, "vjp", wrap_func_vjp)
    patch(tf, "linearize", wrap_linearize)

    def wrap_unpack_dual(orig):
        def unpack_dual(*args, **kwargs):
            out = orig(*args, **kwargs)
            if not from_outside() or out.tangent is None:
                return out
            return type(out)(out.primal, bad(out.tangent))
        return unpack_dual

    patch(fwd, "unpack_dual", wrap_unpack_dual)


if {fault!r} != "none":
    _install_fault({fault!r})
del _install_fault
"""


# A second hidden cell, for the kernel only (not the workers' prelude): figures are
# made but not rendered to SVG. A run here is judged by its checks' records, never
# by its outputs, and rendering the chapters' 34 figures took about 12 s of CPU per
# pass. A check whose value depended on a rendered figure would differ from
# nbval's run (where figures render) and be reported by the judge.
_NO_FIGURES = """\
import matplotlib.backend_bases as _backend_bases


def _print_nothing(self, filename, *args, **kwargs):
    return None


_backend_bases.FigureCanvasBase.print_figure = _print_nothing
del _backend_bases, _print_nothing
"""


@dataclass
class Run:
    """What one execution of a chapter produced."""

    chapter: str
    fault: str
    records: list[dict] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # code cell index -> error
    tags: dict[int, list[str]] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    values_dir: str | None = None
    wall_seconds: float = 0.0  # in this run, on this machine: for the report only
    cpu_seconds: float = 0.0  # the kernel's CPU time (user + system)
    by: str = "tests/faults.py"  # or "nbval" (its recorded run of the chapter)

    def raises_ok(self, cell: int) -> bool:
        return "raises-exception" in self.tags.get(cell, [])


def fault_cell_source(
    fault: str, record: str, values: str = "", prelude: str | None = None
) -> str:
    """The hidden cell; with ``prelude`` (a file name), also the workers' fault.

    The cell's source is written to ``prelude`` and the cell exports it as
    ``HELPERS_WORKER_PRELUDE``, which ``helpers.curvature_worker`` (and any
    worker script that calls its ``run_prelude()``) runs first: processes the
    chapter starts with ``torchrun`` get the same fault as the kernel.
    """
    if fault not in RUNS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {RUNS}")
    source = textwrap.dedent(
        _FAULT_SOURCE.format(fault=fault, record=record, values=values)
    )
    if prelude is None:
        return source
    pathlib.Path(prelude).write_text(source)
    export = (
        f"import os as _os\n_os.environ['HELPERS_WORKER_PRELUDE'] = {prelude!r}\n"
        "del _os\n"
    )
    return export + source


def run_chapter(
    md: pathlib.Path,
    fault: str,
    workdir: pathlib.Path | None = None,
    keep_values: bool = False,
    timeout: int = 300,
) -> Run:
    """Execute ``md`` under ``fault`` with check recording on; see the module doc."""
    workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix=f"faults-{md.stem}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    record = workdir / f"{md.stem}.{fault}.jsonl"
    record.unlink(missing_ok=True)
    values = workdir / f"{md.stem}.{fault}.values" if keep_values else None
    if values is not None:
        values.mkdir(exist_ok=True)
    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    prelude = workdir / f"{md.stem}.{fault}.prelude.py"
    hidden = nbformat.v4.new_code_cell(
        fault_cell_source(
            fault, str(record), str(values) if values else "", str(prelude)
        )
    )
    nb.cells.insert(0, hidden)
    quiet_figures = nbformat.v4.new_code_cell(_NO_FIGURES)
    code = [(k, c) for k, c in enumerate(nb.cells) if c.cell_type == "code"][1:]
    run = Run(chapter=md.stem, fault=fault, values_dir=str(values) if values else None)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(md.parent)}},
    )
    start = time.perf_counter()
    with client.setup_kernel():
        client.execute_cell(hidden, 0)
        _raise_if_error(hidden, "the hidden fault cell")
        client.execute_cell(quiet_figures, 0)
        _raise_if_error(quiet_figures, "the hidden cell that skips figures")
        seen = 0
        for i, (index, cell) in enumerate(code):
            run.tags[i] = list(cell.metadata.get("tags", []))
            run.sources[i] = cell.source
            client.execute_cell(cell, index)
            for out in cell.outputs:
                if out.output_type == "error":
                    run.errors[i] = f"{out.ename}: {out.evalue}"
            lines = record.read_text().splitlines() if record.exists() else []
            for line in lines[seen:]:
                entry = json.loads(line)
                entry["cell"] = i
                run.records.append(entry)
            seen = len(lines)
        run.cpu_seconds = _kernel_cpu(client)
    run.wall_seconds = time.perf_counter() - start
    return run


def _kernel_cpu(client) -> float:
    """The CPU seconds (user + system) of the kernel and the processes it waited
    for (torchrun's), asked of the kernel itself: a kernel forked by
    tests/kernel_forkserver.py is not this process's child, and its count starts
    at the fork, after the imports that a fresh kernel's count includes."""
    probe = nbformat.v4.new_code_cell(
        "import resource as _r\n"
        "_u = [_r.getrusage(w) for w in (_r.RUSAGE_SELF, _r.RUSAGE_CHILDREN)]\n"
        "print(sum(u.ru_utime + u.ru_stime for u in _u))\n"
        "del _r, _u"
    )
    client.execute_cell(probe, 0)
    text = "".join(o.get("text", "") for o in probe.outputs)
    try:
        return float(text.split()[-1])
    except (IndexError, ValueError):
        return math.nan


def _raise_if_error(cell, name: str) -> None:
    for out in cell.outputs:
        if out.output_type == "error":
            raise RuntimeError(
                f"{name} failed: {out.ename}: {out.evalue}\n" + "\n".join(out.traceback)
            )


def keyed(records: list[dict]) -> dict[tuple[str, int], dict]:
    """Records by (what, occurrence), so runs can be matched check by check."""
    count: dict[str, int] = {}
    out = {}
    for r in records:
        n = count.get(r["what"], 0)
        count[r["what"]] = n + 1
        out[(r["what"], n)] = r
    return out


def summary_changed(a: list, b: list, rel: float = 1e-9) -> float | None:
    """None if the two value summaries agree; else the largest relative change."""
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        return float("inf")
    worst = 0.0
    for row_a, row_b in zip(a, b, strict=True):
        if row_a[0] != row_b[0]:
            return float("inf")
        scale = max(abs(row_a[2]), abs(row_b[2]), 1e-300)
        for x, y in zip(row_a[1:], row_b[1:], strict=True):
            if x != y:
                if not (x == x and y == y):  # NaN on one side or both
                    return float("inf")
                worst = max(worst, abs(x - y) / scale)
    return worst if worst > rel else None


@dataclass
class Verdict:
    chapter: str
    problems: list[str]  # rule violations (the test fails on these)
    notes: list[str]  # worth knowing, not failures
    table: list[str]  # one line per check: what, and what each fault did
    timing: str = ""


def judge(runs: dict[str, Run]) -> Verdict:
    """Apply the three rules of issue 11 to the fault runs (and a clean run, if any).

    A check that a fault stops before it runs, because an assertion earlier in
    its own cell (the chapter's own test of autograd) failed under that fault
    and not in the clean run, counts as failing under that fault.

    Without a clean run (``"none"``), rule 1 is left to nbval, which re-runs the
    same chapter strictly in the same ``make test``; rule 3 then compares the
    expected sides of the two fault runs, which differ whenever the expected
    side depends on autograd.  Checks in cells tagged ``raises-exception`` are
    demonstrations: they are judged only if they pass in a clean run.
    """
    faulted = {f: keyed(runs[f].records) for f in FAULTS if f in runs}
    clean = runs.get("none")
    base = clean or runs[next(iter(faulted))]
    ch = base.chapter
    problems, notes, table = [], [], []
    if clean is not None:
        for i, err in clean.errors.items():
            if not clean.raises_ok(i):
                problems.append(
                    f"{ch}: rule 1: code cell {i} raised without a fault and "
                    f"is not tagged raises-exception: {err}"
                )
    for f in faulted:
        for i, err in runs[f].errors.items():
            if not base.raises_ok(i) and (clean is None or i not in clean.errors):
                notes.append(f"{ch}: under fault {f!r}, code cell {i} raised: {err}")
    checks: dict[tuple[str, int], dict] = {}
    for recs in [keyed(clean.records)] if clean else list(faulted.values()):
        for key, rec in recs.items():
            checks.setdefault(key, rec)
    for key, rec in checks.items():
        what = key[0] if key[1] == 0 else f"{key[0]} (occurrence {key[1] + 1})"
        cell = rec["cell"]
        if clean is not None and not rec["passed"]:
            if not clean.raises_ok(cell):
                problems.append(
                    f"{ch}: rule 1: check {what!r} (code cell {cell}) fails "
                    f"without a fault: {rec['message']}"
                )
            continue
        if clean is None and base.raises_ok(cell):
            continue
        outcome, changed = [], []
        passed_all, observed = True, 0
        reference = rec if clean is not None else None
        for f, recs in faulted.items():
            other = recs.get(key)
            if other is None:
                stopped = runs[f].errors.get(cell, "")
                if (
                    stopped.startswith("AssertionError")
                    and not base.raises_ok(cell)
                    and (clean is None or cell not in clean.errors)
                ):
                    # the cell's own test of autograd saw the fault first
                    observed += 1
                    passed_all = False
                    outcome.append(f"{f}: FAILS (its cell stopped at: {stopped[:80]})")
                else:
                    outcome.append(f"{f}: not reached")
                continue
            observed += 1
            passed_all &= other["passed"]
            state = "passes" if other["passed"] else "FAILS"
            if reference is None:
                reference = other
            else:
                change = summary_changed(
                    reference["expected_summary"], other["expected_summary"]
                )
                if change is not None:
                    state += f", expected side changed (rel {change:.1e})"
                    changed.append(f"{f!r} (relative change {change:.1e})")
            outcome.append(f"{f}: {state}")
        declared = "".join(
            f"\n      declares {kind}={rec[kind]!r}"
            for kind in ("not_autograd", "expected_from_autograd")
            if rec[kind]
        )
        table.append(f"  cell {cell:>3} {what!r}: " + "; ".join(outcome) + declared)
        if changed and not rec["expected_from_autograd"]:
            against = "the clean run" if clean is not None else "the other fault"
            problems.append(
                f"{ch}: rule 3: check {what!r} (code cell {cell}): its expected side "
                f"changes under fault {', '.join(changed)} against {against}, so it "
                "depends on autograd; compute it from a closed form or declare "
                'expected_from_autograd="<why that is acceptable>"'
            )
        if observed == 0:
            problems.append(
                f"{ch}: rule 2: check {what!r} (code cell {cell}) is not "
                "reached under any fault, so nothing shows it can fail"
            )
            continue
        if passed_all and not rec["not_autograd"] and not rec["expected_from_autograd"]:
            problems.append(
                f"{ch}: rule 2: check {what!r} (code cell {cell}) passes under every "
                f"fault ({', '.join(faulted)}): it cannot see wrong derivatives; "
                "make it "
                "one that does, add a companion check, or declare "
                'not_autograd="<what it checks instead>"'
            )
        if rec["not_autograd"] and not passed_all:
            notes.append(
                f"{ch}: check {what!r} declares not_autograd but fails under a "
                "fault: it does see autograd's derivatives"
            )
    if clean is not None:
        extra = sorted({k for recs in faulted.values() for k in recs} - set(checks))
        if extra:
            notes.append(f"{ch}: checks only seen under a fault: {extra}")
    timing = "; ".join(
        f"{f}: recorded by nbval"
        if r.by == "nbval"
        else f"{f}: {r.wall_seconds:.0f} s wall, {r.cpu_seconds:.0f} s kernel CPU"
        for f, r in runs.items()
    )
    return Verdict(ch, problems, notes, table, f"runs in this session: {timing}")


def report_text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"== {v.chapter}: {len(v.problems)} problem(s)")
        lines.extend(f"  PROBLEM {p}" for p in v.problems)
        lines.extend(f"  note    {n}" for n in v.notes)
        if v.timing:
            lines.append(f"  {v.timing}")
        lines.append("  checks (fault: outcome):")
        lines.extend(v.table)
        lines.append("")
    return "\n".join(lines)


def shared_dir(tmp_path_factory) -> pathlib.Path:
    """A directory this pytest session's processes share (all xdist workers)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # .../pytest-N/popen-gwK -> .../pytest-N
    path = root / "fault-runs"
    path.mkdir(exist_ok=True)
    return path


def nbval_paths(stem: str, where: pathlib.Path) -> dict[str, pathlib.Path]:
    """Where nbval's recorded run of chapter ``stem`` is kept."""
    return {
        "record": where / f"{stem}.nbval.jsonl",
        "values": where / f"{stem}.nbval.values",
        "cells": where / f"{stem}.nbval.cells.jsonl",
    }


def nbval_record_env(stem: str, where: pathlib.Path) -> dict[str, str]:
    """The environment under which nbval's kernel for chapter ``stem`` records
    every check (and keeps its values) while a failing check still raises.

    ``tests/conftest.py`` sets it just before nbval starts the chapter's kernel
    and restores it just after, so no other kernel records.
    """
    paths = nbval_paths(stem, where)
    for key in ("record", "cells"):
        paths[key].unlink(missing_ok=True)
    if paths["values"].exists():
        for old in paths["values"].iterdir():
            old.unlink()
    paths["values"].mkdir(exist_ok=True)
    return {
        "HELPERS_CHECK_RECORD": str(paths["record"]),
        "HELPERS_CHECK_VALUES": str(paths["values"]),
        "HELPERS_CHECK_RECORD_RAISES": "1",
    }


def note_nbval_cell(stem: str, where: pathlib.Path, cell: int, passed: bool) -> None:
    """After nbval ran code cell ``cell``: how many checks were recorded so far."""
    paths = nbval_paths(stem, where)
    lines = (
        len(paths["record"].read_text().splitlines()) if paths["record"].exists() else 0
    )
    with paths["cells"].open("a") as fh:
        fh.write(json.dumps({"cell": cell, "lines": lines, "passed": passed}) + "\n")


def from_nbval(md: pathlib.Path, where: pathlib.Path) -> Run | None:
    """nbval's recorded run of the chapter, if nbval ran and passed every code cell
    of its notebook in this session; else None."""
    paths = nbval_paths(md.stem, where)
    if not paths["cells"].exists():
        return None
    cells = [json.loads(line) for line in paths["cells"].read_text().splitlines()]
    code = [
        c
        for c in nbformat.read(md.with_suffix(".ipynb"), 4).cells
        if c.cell_type == "code"
    ]
    if [c["cell"] for c in cells] != list(range(len(code))) or not all(
        c["passed"] for c in cells
    ):
        return None
    lines = paths["record"].read_text().splitlines() if paths["record"].exists() else []
    if len(lines) != cells[-1]["lines"]:
        return None
    run = Run(
        chapter=md.stem, fault="none", values_dir=str(paths["values"]), by="nbval"
    )
    seen = 0
    for c in cells:
        i = c["cell"]
        run.tags[i] = list(code[i].metadata.get("tags", []))
        run.sources[i] = code[i].source
        for line in lines[seen : c["lines"]]:
            run.records.append({**json.loads(line), "cell": i})
        seen = c["lines"]
    return run


def clean_run(md: pathlib.Path, tmp_path_factory) -> Run:
    """The chapter's clean run, with every check's arguments kept.

    In ``make test`` this is nbval's own run of the chapter, recorded
    (:func:`from_nbval`): ``tests/conftest.py`` runs the chapter's nbval cells,
    its fault-injection test and its exercise-message test on one xdist worker,
    in that order.  When nbval did not run the chapter in this session (a test
    selected alone) or failed on it, the chapter is executed here instead, once
    per session, whichever test asks first (a file lock makes the other wait).
    """
    if md.stem in CLEAN_RUNS:
        return CLEAN_RUNS[md.stem]
    where = shared_dir(tmp_path_factory)
    run = from_nbval(md, where)
    if run is None:
        saved = where / f"{md.stem}.none.pickle"
        with open(where / f"{md.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if saved.exists():
                run = pickle.loads(saved.read_bytes())
            else:
                run = run_chapter(md, "none", where, keep_values=True)
                saved.write_bytes(pickle.dumps(run))
    CLEAN_RUNS[md.stem] = run
    return run


def per_chapter_classes(namespace: dict, chapters: list[pathlib.Path], test) -> None:
    """One test class per chapter, ``Test_03_vhp_hvp_toy``, each running ``test``.

    ``tests/conftest.py`` puts each class in its chapter's xdist group (with
    the chapter's nbval cells), so chapters spread over the workers; ``-k 03_``
    selects one chapter.
    """
    for md in chapters:
        name = f"Test_{md.stem}"

        def method(self, tmp_path_factory, md=md):
            test(md, tmp_path_factory)

        attr = (
            test.__name__
            if test.__name__.startswith("test")
            else "test_" + test.__name__
        )
        method.__name__ = attr
        method.__doc__ = test.__doc__
        namespace[name] = type(
            name, (), {attr: method, "chapter": md, "__module__": namespace["__name__"]}
        )
