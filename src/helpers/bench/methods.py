r"""The timed methods: every way the course computes a second-order quantity.

Each method is ``prepare(p) -> call``: ``prepare`` does any set-up at the point
(timed once, as ``setup_s``) and returns ``call``, a function of no arguments
that computes the method's result at ``p.x``; ``call`` is what is timed.
:data:`METHODS` maps a name to ``(kind, prepare)``; the kind says what it
computes and its shape, for a problem with ``n`` inputs and ``m`` residuals:

========================  =======================================  ============
kind                      computes                                 shape
========================  =======================================  ============
``gradient``              :math:`\nabla f`                          ``(n,)``
``hvp``                   :math:`\mathbf H\mathbf v`                ``(n,)``
``hvp_amortised``         :math:`\mathbf H\mathbf v` after a set-up ``(n,)``
``gnvp``                  :math:`\mathbf G\mathbf v`,
                          :math:`\mathbf G = 2s\,J^{\top}J`         ``(n,)``
``jacobian``              :math:`J = \partial\mathbf r/\partial\mathbf x` ``(m, n)``
``hessian``               :math:`\mathbf H`                         ``(n, n)``
``hessian_x4``            :math:`\mathbf H` at 4 points             ``(4, n, n)``
``iterative``             20 Lanczos Ritz values, or 20 CG steps    ``(20,)``, ``(n,)``
========================  =======================================  ============

A chunked method (:data:`CHUNK`) pushes ``k`` directions at a time; at
``n <= k`` it is the unchunked method, so :func:`applies` leaves it out there.
:func:`expected_reference` gives what each method must return, from
:func:`helpers.bench.problems.closed_form_large` (no autograd).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from helpers.bench.problems import Fn, Problem, closed_form_large

__all__ = [
    "CG_DAMPING",
    "CG_STEPS",
    "CHUNK",
    "FLOAT32_METHODS",
    "GROWTH",
    "LANCZOS_STEPS",
    "MEMORY_METHODS",
    "METHODS",
    "applies",
    "conjugate_gradient",
    "expected_reference",
    "lanczos",
]

Call = Callable[[], torch.Tensor]
Prepare = Callable[[Problem], Call]

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
    """Gauss-Newton product Gv: jvp then vjp of the residuals."""
    return lambda: _gnvp(p, p.x, p.v)


def jacobian_jacrev(p: Problem) -> Callable[[], torch.Tensor]:
    """Jacobian of the residuals by torch.func.jacrev (one row per residual)."""
    return lambda: torch.func.jacrev(p.r)(p.x)


def jacobian_jacfwd(p: Problem) -> Callable[[], torch.Tensor]:
    """Jacobian of the residuals by torch.func.jacfwd (one column per input)."""
    return lambda: torch.func.jacfwd(p.r)(p.x)


def hessian_row_loop(p: Problem) -> Callable[[], torch.Tensor]:
    """n double-backward passes, a row each, after one create_graph gradient."""

    def call() -> torch.Tensor:
        x = p.x.detach().requires_grad_()
        (g,) = torch.autograd.grad(p.f(x), x, create_graph=True)
        rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(p.n)]
        return torch.stack(rows)

    return call


def hessian_double_loop(p: Problem) -> Callable[[], torch.Tensor]:
    """One grad call per gradient entry and per parameter tensor."""
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


def _chunked(k: int) -> Prepare:
    def prepare(p: Problem) -> Call:
        return lambda: torch.func.jacrev(torch.func.grad(p.f), chunk_size=k)(p.x)

    prepare.__doc__ = f"jacrev(grad(f), chunk_size={k}): {k} rows a pass."
    return prepare


def _vmap_hvp_chunked(k: int) -> Prepare:
    def prepare(p: Problem) -> Call:
        grad_f = torch.func.grad(p.f)

        def call() -> torch.Tensor:
            basis = torch.eye(p.n, dtype=p.x.dtype, device=p.x.device)
            return torch.func.vmap(
                lambda e: torch.func.jvp(grad_f, (p.x,), (e,))[1], chunk_size=k
            )(basis)

        return call

    prepare.__doc__ = f"vmap of fwd-over-rev products, chunk_size={k}."
    return prepare


def hessians_vmap4(p: Problem) -> Callable[[], torch.Tensor]:
    """Hessians at 4 points at once: vmap(torch.func.hessian(f))."""
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
METHODS: dict[str, tuple[str, Prepare]] = {
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
    "hessian_double_loop": ("hessian", hessian_double_loop),
    "hessian_functional": ("hessian", hessian_functional),
    "hessian_functional_vectorize": ("hessian", hessian_functional_vectorize),
    "hessian_func": ("hessian", hessian_func),
    "hessian_jacrev_jacrev": ("hessian", hessian_jacrev_jacrev),
    "hessian_vmap_hvp": ("hessian", hessian_vmap_hvp),
    "hessian_jacrev_chunk16": ("hessian", _chunked(16)),
    "hessian_jacrev_chunk128": ("hessian", _chunked(128)),
    "hessian_vmap_hvp_chunk16": ("hessian", _vmap_hvp_chunked(16)),
    "hessians_vmap4": ("hessian_x4", hessians_vmap4),
    "hessians_loop4": ("hessian_x4", hessians_loop4),
    "lanczos20": ("iterative", lanczos20),
    "cg20": ("iterative", cg20),
}

#: directions per pass of the chunked methods; at n <= k they do not chunk
CHUNK = {
    "hessian_jacrev_chunk16": 16,
    "hessian_jacrev_chunk128": 128,
    "hessian_vmap_hvp_chunk16": 16,
}

#: the methods that hold at most a few rows' intermediates at a time: what
#: remains when a vectorised full Hessian exceeds the memory budget
MEMORY_METHODS = (
    "hessian_row_loop",
    "hessian_jacrev_chunk16",
    "hessian_jacrev_chunk128",
    "hessian_vmap_hvp_chunk16",
)

#: the methods also timed in float32, beside float64
FLOAT32_METHODS = (
    "gradient",
    "hvp_double_backward",
    "hvp_fwd_rev",
    "gnvp",
    "jacobian_jacrev",
    "jacobian_jacfwd",
    "hessian_func",
    "hessian_jacrev_jacrev",
)

#: cost of one call in gradients, as a power of n (to extrapolate the time cap)
GROWTH = {
    "gradient": 0,
    "hvp": 0,
    "hvp_amortised": 0,
    "gnvp": 0,
    "iterative": 0,
    "jacobian": 1,
    "hessian": 1,
    "hessian_x4": 1,
}


def applies(method: str, n: int) -> bool:
    """Whether ``method`` is what its name says at size ``n``.

    A chunked method with chunk ``k >= n`` pushes every direction in one pass:
    it is the unchunked method, so it is not listed (nor run) there.
    """
    return n > CHUNK.get(method, 0)


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
