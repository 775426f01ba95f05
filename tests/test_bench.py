"""helpers.bench: every method computes the right thing, and the runner reports it."""

from __future__ import annotations

import functools
import math
import time

import pytest
import torch

from helpers import bench, check
from helpers.bench.__main__ import main as bench_main

SMALL = [
    ("scalar", 4, {}),
    ("mlp", 9, {"d": 2, "batch": 4}),
    ("mlp_overhead", 9, {"d": 2, "batch": 3}),
]
# sizes the benchmark itself measures (1024 points for mlp); the n-pass loops
# only at n = 31, where they take a second
LARGE = [("scalar", 300), ("mlp_overhead", 101), ("mlp", 31)]
SLOW = {"hessian_double_loop", "hessian_row_loop", "hessian_functional"}


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
    hv = bench.methods.hvp_double_backward(p)()
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


def row(problem="scalar", method="m", n=10, times=(1.0,), peak=0.0, dtype="float64"):
    q1, med, q3 = bench.measure.quartiles(list(times))
    return bench.Row(
        problem,
        method,
        "hvp",
        dtype,
        n,
        0,
        med,
        q1,
        q3,
        len(times),
        1,
        0.0,
        peak,
        tuple(times),
    )


def test_compare_and_ratio_use_the_per_run_times():
    fast = row(times=(1.0, 1.1, 1.05, 0.98, 1.02, 1.01))
    slow = row(times=(2.0, 2.2, 2.1, 1.9, 2.05, 2.02))
    assert bench.compare(fast, slow) == "faster"
    assert bench.compare(slow, fast) == "slower"
    assert bench.compare(fast, fast) == "tied"
    r, lo, hi = bench.ratio(slow, fast)
    assert r == pytest.approx(2.035 / 1.015) and lo < r < hi


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
    assert bench_main([*argv, "--no-dataset", "--dtypes", "float64"]) == 0
    return bench.load_results(str(tmp_path / "results.csv")), methods


def test_runner_writes_csv_figures_and_progress(tmp_path, capsys):
    (notes, rows), methods = run_quick(tmp_path)
    assert notes[0].startswith("device cpu; 1 torch thread(s); cpu ")
    assert notes[1].startswith("torch ") and "build" in notes[1]
    assert notes[2].startswith("load average before") and notes[-1].startswith("wall")
    assert notes[-2].startswith("load average after")
    assert len(rows) == 2 * 2 * 3
    assert {r.method for r in rows} == set(methods)
    assert sorted({(r.problem, r.n) for r in rows}) == [
        ("mlp_overhead", 11),
        ("mlp_overhead", 21),
        ("scalar", 3),
        ("scalar", 21),
    ]
    for r in rows:
        assert r.runs == bench.QUICK.rounds == len(r.times), f"{r.method}: {r.runs}"
        assert 0 < r.q1_s <= r.median_s <= r.q3_s
        assert math.isnan(r.peak_bytes), f"--no-memory, got {r.peak_bytes}"
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "time_mlp_overhead.png",
        "time_scalar.png",
    ]
    out = capsys.readouterr().out
    assert out.count(" 3 methods x 6 rounds") == 4
    header = (tmp_path / "results.csv").read_text().splitlines()
    assert (
        next(ln for ln in header if not ln.startswith("#")).split(",") == bench.COLUMNS
    )


def test_plot_draws_time_and_memory_per_problem(tmp_path):
    rows = [
        row("scalar", "gradient", 10, (1e-2,), 1e6),
        row("scalar", "gradient", 100, (1e-1,), 2e6),
        row("mlp", "gradient", 11, (1e-2,), math.nan),  # no memory: no memory figure
        row("mlp", "gradient", 101, (1e-1,), math.nan),
    ]
    written = bench.plot(rows, str(tmp_path))
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == [
        "memory_scalar.png",
        "time_mlp.png",
        "time_scalar.png",
    ]


def test_extrapolation_and_the_cap():
    # one size measured, over 10 ms: the full power (n passes of n^2 arithmetic)
    guess, mem = bench.measure._extrapolate(
        [(10, 0.5, 1e6)], 20, "scalar", "hessian_row_loop"
    )
    assert guess == pytest.approx(0.5 * 2**3) and mem == pytest.approx(2e6)
    # two sizes: the measured slope plus one half
    guess, _ = bench.measure._extrapolate(
        [(10, 0.001, 1.0), (20, 0.002, 1.0)], 40, "scalar", "hessian_func"
    )
    assert guess == pytest.approx(0.002 * 2**1.5)
    dropped = []
    out = bench.time_rounds(
        {"slow": lambda: time.sleep(0.05), "fast": lambda: None},
        rounds=2,
        run_s=0.0,
        cap_s=0.01,
        dropped=dropped,
    )
    assert dropped == ["slow"] and list(out) == ["fast"]


def test_runner_skips_what_would_exceed_the_memory_budget():
    small = bench.Budget(rounds=2, run_s=0.0, cap_s=100.0, memory_bytes=2e5)
    skipped = []
    rows = bench.run(
        ["scalar"],
        {"scalar": [40, 160]},
        ["hessian_jacrev_jacrev"],
        budget=small,
        memory=True,
        skipped=skipped,
        progress=lambda s: None,
    )
    assert [r.n for r in rows] == [40] and rows[0].peak_bytes > 8 * 40 * 40
    assert "GB > memory budget" in skipped[0]


def test_chunked_methods_run_only_where_they_chunk():
    rows = bench.run(
        ["scalar"],
        {"scalar": [10, 20]},
        ["hessian_jacrev_chunk16", "hessian_jacrev_chunk128", "gradient"],
        budget=bench.Budget(rounds=2, run_s=0.0),
        memory=False,
        progress=lambda s: None,
    )
    assert sorted((r.method, r.n) for r in rows) == [
        ("gradient", 10),
        ("gradient", 20),
        ("hessian_jacrev_chunk16", 20),
    ]
    assert not bench.applies("hessian_jacrev_chunk128", 128)
    assert bench.applies("hessian_jacrev_chunk128", 129)


def test_rounds_are_interleaved():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in "abc"}
    out = bench.time_rounds(calls, rounds=3, run_s=0.0)
    assert {k: len(v[0]) for k, v in out.items()} == {"a": 3, "b": 3, "c": 3}
    timed = order[6:]  # after two warm-up calls each
    assert timed == list("abcbcacab"), timed


def test_float32_rows_beside_float64():
    rows = bench.run(
        ["scalar"],
        {"scalar": [12]},
        ["gradient", "hessian_row_loop"],
        budget=bench.Budget(rounds=2, run_s=0.0),
        memory=False,
        dtypes=("float64", "float32"),
        progress=lambda s: None,
    )
    assert sorted((r.method, r.dtype) for r in rows) == [
        ("gradient", "float32"),
        ("gradient", "float64"),
        ("hessian_row_loop", "float64"),
    ]


def test_results_path_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    assert bench.default_results_path().endswith("bench_results.csv")
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "mine.csv"))
    assert bench.default_results_path() == str(tmp_path / "mine.csv")


def test_unknown_problem_method_and_device_are_refused():
    with pytest.raises(ValueError, match="unknown problem 'cnn'"):
        bench.make_problem("cnn", 10)
    with pytest.raises(SystemExit):
        bench_main(["--methods", "magic"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench_main(["--device", "cuda"])


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
        bench_main(
            [
                "--no-dataset",
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
        bench.methods.hessian_vmap_hvp(p)().cpu(),
        bench.expected_reference(p, "hessian_vmap_hvp"),
        what=f"vmap Hessian on {GPU}",
        rtol=1e-8,
        atol=1e-11,
    )


def test_shipped_results_cover_every_problem_and_method():
    notes, rows = bench.load_results(bench.default_results_path())
    assert notes[0].startswith("device ") and " cpu " in notes[0]
    assert any(n.startswith("load average after") for n in notes)
    assert any(n.startswith("wall time") for n in notes)
    assert {r.method for r in rows} >= set(bench.METHODS)
    assert {r.problem for r in rows} >= set(bench.PROBLEMS)
    assert {r.dtype for r in rows} == {"float64", "float32"}
    assert {r.method for r in rows if r.problem == "digits"} == set(
        bench.dataset.DATASET_METHODS
    )
    for r in rows:
        assert r.runs == len(r.times) >= 5, f"{r.problem} {r.method} n={r.n}: {r.runs}"
        assert r.q1_s <= r.median_s <= r.q3_s
        assert bench.applies(r.method, r.n), f"{r.method} at n={r.n} does not chunk"
    with open(bench.default_results_path()) as fh:
        assert all(len(line) < 400 for line in fh)


def test_dataset_rows_time_part_v_products():
    rows = bench.dataset.dataset_rows(
        bench.Budget(rounds=2, run_s=0.0), memory=False, epochs=1, progress=print
    )
    assert [r.method for r in rows] == list(bench.dataset.DATASET_METHODS)
    for r in rows:
        assert r.problem == "digits" and r.runs == 2 == len(r.times)
        assert r.n == rows[0].n > 0 and r.batch == rows[0].batch > 0
        assert 0 < r.q1_s <= r.median_s <= r.q3_s
