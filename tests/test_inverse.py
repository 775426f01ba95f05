"""helpers.inverse: CG and LiSSA solve damped systems, count products, refuse input."""

from __future__ import annotations

import pytest
import torch

from helpers import inverse


def spd(p: int, low: float, high: float, seed: int = 0) -> torch.Tensor:
    """A symmetric matrix with eigenvalues spread from low to high."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    eig = torch.linspace(low, high, p, dtype=torch.float64)
    return Q @ torch.diag(eig) @ Q.T


def rhs(p: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(
        p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def counting(A):
    calls = []

    def matvec(v):
        calls.append(1)
        return A @ v

    return matvec, calls


def test_cg_solves_a_damped_system_and_counts_products():
    A, b = spd(20, 0.1, 10.0), rhs(20)
    matvec, calls = counting(A)
    out = inverse.cg(matvec, b, damping=0.5, tol=1e-12)
    exact = torch.linalg.solve(A + 0.5 * torch.eye(20, dtype=torch.float64), b)
    torch.testing.assert_close(out.x, exact, rtol=1e-9, atol=1e-12)
    assert out.converged and out.products == len(calls) <= 20
    assert len(out.residuals) == out.products and out.residuals[-1] <= 1e-12


def test_cg_stops_on_negative_curvature():
    A, b = spd(10, -2.0, 5.0), rhs(10)
    out = inverse.cg(lambda v: A @ v, b, tol=1e-12)
    assert out.status == "negative curvature"
    assert out.direction @ A @ out.direction <= 0
    # enough damping makes the matrix positive definite again
    assert inverse.cg(lambda v: A @ v, b, damping=2.5, tol=1e-12).converged


def test_cg_stops_at_max_iter():
    A, b = spd(30, 1e-3, 1.0), rhs(30)
    out = inverse.cg(lambda v: A @ v, b, tol=1e-14, max_iter=3)
    assert out.status == "max_iter" and out.products == 3


def test_lissa_converges_when_its_condition_holds():
    A, b = spd(15, 0.5, 4.0), rhs(15)
    scale = 4.0
    rate = inverse.lissa_contraction(0.5, 4.0, scale, damping=0.1)
    assert rate == pytest.approx(1 - 0.6 / 4.0)
    assert rate == pytest.approx(
        torch.linalg.matrix_norm(
            torch.eye(15, dtype=torch.float64) - (A + 0.1 * torch.eye(15)) / scale, 2
        ).item()
    )
    out = inverse.lissa(
        lambda v: A @ v, b, scale=scale, damping=0.1, tol=1e-12, max_iter=2000
    )
    exact = torch.linalg.solve(A + 0.1 * torch.eye(15, dtype=torch.float64), b)
    torch.testing.assert_close(out.x, exact, rtol=1e-9, atol=1e-11)
    assert out.converged and out.products == len(out.residuals)


def test_lissa_diverges_when_the_scale_is_too_small():
    A, b = spd(15, 0.5, 4.0), rhs(15)
    assert inverse.lissa_contraction(0.5, 4.0, scale=1.5) > 1
    out = inverse.lissa(lambda v: A @ v, b, scale=1.5, max_iter=500)
    assert out.status == "diverged"


def test_zero_right_hand_side_needs_no_products():
    b = torch.zeros(4, dtype=torch.float64)
    assert inverse.cg(lambda v: v, b).products == 0
    assert inverse.lissa(lambda v: v, b, scale=2.0).products == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"b": torch.ones(2, 2)}, "shape \\(p,\\)"),
        ({"b": torch.ones(3, dtype=torch.long)}, "floating-point"),
        ({"damping": -1.0}, "damping"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": 0}, "integer >= 1"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    args = {"b": torch.ones(3, dtype=torch.float64)} | kwargs
    with pytest.raises(ValueError, match=message):
        inverse.cg(lambda v: v, **args)
    with pytest.raises(ValueError, match=message):
        inverse.lissa(lambda v: v, scale=2.0, **args)


def test_bad_scale_and_matvec_are_refused():
    b = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="scale"):
        inverse.lissa(lambda v: v, b, scale=0.0)
    with pytest.raises(ValueError, match="same shape"):
        inverse.cg(lambda v: v[:2], b)
    with pytest.raises(TypeError, match="callable"):
        inverse.cg("not a function", b)
    with pytest.raises(ValueError, match="exceeds"):
        inverse.lissa_contraction(2.0, 1.0, scale=1.0)
