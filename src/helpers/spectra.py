r"""Lanczos, Hutch++ and stochastic Lanczos quadrature on a matrix-free operator.

Chapter 10 writes these methods by hand; chapter 14 runs them on data-set
operators (:mod:`helpers.curvature`) again and again, so they live here.  Every
function takes ``matmul``, a function from a ``(p, b)`` block of vectors to the
``(p, b)`` block of products (``op.__matmul__`` of a
:class:`helpers.curvature.CurvatureOperator`, or ``lambda V: A @ V``), so that
``b`` independent runs share each pass over the data.

* :func:`lanczos`: ``m`` steps of Lanczos with full reorthogonalisation, from
  each column of ``V0`` at once; returns the tridiagonal matrices and bases;
* :func:`ritz`: Ritz values (ascending), Ritz vectors and the free residual
  estimates :math:`\beta_m |s_{m,i}|` of one run;
* :func:`hutchpp`: the Hutch++ trace estimate and the standard error of its
  Hutchinson part;
* :func:`slq_density`: the SLQ density, every Gauss node widened into a
  Gaussian of standard deviation ``width``, averaged over the runs;
* :func:`dense_hessian`: the ``(p, p)`` Hessian of a mean per-sample loss, by
  ``torch.func`` (forward-over-reverse products, ``chunk`` basis vectors per
  vectorised pass), an independent route from :mod:`helpers.curvature`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

__all__ = [
    "LanczosRuns",
    "dense_hessian",
    "hutchpp",
    "lanczos",
    "rademacher",
    "ritz",
    "slq_density",
]

Matmul = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class LanczosRuns:
    """``b`` Lanczos runs of ``m`` steps: ``T`` ``(b, m, m)``, ``basis`` ``(b, m, p)``,
    ``beta`` ``(b,)`` the norm of each run's last residual."""

    T: torch.Tensor
    basis: torch.Tensor
    beta: torch.Tensor


def rademacher(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Entries +1 or -1 with probability 1/2 each, float64."""
    return torch.randint(0, 2, shape, generator=generator).double() * 2 - 1


def _block(matmul: Matmul, V: torch.Tensor) -> torch.Tensor:
    out = matmul(V)
    if not isinstance(out, torch.Tensor) or out.shape != V.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"matmul must map a (p, b) block to a (p, b) block; got {got} for "
            f"{tuple(V.shape)}."
        )
    return out


def lanczos(matmul: Matmul, V0: torch.Tensor, m: int) -> LanczosRuns:
    """``m`` Lanczos steps from each column of ``V0`` (``(p,)`` or ``(p, b)``).

    Full reorthogonalisation (classical Gram-Schmidt, twice) against every earlier
    basis vector of the same run; one block product per step.
    """
    if V0.dim() == 1:
        V0 = V0[:, None]
    if V0.dim() != 2:
        raise ValueError(f"V0 must have shape (p,) or (p, b); got {tuple(V0.shape)}.")
    p, b = V0.shape
    if not isinstance(m, int) or not 1 <= m <= p:
        raise ValueError(f"m must be an integer in [1, p = {p}]; got {m!r}.")
    Q = torch.zeros(b, m, p, dtype=V0.dtype)
    alpha = torch.zeros(b, m, dtype=V0.dtype)
    beta = torch.zeros(b, m, dtype=V0.dtype)
    q = (V0 / V0.norm(dim=0)).T  # (b, p)
    for j in range(m):
        Q[:, j] = q
        w = _block(matmul, q.T.contiguous()).T  # (b, p)
        alpha[:, j] = (q * w).sum(1)
        for _ in range(2):  # against every basis vector so far, twice
            w = w - torch.einsum(
                "bj,bjp->bp",
                torch.einsum("bjp,bp->bj", Q[:, : j + 1], w),
                Q[:, : j + 1],
            )
        beta[:, j] = w.norm(dim=1)
        q = w / beta[:, j : j + 1]
    off = beta[:, :-1]
    T = torch.diag_embed(alpha) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    return LanczosRuns(T, Q, beta[:, -1])


def ritz(runs: LanczosRuns, run: int = 0) -> tuple[torch.Tensor, ...]:
    """Ritz values (ascending), Ritz vectors ``(m, p)`` and residual estimates.

    The estimate :math:`\\beta_m |s_{m,i}|` equals :math:`\\lVert A y_i - \\theta_i
    y_i\\rVert` in exact arithmetic (and with full reorthogonalisation, closely in
    floating point); compute the residual explicitly where it matters.
    """
    theta, S = torch.linalg.eigh(runs.T[run])
    vectors = S.T @ runs.basis[run]
    return theta, vectors, runs.beta[run] * S[-1].abs()


def slq_density(runs: LanczosRuns, grid: torch.Tensor, width: float) -> torch.Tensor:
    """The SLQ density on ``grid``: Gauss nodes widened by Gaussians, mean over runs."""
    if width <= 0:
        raise ValueError(f"width must be positive; got {width}.")
    theta, S = torch.linalg.eigh(runs.T)  # (b, m), (b, m, m)
    weights = S[:, 0, :] ** 2  # squared first components: the Gauss weights
    z = (grid[None, None, :] - theta[..., None]) / width
    bumps = torch.exp(-0.5 * z**2) / (width * (2 * torch.pi) ** 0.5)
    return (weights[..., None] * bumps).sum(1).mean(0)


def hutchpp(
    matmul: Matmul, p: int, m: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hutch++ with ``m`` products (``m // 3`` each for sketch, subspace, remainder).

    Returns the estimate of the trace and the standard error of its Hutchinson
    part (the subspace part has no randomness left given the sketch).
    """
    k = m // 3
    if k < 2:
        raise ValueError(f"Hutch++ needs m >= 6 products; got m = {m}.")
    S, G = rademacher((p, k), generator), rademacher((p, k), generator)
    Q = torch.linalg.qr(_block(matmul, S)).Q
    G_perp = G - Q @ (Q.T @ G)
    remainder = (G_perp * _block(matmul, G_perp)).sum(0)  # (k,) quadratic forms
    head = torch.trace(Q.T @ _block(matmul, Q))
    return head + remainder.mean(), remainder.std() / k**0.5


def dense_hessian(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    chunk: int = 256,
) -> torch.Tensor:
    """The Hessian of ``loss_fn(model(inputs), targets).mean()`` in the flat parameters.

    ``loss_fn`` returns per-sample losses ``(B,)``; the parameters are flattened in
    ``model.named_parameters()`` order (as :mod:`helpers.curvature` does).  Each
    pass computes ``chunk`` columns at once, ``vmap`` of ``jvp`` of ``grad``.
    """
    from torch.func import functional_call, grad, jvp, vmap

    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk}.")
    named = [(n, t) for n, t in model.named_parameters() if t.requires_grad]
    names = [n for n, _ in named]
    shapes = [t.shape for _, t in named]
    sizes = [t.numel() for _, t in named]
    theta = torch.cat([t.detach().reshape(-1) for _, t in named])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        pieces = flat.split(sizes)
        params = {
            n: q.reshape(s) for n, q, s in zip(names, pieces, shapes, strict=True)
        }
        return loss_fn(functional_call(model, params, (inputs,)), targets).mean()

    def column(v: torch.Tensor) -> torch.Tensor:
        return jvp(grad(loss), (theta,), (v,))[1]

    eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
    H = torch.cat([vmap(column)(block) for block in eye.split(chunk)])
    return (H + H.T) / 2
