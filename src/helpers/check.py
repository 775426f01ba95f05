r"""Compare what autograd computed with what a closed form says it should be.

:func:`assert_close` walks two structures side by side: tensors, numbers,
tuples and lists, and (nested) dicts, which are what
``torch.autograd.functional`` and ``torch.func`` return.  The structures must be
the same (the same dict keys, the same sequence lengths) and so must every
tensor's shape: nothing is broadcast.  Values are compared in float64 with

.. math:: |a - e| \le \mathrm{atol} + \mathrm{rtol}\,|e|

entry by entry, where :math:`a` is the actual and :math:`e` the expected value.
NaN fails wherever it appears.  The default tolerances follow the precision of
the actual values: ``rtol=1e-10, atol=1e-12`` when everything is float64 (or a
Python number), ``rtol=1e-5, atol=1e-6`` when any actual tensor is float32,
``rtol=1e-2, atol=1e-3`` for 16-bit floats.

On success it prints one line, ``✓ <what>``, the same on every run.  On failure
it raises :class:`AssertionError` that names where in the structure the
mismatch is (``["weight"]["bias"]``, ``[1]``), both shapes, the worst entry, its
two values and their difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["assert_close", "default_tolerances"]

_TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (1e-2, 1e-3),
}


def default_tolerances(actual: Any) -> tuple[float, float]:
    """``(rtol, atol)`` for the lowest floating precision among ``actual``'s tensors."""
    worst = (1e-10, 1e-12)
    for leaf in _leaves(actual):
        if isinstance(leaf, torch.Tensor) and leaf.dtype in _TOLERANCES:
            tol = _TOLERANCES[leaf.dtype]
            worst = max(worst, tol)
    return worst


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, Mapping):
        return [leaf for v in obj.values() for leaf in _leaves(v)]
    if isinstance(obj, (tuple, list)):
        return [leaf for v in obj for leaf in _leaves(v)]
    return [obj]


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, Mapping):
        return f"a dict with keys {sorted(map(str, obj))}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of length {len(obj)}"
    return f"{type(obj).__name__} {obj!r}"


def _to_float64(obj: Any, where: str, side: str) -> np.ndarray | None:
    """The leaf as a float64 array, or None if it is not a numeric leaf."""
    if isinstance(obj, torch.Tensor):
        if obj.is_complex():
            raise AssertionError(f"{where}: {side} is a complex tensor; expected real values.")
        if obj.dtype == torch.bool:
            raise AssertionError(f"{where}: {side} is a bool tensor; expected numbers.")
        return obj.detach().to("cpu", torch.float64).numpy(force=True)
    if isinstance(obj, bool):
        return None
    if isinstance(obj, (int, float, np.number, np.ndarray)):
        return np.asarray(obj, dtype=np.float64)
    return None


def _path(keys: Sequence[Any]) -> str:
    parts = []
    for k in keys:
        parts.append(f"[{k!r}]".replace("'", '"') if isinstance(k, str) else f"[{k}]")
    return "".join(parts) or "(top level)"


def _compare(actual: Any, expected: Any, keys: list[Any], rtol: float, atol: float,
             what: str) -> None:
    where = f"{what}: at {_path(keys)}"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            raise AssertionError(f"{where}: expected {_describe(expected)}, got {_describe(actual)}.")
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            raise AssertionError(
                f"{where}: dict keys differ: missing {missing}, extra {extra} "
                f"(expected keys {list(expected)})."
            )
        for k in expected:
            _compare(actual[k], expected[k], keys + [k], rtol, atol, what)
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            raise AssertionError(f"{where}: expected {_describe(expected)}, got {_describe(actual)}.")
        if len(actual) != len(expected):
            raise AssertionError(
                f"{where}: expected a sequence of length {len(expected)}, got length {len(actual)}."
            )
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, keys + [i], rtol, atol, what)
        return

    e = _to_float64(expected, where, "expected")
    if e is None:
        raise TypeError(f"{where}: cannot compare with expected {_describe(expected)}.")
    a = _to_float64(actual, where, "actual")
    if a is None:
        raise AssertionError(f"{where}: expected {_describe(expected)}, got {_describe(actual)}.")
    if a.shape != e.shape:
        hint = ""
        if a.ndim == 2 and a.T.shape == e.shape and np.allclose(a.T, e, rtol=rtol, atol=atol):
            hint = " (actual is the transpose of expected)"
        raise AssertionError(
            f"{where}: shape {tuple(a.shape)} != expected shape {tuple(e.shape)}{hint}; "
            "shapes must match exactly (nothing is broadcast)."
        )
    for side, arr in (("actual", a), ("expected", e)):
        if np.isnan(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
            raise AssertionError(
                f"{where}: {side} has NaN ({int(np.isnan(arr).sum())} of {arr.size} "
                f"entries), first at index {list(idx)}; shape {tuple(arr.shape)}."
            )
    if a.size == 0:
        return
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        finite = np.isfinite(a) & np.isfinite(e)
        bad = ~((a == e) | (finite & (diff <= allowed)))  # equal infinities agree
        excess = np.where(finite, diff - allowed, np.inf)
    if not bad.any():
        return
    excess = np.where(bad, excess, -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), a.shape)
    index = [int(i) for i in worst]
    hint = ""
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2]:
        at = np.swapaxes(a, -1, -2)
        if np.all(np.abs(at - e) <= atol + rtol * np.abs(e)):
            hint = " The actual matrix is the transpose of the expected one."
    raise AssertionError(
        f"{where}: {int(bad.sum())} of {a.size} entries differ (shape {tuple(a.shape)}, "
        f"expected shape {tuple(e.shape)}); worst at index {index}: "
        f"actual {a[worst]:.10g}, expected {e[worst]:.10g}, "
        f"difference {diff[worst]:.3e} > allowed {allowed[worst]:.3e} "
        f"(rtol={rtol:g}, atol={atol:g}).{hint}"
    )


def assert_close(actual: Any, expected: Any, *, what: str,
                 rtol: float | None = None, atol: float | None = None) -> None:
    """Assert that ``actual`` equals ``expected`` in structure, shape and value.

    ``actual`` is what the code under test produced, ``expected`` the reference
    (usually a closed form).  ``what`` says in words what is being checked; it
    is printed after ``✓`` on success and starts the message on failure.
    ``rtol`` and ``atol`` default to :func:`default_tolerances` of ``actual``;
    give both or neither.  Tuples and lists count as the same structure; a
    tensor of shape ``()`` and a Python number have the same shape.
    """
    if not isinstance(what, str) or not what.strip():
        raise TypeError("assert_close needs what=..., a few words saying what is checked.")
    if (rtol is None) != (atol is None):
        raise TypeError("give both rtol and atol, or neither (to use the defaults).")
    if rtol is None or atol is None:
        rtol, atol = default_tolerances(actual)
    if rtol < 0 or atol < 0:
        raise ValueError(f"tolerances must be non-negative; got rtol={rtol}, atol={atol}.")
    _compare(actual, expected, [], rtol, atol, what)
    print(f"✓ {what}")
