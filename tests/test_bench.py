"""helpers.bench: every method computes the right thing, and the runner reports it."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from helpers import bench, check

SMALL = [
    ("scalar", 4, {}),
    ("mlp", 9, {"d": 2, "batch": 4}),
    ("mlp_overhead", 9, {"d": 2, "batch": 3}),
]
# sizes the benchmark itself measures (1024 points for mlp); the n-pass loops
# only at n = 31, where they take a second
LARGE = [("scalar", 300), ("mlp_overhead", 101), ("mlp", 31)]
SLOW = {"hessian_seed_double_loop", "hessian_row_loop", "hessian_functional"}


@functools.cache
def small_case(problem: str, n: int, sizes: tuple) -> tuple:
    """The small problem and its whole-function SymPy reference, derived once."""
    p = bench.make_problem(problem, n, **dict(sizes))
    return p, bench.closed_form_reference(p)


def tolerance(method: str) -> dict[str, float]:
    # 20 CG steps on an ill-conditioned system amplify rounding differences
    if bench.METHODS[method][0] == "iterative":
        return {"rtol": 1e-6, "atol": 1e-9}
    return {"rtol": 1e-8, "atol": 1e-11}


@pytest.mark.parametrize("problem, n, sizes", SMALL)
def test_closed_form_large_agrees_with_sympy_on_the_whole_function(problem, n, sizes):
    p, (g, H) = small_case(problem, n, tuple(sorted(sizes.items())))
    ref = bench.closed_form_large(p.x, p)
    check.assert_close(
        ref["gradient"], g, what=f"{problem}: gradient", rtol=1e-12, atol=1e-14
    )
    check.assert_close(
        ref["hessian"], H, what=f"{problem}: Hessian", rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("problem, n, sizes", SMALL)
def test_every_method_matches_the_closed_form_small(problem, n, sizes):
    p, (g, H) = small_case(problem, n, tuple(sorted(sizes.items())))
    assert p.n == n
    for method, (kind, prepare) in bench.METHODS.items():
        expected = {
            "gradient": g,
            "hvp": H @ p.v,
            "hvp_amortised": H @ p.v,
            "hessian": H,
        }.get(kind, bench.expected_reference(p, method))
        check.assert_close(
            prepare(p)(), expected, what=f"{problem} {method}", **tolerance(method)
        )


@pytest.mark.parametrize("problem, n", LARGE)
def test_every_method_matches_the_closed_form_at_benchmark_sizes(problem, n):
    p = bench.make_problem(problem, n)
    ref = bench.closed_form_large(p.x, p)
    for method, (_, prepare) in bench.METHODS.items():
        if method in SLOW and n != 31:
            continue  # n separate passes each: checked at n = 31 (1024 points)
        expected = bench.expected_reference(p, method, ref)
        check.assert_close(
            prepare(p)(),
            expected,
            what=f"{problem} n={n} {method}",
            **tolerance(method),
        )


def test_the_reference_is_not_autograd_and_sees_a_small_error():
    p = bench.make_problem("mlp", 101)
    H = bench.closed_form_large(p.x, p)["hessian"]
    hv = bench.hvp_double_backward(p)()
    check.assert_close(hv, H @ p.v, what="H v", rtol=1e-8, atol=1e-11)
    with pytest.raises(AssertionError, match="differ"):
        check.assert_close(
            1.001 * hv, H @ p.v, what="scaled by 1.001", rtol=1e-8, atol=1e-11
        )
    skew = 1 + 1e-4 * torch.linspace(-1, 1, p.n, dtype=hv.dtype)
    with pytest.raises(AssertionError, match="differ"):
        check.assert_close(skew * hv, H @ p.v, what="skewed", rtol=1e-8, atol=1e-11)
    with torch.autograd.set_grad_enabled(False):  # the reference needs no autograd
        again = bench.closed_form_large(p.x, p)["hessian"]
    assert torch.equal(again, H)


def test_gauss_newton_is_the_hessian_without_the_residual_term():
    p = bench.make_problem("mlp", 31)
    ref = bench.closed_form_large(p.x, p)
    G = ref["gauss_newton"]
    assert torch.allclose(G, G.T) and torch.linalg.eigvalsh(G).min() > -1e-12
    assert (ref["hessian"] - G).abs().max() > 1e-3  # the residuals are not zero


def test_compare_and_ratio_use_the_quartiles():
    def row(q1, med, q3):
        return bench.Row("scalar", "m", "hvp", 10, 0, med, q1, q3, 5, 1, 0.0, 0.0)

    fast, slow, near = row(1.0, 1.1, 1.2), row(2.0, 2.2, 2.4), row(1.15, 1.3, 1.5)
    assert bench.compare(fast, slow) == "faster"
    assert bench.compare(slow, fast) == "slower"
    assert bench.compare(fast, near) == "tied"
    r, lo, hi = bench.ratio(slow, fast)
    assert (r, lo, hi) == pytest.approx((2.0, 2.0 / 1.2, 2.4 / 1.0))


def test_peak_memory_sees_an_allocation():
    peak = bench.peak_memory(lambda: torch.ones(4_000_000, dtype=torch.float64))
    if math.isnan(peak):
        pytest.skip("no /proc on this platform")
    assert 30e6 < peak < 80e6, f"expected about 32 MB, got {peak / 1e6:.1f} MB"


def run_quick(tmp_path, *extra):
    # cheap methods, no memory (each memory reading runs a full gc.collect),
    # sizes 3 and 21, which give distinct networks (11 and 21 parameters)
    methods = ["gradient", "hvp_double_backward", "hessian_row_loop"]
    argv = [
        "--out",
        str(tmp_path),
        "--quick",
        "--no-memory",
        "--sizes",
        "3",
        "21",
        "--problems",
        "scalar",
        "mlp_overhead",
        "--methods",
        *methods,
        *extra,
    ]
    assert bench.main(argv) == 0
    return bench.load_results(str(tmp_path / "results.csv")), methods


def test_runner_writes_csv_figures_and_progress(tmp_path, capsys):
    (notes, rows), methods = run_quick(tmp_path)
    assert notes[0].startswith("device cpu; torch ") and "1 thread(s)" in notes[0]
    assert len(rows) == 2 * 2 * 3
    assert {r.method for r in rows} == set(methods)
    assert sorted({(r.problem, r.n) for r in rows}) == [
        ("mlp_overhead", 11),
        ("mlp_overhead", 21),
        ("scalar", 3),
        ("scalar", 21),
    ]
    for r in rows:
        assert r.runs >= 5, f"{r.method}: expected at least 5 runs, got {r.runs}"
        assert 0 < r.q1_s <= r.median_s <= r.q3_s
        assert math.isnan(r.peak_bytes), f"--no-memory, got {r.peak_bytes}"
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "time_mlp_overhead.png",
        "time_scalar.png",
    ]
    out = capsys.readouterr().out
    assert out.count(" median ") == 12 and "[ 12/12]" in out
    header = (tmp_path / "results.csv").read_text().splitlines()
    assert (
        next(ln for ln in header if not ln.startswith("#")).split(",") == bench.COLUMNS
    )


def test_plot_draws_time_and_memory_per_problem(tmp_path):
    def row(problem, method, n, peak):
        t = 1e-3 * n
        return bench.Row(problem, method, "hvp", n, 0, t, t, t, 5, 1, 0.0, peak)

    rows = [
        row("scalar", "gradient", 10, 1e6),
        row("scalar", "gradient", 100, 2e6),
        row("mlp", "gradient", 11, math.nan),  # no memory: no memory figure
        row("mlp", "gradient", 101, math.nan),
    ]
    written = bench.plot(rows, str(tmp_path))
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == [
        "memory_scalar.png",
        "time_mlp.png",
        "time_scalar.png",
    ]


def test_runner_skips_what_would_exceed_the_cap(capsys):
    tiny = bench.Budget(min_time=0.0, max_time=0.0, run_s=0.0, cap_s=1e-9)
    rows = bench.run(
        ["scalar"], {"scalar": [3, 6]}, ["hessian_row_loop"], budget=tiny, memory=False
    )
    assert [r.n for r in rows] == [3]
    assert "skipped (~" in capsys.readouterr().out


def test_results_path_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    assert bench.default_results_path().endswith("bench_results.csv")
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "mine.csv"))
    assert bench.default_results_path() == str(tmp_path / "mine.csv")


def test_unknown_problem_method_and_device_are_refused():
    with pytest.raises(ValueError, match="unknown problem 'cnn'"):
        bench.make_problem("cnn", 10)
    with pytest.raises(SystemExit):
        bench.main(["--methods", "magic"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench.main(["--device", "cuda"])


GPU = (
    "cuda"
    if torch.cuda.is_available()
    else "mps"
    if torch.backends.mps.is_available()
    else None
)


@pytest.mark.skipif(
    GPU is None,
    reason="no CUDA or MPS device on this machine; "
    "the GPU path (synchronise, allocator memory) is not exercised",
)
def test_gpu_runner(tmp_path):
    methods = ["gradient", "hvp_double_backward", "hessian_vmap_hvp"]
    assert (
        bench.main(
            [
                "--out",
                str(tmp_path),
                "--quick",
                "--device",
                GPU,
                "--sizes",
                "30",
                "--problems",
                "scalar",
                "--methods",
                *methods,
            ]
        )
        == 0
    )
    notes, rows = bench.load_results(str(tmp_path / "results.csv"))
    assert notes[0].startswith(f"device {GPU}")
    assert {r.method for r in rows} == set(methods)
    assert all(r.peak_bytes > 0 for r in rows if r.method == "hessian_vmap_hvp")
    p = bench.make_problem("scalar", 30, device=GPU)
    check.assert_close(
        bench.hessian_vmap_hvp(p)().cpu(),
        bench.expected_reference(p, "hessian_vmap_hvp"),
        what=f"vmap Hessian on {GPU}",
        rtol=1e-8,
        atol=1e-11,
    )


def test_shipped_results_cover_every_problem_and_method():
    notes, rows = bench.load_results(bench.default_results_path())
    assert notes[0].startswith("device ") and "torch " in notes[0]
    assert {r.method for r in rows} == set(bench.METHODS)
    assert {r.problem for r in rows} == set(bench.PROBLEMS)
    assert max(r.n for r in rows if r.problem == "scalar") >= 1000
    for r in rows:
        assert r.runs >= 5, f"{r.problem} {r.method} n={r.n}: {r.runs} runs, need >= 5"
        assert r.q1_s <= r.median_s <= r.q3_s
    with open(bench.default_results_path()) as fh:
        assert all(len(line) < 200 for line in fh)
