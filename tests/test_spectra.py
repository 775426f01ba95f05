"""helpers.spectra against explicit matrices, and its refusals of bad input."""

import pytest
import torch

from helpers.spectra import (
    dense_hessian,
    hutchpp,
    lanczos,
    rademacher,
    ritz,
    slq_density,
)


def _matrix(p=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.linalg.qr(torch.randn(p, p, dtype=torch.float64, generator=g)).Q
    lam = torch.linspace(-1.0, 5.0, p, dtype=torch.float64)
    return Q @ torch.diag(lam) @ Q.T, lam


def test_lanczos_full_space_gives_every_eigenvalue():
    A, lam = _matrix()
    V0 = torch.randn(
        40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    runs = lanczos(lambda V: A @ V, V0, 40)
    for b in range(3):
        theta, vectors, est = ritz(runs, b)
        torch.testing.assert_close(theta, lam, rtol=1e-9, atol=1e-9)
        resid = (A @ vectors.T - vectors.T * theta).norm(dim=0)
        assert resid.max() < 1e-8


def test_ritz_residual_estimate_matches_explicit_residual():
    A, _ = _matrix(p=60)
    runs = lanczos(lambda V: A @ V, torch.ones(60, dtype=torch.float64), 12)
    theta, vectors, est = ritz(runs)
    resid = (A @ vectors.T - vectors.T * theta).norm(dim=0)
    torch.testing.assert_close(est, resid, rtol=1e-6, atol=1e-10)


def test_slq_density_integrates_to_one_and_hutchpp_is_exact_for_low_rank():
    A, _ = _matrix()
    g = torch.Generator().manual_seed(2)
    runs = lanczos(lambda V: A @ V, rademacher((40, 4), g), 10)
    grid = torch.linspace(-4.0, 8.0, 4001, dtype=torch.float64)
    mass = torch.trapezoid(slq_density(runs, grid, 0.2), grid)
    assert abs(mass.item() - 1) < 1e-6
    U = torch.randn(40, 3, dtype=torch.float64, generator=g)
    low = U @ U.T
    est, se = hutchpp(lambda V: low @ V, 40, 12, g)
    torch.testing.assert_close(est, torch.trace(low), rtol=1e-10, atol=1e-10)


def test_refusals():
    A, _ = _matrix()
    with pytest.raises(ValueError, match="m must be"):
        lanczos(lambda V: A @ V, torch.ones(40, dtype=torch.float64), 41)
    with pytest.raises(ValueError, match="block"):
        lanczos(lambda V: (A @ V)[:, 0], torch.ones(40, 2, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="m >= 6"):
        hutchpp(lambda V: A @ V, 40, 5, torch.Generator())
    runs = lanczos(lambda V: A @ V, torch.ones(40, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="width"):
        slq_density(runs, torch.zeros(3, dtype=torch.float64), 0.0)


def test_dense_hessian_matches_the_operator_route():
    from torch import nn

    from helpers.curvature import batches, curvature_operator
    from helpers.data import digits_mlp

    g = torch.Generator().manual_seed(3)
    X = torch.randn(20, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    model = digits_mlp(4, n_in=5, n_out=3)
    ce = nn.CrossEntropyLoss(reduction="none")
    H = dense_hessian(model, ce, X, y, chunk=7)
    op = curvature_operator(model, ce, batches(X, y, 20))
    torch.testing.assert_close(H, op.to_dense(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="chunk"):
        dense_hessian(model, ce, X, y, chunk=0)
