"""helpers.check.assert_close: passes on equal structures, fails loudly otherwise."""

from __future__ import annotations

import math
import re

import pytest
import torch

from helpers import check


def test_pass_prints_one_stable_line(capsys):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(x, x.clone(), what="a vector equals itself")
    check.assert_close(x, x + 1e-13, what="a vector equals itself")
    assert capsys.readouterr().out == "✓ a vector equals itself\n" * 2


def test_nested_structures_pass(capsys):
    a = {
        "weight": {"weight": torch.eye(2), "bias": torch.zeros(2, 2)},
        "bias": {"weight": torch.zeros(2, 2), "bias": torch.ones(2)},
    }
    b = {k: {j: t.double() for j, t in v.items()} for k, v in a.items()}
    check.assert_close(a, b, what="nested dicts")
    check.assert_close(
        (torch.tensor(1.0), [torch.ones(3)]),
        [1.0, (torch.ones(3),)],
        what="tuples and lists",
    )
    check.assert_close(
        torch.tensor(2.0, dtype=torch.float64), 2, what="0-d tensor vs int"
    )
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
        check.assert_close(
            expected.float() + 1e-3, expected, what="float32 off by 1e-3"
        )
    with pytest.raises(AssertionError, match="rtol=1e-10"):
        check.assert_close(expected + 1e-7, expected, what="float64 off by 1e-7")


def test_wrong_shape_is_not_broadcast():
    with pytest.raises(
        AssertionError, match=r"shape \(3,\) != expected shape \(1, 3\)"
    ):
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
    with pytest.raises(
        AssertionError, match="expected a sequence of length 2, got length 3"
    ):
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
    with pytest.raises(
        AssertionError, match=f"{side} has NaN .*first at index \\[1\\]"
    ):
        check.assert_close(a, e, what="v")
    with pytest.raises(AssertionError, match="NaN"):
        check.assert_close(bad, bad.clone(), what="NaN never equals NaN")


def test_infinities():
    inf = torch.tensor([math.inf, 1.0], dtype=torch.float64)
    check.assert_close(inf, inf.clone(), what="equal infinities")
    with pytest.raises(AssertionError):
        check.assert_close(
            inf, torch.tensor([1e300, 1.0], dtype=torch.float64), what="inf"
        )


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
    """vhp of a function whose gradient ignores x returns a ZeroTensor.

    NumPy cannot see a ZeroTensor's values."""
    x = torch.rand(3, dtype=torch.float64)
    _, zero = torch.autograd.functional.vhp(
        lambda t: t.abs().sum(), x, torch.ones(3, dtype=torch.float64)
    )
    check.assert_close(zero, torch.zeros(3, dtype=torch.float64), what="ZeroTensor")
    with pytest.raises(AssertionError):
        check.assert_close(
            zero, torch.ones(3, dtype=torch.float64), what="ZeroTensor vs ones"
        )


# --- declarations, dtype= and record mode (issue 11) ---------------------------------


def test_declarations_keep_the_printed_line(capsys):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(
        x,
        x.clone(),
        what="a formula",
        not_autograd="SymPy against the textbook formula.",
    )
    check.assert_close(
        x,
        x.clone(),
        what="a product",
        expected_from_autograd="the 6x6 Hessian was checked against SymPy above.",
    )
    assert capsys.readouterr().out == "✓ a formula\n✓ a product\n"


@pytest.mark.parametrize("bad", ["", "   ", "yes", 3])
@pytest.mark.parametrize("name", ["not_autograd", "expected_from_autograd"])
def test_declarations_must_be_sentences(name, bad):
    x = torch.ones(2)
    with pytest.raises(TypeError, match=f"{name}= must be a sentence"):
        check.assert_close(x, x, what="x", **{name: bad})


def test_dtype_is_required_when_given(capsys):
    x = torch.ones(2, dtype=torch.float64)
    check.assert_close(x, x, what="float64", dtype=torch.float64)
    with pytest.raises(AssertionError, match="x: expected float64, got float32"):
        check.assert_close(x.float(), x, what="x", dtype=torch.float64)
    with pytest.raises(
        AssertionError, match=r"expected float64, got float32 \(tensor 2 of 2\)"
    ):
        check.assert_close(
            {"a": x, "b": x.float()}, {"a": x, "b": x}, what="x", dtype=torch.float64
        )
    with pytest.raises(AssertionError, match="expected float64 tensors, got str"):
        check.assert_close("1", x, what="x", dtype=torch.float64)
    with pytest.raises(TypeError, match="dtype= must be a torch.dtype"):
        check.assert_close(x, x, what="x", dtype="float64")


def _read_records(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_record_mode_appends_json_and_does_not_raise(tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("HELPERS_CHECK_RECORD", str(log))
    e = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(
        e.clone(), e, what="passes", not_autograd="a data property of the sample."
    )
    check.assert_close(e * 1.001, e, what="fails")
    check.assert_close(
        {"w": e},
        {"w": e * 2},
        what="dict",
        expected_from_autograd="the reference Hessian came from autograd.",
    )
    out = capsys.readouterr()
    assert out.out == "✓ passes\n"
    assert "✗ fails" in out.err
    first, second, third = _read_records(log)
    assert (
        first["what"] == "passes"
        and first["passed"] is True
        and first["message"] is None
    )
    assert first["not_autograd"] == "a data property of the sample."
    assert first["expected_from_autograd"] is None
    assert second["passed"] is False and "2 of 2 entries differ" in second["message"]
    assert second["expected_digest"] == first["expected_digest"]
    assert third["expected_digest"] != first["expected_digest"]
    assert third["expected_from_autograd"].startswith("the reference")
    assert third["expected_summary"] == [
        [2.0, 6.0, 6.0, pytest.approx(2 + 4 * math.cos(1))]
    ]
    assert second["actual_summary"][0][1] == pytest.approx(3.003)


def test_record_and_raise_mode_records_then_raises(tmp_path, monkeypatch, capsys):
    """How make test's nbval runs record the clean checks: a failing check is
    written down and still raises, so nbval still fails on it."""
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("HELPERS_CHECK_RECORD", str(log))
    monkeypatch.setenv("HELPERS_CHECK_RECORD_RAISES", "1")
    e = torch.tensor([1.0, 2.0], dtype=torch.float64)
    check.assert_close(e.clone(), e, what="passes")
    with pytest.raises(AssertionError, match="2 of 2 entries differ"):
        check.assert_close(e * 1.001, e, what="fails")
    assert capsys.readouterr().out == "✓ passes\n"
    first, second = _read_records(log)
    assert first["passed"] is True and second["passed"] is False
    assert "2 of 2 entries differ" in second["message"]


def test_record_mode_still_raises_on_misuse(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_CHECK_RECORD", str(tmp_path / "c.jsonl"))
    with pytest.raises(TypeError, match="needs what="):
        check.assert_close(1.0, 1.0, what="")
    assert not (tmp_path / "c.jsonl").exists()


def test_without_record_mode_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("HELPERS_CHECK_RECORD", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError):
        check.assert_close(1.0, 2.0, what="x")
    assert list(tmp_path.iterdir()) == []


# --- messages that name the mistake (issue 11) ----------------------------------------


@pytest.mark.parametrize(
    ("factor", "words"),
    [
        (2.0, "off by a factor of 2."),
        (0.5, "off by a factor of 0.5."),
        (1.001, "off by a factor of 1.001."),
        (-1.0, "sign flipped"),
    ],
)
def test_off_by_a_factor_is_named(factor, words):
    e = torch.randn(
        3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with pytest.raises(AssertionError, match=re.escape(words)):
        check.assert_close(e * factor, e, what="H")


def test_no_factor_claim_when_the_error_is_not_a_factor():
    e = torch.randn(
        3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    wrong = e.clone()
    wrong[0, 0] += 1.0
    with pytest.raises(AssertionError) as err:
        check.assert_close(wrong, e, what="H")
    assert "factor" not in str(err.value)
    with pytest.raises(AssertionError) as err:
        check.assert_close(e + 1.0, e, what="H")
    assert "factor" not in str(err.value)
    with pytest.raises(
        AssertionError
    ) as err:  # all-zero expected: no ratio to speak of
        check.assert_close(torch.ones(2), torch.zeros(2), what="z")
    assert "factor" not in str(err.value)


def test_float32_answer_against_float64_tolerances_says_why():
    e = torch.randn(
        3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with pytest.raises(
        AssertionError, match="actual is float32, whose resolution"
    ) as err:
        check.assert_close(e.float(), e, what="H", rtol=1e-10, atol=1e-12)
    assert "factor" not in str(err.value)
    with pytest.raises(AssertionError) as err:  # float32 tolerances: no such remark
        check.assert_close(e.float() * 1.01, e, what="H")
    assert "resolution" not in str(err.value)
    with pytest.raises(AssertionError, match="expected float64, got float32"):
        check.assert_close(e.float(), e, what="H", dtype=torch.float64)


def test_record_mode_can_keep_the_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_CHECK_RECORD", str(tmp_path / "c.jsonl"))
    monkeypatch.setenv("HELPERS_CHECK_VALUES", str(tmp_path))
    a = {"w": torch.ones(2, dtype=torch.float64, requires_grad=True) * 2}
    check.assert_close(
        a, {"w": torch.full((2,), 2.0)}, what="kept", dtype=torch.float64
    )
    check.assert_close(1.0, 2.0, what="kept too", rtol=0.1, atol=0.0)
    first = torch.load(tmp_path / "00000.pt", weights_only=False)
    second = torch.load(tmp_path / "00001.pt", weights_only=False)
    assert first["dtype"] == torch.float64 and first["rtol"] is None
    assert not first["actual"]["w"].requires_grad
    assert torch.equal(first["expected"]["w"], torch.full((2,), 2.0))
    assert (second["actual"], second["expected"], second["rtol"]) == (1.0, 2.0, 0.1)
    assert [r["index"] for r in _read_records(tmp_path / "c.jsonl")] == [0, 1]


def test_no_factor_claim_for_a_scalar_or_a_rounding_error():
    """A single number is a multiple of any other: a shift is not a factor."""
    with pytest.raises(AssertionError) as caught:
        check.assert_close(torch.tensor(3.304, dtype=torch.float64), 3.30404, what="x")
    assert "factor" not in str(caught.value)
    e = torch.randn(
        3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with pytest.raises(AssertionError) as caught:
        check.assert_close(e * (1 + 1e-7), e, what="H")
    assert "factor" not in str(caught.value), "c prints as 1: no factor to name"


def test_a_permutation_of_three_axes_is_named():
    e = torch.randn(
        2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    with pytest.raises(AssertionError, match=r"permute\(2, 0, 1\)"):
        check.assert_close(e.permute(2, 0, 1).contiguous(), e, what="H")
