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
two values and their difference, and names the mistake when it sees one: a
transposed matrix, an answer off by a constant factor ("off by a factor of 2"),
a float32 answer held to tolerances finer than float32 resolves, missing or
extra dict keys, NaN.  ``dtype=torch.float64`` makes a float32 answer fail with
"expected float64, got float32".

Each check says what kind it is (issue 11): by default its expected side is
independent of autograd and it fails when autograd's derivatives are wrong
(``tests/test_fault_injection.py`` shows it); otherwise it declares
``not_autograd="..."`` or ``expected_from_autograd="..."``, a sentence a reader
would accept.  With the environment variable ``HELPERS_CHECK_RECORD`` set to a
file name, checks are recorded there (one JSON line each) instead of raising;
with ``HELPERS_CHECK_RECORD_RAISES=1`` as well they are recorded and still raise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pathlib
import sys
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
            raise AssertionError(
                f"{where}: {side} is a complex tensor; expected real values."
            )
        if obj.dtype == torch.bool:
            raise AssertionError(f"{where}: {side} is a bool tensor; expected numbers.")
        return obj.detach().to("cpu", torch.float64).numpy(force=True)
    if isinstance(obj, bool):
        return None
    if isinstance(obj, (int, float, np.number, np.ndarray)):
        return np.asarray(obj, dtype=np.float64)
    return None


def _factor_hint(a: np.ndarray, e: np.ndarray, rtol: float, atol: float) -> str:
    """' ... off by a factor of c.' when the actual is (nearly) c times the expected.

    Only where a factor explains the error: the expected has at least two
    different values (a single number, or all-equal entries, is a multiple of
    any other by some factor, so a missing shift or a rounding error would be
    named a factor), and c is not 1 to the four digits printed.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if not (np.isfinite(a).all() and np.isfinite(e).all()):
            return ""
        if np.unique(e).size < 2:
            return ""
        ee = float((e * e).sum())
        if ee == 0.0:
            return ""
        c = float((a * e).sum()) / ee
        if not np.isfinite(c) or c == 0.0 or abs(c - 1.0) <= rtol or f"{c:.4g}" == "1":
            return ""
        scaled = c * e
        slack = 10 * (atol + rtol * np.abs(scaled)) + 1e-6 * np.abs(scaled).max()
        if not np.all(np.abs(a - scaled) <= slack):
            return ""
    if abs(c + 1.0) <= 1e-6:
        return " The actual is the expected with its sign flipped (a factor of -1)."
    return f" The actual is the expected times {c:.6g}: off by a factor of {c:.4g}."


def _permutation_hint(a: np.ndarray, e: np.ndarray, rtol: float, atol: float) -> str:
    """Name the permutation of axes that turns the expected into the actual, if any."""
    if a.ndim < 2 or a.ndim > 6 or a.size < 2 or sorted(a.shape) != sorted(e.shape):
        return ""
    for perm in itertools.permutations(range(e.ndim)):
        if perm == tuple(range(e.ndim)):
            continue
        moved = np.transpose(e, perm)
        if moved.shape != a.shape or np.array_equal(moved, e):
            continue
        if np.all(np.abs(a - moved) <= atol + rtol * np.abs(moved)):
            if e.ndim == 2:
                return " The actual matrix is the transpose of the expected one."
            return (
                " The actual is the expected with its axes permuted: "
                f"actual = expected.permute{perm}."
            )
    return ""


def _path(keys: Sequence[Any]) -> str:
    parts = []
    for k in keys:
        parts.append(f"[{k!r}]".replace("'", '"') if isinstance(k, str) else f"[{k}]")
    return "".join(parts) or "(top level)"


def _compare(
    actual: Any,
    expected: Any,
    keys: list[Any],
    rtol: float,
    atol: float,
    what: str,
    given: bool = False,
) -> None:
    where = f"{what}: at {_path(keys)}"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            raise AssertionError(
                f"{where}: expected {_describe(expected)}, got {_describe(actual)}."
            )
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            raise AssertionError(
                f"{where}: dict keys differ: missing {missing}, extra {extra} "
                f"(expected keys {list(expected)})."
            )
        for k in expected:
            _compare(actual[k], expected[k], keys + [k], rtol, atol, what, given)
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            raise AssertionError(
                f"{where}: expected {_describe(expected)}, got {_describe(actual)}."
            )
        if len(actual) != len(expected):
            raise AssertionError(
                f"{where}: expected a sequence of length {len(expected)}, "
                f"got length {len(actual)}."
            )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _compare(a, e, keys + [i], rtol, atol, what, given)
        return

    e = _to_float64(expected, where, "expected")
    if e is None:
        raise TypeError(f"{where}: cannot compare with expected {_describe(expected)}.")
    a = _to_float64(actual, where, "actual")
    if a is None:
        raise AssertionError(
            f"{where}: expected {_describe(expected)}, got {_describe(actual)}."
        )
    if a.shape != e.shape:
        hint = _permutation_hint(a, e, rtol, atol)
        if hint:
            hint = (
                " (actual is the transpose of expected)"
                if a.ndim == 2
                else f" ({hint.split(': ', 1)[1].rstrip('.')})"
            )
        raise AssertionError(
            f"{where}: shape {tuple(a.shape)} != expected shape "
            f"{tuple(e.shape)}{hint}; "
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
    hint = _permutation_hint(a, e, rtol, atol) or _factor_hint(a, e, rtol, atol)
    if given and isinstance(actual, torch.Tensor) and actual.dtype in _TOLERANCES:
        eps = torch.finfo(actual.dtype).eps
        if actual.dtype != torch.float64 and rtol < 10 * eps:
            name = str(actual.dtype).removeprefix("torch.")
            hint += (
                f" The actual is {name}, whose resolution is about {eps:.1e} relative: "
                f"rtol={rtol:g} asks for more than {name} holds; compute in float64."
            )
    raise AssertionError(
        f"{where}: {int(bad.sum())} of {a.size} entries differ "
        f"(shape {tuple(a.shape)}, "
        f"expected shape {tuple(e.shape)}); worst at index {index}: "
        f"actual {a[worst]:.10g}, expected {e[worst]:.10g}, "
        f"difference {diff[worst]:.3e} > allowed {allowed[worst]:.3e} "
        f"(rtol={rtol:g}, atol={atol:g}).{hint}"
    )


def _declaration(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.split()) < 3:
        raise TypeError(
            f"{name}= must be a sentence a reader would accept (at least three words) "
            f"saying why; got {value!r}."
        )
    return value.strip()


def _summary(obj: Any) -> list[list[float]]:
    """Per numeric leaf: [size, sum, sum of |x|, a fixed weighted sum] in float64."""
    rows = []
    for leaf in _leaves(obj):
        try:
            arr = _to_float64(leaf, "", "")
        except AssertionError:
            arr = None
        if arr is None:
            continue
        flat = arr.reshape(-1)
        weights = np.cos(np.arange(flat.size, dtype=np.float64))
        with np.errstate(invalid="ignore", over="ignore"):
            rows.append(
                [
                    float(flat.size),
                    float(flat.sum()),
                    float(np.abs(flat).sum()),
                    float(flat @ weights),
                ]
            )
    return rows


def _digest(obj: Any) -> str:
    """SHA-256 of the structure's layout, dtypes, shapes and float64 values."""
    h = hashlib.sha256()

    def walk(o: Any, keys: list[Any]) -> None:
        if isinstance(o, Mapping):
            h.update(f"dict{_path(keys)}{sorted(map(str, o))}".encode())
            for k in o:
                walk(o[k], keys + [k])
            return
        if isinstance(o, (tuple, list)):
            h.update(f"seq{_path(keys)}{len(o)}".encode())
            for i, v in enumerate(o):
                walk(v, keys + [i])
            return
        try:
            arr = _to_float64(o, "", "")
        except AssertionError:
            arr = None
        if arr is None:
            h.update(f"leaf{_path(keys)}{o!r}".encode())
            return
        h.update(f"arr{_path(keys)}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())

    walk(obj, [])
    return h.hexdigest()


def _record(path: str, entry: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _count_lines(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _detached(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, Mapping):
        return {k: _detached(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_detached(v) for v in obj)
    return obj


def _save_values(
    path: pathlib.Path,
    actual: Any,
    expected: Any,
    rtol: float | None,
    atol: float | None,
    dtype: torch.dtype | None,
) -> None:
    """Keep a check's arguments, so a test can replay it with a wrong answer."""
    try:
        torch.save(
            {
                "actual": _detached(actual),
                "expected": _detached(expected),
                "rtol": rtol,
                "atol": atol,
                "dtype": dtype,
            },
            path,
        )
    except Exception:  # a value torch cannot save: the replay skips this check
        path.unlink(missing_ok=True)


def _check_dtype(actual: Any, dtype: torch.dtype, what: str) -> None:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"dtype= must be a torch.dtype such as torch.float64; got {dtype!r}."
        )
    name = str(dtype).removeprefix("torch.")
    leaves = _leaves(actual)
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor):
            if leaf.dtype != dtype:
                got = str(leaf.dtype).removeprefix("torch.")
                where = (
                    "" if len(leaves) == 1 else f" (tensor {i + 1} of {len(leaves)})"
                )
                raise AssertionError(f"{what}: expected {name}, got {got}{where}.")
        elif not isinstance(leaf, (int, float)) or isinstance(leaf, bool):
            raise AssertionError(
                f"{what}: expected {name} tensors, got {_describe(leaf)}."
            )


def assert_close(
    actual: Any,
    expected: Any,
    *,
    what: str,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: torch.dtype | None = None,
    not_autograd: str | None = None,
    expected_from_autograd: str | None = None,
) -> None:
    """Assert that ``actual`` equals ``expected`` in structure, shape and value.

    ``actual`` is what the code under test produced, ``expected`` the reference
    (usually a closed form).  ``what`` says in words what is being checked; it
    is printed after ``✓`` on success and starts the message on failure.
    ``rtol`` and ``atol`` default to :func:`default_tolerances` of ``actual``;
    give both or neither.  Tuples and lists count as the same structure; a
    tensor of shape ``()`` and a Python number have the same shape.

    ``dtype`` (e.g. ``torch.float64``), when given, requires every tensor in
    ``actual`` to have that dtype ("expected float64, got float32").

    Two declarations say what kind of check this is; each is a sentence a
    reader would accept, kept in the chapter's source:

    - ``not_autograd``: the check is not about a value autograd computed (a
      textbook formula against SymPy, a data property, a byte count), so it
      legitimately passes when autograd's derivatives are wrong.
    - ``expected_from_autograd``: the expected side comes from autograd, and
      why that is acceptable.

    Record mode: when the environment variable ``HELPERS_CHECK_RECORD`` names a
    file, every call appends one JSON line to it (``what``, ``passed``,
    ``message``, a digest and summary of the expected and actual values, the
    declarations) and a failing check does not raise.  If
    ``HELPERS_CHECK_VALUES`` also names a directory, each call's ``actual``,
    ``expected``, ``rtol``, ``atol`` and ``dtype`` are saved there with
    :func:`torch.save` as ``NNNNN.pt`` (the record's ``index``).  The
    fault-injection and exercise-message tests use both.  With
    ``HELPERS_CHECK_RECORD_RAISES=1`` a failing check is recorded and then
    raises as usual: ``make test`` records the chapters' clean runs under nbval
    this way, so that a failing check still fails nbval.
    """
    if not isinstance(what, str) or not what.strip():
        raise TypeError(
            "assert_close needs what=..., a few words saying what is checked."
        )
    if (rtol is None) != (atol is None):
        raise TypeError("give both rtol and atol, or neither (to use the defaults).")
    declared = {
        "not_autograd": _declaration("not_autograd", not_autograd),
        "expected_from_autograd": _declaration(
            "expected_from_autograd", expected_from_autograd
        ),
    }
    given = rtol is not None
    if rtol is None or atol is None:
        rtol, atol = default_tolerances(actual)
    if rtol < 0 or atol < 0:
        raise ValueError(
            f"tolerances must be non-negative; got rtol={rtol}, atol={atol}."
        )
    record = os.environ.get("HELPERS_CHECK_RECORD")
    message = None
    try:
        if dtype is not None:
            _check_dtype(actual, dtype, what)
        _compare(actual, expected, [], rtol, atol, what, given)
    except AssertionError as err:
        if not record:
            raise
        message = str(err)
    if record:
        index = _count_lines(record)
        values = os.environ.get("HELPERS_CHECK_VALUES")
        if values:
            _save_values(
                pathlib.Path(values) / f"{index:05d}.pt",
                actual,
                expected,
                rtol if given else None,
                atol if given else None,
                dtype,
            )
        _record(
            record,
            {
                "index": index,
                "what": what,
                "passed": message is None,
                "message": message,
                "expected_digest": _digest(expected),
                "expected_summary": _summary(expected),
                "actual_summary": _summary(actual),
                "rtol": rtol,
                "atol": atol,
                **declared,
            },
        )
        if message is not None:
            if os.environ.get("HELPERS_CHECK_RECORD_RAISES") == "1":
                raise AssertionError(message)
            print(f"✗ {what} (recorded, not raised)", file=sys.stderr)
            return
    print(f"✓ {what}")


# Snapshot the pristine check functions (and numpy, torch.testing) as soon as the
# course's helpers are imported, before any answer cell runs: the graded cells of
# the nbgrader bundle restore them from here (helpers/grading.py).
from helpers import grading as _grading  # noqa: E402, F401
