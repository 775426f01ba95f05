r"""Verdicts with a known error rate: is method A faster than method B?

:func:`compare_times` takes the raw per-run times of two methods (seconds; a
run is the mean of ``calls_per_run`` calls) and answers ``"faster"``,
``"slower"`` or ``"tied"`` for A against B.  The rule:

1. **A rank test.**  The Mann-Whitney statistic
   :math:`U = \#\{(i, j) : a_i > b_j\} + \tfrac12 \#\{(i, j) : a_i = b_j\}`
   counts the pairs in which A's run is the slower.  If both samples come from
   one distribution (identical methods), every assignment of the
   :math:`m + n` pooled runs to the two sides is equally likely, so the
   distribution of :math:`U` is known exactly whatever the distribution of
   the times: :func:`u_null_cdf` computes it (exactly for :math:`mn \le`
   ``EXACT_MAX`` without ties, else the normal approximation with the tie
   correction).  The two-sided p-value is
   :math:`2\min\{P(U \le u), P(U \ge u)\}`.
2. **A practical margin.**  Even a real difference is only called one when the
   ratio of medians :math:`\tilde a / \tilde b` is below :math:`1/(1 + \delta)`
   ("faster") or above :math:`1 + \delta` ("slower"); :math:`\delta` is
   ``margin`` (default 5 %).

"faster" needs :math:`p < \alpha` (default :math:`\alpha` = 1 %) *and* the
margin, so for identical methods the chance of a verdict other than "tied" is
at most :math:`\alpha`, at any number of runs: that is the false-positive rate.
With 10 runs each, a true 1.3× difference under 10 % noise (and one run in
ten slowed by up to 50 %) is found in over 90 % of trials
(``tests/test_bench_stats.py`` simulates both; the smallest possible p-value
with 5 runs each is 2/252 ≈ 0.008, so 5 runs can still reach a verdict).
The runs are compared unpaired: the benchmark interleaves its methods in
rounds, so drift during a measurement hits both sides alike; it widens both
spreads (costing power) but favours neither.

:func:`ratio_interval` gives the ratio of medians and the Hodges-Lehmann
interval for the ratio of typical times, :math:`\exp` of the order statistics
of the :math:`mn` pairwise differences :math:`\log a_i - \log b_j` that the
same rank distribution cuts at :math:`\alpha/2` on each side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np

__all__ = [
    "ALPHA",
    "MARGIN",
    "compare",
    "compare_times",
    "mann_whitney_p",
    "quartile_overlap",
    "ratio",
    "ratio_interval",
    "simulated_rate",
    "u_null_cdf",
]

ALPHA = 0.01
MARGIN = 0.05
EXACT_MAX = 2500  # m * n up to which U's distribution is computed exactly

Verdict = Literal["faster", "slower", "tied"]


class HasTimes(Protocol):
    """Anything with per-run times, such as :class:`helpers.bench.measure.Row`."""

    times: tuple[float, ...]


def _checked(times: Sequence[float], name: str) -> list[float]:
    """The times as a list of floats; refuses empty, NaN, infinite, non-positive."""
    if isinstance(times, np.ndarray) and times.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {times.shape}.")
    try:
        t = [float(x) for x in times]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of numbers: {err}") from None
    if not t:
        raise ValueError(f"{name} is empty: need at least one run's time.")
    if not all(math.isfinite(x) for x in t):
        raise ValueError(f"{name} holds NaN or infinite times: {t}.")
    if min(t) <= 0:
        raise ValueError(
            f"{name} holds non-positive times ({min(t):g} s): a time per run "
            "must be positive."
        )
    return t


@lru_cache(maxsize=256)
def _exact_cdf(m: int, n: int) -> np.ndarray:
    """``cdf[u] = P(U <= u)``, ``u = 0 .. mn``, for ``m`` and ``n`` distinct runs.

    The largest of the ``m + n`` runs is A's with probability ``m / (m + n)``
    (then it beats all ``n`` of B's: ``U = n + U(m - 1, n)``) and B's otherwise
    (``U = U(m, n - 1)``); a table over ``(i, j)`` builds the distribution.
    """
    prev = [np.ones(1)] * (n + 1)  # i = 0: U = 0 for every j
    for i in range(1, m + 1):
        row = [np.ones(1)]  # j = 0: U = 0
        for j in range(1, n + 1):
            p = np.zeros(i * j + 1)
            p[j:] += i / (i + j) * prev[j]
            p[: i * (j - 1) + 1] += j / (i + j) * row[j - 1]
            row.append(p)
        prev = row
    return np.minimum(np.cumsum(prev[n]), 1.0)


def u_null_cdf(m: int, n: int) -> np.ndarray:
    """Exact distribution function of U for ``m`` and ``n`` runs without ties."""
    if m < 1 or n < 1:
        raise ValueError(f"need at least one run on each side; got {m} and {n}.")
    return _exact_cdf(m, n)


def _p_value(a: list[float], b: list[float]) -> float:
    m, n = len(a), len(b)
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    pooled = a + b
    distinct = len(set(pooled)) == m + n
    if m * n <= EXACT_MAX and distinct:
        cdf = u_null_cdf(m, n)
        k = int(u)
        lower = cdf[k]
        upper = 1.0 - (cdf[k - 1] if k > 0 else 0.0)
        return float(min(1.0, 2.0 * min(lower, upper)))
    total = m + n
    ties = np.unique(np.asarray(pooled), return_counts=True)[1]
    tie_term = float((ties**3 - ties).sum()) / (total * (total - 1))
    var = m * n / 12.0 * ((total + 1) - tie_term)
    if var <= 0:
        return 1.0
    z = max(0.0, abs(u - m * n / 2.0) - 0.5) / math.sqrt(var)
    return float(math.erfc(z / math.sqrt(2.0)))


def mann_whitney_p(times_a: Sequence[float], times_b: Sequence[float]) -> float:
    """Two-sided p-value of the rank test that A's and B's runs share a distribution."""
    return _p_value(_checked(times_a, "times_a"), _checked(times_b, "times_b"))


def compare_times(
    times_a: Sequence[float],
    times_b: Sequence[float],
    *,
    alpha: float = ALPHA,
    margin: float = MARGIN,
) -> Verdict:
    """``"faster"``, ``"slower"`` or ``"tied"``: A's runs against B's.

    "faster" when the rank test rejects a common distribution at level
    ``alpha`` and A's median is below B's by more than ``margin``
    (ratio of medians below ``1 / (1 + margin)``); "slower" the other way round;
    "tied" otherwise.  For identical methods the rate of "faster" or "slower"
    is at most ``alpha`` (module docstring).  Refuses empty, NaN, infinite and
    non-positive times with a ``ValueError``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}.")
    if margin < 0:
        raise ValueError(f"margin must be non-negative; got {margin}.")
    a, b = _checked(times_a, "times_a"), _checked(times_b, "times_b")
    r = statistics.median(a) / statistics.median(b)
    if _p_value(a, b) >= alpha:
        return "tied"
    if r < 1.0 / (1.0 + margin):
        return "faster"
    if r > 1.0 + margin:
        return "slower"
    return "tied"


def compare(row_a: HasTimes, row_b: HasTimes, **kw: float) -> Verdict:
    """:func:`compare_times` on two rows' per-run times (``row.times``)."""
    return compare_times(row_a.times, row_b.times, **kw)


def ratio_interval(
    times_a: Sequence[float], times_b: Sequence[float], *, alpha: float = ALPHA
) -> tuple[float, float, float]:
    """Ratio of medians A / B, and a ``1 - alpha`` interval for the ratio.

    The interval is Hodges-Lehmann's: with ``d`` the sorted ``mn`` differences
    ``log a_i - log b_j`` (0-based) and ``c`` the largest ``u`` with
    ``P(U <= u) <= alpha / 2``, it is ``(exp d[c], exp d[mn - 1 - c])``, the
    (c + 1)-th differences from either end (the whole range when the samples
    are too small for ``alpha``).  Its coverage is at least ``1 - alpha``
    (99.2 % at 5 runs against 5 for alpha = 1 %).
    """
    a = np.asarray(_checked(times_a, "times_a"))
    b = np.asarray(_checked(times_b, "times_b"))
    d = np.sort((np.log(a)[:, None] - np.log(b)[None, :]).ravel())
    m, n = a.size, b.size
    if m * n <= EXACT_MAX:
        # u = 0, 1, ... c satisfy the bound: c + 1 values, so c is one less
        k = max(0, int((u_null_cdf(m, n) <= alpha / 2).sum()) - 1)
    else:
        z = math.sqrt(2.0) * _erfcinv(alpha)
        k = max(0, int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))))
    k = min(k, (d.size - 1) // 2)
    r = float(np.median(a) / np.median(b))
    return r, float(math.exp(d[k])), float(math.exp(d[d.size - 1 - k]))


def _erfcinv(p: float) -> float:
    """x with erfc(x) = p, by bisection (p in (0, 1))."""
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erfc(mid) > p else (lo, mid)
    return (lo + hi) / 2


def ratio(row_a: HasTimes, row_b: HasTimes) -> tuple[float, float, float]:
    """:func:`ratio_interval` on two rows' per-run times."""
    return ratio_interval(row_a.times, row_b.times)


def simulated_rate(
    rule: Callable[[np.ndarray, np.ndarray], str],
    runs: int,
    ratio: float = 1.0,
    *,
    trials: int = 1000,
    seed: int = 0,
) -> float:
    """How often ``rule(a, b)`` is not "tied" when B's times are ``ratio`` × A's.

    Each trial draws ``runs`` times per side, log-normal with 10 % spread, one
    run in ten slowed by up to 50 % (skewed, like real timings), from a seeded
    generator.  With ``ratio=1`` this is the rule's false-positive rate; with
    ``ratio=1.3`` its power to find a 1.3× difference.
    """
    rng = np.random.default_rng(seed)

    def draw(scale: float) -> np.ndarray:
        t = scale * rng.lognormal(0.0, 0.1, runs)
        slow = rng.random(runs) < 0.1
        return t * np.where(slow, 1 + 0.5 * rng.random(runs), 1.0)

    hits = sum(rule(draw(1.0), draw(ratio)) != "tied" for _ in range(trials))
    return hits / trials


def quartile_overlap(times_a: Sequence[float], times_b: Sequence[float]) -> Verdict:
    """The rule :func:`compare_times` replaced: do the quartile ranges overlap?

    Kept to show its error rate: with 5 runs each, identical methods get
    "faster" or "slower" about one time in five.
    """
    qa = np.quantile(_checked(times_a, "times_a"), [0.25, 0.75])
    qb = np.quantile(_checked(times_b, "times_b"), [0.25, 0.75])
    return "faster" if qa[1] < qb[0] else "slower" if qb[1] < qa[0] else "tied"
