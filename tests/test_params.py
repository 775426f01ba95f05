"""helpers.params: the course's flattening order, round trips, and refusals."""

from __future__ import annotations

import pytest
import torch

from helpers import check, closed_form, params


def linear_params():
    torch.manual_seed(0)
    return {
        "weight": torch.randn(2, 3, dtype=torch.float64),
        "bias": torch.randn(2, dtype=torch.float64),
    }


def test_flatten_is_dict_order_row_major_and_round_trips():
    p = linear_params()
    flat = params.flatten(p)
    check.assert_close(flat[:3], p["weight"][0], what="first row of weight first")
    check.assert_close(flat[6:], p["bias"], what="bias last")
    check.assert_close(params.unflatten(flat, p), p, what="round trip")
    check.assert_close(
        params.flatten(tuple(p.values())), flat, what="a tuple flattens the same way"
    )
    check.assert_close(
        flat,
        torch.nn.utils.parameters_to_vector(p.values()),
        what="as parameters_to_vector",
    )


def test_flatten_hessian_matches_the_closed_form_flat_matrix():
    p = linear_params()
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)

    def loss_sym(weight, bias, x):
        z = weight * x + bias
        return sum(zi**2 * zi for zi in z)  # a cubic, so blocks differ from each other

    def loss(q):
        return ((q["weight"] @ x + q["bias"]) ** 3).sum()

    blocks = torch.func.hessian(loss)(p)
    form = closed_form.param_derive(loss_sym, p, x=x)
    check.assert_close(
        params.flatten_hessian(blocks, p),
        form.flat_hessian(p, x=x),
        what="flat Hessian",
    )
    swapped = {"bias": p["bias"], "weight": p["weight"]}
    with pytest.raises(AssertionError):
        check.assert_close(
            params.flatten_hessian(blocks, swapped),
            form.flat_hessian(p, x=x),
            what="the order of `like` decides the order of the matrix",
        )


def test_refusals():
    p = linear_params()
    with pytest.raises(ValueError, match=r"vector has shape \(7,\); expected \(8,\)"):
        params.unflatten(torch.zeros(7), p)
    with pytest.raises(ValueError, match="is empty"):
        params.flatten({})
    with pytest.raises(TypeError, match=r"tensors\[1\] is float"):
        params.flatten([torch.zeros(2), 1.0])
    blocks = torch.func.hessian(
        lambda q: (q["weight"] ** 2).sum() + (q["bias"] ** 2).sum()
    )(p)
    with pytest.raises(KeyError, match="has no block 'bias'"):
        params.flatten_hessian(
            {a: {"weight": b["weight"]} for a, b in blocks.items()}, p
        )
    with pytest.raises(ValueError, match=r"expected \(2, 3, 2\)"):
        bad = {a: dict(b) for a, b in blocks.items()}
        bad["weight"]["bias"] = bad["weight"]["bias"].transpose(0, 1)
        params.flatten_hessian(bad, p)
