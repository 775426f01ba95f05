"""helpers.bench.stats: the verdict rule's error rates, by seeded simulation.

The benchmark times every method in ``Budget().rounds`` rounds (``QUICK``: 6),
so each comparison is between two samples of that many runs.  Run times are
drawn log-normal with 10 % spread, with one run in ten slowed by up to 50 %
(an interrupt, another process): skewed, like real timings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import bench

TRIALS = 1000
RUN_COUNTS = sorted({5, bench.QUICK.rounds, bench.Budget().rounds, 20})


def draw(rng: np.random.Generator, runs: int, scale: float = 1.0) -> np.ndarray:
    t = scale * rng.lognormal(0.0, 0.1, runs)
    slow = rng.random(runs) < 0.1
    return t * np.where(slow, 1 + 0.5 * rng.random(runs), 1.0)


def verdict_rate(rule, runs: int, ratio: float, seed: int) -> float:
    return bench.stats.simulated_rate(rule, runs, ratio, trials=TRIALS, seed=seed)


def iqr_overlap_rule(a, b) -> str:
    """The old rule, written out here: "faster" when the quartile ranges are apart."""
    qa, qb = np.quantile(a, [0.25, 0.75]), np.quantile(b, [0.25, 0.75])
    return "faster" if qa[1] < qb[0] else "slower" if qb[1] < qa[0] else "tied"


@pytest.mark.parametrize("runs", RUN_COUNTS)
def test_identical_methods_get_a_verdict_at_most_5_percent_of_the_time(runs):
    rate = verdict_rate(bench.compare_times, runs, 1.0, seed=runs)
    # the rank test's level is ALPHA = 1 %; 5 % is the bound
    assert rate <= 0.05, f"{runs} runs: identical methods differ in {rate:.1%}"
    assert rate <= 3 * bench.ALPHA, f"{runs} runs: {rate:.1%}, level {bench.ALPHA}"


def test_a_true_30_percent_difference_is_found_with_10_runs():
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(TRIALS):
        a, b = draw(rng, 10), draw(rng, 10, 1.3)
        found += bench.compare_times(a, b) == "faster"
        assert bench.compare_times(b, a) != "faster"
    assert found / TRIALS >= 0.8, f"found in {found / TRIALS:.1%} of trials"


def test_the_old_iqr_overlap_rule_fails_the_bound_at_5_runs():
    """The same test catches a wrong rule: quartile overlap at 5 runs."""
    rate = verdict_rate(iqr_overlap_rule, 5, 1.0, seed=5)
    assert rate > 0.05, f"expected the overlap rule to exceed 5 %, got {rate:.1%}"
    assert verdict_rate(bench.stats.quartile_overlap, 5, 1.0, seed=5) == rate


def test_the_simulation_sees_a_rule_that_always_answers():
    assert verdict_rate(lambda a, b: "faster", 5, 1.0, seed=0) == 1.0
    assert verdict_rate(lambda a, b: "tied", 5, 1.3, seed=0) == 0.0


def test_the_margin_turns_small_real_differences_into_ties():
    a = [1.00, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08, 1.09]
    b = [x * 1.03 + 0.2 for x in a]  # every b slower: the rank test rejects
    assert bench.mann_whitney_p(a, b) < bench.ALPHA
    assert bench.compare_times(a, b, margin=0.5) == "tied"
    assert bench.compare_times(a, b, margin=0.0) == "faster"


def test_the_exact_distribution_and_the_p_value():
    cdf = bench.stats.u_null_cdf(5, 5)
    assert cdf[0] == pytest.approx(1 / math.comb(10, 5))
    assert cdf[-1] == pytest.approx(1.0)
    assert bench.mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(
        2 / 252
    )
    # beyond EXACT_MAX pairs, the normal approximation, still near the exact value
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(0, 0.1, 60), rng.lognormal(0.05, 0.1, 60)
    assert 0 < bench.mann_whitney_p(a, b) < 1


def test_the_ratio_interval_covers_the_ratio_of_medians():
    a = [2.0, 2.1, 1.9, 2.05, 1.95, 2.02, 1.98, 2.01, 2.03, 1.97]
    b = [1.0, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97]
    r, lo, hi = bench.ratio_interval(a, b)
    assert r == pytest.approx(2.005 / 1.0) and lo < r < hi
    assert 1.8 < lo and hi < 2.2


def test_the_ratio_interval_has_its_stated_coverage():
    """A 99 % interval at 5 runs against 5 covers the true ratio (here 1) in at
    least 99 % of seeded trials (exactly 99.2 % for continuous times); one
    difference too far in from either end covers only 98.4 %."""
    rng = np.random.default_rng(7)
    trials = 20000
    covered = 0
    for _ in range(trials):
        a, b = rng.lognormal(0, 0.1, 5), rng.lognormal(0, 0.1, 5)
        _, lo, hi = bench.ratio_interval(a, b, alpha=0.01)
        covered += lo <= 1.0 <= hi
    assert covered / trials >= 0.989, covered / trials


@pytest.mark.parametrize(
    "a, match",
    [
        ([], "times_a is empty"),
        ([1.0, float("nan")], "NaN or infinite"),
        ([1.0, float("inf")], "NaN or infinite"),
        ([1.0, 0.0], "non-positive"),
        ([1.0, -2.0], "non-positive"),
        (["fast"], "sequence of numbers"),
        (np.ones((2, 2)), "one-dimensional"),
    ],
)
def test_compare_times_refuses_bad_input(a, match):
    with pytest.raises(ValueError, match=match):
        bench.compare_times(a, [1.0, 1.1])
    with pytest.raises(ValueError, match=match.replace("times_a", "times_b")):
        bench.compare_times([1.0, 1.1], a)


def test_compare_times_refuses_bad_settings():
    with pytest.raises(ValueError, match="alpha"):
        bench.compare_times([1.0], [1.0], alpha=0)
    with pytest.raises(ValueError, match="margin"):
        bench.compare_times([1.0], [1.0], margin=-0.1)
