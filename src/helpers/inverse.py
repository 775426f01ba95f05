r"""Inverse Hessian-vector products from Hessian-vector products alone (chapter 15).

Influence functions and the Laplace approximation need
:math:`\mathbf{x} = (\mathbf{A} + \lambda \mathbf{I})^{-1} \mathbf{b}` for a
symmetric :math:`p \times p` matrix :math:`\mathbf{A}` (a Hessian, a GGN) that
is available only as a product ``matvec(v) = A @ v``, and a damping
:math:`\lambda \ge 0`.  Two routes, each counting the products it used:

* :func:`cg`: conjugate gradients on :math:`\mathbf{A} + \lambda\mathbf{I}`.
  It needs a positive definite matrix; when it meets a direction
  :math:`\mathbf{u}` with :math:`\mathbf{u}^{\top}(\mathbf{A} + \lambda
  \mathbf{I})\mathbf{u} \le 0` it stops and reports ``"negative curvature"``.
* :func:`lissa`: the LiSSA recursion of Agarwal et al. (2017),
  :math:`\mathbf{x}_0 = \mathbf{b}`,
  :math:`\mathbf{x}_{j+1} = \mathbf{b} + (\mathbf{I} - (\mathbf{A} +
  \lambda\mathbf{I})/s)\,\mathbf{x}_j`, whose limit divided by the scale
  :math:`s` is the solution: a Neumann series, which converges exactly when
  every eigenvalue of :math:`\mathbf{I} - (\mathbf{A} + \lambda\mathbf{I})/s`
  lies strictly between -1 and 1, i.e. when
  :math:`0 < \lambda_i + \lambda < 2s` for every eigenvalue :math:`\lambda_i` of
  :math:`\mathbf{A}`.  :func:`lissa_contraction` gives that spectral norm
  :math:`\|\mathbf{I} - (\mathbf{A} + \lambda\mathbf{I})/s\|_2` from the
  extreme eigenvalues; the error shrinks by about that factor per product.
  ``matvec`` may be stochastic (a product on a random mini-batch), as in the
  original method; the recursion is the same.

Both return a :class:`Solve`: the solution, the number of products, a status
(``"converged"``, ``"max_iter"``, ``"negative curvature"``, ``"diverged"``)
and the relative residual norm :math:`\|\mathbf{b} - (\mathbf{A} +
\lambda\mathbf{I})\mathbf{x}\| / \|\mathbf{b}\|` after each product (for LiSSA
the residual of :math:`\mathbf{x}_j / s`, which the recursion gives for free).
Shapes: ``b`` is ``(p,)``, ``matvec`` maps ``(p,)`` to ``(p,)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

__all__ = ["Solve", "cg", "lissa", "lissa_contraction"]

STATUSES = ("converged", "max_iter", "negative curvature", "diverged")


@dataclasses.dataclass(frozen=True)
class Solve:
    """The result of :func:`cg` or :func:`lissa` (see the module docstring)."""

    x: torch.Tensor
    products: int
    status: str
    residuals: tuple[float, ...]
    direction: torch.Tensor | None = None  # CG: the direction of non-positive curvature

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    def __repr__(self) -> str:
        last = f"{self.residuals[-1]:.1e}" if self.residuals else "n/a"
        return (
            f"Solve({self.status}, {self.products} products, relative residual {last})"
        )


def _validate(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    damping: float,
    tol: float,
    max_iter: int,
) -> None:
    if not callable(matvec):
        raise TypeError(f"matvec must be callable; got {type(matvec).__name__}.")
    if not isinstance(b, torch.Tensor) or b.dim() != 1 or not b.is_floating_point():
        what = (
            f"a tensor of shape {tuple(b.shape)} and dtype {b.dtype}"
            if isinstance(b, torch.Tensor)
            else type(b).__name__
        )
        raise ValueError(
            f"b must be a floating-point vector of shape (p,); got {what}."
        )
    if not (isinstance(damping, (int, float)) and math.isfinite(damping)) or (
        damping < 0
    ):
        raise ValueError(f"damping must be a finite number >= 0; got {damping!r}.")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0; got {tol!r}.")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(
            f"the number of products must be an integer >= 1; got {max_iter!r}."
        )


def _product(matvec, v: torch.Tensor, damping: float) -> torch.Tensor:
    out = matvec(v)
    if not isinstance(out, torch.Tensor) or out.shape != v.shape:
        shape = (
            tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        )
        raise ValueError(
            f"matvec returned {shape} for a vector of shape {tuple(v.shape)}; "
            "it must return a vector of the same shape."
        )
    return out + damping * v if damping else out


def cg(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    damping: float = 0.0,
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> Solve:
    r"""Solve :math:`(\mathbf{A} + \lambda\mathbf{I})\mathbf{x} = \mathbf{b}` by CG.

    Stops when the relative residual is at most ``tol`` (``"converged"``),
    after ``max_iter`` products (default ``p``; ``"max_iter"``), or when a search
    direction has non-positive curvature (``"negative curvature"``: the matrix is
    not positive definite; the iterate so far is returned, and the direction as
    ``direction``).
    """
    max_iter = b.numel() if max_iter is None else max_iter
    _validate(matvec, b, damping, tol, max_iter)
    b_norm = float(b.norm())
    x = torch.zeros_like(b)
    if b_norm == 0.0:
        return Solve(x, 0, "converged", (0.0,))
    r = b.clone()
    u, rr = r.clone(), r @ r
    residuals: list[float] = []
    products, status = 0, "max_iter"
    while products < max_iter:
        Au = _product(matvec, u, damping)
        products += 1
        curvature = u @ Au
        if not curvature > 0:
            return Solve(x, products, "negative curvature", tuple(residuals), u)
        alpha = rr / curvature
        x, r = x + alpha * u, r - alpha * Au
        rr, rr_old = r @ r, rr
        residuals.append(float(rr.sqrt()) / b_norm)
        if residuals[-1] <= tol:
            status = "converged"
            break
        u = r + (rr / rr_old) * u
    return Solve(x, products, status, tuple(residuals))


def lissa(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    scale: float,
    damping: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> Solve:
    r"""Solve :math:`(\mathbf{A} + \lambda\mathbf{I})\mathbf{x} = \mathbf{b}` by LiSSA.

    Iterates :math:`\mathbf{x}_{j+1} = \mathbf{b} + \mathbf{x}_j - (\mathbf{A} +
    \lambda\mathbf{I})\mathbf{x}_j / s` from :math:`\mathbf{x}_0 = \mathbf{b}`
    and returns :math:`\mathbf{x}_j / s`.  Stops when the relative residual of
    that estimate, :math:`\|\mathbf{x}_{j+1} - \mathbf{x}_j\| / \|\mathbf{b}\|`,
    is at most ``tol``, after ``max_iter`` products, or when the residual
    exceeds :math:`10^{8}` or is not finite (``"diverged"``: the scale breaks
    the condition of :func:`lissa_contraction`).
    """
    _validate(matvec, b, damping, tol, max_iter)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale)) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}.")
    b_norm = float(b.norm())
    if b_norm == 0.0:
        return Solve(torch.zeros_like(b), 0, "converged", (0.0,))
    x = b.clone()
    residuals: list[float] = []
    products, status = 0, "max_iter"
    while products < max_iter:
        step = b - _product(matvec, x, damping) / scale  # = x_{j+1} - x_j
        products += 1
        residuals.append(float(step.norm()) / b_norm)
        if not math.isfinite(residuals[-1]) or residuals[-1] > 1e8:
            status = "diverged"
            break
        if residuals[-1] <= tol:
            status = "converged"
            break
        x = x + step
    return Solve(x / scale, products, status, tuple(residuals))


def lissa_contraction(
    eig_min: float, eig_max: float, scale: float, damping: float = 0.0
) -> float:
    r""":math:`\|\mathbf{I} - (\mathbf{A} + \lambda\mathbf{I})/s\|_2` for a symmetric A.

    From A's smallest and largest eigenvalues: the largest of
    :math:`|1 - (\lambda_{\min} + \lambda)/s|` and
    :math:`|1 - (\lambda_{\max} + \lambda)/s|`.  LiSSA converges exactly when
    this is below 1.
    """
    if eig_min > eig_max:
        raise ValueError(f"eig_min {eig_min} exceeds eig_max {eig_max}.")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale)) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}.")
    return max(
        abs(1 - (eig_min + damping) / scale), abs(1 - (eig_max + damping) / scale)
    )
