r"""Every way the course computes second-order quantities, timed side by side.

Run it with ``make bench`` (or ``python -m helpers.bench --out _build/bench``);
``--quick`` runs a small version in seconds.  It writes ``results.csv`` and
log-log figures of time and memory against the number of inputs :math:`n`.

Two problems, each a scalar function of :math:`n` numbers:

``scalar``
    :math:`f(\mathbf x) = \sum_i \tanh\big((W\mathbf x)_i\big)^2` with a fixed
    :math:`W \in \mathbb R^{n \times n}` scaled by :math:`1/\sqrt n`; its
    Hessian is dense.
``mlp``
    the mean squared error of a one-hidden-layer tanh network
    :math:`8 \to h \to 1` on a fixed batch of 32 points, as a function of its
    :math:`n = 10h + 1` parameters (flattened into one vector).

Methods (each takes the problem's function ``f`` of one vector ``x`` and,
for products, a direction ``v``):

* ``gradient``: one gradient, for scale;
* ``hvp_functional``: ``torch.autograd.functional.hvp``;
* ``hvp_double_backward``: gradient with ``create_graph=True``, then a
  vector-Jacobian product of it;
* ``hvp_fwd_rev``: forward over reverse, ``torch.func.jvp(torch.func.grad(f))``;
* ``hessian_row_loop``: :math:`n` double-backward passes, one row each (seed
  002's ``get_full_hessian``, bugs fixed);
* ``hessian_seed_double_loop``: seed 001's ``my_hessian``, one
  ``autograd.grad`` call per gradient entry *and per parameter tensor*
  (for the ``mlp`` problem the parameters are four tensors);
* ``hessian_functional`` and ``hessian_functional_vectorize``:
  ``torch.autograd.functional.hessian`` without and with ``vectorize=True``;
* ``hessian_func``: ``torch.func.hessian`` (``jacfwd(jacrev)``);
* ``hessian_jacrev_jacrev``: ``jacrev(jacrev)``;
* ``hessian_vmap_hvp``: ``vmap`` of forward-over-reverse HVPs over the
  :math:`n` unit vectors.

Timing uses ``torch.utils.benchmark.Timer`` after one warm-up call, with a
stated number of threads; each row of the CSV has the median, the
interquartile range and the number of timed runs (one, for a method whose
warm-up took over a second).  Memory is the peak resident
memory that one call adds (Linux only; see :func:`peak_memory`).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.benchmark import Timer

__all__ = ["METHODS", "Problem", "make_problem", "run"]

Fn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------


@dataclass
class Problem:
    """A scalar function of one vector, a point, a direction, and for ``mlp`` its pieces."""

    name: str
    n: int
    f: Fn
    x: torch.Tensor
    v: torch.Tensor
    param_shapes: dict[str, tuple[int, ...]]
    data: dict[str, torch.Tensor]


def _scalar_problem(n: int, dtype: torch.dtype) -> Problem:
    g = torch.Generator().manual_seed(n)
    W = torch.randn(n, n, generator=g, dtype=dtype) / math.sqrt(n)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(W @ x).pow(2).sum()

    x = torch.randn(n, generator=g, dtype=dtype)
    v = torch.randn(n, generator=g, dtype=dtype)
    return Problem("scalar", n, f, x, v, {"x": (n,)}, {"W": W})


def mlp_hidden_for(n: int, d: int = 8) -> int:
    """Hidden width h of the d → h → 1 network with about ``n = (d + 2)h + 1`` parameters."""
    return max(1, round((n - 1) / (d + 2)))


def _mlp_problem(n: int, dtype: torch.dtype, d: int = 8, batch: int = 32) -> Problem:
    h = mlp_hidden_for(n, d)
    g = torch.Generator().manual_seed(h)
    X = torch.randn(batch, d, generator=g, dtype=dtype)
    y = torch.randn(batch, generator=g, dtype=dtype)
    shapes = {"0.weight": (h, d), "0.bias": (h,), "2.weight": (1, h), "2.bias": (1,)}
    sizes = [math.prod(s) for s in shapes.values()]

    def unflatten(theta: torch.Tensor) -> list[torch.Tensor]:
        return [t.reshape(s) for t, s in zip(torch.split(theta, sizes), shapes.values())]

    def f(theta: torch.Tensor) -> torch.Tensor:
        W1, b1, W2, b2 = unflatten(theta)
        pred = (torch.tanh(X @ W1.T + b1) @ W2.T + b2).squeeze(-1)
        return ((pred - y) ** 2).mean()

    p = sum(sizes)
    theta = torch.randn(p, generator=g, dtype=dtype) / math.sqrt(d)
    v = torch.randn(p, generator=g, dtype=dtype)
    return Problem("mlp", p, f, theta, v, shapes, {"X": X, "y": y})


def make_problem(name: str, n: int, dtype: torch.dtype = torch.float64, **sizes: int) -> Problem:
    """The ``scalar`` or ``mlp`` problem with (about) ``n`` inputs.

    For ``mlp``, ``d`` (inputs, default 8) and ``batch`` (points, default 32)
    may be given; the benchmark uses the defaults.
    """
    if name == "scalar":
        return _scalar_problem(n, dtype)
    if name == "mlp":
        return _mlp_problem(n, dtype, **sizes)
    raise ValueError(f"unknown problem {name!r}; expected 'scalar' or 'mlp'")


def closed_form_reference(p: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``(n,)`` and Hessian ``(n, n)`` of the problem at ``p.x`` from SymPy (small n only)."""
    import sympy

    from helpers import closed_form

    if p.name == "scalar":
        xs = sympy.symbols(f"x0:{p.n}", real=True)
        z = sympy.Matrix(p.data["W"].tolist()) * sympy.Matrix(xs)
        f = sum(sympy.tanh(zi) ** 2 for zi in z)
        return closed_form.gradient(f, xs)(*p.x), closed_form.hessian(f, xs)(*p.x)

    def loss(**kw: sympy.Matrix) -> sympy.Expr:
        X, y = kw["X"], kw["y"]
        ones = sympy.ones(X.shape[0], 1)
        hidden = (X * kw["0.weight"].T + ones * kw["0.bias"].T).applyfunc(sympy.tanh)
        residual = hidden * kw["2.weight"].T + ones * kw["2.bias"][0] - y
        return (residual.T * residual)[0, 0] / X.shape[0]

    sizes = [math.prod(s) for s in p.param_shapes.values()]
    params = {k: t.reshape(s) for (k, s), t in zip(p.param_shapes.items(), torch.split(p.x, sizes))}
    form = closed_form.param_derive(loss, params, **p.data)
    grad = torch.cat([t.reshape(-1) for t in form.gradient(params, **p.data).values()])
    return grad, form.flat_hessian(params, **p.data)


# --------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------


def gradient(p: Problem) -> torch.Tensor:
    x = p.x.detach().requires_grad_()
    return torch.autograd.grad(p.f(x), x)[0]


def hvp_functional(p: Problem) -> torch.Tensor:
    return torch.autograd.functional.hvp(p.f, p.x, p.v)[1]


def hvp_double_backward(p: Problem) -> torch.Tensor:
    x = p.x.detach().requires_grad_()
    (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)
    return torch.autograd.grad(g, x, grad_outputs=p.v)[0]


def hvp_fwd_rev(p: Problem) -> torch.Tensor:
    return torch.func.jvp(torch.func.grad(p.f), (p.x,), (p.v,))[1]


def hessian_row_loop(p: Problem) -> torch.Tensor:
    x = p.x.detach().requires_grad_()
    (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)
    rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(p.n)]
    return torch.stack(rows)


def hessian_seed_double_loop(p: Problem) -> torch.Tensor:
    """Seed 001's ``my_hessian``: one grad call per gradient entry and per parameter tensor."""
    sizes = [math.prod(s) for s in p.param_shapes.values()]
    pieces = [t.detach().clone().requires_grad_() for t in torch.split(p.x, sizes)]
    value = p.f(torch.cat(pieces))
    grads = torch.autograd.grad(value, pieces, create_graph=True)
    rows = []
    for g in grads:
        for entry in g.flatten():
            parts = [torch.autograd.grad(entry, piece, retain_graph=True)[0].flatten()
                     for piece in pieces]
            rows.append(torch.cat(parts))
    return torch.stack(rows)


def hessian_functional(p: Problem) -> torch.Tensor:
    return torch.autograd.functional.hessian(p.f, p.x)


def hessian_functional_vectorize(p: Problem) -> torch.Tensor:
    return torch.autograd.functional.hessian(p.f, p.x, vectorize=True)


def hessian_func(p: Problem) -> torch.Tensor:
    return torch.func.hessian(p.f)(p.x)


def hessian_jacrev_jacrev(p: Problem) -> torch.Tensor:
    return torch.func.jacrev(torch.func.jacrev(p.f))(p.x)


def hessian_vmap_hvp(p: Problem) -> torch.Tensor:
    grad_f = torch.func.grad(p.f)
    basis = torch.eye(p.n, dtype=p.x.dtype)
    return torch.func.vmap(lambda e: torch.func.jvp(grad_f, (p.x,), (e,))[1])(basis)


METHODS: dict[str, tuple[str, Callable[[Problem], torch.Tensor]]] = {
    "gradient": ("gradient", gradient),
    "hvp_functional": ("hvp", hvp_functional),
    "hvp_double_backward": ("hvp", hvp_double_backward),
    "hvp_fwd_rev": ("hvp", hvp_fwd_rev),
    "hessian_row_loop": ("hessian", hessian_row_loop),
    "hessian_seed_double_loop": ("hessian", hessian_seed_double_loop),
    "hessian_functional": ("hessian", hessian_functional),
    "hessian_functional_vectorize": ("hessian", hessian_functional_vectorize),
    "hessian_func": ("hessian", hessian_func),
    "hessian_jacrev_jacrev": ("hessian", hessian_jacrev_jacrev),
    "hessian_vmap_hvp": ("hessian", hessian_vmap_hvp),
}


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_memory(call: Callable[[], object]) -> float:
    """Peak resident memory (bytes) that one ``call()`` adds, or NaN where Linux's /proc is missing.

    Freed memory is first handed back to the system (``malloc_trim``) and the
    high-water mark reset (``/proc/self/clear_refs``), so the peak belongs to
    this call and includes its result.  Small allocations served from memory
    the process already holds do not show: below about a megabyte the number is
    a lower bound.
    """
    if not os.path.exists("/proc/self/clear_refs"):
        return math.nan
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current VmRSS
    except OSError:
        return math.nan
    start = _status_bytes("VmRSS")
    result = call()
    peak = _status_bytes("VmHWM")
    del result
    return float(max(0, peak - start))


@dataclass
class Row:
    problem: str
    method: str
    kind: str
    n: int
    median_s: float
    iqr_s: float
    runs: int
    peak_bytes: float


def measure(p: Problem, method: str, min_run_time: float, memory: bool) -> Row:
    """Time one method on one problem: a warm-up call, then repeats, or one timed call if slow.

    A method whose warm-up call takes over a second is timed by a single
    further call (``runs`` is then 1), which also gives its memory; repeating
    it would add minutes and no information.
    """
    kind, fn = METHODS[method]
    start = time.perf_counter()
    fn(p)  # warm-up (and any lazy initialisation)
    if time.perf_counter() - start > 1.0:
        seconds: list[float] = []

        def timed() -> object:
            t0 = time.perf_counter()
            out = fn(p)
            seconds.append(time.perf_counter() - t0)
            return out

        peak = peak_memory(timed) if memory else math.nan
        if not seconds:
            timed()
        return Row(p.name, method, kind, p.n, seconds[0], 0.0, 1, peak)
    m = Timer("fn(p)", globals={"fn": fn, "p": p}, num_threads=torch.get_num_threads()) \
        .blocked_autorange(min_run_time=min_run_time)
    peak = peak_memory(lambda: fn(p)) if memory else math.nan
    return Row(p.name, method, kind, p.n, m.median, m.iqr, len(m.times), peak)


def run(problems: list[str], sizes: list[int], methods: list[str], *, min_run_time: float,
        budget_s: float, memory: bool, progress: Callable[[str], None] = print) -> list[Row]:
    """Measure every method on every problem and size; skip a method once it exceeds ``budget_s``."""
    rows: list[Row] = []
    total = len(problems) * len(sizes) * len(methods)
    done = 0
    for problem in problems:
        too_slow: set[str] = set()
        for n in sizes:
            p = make_problem(problem, n)
            for method in methods:
                done += 1
                if method in too_slow:
                    progress(f"[{done:3d}/{total}] {problem:6s} n={p.n:5d} {method:30s} skipped (over budget)")
                    continue
                start = time.perf_counter()
                row = measure(p, method, min_run_time, memory)
                rows.append(row)
                if row.median_s > budget_s:
                    too_slow.add(method)
                progress(f"[{done:3d}/{total}] {problem:6s} n={p.n:5d} {method:30s} "
                         f"median {row.median_s * 1e3:9.3f} ms  ({time.perf_counter() - start:4.1f} s)")
    return rows


def write_csv(rows: list[Row], path: str, note: str) -> None:
    with open(path, "w", newline="") as fh:
        fh.write(f"# {note}\n")
        writer = csv.writer(fh)
        writer.writerow(["problem", "method", "kind", "n", "median_s", "iqr_s", "runs", "peak_bytes"])
        for r in rows:
            writer.writerow([r.problem, r.method, r.kind, r.n, f"{r.median_s:.6e}",
                             f"{r.iqr_s:.6e}", r.runs, f"{r.peak_bytes:.0f}"])


def load_results(path: str | None = None) -> tuple[str, list[Row]]:
    """The machine note and rows of a results CSV; by default the one shipped with the course."""
    if path is None:
        from importlib.resources import files

        text = files("helpers").joinpath("bench_results.csv").read_text()
    else:
        with open(path) as fh:
            text = fh.read()
    lines = text.splitlines()
    note = lines[0].lstrip("# ").strip()
    rows = [Row(r["problem"], r["method"], r["kind"], int(r["n"]), float(r["median_s"]),
                float(r["iqr_s"]), int(r["runs"]), float(r["peak_bytes"]))
            for r in csv.DictReader(lines[1:])]
    return note, rows


def plot(rows: list[Row], out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for problem in sorted({r.problem for r in rows}):
        for field, label, fname in (("median_s", "median time (s)", "time"),
                                    ("peak_bytes", "peak memory gained (bytes)", "memory")):
            if not any(r.problem == problem and math.isfinite(getattr(r, field)) for r in rows):
                continue
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for method in METHODS:
                pts = sorted((r.n, getattr(r, field)) for r in rows
                             if r.problem == problem and r.method == method
                             and math.isfinite(getattr(r, field)) and getattr(r, field) > 0)
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=method)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("n (inputs or parameters)")
            ax.set_ylabel(label)
            ax.set_title(f"{problem}: {fname} against n")
            ax.legend(fontsize=7, ncol=2)
            fig.tight_layout()
            path = os.path.join(out_dir, f"{fname}_{problem}.png")
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="_build/bench", help="output folder")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (stated in the CSV)")
    parser.add_argument("--sizes", type=int, nargs="*", help="n values (default 10 ... 2000)")
    parser.add_argument("--problems", nargs="*", default=["scalar", "mlp"])
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    args = parser.parse_args(argv)

    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    torch.set_num_threads(args.threads)
    sizes = args.sizes or ([10, 30, 100] if args.quick else [10, 30, 100, 300, 1000, 2000])
    min_run_time = 0.02 if args.quick else 0.2
    budget = 0.5 if args.quick else 5.0
    os.makedirs(args.out, exist_ok=True)
    note = (f"torch {torch.__version__}, {args.threads} thread(s), float64, "
            f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
            f"min_run_time {min_run_time} s")
    print(f"Benchmark: {note}", flush=True)
    start = time.perf_counter()
    rows = run(args.problems, sizes, args.methods, min_run_time=min_run_time, budget_s=budget,
               memory=not args.no_memory, progress=lambda s: print(s, flush=True))
    csv_path = os.path.join(args.out, "results.csv")
    write_csv(rows, csv_path, note)
    figures = plot(rows, args.out)
    print(f"wrote {csv_path} and {len(figures)} figures in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
