"""A wrong answer to an exercise gets a message that names the mistake (issue 11).

For every exercise check (a ``check.assert_close`` after ``### END SOLUTION``
whose ``what`` starts with "Exercise"), the chapter's clean run recorded the
check's arguments (``faults.clean_run``: nbval's run of the chapter in ``make
test``, shared with the fault-injection test).  The
right answer is rebuilt from the expected value in the solution's own
structure, dtypes and shapes; it must pass.  Then each plausible mistake that
applies to the answer is fed to the same check, with the same ``what``,
``rtol``, ``atol`` and ``dtype``, and the message must name it:

- float32 where the solution is float64: "expected float64, got float32" (the
  check passes ``dtype=torch.float64``) or "the actual is float32" (its
  tolerances are finer than float32 holds); a float32 answer that passes is a
  check too lenient for a float64 exercise;
- a transposed matrix (2-D, not symmetric): "transpose";
- off by a factor of 2: "off by a factor of 2", where the first value the check
  compares has two different entries; for a single number (or all-equal
  entries) the message must NOT name a factor, which would explain nothing;
- a wrong shape (an extra leading dimension): "!= expected shape";
- a missing dict key: "missing ['key']";
- a sequence one element short: "expected a sequence of length";
- a NaN: "actual has NaN".

A mistake the check cannot tell from the right answer within its own
tolerance (the transpose of a matrix symmetric up to rounding) is skipped.
The same run also shows that no exercise statement quotes its answer: no
decimal number in the statement (between ``exercise-start`` and
``exercise-end``) equals an expected value of the exercise's checks to the digits
it shows. Select one chapter with ``-k 03_``; with ``EXERCISE_REPORT=/path/file.txt`` in
the environment, each chapter's findings are also written there.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
from collections.abc import Mapping

import faults
import numpy as np
import pytest
import torch

from helpers import check

from conftest import CHAPTERS_MD, update_report

END = "### END SOLUTION"


def answer_like(actual, expected):
    """The expected values in the answer's structure, dtypes and shapes."""
    if isinstance(expected, Mapping):
        return {k: answer_like(actual[k], expected[k]) for k in actual}
    if isinstance(expected, (tuple, list)):
        return type(actual)(
            answer_like(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, torch.Tensor):
        e = (
            expected.detach().double()
            if isinstance(expected, torch.Tensor)
            else torch.as_tensor(np.asarray(expected, dtype=np.float64))
        )
        return e.to(actual.dtype).reshape(actual.shape)
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return type(actual)(float(expected))
    return actual


def tensors(obj, path=()):
    """(path, tensor) for every tensor leaf, in the order the check walks them."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from tensors(v, path + (k,))
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from tensors(v, path + (i,))
    elif isinstance(obj, torch.Tensor):
        yield path, obj


def replace(obj, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(obj, Mapping):
        return {k: (replace(v, rest, new) if k == head else v) for k, v in obj.items()}
    return type(obj)(
        replace(v, rest, new) if i == head else v for i, v in enumerate(obj)
    )


def scaled(obj, c):
    if isinstance(obj, Mapping):
        return {k: scaled(v, c) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(scaled(v, c) for v in obj)
    if isinstance(obj, torch.Tensor) and obj.is_floating_point():
        return obj * c
    if isinstance(obj, float):
        return obj * c
    return obj


def as_float32(obj):
    if isinstance(obj, Mapping):
        return {k: as_float32(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(as_float32(v) for v in obj)
    if isinstance(obj, torch.Tensor) and obj.dtype == torch.float64:
        return obj.float()
    return obj


NO_FACTOR = r"^(?!.*factor).*entries differ"


def numbers(obj):
    """Every numeric leaf as a float64 tensor, in the order the check walks them."""
    if isinstance(obj, Mapping):
        for v in obj.values():
            yield from numbers(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from numbers(v)
    elif isinstance(obj, torch.Tensor) and obj.is_floating_point():
        yield obj.detach().double().reshape(-1)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield torch.tensor([float(obj)], dtype=torch.float64)


def first_container(obj, kind, path=()):
    if isinstance(obj, kind) and len(obj) > 1:
        return path, obj
    children = (
        obj.items()
        if isinstance(obj, Mapping)
        else (enumerate(obj) if isinstance(obj, (tuple, list)) else [])
    )
    for k, v in children:
        found = first_container(v, kind, path + (k,))
        if found:
            return found
    return None


def mistakes(answer):
    """(name, wrong answer, pattern the message must contain) for each that applies."""
    leaves = list(tensors(answer))
    floats = [(p, t) for p, t in leaves if t.is_floating_point() and t.numel() > 0]
    if floats and all(t.dtype == torch.float64 for _, t in floats):
        yield "float32 instead of float64", as_float32(answer), r"float32"
    for path, t in floats:
        if (
            t.ndim == 2
            and t.shape[0] * t.shape[1] > 1
            and not (t.shape[0] == t.shape[1] and torch.equal(t, t.T))
        ):
            yield "transposed", replace(answer, path, t.T.contiguous()), r"transpose"
            break
    if any(t.abs().sum() > 0 for _, t in floats):
        first = next(iter(numbers(answer)), None)
        if first is not None and torch.unique(first).numel() >= 2:
            yield "off by a factor of 2", scaled(answer, 2.0), r"off by a factor of 2\b"
        else:
            yield "twice a single number", scaled(answer, 2.0), NO_FACTOR
    if floats:
        path, t = floats[0]
        yield (
            "an extra leading dimension",
            replace(answer, path, t.unsqueeze(0)),
            r"!= expected shape",
        )
        bad = t.detach().clone().reshape(-1)
        bad[0] = float("nan")
        yield "a NaN", replace(answer, path, bad.reshape(t.shape)), r"actual has NaN"
    found = first_container(answer, Mapping)
    if found:
        path, d = found
        key = list(d)[-1]
        short = {k: v for k, v in d.items() if k != key}
        yield (
            f"missing key {key!r}",
            replace(answer, path, short),
            re.escape(f"missing [{key!r}]"),
        )
    found = first_container(answer, (tuple, list))
    if found:
        path, seq = found
        yield (
            "one element short",
            replace(answer, path, type(seq)(seq[:-1])),
            r"expected a sequence of length",
        )


def _indistinguishable(wrong, answer, kwargs) -> bool:
    """The wrong answer is within the check's own tolerance of the right one."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check.assert_close(wrong, answer, **{**kwargs, "dtype": None})
    except AssertionError:
        return False
    return True


def exercise_checks(run):
    for rec in run.records:
        if END in run.sources.get(rec["cell"], "") and rec["what"].startswith(
            "Exercise"
        ):
            yield rec


DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d{2,}(?![\w.])")


def statements(md: pathlib.Path) -> list[str]:
    """The text of each exercise statement of the chapter, in order."""
    text = md.read_text()
    return re.findall(r"\{exercise-start\}.*?\n(.*?)\{exercise-end\}", text, flags=re.S)


def quoted_answers(statement: str, expected) -> list[str]:
    """Decimal numbers of the statement that equal an expected value as shown."""
    values = [
        float(v)
        for t in numbers(expected)
        if t.numel() <= 100
        for v in t.tolist()
        if abs(v - round(v)) > 1e-9 and abs(v) >= 1e-3
    ]
    found = []
    for number in DECIMAL.findall(statement):
        digits = len(number.split(".")[1])
        if any(round(v, digits) == float(number) for v in values):
            found.append(number)
    return found


def wrong_answers_get_messages_that_name_them(md: pathlib.Path, tmp_path_factory):
    """Each plausible wrong answer to each exercise fails with a message naming it."""
    run = faults.clean_run(md, tmp_path_factory)
    problems, tried = [], 0
    texts = statements(md)
    for rec in exercise_checks(run):
        path = pathlib.Path(run.values_dir) / f"{rec['index']:05d}.pt"
        if not path.exists():
            continue
        saved = torch.load(path, weights_only=False)
        number = re.match(r"Exercise \d+\.(\d+)", rec["what"])
        if number and int(number.group(1)) <= len(texts):
            quoted = quoted_answers(texts[int(number.group(1)) - 1], saved["expected"])
            if quoted:
                problems.append(
                    f"{rec['what']!r}: the statement quotes the answer ({quoted})"
                )
        kwargs = {
            "what": rec["what"],
            "rtol": saved["rtol"],
            "atol": saved["atol"],
            "dtype": saved["dtype"],
        }
        answer = answer_like(saved["actual"], saved["expected"])
        try:
            check.assert_close(answer, saved["expected"], **kwargs)
        except AssertionError as err:
            problems.append(f"{rec['what']!r}: the rebuilt right answer fails: {err}")
            continue
        for name, wrong, pattern in mistakes(answer):
            tried += 1
            try:
                check.assert_close(wrong, saved["expected"], **kwargs)
            except AssertionError as err:
                if not re.search(pattern, str(err)):
                    problems.append(
                        f"{rec['what']!r}: {name}: the message does not say "
                        f"so ({pattern!r} not found): {err}"
                    )
                continue
            if "float32" not in name and _indistinguishable(wrong, answer, kwargs):
                tried -= 1  # e.g. the transpose of a matrix symmetric to rounding
                continue
            problems.append(
                f"{rec['what']!r}: {name}: the check passes this wrong answer"
                + (" (pass dtype=torch.float64)" if "float32" in name else "")
            )
    update_report(
        "EXERCISE_REPORT",
        md.stem,
        f"  {tried} wrong answers tried\n" + "".join(f"  {p}\n" for p in problems),
    )
    assert not problems, f"{md.name}: tried {tried} wrong answers:\n" + "\n".join(
        problems
    )
    assert tried or not list(exercise_checks(run)), (
        f"{md.name}: no wrong answer applied"
    )


faults.per_chapter_classes(
    globals(), CHAPTERS_MD, wrong_answers_get_messages_that_name_them
)


# --- the mistakes themselves ----------------------------------------------------------


def test_mistakes_cover_each_answer_type(capsys):
    g = torch.Generator().manual_seed(0)
    m = torch.randn(2, 3, dtype=torch.float64, generator=g)
    answer = {"weight": m, "bias": torch.randn(2, dtype=torch.float64, generator=g)}
    names = [name for name, *_ in mistakes(answer)]
    assert names == [
        "float32 instead of float64",
        "transposed",
        "off by a factor of 2",
        "an extra leading dimension",
        "a NaN",
        "missing key 'bias'",
    ]
    for name, wrong, pattern in mistakes(answer):
        with pytest.raises(AssertionError, match=pattern):
            check.assert_close(wrong, answer, what=name, dtype=torch.float64)
    sym = m @ m.T
    assert "transposed" not in [n for n, *_ in mistakes(sym)]
    pair = (m.float(), m.float().sum())
    names = [name for name, *_ in mistakes(pair)]
    assert "float32 instead of float64" not in names and "one element short" in names


def test_no_factor_for_a_single_number_and_permutations_named():
    one = torch.tensor(1.0, dtype=torch.float64)
    for actual, expected in ((6 * one, one), (one * 3.304, one * 3.30404)):
        with pytest.raises(AssertionError, match=NO_FACTOR):
            check.assert_close(actual, expected, what="scalar")
    names = [name for name, *_ in mistakes(one)]
    assert "twice a single number" in names and "off by a factor of 2" not in names
    cube = torch.arange(27.0, dtype=torch.float64).reshape(3, 3, 3)
    with pytest.raises(AssertionError, match=r"permute\(2, 0, 1\)"):
        check.assert_close(cube.permute(2, 0, 1), cube, what="cube")
    assert quoted_answers("the largest is 3.30 here", one * 3.30404) == ["3.30"]
    assert quoted_answers("n = 3 and 0.25 of it", one * 3.30404) == []


def test_a_lenient_check_is_caught():
    """Without dtype=, a float32 answer passes a default-tolerance check: reported."""
    m = torch.randn(
        3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    name, wrong, _ = next(iter(mistakes(m)))
    check.assert_close(wrong, m, what="lenient")  # passes: the test would report it
    with pytest.raises(AssertionError, match="expected float64, got float32"):
        check.assert_close(wrong, m, what="strict", dtype=torch.float64)
    assert answer_like(torch.zeros(3, 3), m).dtype == torch.float32
