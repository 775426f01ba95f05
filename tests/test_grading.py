"""helpers.grading: what the graded cells of the nbgrader bundle rely on (issue 25)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import helpers
from helpers import check, grading

sys.path.insert(0, str(__import__("conftest").ROOT / "scripts"))
import simulate_students  # noqa: E402


def test_restore_undoes_every_rebinding():
    fake = lambda *a, **k: print("✓")  # noqa: E731
    saved = (check.assert_close, torch.testing.assert_close, np.allclose)
    try:
        check.assert_close = fake
        torch.testing.assert_close = fake
        np.allclose = lambda *a, **k: True
        torch.Tensor.numpy = lambda self, **k: np.zeros(1)
        torch.Tensor.extra_attribute = 3
        sys.modules["helpers.check"] = type(sys)("fake")
        restored = grading.restore()
        assert restored is helpers.check and restored.assert_close is saved[0]
        assert torch.testing.assert_close is saved[1] and np.allclose is saved[2]
        assert not hasattr(torch.Tensor, "extra_attribute")
        assert sys.modules["helpers.check"] is helpers.check
        with pytest.raises(AssertionError, match="entries differ"):
            restored.assert_close(torch.zeros(2), torch.ones(2), what="x")
    finally:
        check.assert_close, torch.testing.assert_close, np.allclose = saved


def test_no_explicit_hessian_and_call_counter():
    from torch.func import jacrev

    names = {"jacrev": jacrev}
    with grading.no_explicit_hessian("E", jacobians=True, namespace=names):
        with pytest.raises(grading.ExplicitHessianError, match="E asks for"):
            torch.func.hessian(lambda x: (x**3).sum())(torch.ones(2))
        with pytest.raises(AssertionError):
            names["jacrev"](lambda x: x)(torch.ones(2))
    assert names["jacrev"] is jacrev and torch.func.jacrev is jacrev
    with grading.no_explicit_hessian("E", asks_for="a Hessian worked out by hand"):
        with pytest.raises(grading.ExplicitHessianError, match="worked out by hand"):
            torch.autograd.functional.hessian(lambda x: (x**3).sum(), torch.ones(2))
    counted = grading.CallCounter(lambda x, v: v, batch_arg=1)
    counted(None, torch.ones(3, 5))
    counted(None, torch.ones(5))
    assert counted.calls == 2 and counted.vectors == 4


def test_suspicious_finds_the_simulated_cheat_and_nothing_in_honest_code():
    found = grading.suspicious(simulate_students.MONKEYPATCH + "H = 2")
    assert "line 7: rebinds check.assert_close" in found
    assert "line 8: rebinds _np.allclose" in found
    honest = "H = torch.zeros(3)\nH[0] = 1\nparams = {}\nparams['w'] = H"
    assert grading.suspicious(honest) == []
    assert grading.suspicious("get_ipython().input_transformers_post.append(f)")
