"""helpers.closed_form: closed forms that match hand derivations, and refusals."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

from helpers import check, closed_form

x, y, z = sympy.symbols("x y z", real=True)
f64 = torch.float64


def test_gradient_and_hessian_of_a_polynomial():
    f = 2 * x**4 + 3 * y**3 + x**3 * y**5
    g = closed_form.gradient(f, [x, y])
    h = closed_form.hessian(f, [x, y])
    assert g.matrix == sympy.Matrix(
        [8 * x**3 + 3 * x**2 * y**5, 9 * y**2 + 5 * x**3 * y**4]
    )
    assert h.matrix == sympy.Matrix(
        [
            [24 * x**2 + 6 * x * y**5, 15 * x**2 * y**4],
            [15 * x**2 * y**4, 18 * y + 20 * x**3 * y**3],
        ]
    )
    xs = torch.tensor([0.5, 1.0, 2.0], dtype=f64)
    ys = torch.tensor([1.0, -1.0, 0.5], dtype=f64)
    out = h(xs, ys)
    assert out.shape == (3, 2, 2) and out.dtype == f64
    expected = torch.stack(
        [
            torch.stack([24 * xs**2 + 6 * xs * ys**5, 15 * xs**2 * ys**4], -1),
            torch.stack([15 * xs**2 * ys**4, 18 * ys + 20 * xs**3 * ys**3], -1),
        ],
        -2,
    )
    check.assert_close(out, expected, what="per-element Hessian")
    assert g(xs, ys).shape == (3, 2)


def test_broadcasting_numbers_and_constant_entries():
    h = closed_form.hessian(x**2 + y, [x, y])  # [[2, 0], [0, 0]]: constants only
    assert h(1.0, 2.0).shape == (2, 2)
    assert h(torch.zeros(4, 1), torch.zeros(3)).shape == (4, 3, 2, 2)
    check.assert_close(
        h(torch.zeros(5), 0.0)[3],
        torch.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=f64),
        what="constant Hessian broadcast",
    )


def test_jacobian_of_polar_coordinates():
    r, t = sympy.symbols("r theta", positive=True)
    jac = closed_form.jacobian([r * sympy.cos(t), r * sympy.sin(t)], [r, t])
    out = jac(2.0, torch.tensor(math.pi / 2, dtype=f64))
    check.assert_close(
        out,
        torch.tensor([[0.0, -2.0], [1.0, 0.0]], dtype=f64),
        what="polar Jacobian",
        rtol=0,
        atol=1e-15,
    )
    assert closed_form.jacobian(sympy.Matrix([x * y, x, y]), [x, y])(
        1.0, 1.0
    ).shape == (3, 2)


def test_wrong_closed_form_would_be_caught():
    """The evaluator is not a tautology: a wrong derivation fails the check."""
    h = closed_form.hessian(sympy.sin(x * y * z), [x, y, z])
    vals = torch.tensor([0.3, -0.7, 1.1], dtype=f64, requires_grad=True)
    auto = torch.autograd.functional.hessian(lambda v: torch.sin(v.prod()), vals)
    check.assert_close(auto, h(*vals), what="sin(xyz) Hessian")
    wrong = closed_form.hessian(sympy.cos(x * y * z), [x, y, z])
    with pytest.raises(AssertionError):
        check.assert_close(auto, wrong(*vals), what="against a wrong closed form")


def test_refusals():
    with pytest.raises(TypeError, match="not .*strings|Build expressions"):
        closed_form.gradient("x**2", [x])
    with pytest.raises(ValueError, match="scalar expression; got a 2×1"):
        closed_form.hessian(sympy.Matrix([x, y]), [x, y])
    with pytest.raises(TypeError, match="got str"):
        closed_form.jacobian([x, "y"], [x, y])
    with pytest.raises(ValueError, match="depends on y, which is not among symbols"):
        closed_form.gradient(x * y, [x])
    with pytest.raises(ValueError, match="repeats"):
        closed_form.gradient(x, [x, x])
    with pytest.raises(TypeError, match="sequence of sympy.Symbol"):
        closed_form.gradient(x, "x")
    h = closed_form.hessian(x * y, [x, y])
    with pytest.raises(TypeError, match="expected 2 values, got 1"):
        h(1.0)
    with pytest.raises(
        ValueError, match=r"do not broadcast together \(x: \(3,\), y: \(2,\)\)"
    ):
        h(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="the value for y contains NaN"):
        h(1.0, math.nan)
    with pytest.raises(TypeError, match="number or a tensor"):
        h(1.0, "2")


# --- parameter closed forms -------------------------------------------------


def mse_loss(weight, bias, inputs, targets):
    """Mean squared error of a linear model; inputs (N, d), targets (N,)."""
    pred = inputs * weight.T + sympy.ones(inputs.shape[0], 1) * bias[0]
    r = pred - targets
    return (r.T * r)[0, 0] / inputs.shape[0]


def test_param_gradient_and_hessian_of_linear_mse():
    torch.manual_seed(0)
    X = torch.randn(5, 2, dtype=f64)
    t = torch.randn(5, dtype=f64)
    params = {"weight": torch.randn(1, 2, dtype=f64), "bias": torch.randn(1, dtype=f64)}
    grad = closed_form.param_gradient(mse_loss, params, inputs=X, targets=t)
    hess = closed_form.param_hessian(mse_loss, params, inputs=X, targets=t)
    # hand-derived: with A = [X, 1], L = |A theta - t|^2 / N,
    # grad = 2 A^T r / N, H = 2 A^T A / N
    A = torch.cat([X, torch.ones(5, 1, dtype=f64)], 1)
    theta = torch.cat([params["weight"].reshape(-1), params["bias"]])
    r = A @ theta - t
    g_flat, h_flat = 2 * A.T @ r / 5, 2 * A.T @ A / 5
    check.assert_close(
        grad,
        {"weight": g_flat[:2].reshape(1, 2), "bias": g_flat[2:]},
        what="MSE gradient",
    )
    expected = {
        "weight": {
            "weight": h_flat[:2, :2].reshape(1, 2, 1, 2),
            "bias": h_flat[:2, 2:].reshape(1, 2, 1),
        },
        "bias": {
            "weight": h_flat[2:, :2].reshape(1, 1, 2),
            "bias": h_flat[2:, 2:].reshape(1, 1),
        },
    }
    check.assert_close(hess, expected, what="MSE Hessian blocks")

    def f(p):
        return torch.mean((X @ p["weight"].T + p["bias"] - t[:, None]) ** 2)

    check.assert_close(torch.func.grad(f)(params), grad, what="torch.func.grad")
    check.assert_close(torch.func.hessian(f)(params), hess, what="torch.func.hessian")
    form = closed_form.param_derive(mse_loss, params, inputs=X, targets=t)
    check.assert_close(
        form.flat_hessian(params, inputs=X, targets=t), h_flat, what="flat"
    )
    assert form.flat_names == ("weight_{0,0}", "weight_{0,1}", "bias_{0}")


def test_param_hessian_of_logistic_regression_and_caching():
    def nll(w, X, t):
        z = X * w
        return (
            sum(sympy.log(1 + sympy.exp(z[i])) - t[i] * z[i] for i in range(X.shape[0]))
            / X.shape[0]
        )

    torch.manual_seed(1)
    X = torch.randn(6, 3, dtype=f64)
    t = (torch.rand(6) < 0.5).to(f64)
    w = torch.randn(3, dtype=f64)
    h = closed_form.param_hessian(nll, {"w": w}, X=X, t=t)["w"]["w"]
    s = torch.sigmoid(X @ w)
    check.assert_close(
        h, X.T @ torch.diag(s * (1 - s)) @ X / 6, what="X^T diag(s(1-s)) X / N"
    )
    before = closed_form._derive.cache_info().hits
    closed_form.param_hessian(nll, {"w": w + 1}, X=X, t=t)
    assert closed_form._derive.cache_info().hits == before + 1


def test_param_closed_form_refusals():
    p = {"w": torch.ones(2, dtype=f64)}
    with pytest.raises(ValueError, match="must return a scalar; it returned a 2×1"):
        closed_form.param_gradient(lambda w: w, p)
    with pytest.raises(
        TypeError, match="must return a SymPy scalar expression; it returned str"
    ):
        closed_form.param_gradient(lambda w: "w", p)
    with pytest.raises(
        ValueError, match=r"\['w'\] is both a parameter and a data entry"
    ):
        closed_form.param_gradient(lambda w: w[0], p, w=torch.ones(2))
    with pytest.raises(TypeError, match="missing a required argument: 'X'"):
        closed_form.param_hessian(lambda w, X: (X.T * w)[0], p)
    with pytest.raises(TypeError, match="unexpected keyword argument 'X'"):
        closed_form.param_hessian(lambda w: w[0] ** 2, p, X=torch.ones(2))
    with pytest.raises(ValueError, match="contains NaN"):
        closed_form.param_gradient(
            lambda w: w[0] ** 2, {"w": torch.tensor([math.nan, 1.0])}
        )
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        closed_form.param_gradient(lambda w: w[0] ** 2, {"w": torch.ones(2, 2, 2)})
    with pytest.raises(TypeError, match="non-empty dict"):
        closed_form.param_gradient(lambda w: w[0] ** 2, [torch.ones(2)])


def test_evaluating_with_other_shapes_or_names_is_refused():
    def loss(w):
        return (w.T * w)[0, 0]

    form = closed_form.param_derive(loss, {"w": torch.ones(2)})
    with pytest.raises(
        ValueError,
        match=r"has shape \(3,\), but this closed form was derived for shape \(2,\)",
    ):
        form.gradient({"w": torch.ones(3)})
    with pytest.raises(KeyError, match=r"missing: \['w'\], extra: \['v'\]"):
        form.gradient({"v": torch.ones(2)})


def test_wrt_differentiates_by_a_subset_and_holds_the_rest():
    a = sympy.Symbol("a", real=True)
    g = closed_form.gradient(a * x**2 * y, [x, y, a], wrt=[x])
    assert g.matrix == sympy.Matrix([2 * a * x * y])
    check.assert_close(
        g(2.0, 3.0, 0.5), torch.tensor([6.0], dtype=f64), what="d/dx only"
    )
    h = closed_form.hessian(a * x**2 * y, [x, y, a], wrt=[y, x])
    assert h(1.0, 1.0, 1.0).shape == (2, 2) and h.matrix == sympy.Matrix(
        [[0, 2 * a * x], [2 * a * x, 2 * a * y]]
    )
    j = closed_form.jacobian([a * x, y], [x, y, a], wrt=[a])
    assert j(torch.ones(4), 1.0, 1.0).shape == (4, 2, 1)
    with pytest.raises(
        ValueError, match=r"wrt has \['z'\], which are not among symbols"
    ):
        closed_form.gradient(x, [x], wrt=[z])


def test_param_gradient_does_not_derive_the_hessian():
    def loss(w):
        return (w.T * w)[0, 0] ** 2

    form = closed_form.param_derive(loss, {"w": torch.ones(3)})
    assert "hessian_matrix" not in form.__dict__
    closed_form.param_gradient(loss, {"w": torch.ones(3)})
    assert "hessian_matrix" not in form.__dict__
    closed_form.param_hessian(loss, {"w": torch.ones(3)})
    assert "hessian_matrix" in form.__dict__


def test_value_evaluates_a_scalar_expression_elementwise():
    r, t = sympy.symbols("r theta", positive=True)
    det = closed_form.value(r**2 * sympy.sin(t), [r, t])
    out = det(torch.tensor([1.0, 2.0], dtype=f64), math.pi / 2)
    check.assert_close(out, torch.tensor([1.0, 4.0], dtype=f64), what="r² sin θ")
    assert closed_form.value(x * y, [x, y])(2.0, 3.0).shape == ()
    with pytest.raises(ValueError, match="depends on y"):
        closed_form.value(x * y, [x])
    with pytest.raises(ValueError, match="scalar expression; got a 2×1"):
        closed_form.value(sympy.Matrix([x, y]), [x, y])


def test_param_closed_form_evaluates_the_loss():
    torch.manual_seed(0)
    X, t = torch.randn(5, 2, dtype=f64), torch.randn(5, dtype=f64)
    params = {"weight": torch.randn(1, 2, dtype=f64), "bias": torch.randn(1, dtype=f64)}
    form = closed_form.param_derive(mse_loss, params, inputs=X, targets=t)
    expected = torch.mean((X @ params["weight"].T + params["bias"] - t[:, None]) ** 2)
    check.assert_close(
        form.loss(params, inputs=X, targets=t), expected, what="MSE value"
    )
    with pytest.raises(AssertionError):
        check.assert_close(
            form.loss(params, inputs=X, targets=t + 0.1), expected, what="other targets"
        )
