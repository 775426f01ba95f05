r"""The benchmark's problems, and their derivatives in closed form (no autograd).

Each problem is a scalar function :math:`f` of one vector
:math:`\mathbf x \in \mathbb R^n`, built from a residual
:math:`\mathbf r(\mathbf x) \in \mathbb R^m` as :math:`f = s \sum_i r_i^2`:

``scalar``
    :math:`f(\mathbf x) = \sum_i \tanh\big((W\mathbf x)_i\big)^2`, a fixed dense
    :math:`W \in \mathbb R^{n \times n}` scaled by :math:`1/\sqrt n`
    (:math:`m = n`, :math:`s = 1`).  One gradient costs about :math:`2n^2`
    multiply-adds (:math:`W\mathbf x`, then :math:`W^{\top}\mathbf u`); the
    Hessian :math:`W^{\top}\operatorname{diag}(\phi''(W\mathbf x))W`,
    :math:`\phi = \tanh^2`, is dense.
``mlp``
    the mean squared error of a tanh network :math:`d \to h \to 1` (:math:`d = 8`)
    on :math:`N = 1024` fixed points, a function of its :math:`n = (d + 2)h + 1`
    parameters (:math:`m = N`, :math:`s = 1/N`).  One pass costs about
    :math:`2Nn` multiply-adds: arithmetic, not Python, sets a gradient's time.
``mlp_overhead``
    the same network on :math:`N = 32` points: every pass is microseconds of
    arithmetic, so its times measure fixed per-call overhead (Python, operator
    dispatch, allocation).

:func:`closed_form_reference` hands a whole small problem to SymPy;
:func:`closed_form_large` writes the chain rule as matrix algebra around SymPy's
derivatives of :math:`\tanh` and :math:`\tanh^2`, so it is exact (to rounding)
and fast at every benchmark size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "BATCH",
    "PROBLEMS",
    "Problem",
    "closed_form_large",
    "closed_form_reference",
    "make_problem",
    "mlp_hidden_for",
]

Fn = Callable[[torch.Tensor], torch.Tensor]
PROBLEMS = ("scalar", "mlp", "mlp_overhead")
BATCH = {"mlp": 1024, "mlp_overhead": 32}


@dataclass
class Problem:
    """A scalar function ``f`` of one vector, its residual ``r``, point, direction.

    ``f(x) = gn_scale * sum(r(x) ** 2)`` with ``x`` of shape ``(n,)`` and
    ``r(x)`` of shape ``(m,)``; ``v`` ``(n,)`` is the direction of the
    products; ``xs`` ``(4, n)`` is a batch of 4 points for the batched-Hessian
    methods; ``param_shapes`` splits ``x`` into the network's tensors (one
    ``"x"`` for ``scalar``) and ``data`` holds the constants (``W``, or ``X``
    ``(N, d)`` and ``y`` ``(N,)``).
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

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the point and of every constant."""
        return self.x.dtype

    @property
    def m(self) -> int:
        """Number of residuals: ``n`` for ``scalar``, the batch for the networks."""
        return self.data["X"].shape[0] if "X" in self.data else self.n


def _scalar_problem(n: int, dtype: torch.dtype, device: str) -> Problem:
    g = torch.Generator().manual_seed(n)
    f64 = torch.float64  # drawn in float64, then cast: float32 is the same problem
    W = torch.randn(n, n, generator=g, dtype=f64) / math.sqrt(n)
    x = torch.randn(n, generator=g, dtype=f64)
    v = torch.randn(n, generator=g, dtype=f64)
    xs = x + 0.1 * torch.randn(4, n, generator=g, dtype=f64)
    W, x, v, xs = (t.to(device, dtype) for t in (W, x, v, xs))

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
    f64 = torch.float64  # drawn in float64, then cast: float32 is the same problem
    X = torch.randn(batch, d, generator=g, dtype=f64)
    y = torch.randn(batch, generator=g, dtype=f64)
    shapes = {"0.weight": (h, d), "0.bias": (h,), "2.weight": (1, h), "2.bias": (1,)}
    sizes = [math.prod(s) for s in shapes.values()]
    p = sum(sizes)
    theta = torch.randn(p, generator=g, dtype=f64) / math.sqrt(d)
    v = torch.randn(p, generator=g, dtype=f64)
    xs = theta + 0.1 * torch.randn(4, p, generator=g, dtype=f64)
    X, y, theta, v, xs = (t.to(device, dtype) for t in (X, y, theta, v, xs))

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
