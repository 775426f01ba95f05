"""helpers.check.assert_close: passes on equal structures, fails loudly otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import check


def test_pass_prints_one_stable_line(capsys):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(x, x.clone(), what="a vector equals itself")
    check.assert_close(x, x + 1e-13, what="a vector equals itself")
    assert capsys.readouterr().out == "✓ a vector equals itself\n" * 2


def test_nested_structures_pass(capsys):
    a = {"weight": {"weight": torch.eye(2), "bias": torch.zeros(2, 2)},
         "bias": {"weight": torch.zeros(2, 2), "bias": torch.ones(2)}}
    b = {k: {j: t.double() for j, t in v.items()} for k, v in a.items()}
    check.assert_close(a, b, what="nested dicts")
    check.assert_close((torch.tensor(1.0), [torch.ones(3)]), [1.0, (torch.ones(3),)],
                       what="tuples and lists")
    check.assert_close(torch.tensor(2.0, dtype=torch.float64), 2, what="0-d tensor vs int")
    assert capsys.readouterr().out.count("✓") == 3


def test_wrong_value_names_entry_values_and_difference():
    expected = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    actual = expected.clone()
    actual[1, 2] += 1e-6
    with pytest.raises(AssertionError) as err:
        check.assert_close(actual, expected, what="H")
    msg = str(err.value)
    assert "H: at (top level): 1 of 6 entries differ" in msg
    assert "worst at index [1, 2]" in msg
    assert "actual 5.000001, expected 5" in msg
    assert "difference 1.000e-06" in msg


def test_float32_gets_float32_tolerance_but_not_more():
    expected = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(expected.float() + 1e-7, expected, what="float32 within 1e-5")
    with pytest.raises(AssertionError, match="rtol=1e-05"):
        check.assert_close(expected.float() + 1e-3, expected, what="float32 off by 1e-3")
    with pytest.raises(AssertionError, match="rtol=1e-10"):
        check.assert_close(expected + 1e-7, expected, what="float64 off by 1e-7")


def test_wrong_shape_is_not_broadcast():
    with pytest.raises(AssertionError, match=r"shape \(3,\) != expected shape \(1, 3\)"):
        check.assert_close(torch.ones(3), torch.ones(1, 3), what="row")
    with pytest.raises(AssertionError, match=r"shape \(1,\) != expected shape \(\)"):
        check.assert_close(torch.ones(1), 1.0, what="scalar")


def test_transposed_matrix_fails_and_says_so():
    m = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    with pytest.raises(AssertionError, match="transpose of the expected"):
        check.assert_close(m.T, m, what="J")
    r = torch.arange(6.0).reshape(2, 3)
    with pytest.raises(AssertionError, match="transpose of expected"):
        check.assert_close(r.T, r, what="J")


def test_missing_and_extra_dict_keys():
    exp = {"weight": torch.ones(2), "bias": torch.ones(1)}
    with pytest.raises(AssertionError, match=r"missing \['bias'\], extra \[\]"):
        check.assert_close({"weight": torch.ones(2)}, exp, what="grads")
    with pytest.raises(AssertionError, match=r"missing \[\], extra \['scale'\]"):
        check.assert_close({**exp, "scale": torch.ones(1)}, exp, what="grads")


def test_path_into_nested_structure():
    exp = {"weight": {"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}}
    act = {"weight": {"weight": torch.zeros(2, 2), "bias": torch.tensor([0.0, 1.0])}}
    with pytest.raises(AssertionError, match=r'at \["weight"\]\["bias"\]: 1 of 2'):
        check.assert_close(act, exp, what="hessian")
    with pytest.raises(AssertionError, match=r"at \[1\]\[0\]"):
        check.assert_close((1.0, (2.0,)), (1.0, (3.0,)), what="tuple")


def test_wrong_structure():
    with pytest.raises(AssertionError, match="expected a dict with keys"):
        check.assert_close(torch.ones(2), {"a": torch.ones(2)}, what="s")
    with pytest.raises(AssertionError, match="expected a sequence of length 2, got length 3"):
        check.assert_close((1.0, 2.0, 3.0), (1.0, 2.0), what="s")
    with pytest.raises(AssertionError, match="expected a tuple of length 1"):
        check.assert_close(torch.ones(1), (torch.ones(1),), what="s")
    with pytest.raises(AssertionError, match="expected a tensor of shape"):
        check.assert_close("0.5", torch.tensor(0.5), what="s")


@pytest.mark.parametrize("side", ["actual", "expected"])
def test_nan_fails_on_either_side(side):
    good = torch.tensor([1.0, 2.0], dtype=torch.float64)
    bad = torch.tensor([1.0, math.nan], dtype=torch.float64)
    a, e = (bad, good) if side == "actual" else (good, bad)
    with pytest.raises(AssertionError, match=f"{side} has NaN .*first at index \\[1\\]"):
        check.assert_close(a, e, what="v")
    with pytest.raises(AssertionError, match="NaN"):
        check.assert_close(bad, bad.clone(), what="NaN never equals NaN")


def test_infinities():
    inf = torch.tensor([math.inf, 1.0], dtype=torch.float64)
    check.assert_close(inf, inf.clone(), what="equal infinities")
    with pytest.raises(AssertionError):
        check.assert_close(inf, torch.tensor([1e300, 1.0], dtype=torch.float64), what="inf")


def test_bad_arguments():
    x = torch.ones(2)
    with pytest.raises(TypeError, match="needs what="):
        check.assert_close(x, x, what="")
    with pytest.raises(TypeError, match="both rtol and atol"):
        check.assert_close(x, x, what="x", rtol=1e-3)
    with pytest.raises(ValueError, match="non-negative"):
        check.assert_close(x, x, what="x", rtol=-1.0, atol=0.0)
    with pytest.raises(AssertionError, match="bool tensor"):
        check.assert_close(torch.tensor([True]), torch.tensor([1.0]), what="x")


def test_gradients_with_requires_grad_are_compared():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    check.assert_close(w * 2, torch.tensor([2.0, 4.0], dtype=torch.float64), what="2w")


def test_efficient_zero_tensors_from_autograd_are_compared():
    """vhp of a function whose gradient ignores x returns a ZeroTensor, which NumPy cannot see."""
    x = torch.rand(3, dtype=torch.float64)
    _, zero = torch.autograd.functional.vhp(lambda t: t.abs().sum(), x, torch.ones(3, dtype=torch.float64))
    check.assert_close(zero, torch.zeros(3, dtype=torch.float64), what="ZeroTensor")
    with pytest.raises(AssertionError):
        check.assert_close(zero, torch.ones(3, dtype=torch.float64), what="ZeroTensor vs ones")
