"""helpers.closed_form with ``reduce=``: a loss written for one sample, over a batch.

Agreement with today's route (the loss expanded over every sample) on small N,
with ``torch.func`` in float64 on models no chapter uses (a Poisson GLM with a
log link, a 3-2-1 tanh MLP with squared error, a quadratic form in per-sample
matrices), and every refusal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

from helpers import check, closed_form

F64 = torch.float64


def flat(blocks: dict, params: dict) -> torch.Tensor:
    """Nested Hessian blocks as one (n, n) matrix, parameters in dict order."""
    sizes = [p.numel() for p in params.values()]
    return torch.cat(
        [
            torch.cat(
                [
                    blocks[a][b].reshape(sa, sb)
                    for b, sb in zip(params, sizes, strict=True)
                ],
                1,
            )
            for a, sa in zip(params, sizes, strict=True)
        ],
        0,
    )


# --- logistic regression: per-sample route against today's route ----------


def nll_one(w, b, x, y):
    """One sample: x is a 3×1 matrix, y a symbol, b a symbol (shape ())."""
    z = (w.T * x)[0, 0] + b
    return sympy.log(1 + sympy.exp(z)) - y * z


def nll_batch(w, b, X, y):
    """All samples: X is an N×3 matrix, y an N×1 matrix."""
    n = X.shape[0]
    z = X * w + sympy.ones(n, 1) * b
    return sum(sympy.log(1 + sympy.exp(z[i])) - y[i] * z[i] for i in range(n)) / n


@pytest.fixture(scope="module")
def logistic():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(5, 3, generator=gen, dtype=F64)
    y = (torch.rand(5, generator=gen) < 0.5).to(F64)
    params = {
        "w": torch.randn(3, generator=gen, dtype=F64),
        "b": torch.tensor(0.3, dtype=F64),
    }
    return params, X, y


def test_mean_agrees_with_the_expanded_route(logistic):
    params, X, y = logistic
    one = closed_form.param_derive(nll_one, params, reduce="mean", x=X, y=y)
    batch = closed_form.param_derive(nll_batch, params, X=X, y=y)
    assert isinstance(one, closed_form.PerSampleClosedForm)
    assert one.flat_names == batch.flat_names == ("w_{0}", "w_{1}", "w_{2}", "b")
    check.assert_close(
        one.loss(params, x=X, y=y),
        batch.loss(params, X=X, y=y),
        what="mean loss, per-sample vs expanded",
    )
    check.assert_close(
        one.gradient(params, x=X, y=y),
        batch.gradient(params, X=X, y=y),
        what="mean gradient, per-sample vs expanded",
    )
    check.assert_close(
        one.hessian(params, x=X, y=y),
        batch.hessian(params, X=X, y=y),
        what="mean Hessian blocks, per-sample vs expanded",
    )
    check.assert_close(
        one.flat_hessian(params, x=X, y=y),
        batch.flat_hessian(params, X=X, y=y),
        what="mean flat Hessian, per-sample vs expanded",
    )
    blocks = closed_form.param_hessian(nll_one, params, reduce="mean", x=X, y=y)
    assert blocks["w"]["b"].shape == (3,) and blocks["b"]["b"].shape == ()
    assert blocks["w"]["w"].dtype == F64


def test_sum_is_n_times_the_mean_and_a_wrong_reduction_is_caught(logistic):
    params, X, y = logistic
    expanded = closed_form.param_hessian(nll_batch, params, X=X, y=y)
    summed = closed_form.param_hessian(nll_one, params, reduce="sum", x=X, y=y)
    check.assert_close(
        summed,
        {a: {b: 5 * h for b, h in row.items()} for a, row in expanded.items()},
        what="sum = N × mean",
    )
    with pytest.raises(AssertionError, match="off by a factor of 5"):
        check.assert_close(summed, expanded, what="sum against mean")
    grad_sum = closed_form.param_gradient(nll_one, params, reduce="sum", x=X, y=y)
    grad_mean = closed_form.param_gradient(nll_batch, params, X=X, y=y)
    check.assert_close(
        grad_sum["w"], 5 * grad_mean["w"], what="gradient sum = N × mean"
    )


def test_the_hessian_matches_the_textbook_formula(logistic):
    """X̃ᵀ diag(s(1-s)) X̃ / N with X̃ = [X, 1], computed without SymPy or autograd."""
    params, X, y = logistic
    A = torch.cat([X, torch.ones(5, 1, dtype=F64)], 1)
    s = torch.sigmoid(A @ torch.cat([params["w"], params["b"][None]]))
    form = closed_form.param_derive(nll_one, params, reduce="mean", x=X, y=y)
    check.assert_close(
        form.flat_hessian(params, x=X, y=y),
        A.T @ torch.diag(s * (1 - s)) @ A / 5,
        what="logistic Hessian",
    )


def test_derivation_is_shared_across_batch_sizes_and_reductions(logistic):
    params, X, y = logistic
    first = closed_form.param_derive(nll_one, params, reduce="mean", x=X, y=y)
    before = closed_form._derive_per_sample.cache_info()
    big = torch.randn(500, 3, dtype=F64)
    other = closed_form.param_derive(
        nll_one, params, reduce="sum", x=big, y=torch.zeros(500, dtype=F64)
    )
    after = closed_form._derive_per_sample.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    assert other._derivation is first._derivation and other.reduce == "sum"
    # one form evaluates batches of any size; the symbols are one sample's
    assert first.data_shapes == {"x": (3,), "y": ()}
    assert first.flat_hessian(params, x=big, y=torch.ones(500)).shape == (4, 4)
    assert str(first.stand_ins["x"][2]) == "x_{2}"
    assert first.hessian_matrix.shape == (4, 4) and first.gradient_matrix.shape == (
        4,
        1,
    )


def test_chunked_evaluation_equals_one_chunk(logistic, monkeypatch):
    params, _, _ = logistic
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(1001, 3, generator=gen, dtype=F64)
    y = (torch.rand(1001, generator=gen) < 0.5).to(F64)
    closed_form._derive_per_sample.cache_clear()
    whole = closed_form.param_hessian(nll_one, params, reduce="mean", x=X, y=y)
    closed_form._derive_per_sample.cache_clear()
    monkeypatch.setattr(closed_form, "_CHUNK_VALUES", 1)  # chunks of 256 samples
    form = closed_form.param_derive(nll_one, params, reduce="mean", x=X, y=y)
    assert form._derivation.hessian_fn.chunk == 256
    check.assert_close(
        form.hessian(params, x=X, y=y),
        whole,
        what="four chunks and a remainder against one chunk",
    )
    closed_form._derive_per_sample.cache_clear()


# --- against torch.func in float64, on models no chapter uses ---------------


def poisson_one(w, b, x, k):
    """Poisson GLM, log link: -log p(k | rate = exp(wᵀx + b)), without log k!."""
    eta = (w.T * x)[0, 0] + b[0]
    return sympy.exp(eta) - k * eta


def poisson_torch(p, X, k, reduce):
    eta = X @ p["w"] + p["b"][0]
    per_sample = torch.exp(eta) - k * eta
    return per_sample.mean() if reduce == "mean" else per_sample.sum()


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_poisson_glm_against_torch_func(reduce):
    gen = torch.Generator().manual_seed(1)
    X = 0.5 * torch.randn(50, 4, generator=gen, dtype=F64)
    params = {
        "w": 0.3 * torch.randn(4, generator=gen, dtype=F64),
        "b": torch.tensor([0.2], dtype=F64),
    }
    k = torch.poisson(torch.exp(X @ params["w"] + 0.2), generator=gen)

    def f(p):
        return poisson_torch(p, X, k, reduce)

    form = closed_form.param_derive(poisson_one, params, reduce=reduce, x=X, k=k)
    check.assert_close(
        torch.func.grad(f)(params),
        form.gradient(params, x=X, k=k),
        what=f"Poisson GLM gradient ({reduce})",
    )
    check.assert_close(
        torch.func.hessian(f)(params),
        form.hessian(params, x=X, k=k),
        what=f"Poisson GLM Hessian ({reduce})",
    )
    check.assert_close(
        f(params), form.loss(params, x=X, k=k), what=f"Poisson GLM loss ({reduce})"
    )
    # the textbook form, Xᵀ diag(rate) X with X̃ = [X, 1], without SymPy or autograd
    A = torch.cat([X, torch.ones(50, 1, dtype=F64)], 1)
    rate = torch.exp(A @ torch.cat([params["w"], params["b"]]))
    expected = A.T @ torch.diag(rate) @ A / (50 if reduce == "mean" else 1)
    check.assert_close(
        form.flat_hessian(params, x=X, k=k),
        expected,
        what=f"Poisson GLM Hessian, textbook ({reduce})",
    )


def mlp_one(**p):
    """3-2-1 tanh MLP, squared error of one sample; names as in nn.Sequential."""
    hidden = (p["0.weight"] * p["x"] + p["0.bias"]).applyfunc(sympy.tanh)
    return ((p["2.weight"] * hidden)[0, 0] + p["2.bias"][0] - p["t"]) ** 2


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1)
    ).double()
    params = {k: v.detach() for k, v in net.named_parameters()}
    X = torch.randn(40, 3, dtype=F64)
    t = torch.randn(40, dtype=F64)
    return net, params, X, t


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_tanh_mlp_against_torch_func(mlp, reduce):
    net, params, X, t = mlp

    def f(p):
        err = (torch.func.functional_call(net, p, (X,))[:, 0] - t) ** 2
        return err.mean() if reduce == "mean" else err.sum()

    form = closed_form.param_derive(mlp_one, params, reduce=reduce, x=X, t=t)
    H = form.hessian(params, x=X, t=t)
    assert H["0.weight"]["2.weight"].shape == (2, 3, 1, 2)
    check.assert_close(
        torch.func.hessian(f)(params), H, what=f"3-2-1 tanh MLP Hessian ({reduce})"
    )
    check.assert_close(
        flat(torch.func.hessian(f)(params), params),
        form.flat_hessian(params, x=X, t=t),
        what=f"3-2-1 tanh MLP flat Hessian ({reduce})",
    )
    check.assert_close(
        torch.func.grad(f)(params),
        form.gradient(params, x=X, t=t),
        what=f"3-2-1 tanh MLP gradient ({reduce})",
    )


def test_per_sample_values_against_vmap(mlp):
    net, params, X, t = mlp

    def one(p, x, target):
        return (torch.func.functional_call(net, p, (x,))[0] - target) ** 2

    form = closed_form.param_derive(mlp_one, params, reduce="mean", x=X, t=t)
    grads = form.sample_gradients(params, x=X, t=t)
    assert grads["0.weight"].shape == (40, 2, 3)
    check.assert_close(
        torch.func.vmap(torch.func.grad(one), (None, 0, 0))(params, X, t),
        grads,
        what="per-sample gradients",
    )
    check.assert_close(
        torch.func.vmap(one, (None, 0, 0))(params, X, t),
        form.sample_losses(params, x=X, t=t),
        what="per-sample losses",
    )
    check.assert_close(
        grads["2.bias"].mean(0),
        form.gradient(params, x=X, t=t)["2.bias"],
        what="mean of per-sample gradients",
    )


def test_matrix_samples_reach_the_loss_as_matrices():
    """Data of shape (N, 2, 3): each sample is a 2×3 matrix A, loss |A w|² / 2."""
    gen = torch.Generator().manual_seed(4)
    A = torch.randn(6, 2, 3, generator=gen, dtype=F64)
    params = {"w": torch.randn(3, generator=gen, dtype=F64)}

    def one(w, A):
        assert A.shape == (2, 3)
        return (w.T * A.T * A * w)[0, 0] / 2

    form = closed_form.param_derive(one, params, reduce="mean", A=A)
    expected = torch.einsum("nki,nkj->ij", A, A) / 6
    check.assert_close(form.flat_hessian(params, A=A), expected, what="mean of AᵀA")
    check.assert_close(
        form.gradient(params, A=A)["w"], expected @ params["w"], what="mean of AᵀA w"
    )


def test_data_without_the_parameters_and_constant_entries():
    """Entries that do not depend on the data are broadcast over the batch."""
    params = {"c": torch.tensor([2.0], dtype=F64)}
    y = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    form = closed_form.param_derive(
        lambda c, y: (c[0] - y) ** 2, params, reduce="sum", y=y
    )
    check.assert_close(
        form.flat_hessian(params, y=y),
        torch.tensor([[6.0]], dtype=F64),
        what="sum of a constant second derivative 2 over N = 3",
    )
    check.assert_close(
        form.loss(params, y=y), torch.tensor(5.0, dtype=F64), what="1 + 0 + 4"
    )


# --- refusals ---------------------------------------------------------------


P = {"w": torch.ones(2, dtype=F64)}


def quad_one(w, x):
    return (w.T * x)[0, 0] ** 2


def test_leading_axes_must_agree():
    with pytest.raises(
        ValueError,
        match=r"expected equal leading axes, got "
        r"x: shape \(5, 2\) \(N = 5\), t: shape \(4,\) \(N = 4\)",
    ):
        closed_form.param_hessian(
            lambda w, x, t: (w.T * x)[0, 0] * t,
            P,
            reduce="mean",
            x=torch.ones(5, 2),
            t=torch.ones(4),
        )


def test_a_missing_batch_axis_is_refused():
    with pytest.raises(
        ValueError,
        match=r"'t' has shape \(\) \(a 0-d tensor\).*"
        r"expected shape \(N,\), \(N, k\) or \(N, k, m\)",
    ):
        closed_form.param_hessian(
            lambda w, x, t: (w.T * x)[0, 0] * t,
            P,
            reduce="mean",
            x=torch.ones(5, 2),
            t=torch.tensor(2.0),
        )
    with pytest.raises(
        TypeError,
        match=r"'t' is a float; .*must be a tensor of "
        r"shape \(N, \.\.\.\)",
    ):
        closed_form.param_gradient(
            lambda w, x, t: (w.T * x)[0, 0] * t,
            P,
            reduce="sum",
            x=torch.ones(5, 2),
            t=2.0,
        )


def test_an_empty_batch_is_refused():
    with pytest.raises(
        ValueError,
        match=r"the batch is empty: data entry 'x' has shape "
        r"\(0, 2\).*expected N >= 1, got N = 0",
    ):
        closed_form.param_hessian(quad_one, P, reduce="mean", x=torch.ones(0, 2))


def test_no_data_is_refused_with_reduce():
    with pytest.raises(ValueError, match="no data entry was given: expected at least"):
        closed_form.param_gradient(lambda w: w[0] ** 2, P, reduce="mean")


@pytest.mark.parametrize("bad", ["avg", "Mean", True, 1, ["mean"]])
def test_an_unknown_reduce_is_refused(bad):
    with pytest.raises(
        ValueError,
        match=r"reduce must be 'mean' or 'sum' \(or None.*"
        rf"got {__import__('re').escape(repr(bad))}\.",
    ):
        closed_form.param_derive(quad_one, P, reduce=bad, x=torch.ones(3, 2))


def test_nan_in_data_or_parameters_is_refused():
    x = torch.ones(4, 2, dtype=F64)
    x[2, 1] = math.nan
    with pytest.raises(ValueError, match="data entry 'x' contains NaN"):
        closed_form.param_hessian(quad_one, P, reduce="mean", x=x)
    with pytest.raises(ValueError, match="parameter 'w' contains NaN"):
        closed_form.param_gradient(
            quad_one,
            {"w": torch.tensor([1.0, math.nan])},
            reduce="sum",
            x=torch.ones(4, 2),
        )


def test_too_many_axes_per_sample_are_refused():
    with pytest.raises(
        ValueError,
        match=r"shape \(3, 2, 2, 2\), so each sample has "
        r"shape \(2, 2, 2\).*expected at most 3 axes",
    ):
        closed_form.param_hessian(
            lambda w, A: w[0], P, reduce="mean", A=torch.ones(3, 2, 2, 2)
        )


def test_evaluating_other_sample_shapes_names_or_parameters_is_refused():
    form = closed_form.param_derive(quad_one, P, reduce="mean", x=torch.ones(3, 2))
    with pytest.raises(
        ValueError,
        match=r"'x' has shape \(3, 4\), so samples of shape "
        r"\(4,\), but this closed form was derived for samples of shape "
        r"\(2,\)",
    ):
        form.hessian(P, x=torch.ones(3, 4))
    with pytest.raises(KeyError, match=r"missing: \['x'\], extra: \['z'\]"):
        form.gradient(P, z=torch.ones(3, 2))
    with pytest.raises(
        ValueError,
        match=r"parameter 'w' has shape \(3,\), but this "
        r"closed form was derived for shape \(2,\)",
    ):
        form.loss({"w": torch.ones(3)}, x=torch.ones(3, 2))
    with pytest.raises(ValueError, match="the batch is empty"):
        form.flat_hessian(P, x=torch.ones(0, 2))
    two = closed_form.param_derive(
        lambda w, x, t: (w.T * x)[0, 0] * t,
        P,
        reduce="sum",
        x=torch.ones(3, 2),
        t=torch.ones(3),
    )
    with pytest.raises(ValueError, match=r"expected equal leading axes"):
        two.sample_gradients(P, x=torch.ones(3, 2), t=torch.ones(2))


def test_todays_refusals_still_apply_with_reduce():
    x = torch.ones(3, 2)
    with pytest.raises(ValueError, match="must return a scalar; it returned a 2×1"):
        closed_form.param_gradient(lambda w, x: w, P, reduce="mean", x=x)
    with pytest.raises(
        TypeError, match="must return a SymPy scalar expression; it returned str"
    ):
        closed_form.param_gradient(lambda w, x: "w", P, reduce="mean", x=x)
    with pytest.raises(ValueError, match=r"\['w'\] is both a parameter and a data"):
        closed_form.param_gradient(quad_one, P, reduce="mean", x=x, w=x)
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        closed_form.param_hessian(quad_one, P, reduce="mean", t=x)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        closed_form.param_gradient(
            lambda w, x: w[0, 0, 0], {"w": torch.ones(2, 2, 2)}, reduce="mean", x=x
        )
    with pytest.raises(TypeError, match="non-empty dict"):
        closed_form.param_gradient(quad_one, [torch.ones(2)], reduce="mean", x=x)


def test_without_reduce_the_route_is_todays():
    X = torch.ones(3, 2, dtype=F64)
    form = closed_form.param_derive(lambda w, X: (X * w).norm() ** 2, P, X=X)
    assert isinstance(form, closed_form.ParamClosedForm)
    assert form.data_shapes == {"X": (3, 2)}
    check.assert_close(form.flat_hessian(P, X=X), 2 * X.T @ X, what="2 XᵀX")
    assert np.isclose(float(form.loss(P, X=X)), 12.0)


def test_a_wrong_model_or_a_wrong_structure_is_caught(mlp):
    """The comparisons above can fail: another activation, or unreduced values."""
    net, params, X, t = mlp

    def f(p):
        return ((torch.func.functional_call(net, p, (X,))[:, 0] - t) ** 2).mean()

    def atan_one(**p):
        hidden = (p["0.weight"] * p["x"] + p["0.bias"]).applyfunc(sympy.atan)
        return ((p["2.weight"] * hidden)[0, 0] + p["2.bias"][0] - p["t"]) ** 2

    wrong = closed_form.param_hessian(atan_one, params, reduce="mean", x=X, t=t)
    with pytest.raises(AssertionError, match="entries differ"):
        check.assert_close(torch.func.hessian(f)(params), wrong, what="atan for tanh")
    form = closed_form.param_derive(mlp_one, params, reduce="mean", x=X, t=t)
    with pytest.raises(AssertionError, match=r"shape \(40, 2, 3\)"):
        check.assert_close(
            form.sample_gradients(params, x=X, t=t),
            torch.func.grad(f)(params),
            what="unreduced against reduced",
        )
