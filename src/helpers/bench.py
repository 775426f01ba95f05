r"""Every way the course computes second-order quantities, timed side by side.

Run it with ``make bench`` (or ``python -m helpers.bench --out _build/bench``);
``--quick`` runs a small version in about a minute, ``--device cuda`` (or ``mps``)
runs on a GPU.  It writes ``results.csv`` and one figure per problem for time
and for memory into the output folder, and prints one progress line per
measurement.  It never writes into the package.

Maintainer step (not for readers): to ship a new run with the course, on a
quiet machine run ``make bench``, then
``cp _build/bench/results.csv src/helpers/bench_results.csv`` and re-execute
chapter 12 (``.venv/bin/python scripts/execute.py
notebooks/12_which_method_when.md``).  Readers point chapter 12 at their own
run with the environment variable ``BENCH_RESULTS`` instead.

Problems (each a scalar function ``f`` of one vector, built from a residual
``r`` as ``f = scale * sum(r**2)``):

``scalar``
    :math:`f(\mathbf x) = \sum_i \tanh\big((W\mathbf x)_i\big)^2`, a fixed dense
    :math:`W \in \mathbb R^{n \times n}` scaled by :math:`1/\sqrt n`.  One
    gradient costs about :math:`n^2` multiply-adds; the Hessian is dense.
``mlp``
    the mean squared error of a tanh network :math:`8 \to h \to 1` on a batch
    of 1024 points, a function of its :math:`n = 10h + 1` parameters.  Big
    enough that arithmetic, not Python, dominates a gradient.
``mlp_overhead``
    the same network on 32 points: every pass is a few microseconds of
    arithmetic, so its times measure fixed per-call overhead (Python,
    dispatch, allocation), not arithmetic.  Kept as the overhead case.

Timing: one warm-up call, then timed runs (each run the mean of enough calls
to last about ``run_s``), with the device synchronised around each run.
At least ``min_runs`` runs and ``min_time`` seconds; more runs while the
interquartile range exceeds 10 % of the median, until ``max_time``.  The CSV
has the median, the quartiles and the number of runs.  A method is not run at
a size where its call, extrapolated from the previous size with its
expected slope, would exceed ``cap_s`` seconds.  Memory: on CPU the peak
resident memory one call adds (Linux, :func:`peak_memory`); on CUDA the
allocator's peak; on MPS the allocator's current memory holding the result.
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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

__all__ = [
    "METHODS",
    "Problem",
    "Row",
    "closed_form_large",
    "closed_form_reference",
    "compare",
    "load_results",
    "make_problem",
    "peak_memory",
    "ratio",
    "run",
]

Fn = Callable[[torch.Tensor], torch.Tensor]
PROBLEMS = ("scalar", "mlp", "mlp_overhead")
BATCH = {"mlp": 1024, "mlp_overhead": 32}


# --------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------


@dataclass
class Problem:
    """A scalar function ``f`` of one vector, its residual ``r``, point, direction.

    ``f(x) = gn_scale * sum(r(x) ** 2)``; ``xs`` is a batch of 4 points for
    the batched-Hessian methods.
    """

    name: str
    n: int
    f: Fn
    r: Fn
    gn_scale: float
    x: torch.Tensor
    v: torch.Tensor
    xs: torch.Tensor
    param_shapes: dict[str, tuple[int, ...]]
    data: dict[str, torch.Tensor]


def _scalar_problem(n: int, dtype: torch.dtype, device: str) -> Problem:
    g = torch.Generator().manual_seed(n)
    W = torch.randn(n, n, generator=g, dtype=dtype) / math.sqrt(n)
    x = torch.randn(n, generator=g, dtype=dtype)
    v = torch.randn(n, generator=g, dtype=dtype)
    xs = x + 0.1 * torch.randn(4, n, generator=g, dtype=dtype)
    W, x, v, xs = (t.to(device) for t in (W, x, v, xs))

    def r(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(W @ x)

    def f(x: torch.Tensor) -> torch.Tensor:
        return r(x).pow(2).sum()

    return Problem("scalar", n, f, r, 1.0, x, v, xs, {"x": (n,)}, {"W": W})


def mlp_hidden_for(n: int, d: int = 8) -> int:
    """Hidden width h of the d → h → 1 network with about ``(d + 2)h + 1`` params."""
    return max(1, round((n - 1) / (d + 2)))


def _mlp_problem(
    name: str, n: int, dtype: torch.dtype, device: str, d: int, batch: int
) -> Problem:
    h = mlp_hidden_for(n, d)
    g = torch.Generator().manual_seed(h)
    X = torch.randn(batch, d, generator=g, dtype=dtype)
    y = torch.randn(batch, generator=g, dtype=dtype)
    shapes = {"0.weight": (h, d), "0.bias": (h,), "2.weight": (1, h), "2.bias": (1,)}
    sizes = [math.prod(s) for s in shapes.values()]
    p = sum(sizes)
    theta = torch.randn(p, generator=g, dtype=dtype) / math.sqrt(d)
    v = torch.randn(p, generator=g, dtype=dtype)
    xs = theta + 0.1 * torch.randn(4, p, generator=g, dtype=dtype)
    X, y, theta, v, xs = (t.to(device) for t in (X, y, theta, v, xs))

    def r(theta: torch.Tensor) -> torch.Tensor:
        W1, b1, W2, b2 = (
            t.reshape(s)
            for t, s in zip(torch.split(theta, sizes), shapes.values(), strict=True)
        )
        return (torch.tanh(X @ W1.T + b1) @ W2.T + b2).squeeze(-1) - y

    def f(theta: torch.Tensor) -> torch.Tensor:
        return r(theta).pow(2).mean()

    data = {"X": X, "y": y}
    return Problem(name, p, f, r, 1.0 / batch, theta, v, xs, shapes, data)


def make_problem(
    name: str,
    n: int,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    **sizes: int,
) -> Problem:
    """The ``scalar``, ``mlp`` or ``mlp_overhead`` problem with (about) ``n`` inputs.

    For the networks, ``d`` (inputs, default 8) and ``batch`` (points, default
    1024 for ``mlp``, 32 for ``mlp_overhead``) may be given.
    """
    if name == "scalar":
        return _scalar_problem(n, dtype, device)
    if name in BATCH:
        d = sizes.get("d", 8)
        batch = sizes.get("batch", BATCH[name])
        return _mlp_problem(name, n, dtype, device, d, batch)
    raise ValueError(f"unknown problem {name!r}; expected one of {list(PROBLEMS)}")


def closed_form_reference(p: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``(n,)`` and Hessian ``(n, n)`` at ``p.x`` from SymPy, whole (small n).

    The whole function is handed to SymPy (:mod:`helpers.closed_form`); this
    takes seconds beyond a few dozen inputs.  :func:`closed_form_large` scales.
    """
    import sympy

    from helpers import closed_form

    if p.name == "scalar":
        xs = sympy.symbols(f"x0:{p.n}", real=True)
        z = sympy.Matrix(p.data["W"].tolist()) * sympy.Matrix(xs)
        f = sum(sympy.tanh(zi) ** 2 for zi in z)
        x = p.x.cpu()
        return closed_form.gradient(f, xs)(*x), closed_form.hessian(f, xs)(*x)

    def loss(**kw: sympy.Matrix) -> sympy.Expr:
        X, y = kw["X"], kw["y"]
        ones = sympy.ones(X.shape[0], 1)
        hidden = (X * kw["0.weight"].T + ones * kw["0.bias"].T).applyfunc(sympy.tanh)
        residual = hidden * kw["2.weight"].T + ones * kw["2.bias"][0] - y
        return (residual.T * residual)[0, 0] / X.shape[0]

    sizes = [math.prod(s) for s in p.param_shapes.values()]
    parts = torch.split(p.x.cpu(), sizes)
    params = {
        k: t.reshape(s) for (k, s), t in zip(p.param_shapes.items(), parts, strict=True)
    }
    data = {k: t.cpu() for k, t in p.data.items()}
    form = closed_form.param_derive(loss, params, **data)
    grad = torch.cat([t.reshape(-1) for t in form.gradient(params, **data).values()])
    return grad, form.flat_hessian(params, **data)


def _tanh_derivatives() -> tuple[Callable, Callable, Callable, Callable]:
    """SymPy's tanh', tanh'', (tanh²)', (tanh²)'' as torch functions of z."""
    import sympy

    z = sympy.Symbol("z", real=True)
    exprs = [
        sympy.diff(sympy.tanh(z), z),
        sympy.diff(sympy.tanh(z), z, 2),
        sympy.diff(sympy.tanh(z) ** 2, z),
        sympy.diff(sympy.tanh(z) ** 2, z, 2),
    ]
    return tuple(sympy.lambdify(z, e, modules=[{"tanh": torch.tanh}]) for e in exprs)


def closed_form_large(x: torch.Tensor, p: Problem) -> dict[str, torch.Tensor]:
    r"""Gradient, Hessian, residual Jacobian and Gauss-Newton matrix at ``x``.

    No autograd: the derivatives of tanh and tanh² come from SymPy, and the
    chain rule through the linear maps is written out as matrix algebra, so
    this is fast at any benchmark size.  For ``scalar``,
    :math:`\mathbf H = W^{\top} \operatorname{diag}\big(\phi''(W\mathbf x)\big) W`
    with :math:`\phi = \tanh^2`.  For the networks, with :math:`r_i` the
    residuals and :math:`J` their Jacobian,
    :math:`\mathbf H = \tfrac{2}{N}\big(J^{\top}J + \sum_i r_i \nabla^2 r_i\big)`.
    Agrees with :func:`closed_form_reference` (tests).
    """
    x = x.detach().cpu().to(torch.float64)
    t1, t2, s1, s2 = _tanh_derivatives()
    if p.name == "scalar":
        W = p.data["W"].cpu().to(torch.float64)
        z = W @ x
        J = t1(z)[:, None] * W
        out = {"gradient": W.T @ s1(z), "hessian": W.T @ (s2(z)[:, None] * W)}
        out["jacobian"] = J
        out["gauss_newton"] = 2.0 * J.T @ J
        return out
    X = p.data["X"].cpu().to(torch.float64)
    y = p.data["y"].cpu().to(torch.float64)
    N, d = X.shape
    h = p.param_shapes["0.bias"][0]
    W1 = x[: h * d].reshape(h, d)
    b1 = x[h * d : h * d + h]
    W2 = x[h * d + h : h * d + 2 * h]
    b2 = x[-1]
    a = X @ W1.T + b1  # (N, h)
    res = torch.tanh(a) @ W2 + b2 - y  # (N,)
    u = torch.cat([X, torch.ones(N, 1, dtype=X.dtype)], dim=1)  # (N, d+1)
    # Jacobian of the residuals: d r_i / d(W1[j, k], b1[j]) = W2_j tanh'(a_ij) u_ik
    dA = (W2 * t1(a))[:, :, None] * u[:, None, :]  # (N, h, d+1)
    J = torch.cat(
        [
            dA[:, :, :d].reshape(N, h * d),
            dA[:, :, d],
            torch.tanh(a),
            torch.ones(N, 1, dtype=X.dtype),
        ],
        dim=1,
    )
    n = J.shape[1]
    # sum_i r_i (second derivatives of r_i): blocks (A, A) and (A, W2) only
    AA = torch.einsum("i,ij,ik,il->jkl", res, W2 * t2(a), u, u)  # (h, d+1, d+1)
    AW = torch.einsum("i,ij,ik->jk", res, t1(a), u)  # (h, d+1)
    # index of each (j, k) entry of A = [W1 | b1] in the flat parameter vector
    idx = torch.empty(h, d + 1, dtype=torch.long)
    idx[:, :d] = torch.arange(h * d).reshape(h, d)
    idx[:, d] = h * d + torch.arange(h)
    w2 = h * d + h + torch.arange(h)
    S = torch.zeros(n, n, dtype=X.dtype)
    rows = idx[:, :, None].expand(h, d + 1, d + 1)
    cols = idx[:, None, :].expand(h, d + 1, d + 1)
    S[rows.reshape(-1), cols.reshape(-1)] = AA.reshape(-1)
    S[idx.reshape(-1), w2[:, None].expand(h, d + 1).reshape(-1)] = AW.reshape(-1)
    S[w2[:, None].expand(h, d + 1).reshape(-1), idx.reshape(-1)] = AW.reshape(-1)
    G = (2.0 / N) * J.T @ J
    return {
        "gradient": (2.0 / N) * J.T @ res,
        "hessian": G + (2.0 / N) * S,
        "jacobian": J,
        "gauss_newton": G,
    }


# --------------------------------------------------------------------------
# methods: each is prepare(p) -> call(); prepare's time is set-up, not timed
# --------------------------------------------------------------------------

LANCZOS_STEPS = 20
CG_STEPS = 20
CG_DAMPING = 1.0


def lanczos(matvec: Fn, v0: torch.Tensor, steps: int) -> torch.Tensor:
    """Ritz values (ascending) after ``steps`` Lanczos steps, fully reorthogonalised."""
    Q = [v0 / v0.norm()]
    alphas, betas = [], []
    for k in range(steps):
        w = matvec(Q[k])
        alphas.append(torch.dot(w, Q[k]))
        basis = torch.stack(Q)
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)
        if k + 1 < steps:
            betas.append(w.norm())
            Q.append(w / betas[-1])
    T = torch.diag(torch.stack(alphas))
    if betas:
        off = torch.stack(betas)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(T)


def conjugate_gradient(matvec: Fn, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` iterations of conjugate gradients on ``A s = b`` from ``s = 0``."""
    s = torch.zeros_like(b)
    res = b.clone()
    d = res.clone()
    rr = torch.dot(res, res)
    for _ in range(steps):
        Ad = matvec(d)
        alpha = rr / torch.dot(d, Ad)
        s = s + alpha * d
        res = res - alpha * Ad
        rr_new = torch.dot(res, res)
        d = res + (rr_new / rr) * d
        rr = rr_new
    return s


def _gnvp(p: Problem, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Gauss-Newton product 2·scale·Jᵀ(J v): a jvp of r, then a vjp of r."""
    out, vjp_fn = torch.func.vjp(p.r, x)
    _, Jv = torch.func.jvp(p.r, (x,), (v,))
    return 2.0 * p.gn_scale * vjp_fn(Jv)[0]


def _reuse_graph(p: Problem) -> Fn:
    x = p.x.detach().requires_grad_()
    (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]

    return hvp


def gradient(p: Problem) -> Callable[[], torch.Tensor]:
    """One gradient, for scale."""

    def call() -> torch.Tensor:
        x = p.x.detach().requires_grad_()
        return torch.autograd.grad(p.f(x), x)[0]

    return call


def hvp_functional(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.autograd.functional.hvp."""
    return lambda: torch.autograd.functional.hvp(p.f, p.x, p.v)[1]


def hvp_double_backward(p: Problem) -> Callable[[], torch.Tensor]:
    """Gradient with create_graph=True, then autograd.grad with grad_outputs=v."""

    def call() -> torch.Tensor:
        x = p.x.detach().requires_grad_()
        (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)
        return torch.autograd.grad(g, x, grad_outputs=p.v)[0]

    return call


def hvp_fwd_rev(p: Problem) -> Callable[[], torch.Tensor]:
    """Forward over reverse: torch.func.jvp(torch.func.grad(f))."""
    return lambda: torch.func.jvp(torch.func.grad(p.f), (p.x,), (p.v,))[1]


def hvp_linearize(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.func.linearize(grad(f), x) once (set-up); each call is one product."""
    with warnings.catch_warnings():  # torch.fx's const_fold warns about its own graph
        warnings.simplefilter("ignore", UserWarning)
        _, jvp_fn = torch.func.linearize(torch.func.grad(p.f), p.x)
    return lambda: jvp_fn(p.v)


def hvp_reuse_graph(p: Problem) -> Callable[[], torch.Tensor]:
    """One create_graph gradient (set-up); each call is one more backward pass."""
    hvp = _reuse_graph(p)
    return lambda: hvp(p.v)


def gnvp(p: Problem) -> Callable[[], torch.Tensor]:
    """Gauss-Newton product Gv: jvp then vjp of the residuals (chapter 8)."""
    return lambda: _gnvp(p, p.x, p.v)


def jacobian_jacrev(p: Problem) -> Callable[[], torch.Tensor]:
    """Jacobian of the residuals by torch.func.jacrev (one row per residual)."""
    return lambda: torch.func.jacrev(p.r)(p.x)


def jacobian_jacfwd(p: Problem) -> Callable[[], torch.Tensor]:
    """Jacobian of the residuals by torch.func.jacfwd (one column per input)."""
    return lambda: torch.func.jacfwd(p.r)(p.x)


def hessian_row_loop(p: Problem) -> Callable[[], torch.Tensor]:
    """n double-backward passes, one row each (seed 002, bugs fixed)."""

    def call() -> torch.Tensor:
        x = p.x.detach().requires_grad_()
        (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)
        rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(p.n)]
        return torch.stack(rows)

    return call


def hessian_seed_double_loop(p: Problem) -> Callable[[], torch.Tensor]:
    """Seed 001's my_hessian: one grad call per entry and per parameter tensor."""
    sizes = [math.prod(s) for s in p.param_shapes.values()]

    def call() -> torch.Tensor:
        pieces = [t.detach().clone().requires_grad_() for t in torch.split(p.x, sizes)]
        value = p.f(torch.cat(pieces))
        grads = torch.autograd.grad(value, pieces, create_graph=True)
        rows = []
        for g in grads:
            for entry in g.flatten():
                parts = [
                    torch.autograd.grad(entry, piece, retain_graph=True)[0].flatten()
                    for piece in pieces
                ]
                rows.append(torch.cat(parts))
        return torch.stack(rows)

    return call


def hessian_functional(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.autograd.functional.hessian."""
    return lambda: torch.autograd.functional.hessian(p.f, p.x)


def hessian_functional_vectorize(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.autograd.functional.hessian(vectorize=True)."""
    return lambda: torch.autograd.functional.hessian(p.f, p.x, vectorize=True)


def hessian_func(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.func.hessian, i.e. jacfwd(jacrev(f))."""
    return lambda: torch.func.hessian(p.f)(p.x)


def hessian_jacrev_jacrev(p: Problem) -> Callable[[], torch.Tensor]:
    """torch.func.jacrev(torch.func.jacrev(f))."""
    return lambda: torch.func.jacrev(torch.func.jacrev(p.f))(p.x)


def hessian_vmap_hvp(p: Problem) -> Callable[[], torch.Tensor]:
    """vmap of forward-over-reverse products over the n unit vectors."""
    grad_f = torch.func.grad(p.f)

    def call() -> torch.Tensor:
        basis = torch.eye(p.n, dtype=p.x.dtype, device=p.x.device)
        return torch.func.vmap(lambda e: torch.func.jvp(grad_f, (p.x,), (e,))[1])(basis)

    return call


def _chunked(k: int) -> Callable[[Problem], Callable[[], torch.Tensor]]:
    def prepare(p: Problem) -> Callable[[], torch.Tensor]:
        return lambda: torch.func.jacrev(torch.func.grad(p.f), chunk_size=k)(p.x)

    prepare.__doc__ = f"torch.func.jacrev(grad(f), chunk_size={k})."
    return prepare


def hessians_vmap4(p: Problem) -> Callable[[], torch.Tensor]:
    """Hessians at 4 points at once: vmap(torch.func.hessian(f)) (chapter 5)."""
    return lambda: torch.func.vmap(torch.func.hessian(p.f))(p.xs)


def hessians_loop4(p: Problem) -> Callable[[], torch.Tensor]:
    """Hessians at 4 points, a Python loop over torch.func.hessian."""
    return lambda: torch.stack([torch.func.hessian(p.f)(x) for x in p.xs])


def lanczos20(p: Problem) -> Callable[[], torch.Tensor]:
    """20 Lanczos steps (n if fewer), products reusing one create_graph gradient."""

    def call() -> torch.Tensor:
        return lanczos(_reuse_graph(p), p.v, min(LANCZOS_STEPS, p.n))

    return call


def cg20(p: Problem) -> Callable[[], torch.Tensor]:
    """20 CG steps on (G + I) s = gradient, Gauss-Newton products."""

    def call() -> torch.Tensor:
        x = p.x.detach().requires_grad_()
        b = torch.autograd.grad(p.f(x), x)[0]
        return conjugate_gradient(
            lambda d: _gnvp(p, p.x, d) + CG_DAMPING * d, b, CG_STEPS
        )

    return call


# name: (kind, prepare); prepare(p) does any set-up and returns the timed call
METHODS: dict[str, tuple[str, Callable[[Problem], Callable[[], torch.Tensor]]]] = {
    "gradient": ("gradient", gradient),
    "hvp_functional": ("hvp", hvp_functional),
    "hvp_double_backward": ("hvp", hvp_double_backward),
    "hvp_fwd_rev": ("hvp", hvp_fwd_rev),
    "hvp_linearize": ("hvp_amortised", hvp_linearize),
    "hvp_reuse_graph": ("hvp_amortised", hvp_reuse_graph),
    "gnvp": ("gnvp", gnvp),
    "jacobian_jacrev": ("jacobian", jacobian_jacrev),
    "jacobian_jacfwd": ("jacobian", jacobian_jacfwd),
    "hessian_row_loop": ("hessian", hessian_row_loop),
    "hessian_seed_double_loop": ("hessian", hessian_seed_double_loop),
    "hessian_functional": ("hessian", hessian_functional),
    "hessian_functional_vectorize": ("hessian", hessian_functional_vectorize),
    "hessian_func": ("hessian", hessian_func),
    "hessian_jacrev_jacrev": ("hessian", hessian_jacrev_jacrev),
    "hessian_vmap_hvp": ("hessian", hessian_vmap_hvp),
    "hessian_jacrev_chunk16": ("hessian", _chunked(16)),
    "hessian_jacrev_chunk128": ("hessian", _chunked(128)),
    "hessians_vmap4": ("hessian_x4", hessians_vmap4),
    "hessians_loop4": ("hessian_x4", hessians_loop4),
    "lanczos20": ("iterative", lanczos20),
    "cg20": ("iterative", cg20),
}

# cost of one call in gradients, as a power of n (for extrapolating the cap)
_GROWTH = {
    "gradient": 0,
    "hvp": 0,
    "hvp_amortised": 0,
    "gnvp": 0,
    "iterative": 0,
    "jacobian": 1,
    "hessian": 1,
    "hessian_x4": 1,
}


def expected_reference(
    p: Problem, method: str, ref: dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """What ``method`` should return on ``p``, from :func:`closed_form_large`.

    ``ref``, if given, is ``closed_form_large(p.x, p)`` already computed.
    """
    kind = METHODS[method][0]
    ref = ref or closed_form_large(p.x, p)
    H = ref["hessian"]
    v = p.v.cpu().to(torch.float64)
    if method == "gnvp":
        return ref["gauss_newton"] @ v
    if method == "lanczos20":
        return lanczos(lambda u: H @ u, v, min(LANCZOS_STEPS, p.n))
    if method == "cg20":
        A = ref["gauss_newton"] + CG_DAMPING * torch.eye(p.n, dtype=H.dtype)
        return conjugate_gradient(lambda u: A @ u, ref["gradient"], CG_STEPS)
    if kind == "hessian_x4":
        return torch.stack([closed_form_large(x, p)["hessian"] for x in p.xs])
    return {
        "gradient": ref["gradient"],
        "hvp": H @ v,
        "hvp_amortised": H @ v,
        "jacobian": ref["jacobian"],
        "hessian": H,
    }[kind]


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
    """Peak resident memory (bytes) one ``call()`` adds; NaN without Linux's /proc.

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


def device_memory(call: Callable[[], object], device: str) -> float:
    """Memory one call adds on ``device``: RSS peak (CPU), allocator stats (GPU)."""
    if device == "cpu":
        return peak_memory(call)
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
        return float(peak - start)
    if device == "mps":
        torch.mps.synchronize()
        torch.mps.empty_cache()
        start = torch.mps.current_allocated_memory()
        result = call()
        torch.mps.synchronize()
        held = torch.mps.current_allocated_memory()
        del result
        return float(held - start)  # no peak statistic on MPS: a lower bound
    return math.nan


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on CPU)."""
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


@dataclass
class Row:
    problem: str
    method: str
    kind: str
    n: int
    batch: int
    median_s: float
    q1_s: float
    q3_s: float
    runs: int
    calls_per_run: int
    setup_s: float
    peak_bytes: float

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s


@dataclass
class Budget:
    """How long to time each measurement (seconds) and when to stop growing n."""

    min_runs: int = 5
    max_runs: int = 200
    min_time: float = 0.3
    max_time: float = 2.5
    run_s: float = 0.005
    target_iqr: float = 0.10
    cap_s: float = 1.5


QUICK = Budget(min_time=0.02, max_time=0.1, run_s=0.001, cap_s=0.3)


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    t = torch.tensor(xs, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return float(q[0]), float(q[1]), float(q[2])


def time_call(
    call: Callable[[], object], sync: Callable[[], None], budget: Budget
) -> tuple[list[float], int]:
    """Per-call times of repeated runs (after one warm-up) and calls per run."""
    call()
    sync()
    t0 = time.perf_counter()
    call()
    sync()
    once = time.perf_counter() - t0
    number = max(1, int(budget.run_s / max(once, 1e-7)))
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget.max_runs:
        sync()
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        sync()
        times.append((time.perf_counter() - t0) / number)
        spent = time.perf_counter() - start
        if len(times) < budget.min_runs or spent < budget.min_time:
            continue
        q1, med, q3 = _quartiles(times)
        if q3 - q1 <= budget.target_iqr * med or spent >= budget.max_time:
            break
    return times, number


def measure(
    p: Problem, method: str, budget: Budget, memory: bool, device: str = "cpu"
) -> Row:
    """Time one method on one problem: set-up once, warm-up, then timed runs."""
    kind, prepare = METHODS[method]
    sync = synchronizer(device)
    sync()
    t0 = time.perf_counter()
    call = prepare(p)
    sync()
    setup = time.perf_counter() - t0
    times, number = time_call(call, sync, budget)
    q1, med, q3 = _quartiles(times)
    peak = device_memory(call, device) if memory else math.nan
    batch = p.data["X"].shape[0] if "X" in p.data else 0
    return Row(
        p.name, method, kind, p.n, batch, med, q1, q3, len(times), number, setup, peak
    )


# where a method stops: full Hessians of the 1024-point network hold n copies
# of every (1024 × h) intermediate, several GB beyond n ≈ 300
MAX_N = {("mlp", "hessian"): 400, ("mlp", "hessian_x4"): 400}


def run(
    problems: list[str],
    sizes: dict[str, list[int]],
    methods: list[str],
    *,
    budget: Budget,
    memory: bool,
    device: str = "cpu",
    progress: Callable[[str], None] = print,
) -> list[Row]:
    """Measure every method on every problem and size, within the budget's cap."""
    rows: list[Row] = []
    total = sum(len(sizes[pr]) for pr in problems) * len(methods)
    done = 0
    start = time.perf_counter()
    for problem in problems:
        last: dict[str, tuple[int, float]] = {}
        for n in sizes[problem]:
            p = make_problem(problem, n, device=device)
            for method in methods:
                done += 1
                kind = METHODS[method][0]
                head = f"[{done:3d}/{total}] {problem:12s} n={p.n:5d} {method:28s}"
                stop = None
                if p.n > MAX_N.get((problem, kind), math.inf):
                    stop = f"skipped (n > {MAX_N[(problem, kind)]}, memory)"
                elif method in last:
                    n0, t0 = last[method]
                    growth = _GROWTH[kind] + (2 if problem == "scalar" else 1)
                    guess = t0 * (p.n / n0) ** growth
                    if guess > budget.cap_s:
                        stop = f"skipped (~{guess:.1f} s a call, cap {budget.cap_s} s)"
                if stop:
                    progress(f"{head} {stop}")
                    continue
                t = time.perf_counter()
                row = measure(p, method, budget, memory, device)
                rows.append(row)
                last[method] = (p.n, row.median_s)
                progress(
                    f"{head} median {row.median_s * 1e3:10.3f} ms, IQR "
                    f"{100 * row.iqr_s / row.median_s:4.1f} %, {row.runs:3d} runs "
                    f"({time.perf_counter() - t:4.1f} s; "
                    f"{time.perf_counter() - start:5.0f} s total)"
                )
            del p
            gc.collect()
    return rows


COLUMNS = [f.name for f in fields(Row)]


def write_csv(rows: list[Row], path: str, notes: list[str]) -> None:
    with open(path, "w", newline="") as fh:
        for note in notes:
            fh.write(f"# {note}\n")
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    f"{v:.6e}" if isinstance(v, float) else v
                    for v in (getattr(r, c) for c in COLUMNS)
                ]
            )


def default_results_path() -> str:
    """``$BENCH_RESULTS`` if set, else the results shipped with the package."""
    if os.environ.get("BENCH_RESULTS"):
        return os.environ["BENCH_RESULTS"]
    from importlib.resources import files

    return str(files("helpers").joinpath("bench_results.csv"))


def load_results(path: str | None = None) -> tuple[list[str], list[Row]]:
    """Header notes and rows of a results CSV (default :func:`default_results_path`)."""
    with open(path or default_results_path()) as fh:
        lines = fh.read().splitlines()
    notes = [ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    types = {f.name: f.type for f in fields(Row)}
    cast = {"str": str, "int": int, "float": float}
    rows = [
        Row(**{k: cast[types[k]](v) for k, v in r.items()})
        for r in csv.DictReader(body)
    ]
    return notes, rows


def ratio(a: Row, b: Row) -> tuple[float, float, float]:
    """Time of ``a`` over time of ``b``: the ratio of medians, and a range.

    The range divides the quartiles crosswise, ``(a.q1 / b.q3, a.q3 / b.q1)``:
    the ratio of two calls, each inside its middle half of runs.
    """
    return a.median_s / b.median_s, a.q1_s / b.q3_s, a.q3_s / b.q1_s


def compare(a: Row, b: Row) -> str:
    """``"faster"``, ``"slower"`` or ``"tied"``: ``a`` against ``b``.

    A method is faster only when its interquartile interval lies wholly
    below the other's; overlapping intervals are a tie.
    """
    if a.q3_s < b.q1_s:
        return "faster"
    if b.q3_s < a.q1_s:
        return "slower"
    return "tied"


_MARKERS = "osD^v<>pPXh*"


def styles(methods: list[str] | None = None) -> dict[str, dict[str, object]]:
    """A distinct colour and filled marker for each of ``methods``.

    Up to 12 methods get 12 colours and 12 markers; beyond that colours repeat
    with a different marker, so every (colour, marker) pair stays distinct.

    Products are drawn dashed, everything else solid.  By default, styles
    for every method, cycling through the colours.
    """
    import matplotlib

    methods = list(METHODS) if methods is None else methods
    colours = list(matplotlib.colormaps["tab10"].colors) + ["black", "gold"]
    out = {}
    for i, method in enumerate(methods):
        kind = METHODS[method][0]
        out[method] = {
            "color": colours[i % len(colours)],
            "marker": _MARKERS[(i + 5 * (i // len(_MARKERS))) % len(_MARKERS)],
            "ls": "--" if kind.startswith("hvp") or kind == "gnvp" else "-",
        }
    return out


def plot(rows: list[Row], out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for field, label, fname in (
        ("median_s", "median time per call (s)", "time"),
        ("peak_bytes", "memory one call adds (bytes)", "memory"),
    ):
        for problem in [pr for pr in PROBLEMS if any(r.problem == pr for r in rows)]:
            fig, ax = plt.subplots(figsize=(8, 5))
            drawn = False
            here = [m for m in METHODS if any(r.method == m for r in rows)]
            style = styles(here)
            for method in here:
                pts = sorted(
                    (r.n, getattr(r, field))
                    for r in rows
                    if r.problem == problem
                    and r.method == method
                    and math.isfinite(getattr(r, field))
                    and getattr(r, field) > 0
                )
                if pts:
                    ax.plot(
                        *zip(*pts, strict=True), ms=5, label=method, **style[method]
                    )
                    drawn = True
            if not drawn:
                plt.close(fig)
                continue
            ax.set(xscale="log", yscale="log", xlabel="n", ylabel=label)
            ax.set_title(f"{problem}: {fname} against n")
            ax.legend(fontsize=9, ncol=2, loc="upper left", bbox_to_anchor=(1, 1))
            fig.tight_layout()
            path = os.path.join(out_dir, f"{fname}_{problem}.png")
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
    return written


DEFAULT_SIZES = {
    "scalar": [10, 30, 100, 300, 1000, 2000],
    "mlp": [11, 31, 101, 301, 1001, 3001],
    "mlp_overhead": [11, 101, 1001],
}
QUICK_SIZES = {"scalar": [10, 30, 100], "mlp": [11, 31, 101], "mlp_overhead": [11, 31]}


def header_notes(device: str, threads: int, budget: Budget, extra: str) -> list[str]:
    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    build = f"torch {torch.__version__}"
    if torch.version.cuda:
        build += f", CUDA {torch.version.cuda}"
    notes = [
        f"device {name}; {build}; {threads} thread(s); float64; "
        f"{platform.machine()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}",
        f"budget: >= {budget.min_runs} runs of about {budget.run_s * 1e3:g} ms and "
        f"{budget.min_time} s per measurement, "
        f"more while IQR > {budget.target_iqr:.0%} of the median, up to "
        f"{budget.max_time} s; cap {budget.cap_s} s a call",
    ]
    if extra:
        notes.append(extra)
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="_build/bench", help="output folder")
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or mps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sizes", type=int, nargs="*", help="n values, every problem")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--no-memory", action="store_true", help="skip memory")
    parser.add_argument("--note", default="", help="a line for the CSV header")
    args = parser.parse_args(argv)

    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    bad = set(args.problems) - set(PROBLEMS)
    if bad:
        parser.error(f"unknown problems {sorted(bad)}; choose from {list(PROBLEMS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build sees no CUDA device")
    if args.device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: no MPS device is available")
    torch.set_num_threads(args.threads)
    budget = QUICK if args.quick else Budget()
    table = QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = {pr: args.sizes or table[pr] for pr in args.problems}
    os.makedirs(args.out, exist_ok=True)
    notes = header_notes(args.device, args.threads, budget, args.note)
    print("Benchmark: " + " | ".join(notes), flush=True)
    start = time.perf_counter()
    rows = run(
        args.problems,
        sizes,
        args.methods,
        budget=budget,
        memory=not args.no_memory,
        device=args.device,
        progress=lambda s: print(s, flush=True),
    )
    notes.append(f"wall time {time.perf_counter() - start:.0f} s")
    csv_path = os.path.join(args.out, "results.csv")
    write_csv(rows, csv_path, notes)
    figures = plot(rows, args.out)
    print(
        f"wrote {csv_path} and {len(figures)} figures in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
