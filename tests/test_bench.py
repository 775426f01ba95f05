"""helpers.bench: every method computes the right thing, and the runner writes its results."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from helpers import bench, check


@pytest.mark.parametrize("problem, n, sizes", [("scalar", 4, {}), ("mlp", 9, {"d": 2, "batch": 4})])
def test_every_method_matches_the_closed_form(problem, n, sizes):
    p = bench.make_problem(problem, n, **sizes)
    assert p.n == n
    g, H = bench.closed_form_reference(p)
    for method, (kind, fn) in bench.METHODS.items():
        expected = {"gradient": g, "hvp": H @ p.v, "hessian": H}[kind]
        check.assert_close(fn(p), expected, what=f"{problem} {method}", rtol=1e-9, atol=1e-12)


def test_wrong_method_would_fail():
    p = bench.make_problem("scalar", 4)
    _, H = bench.closed_form_reference(p)
    with pytest.raises(AssertionError):
        check.assert_close(bench.hvp_fwd_rev(p), H.T @ (p.v + 1e-6), what="perturbed direction")


def test_peak_memory_sees_an_allocation():
    peak = bench.peak_memory(lambda: torch.ones(4_000_000, dtype=torch.float64))  # 32 MB
    if math.isnan(peak):
        pytest.skip("no /proc on this platform")
    assert 30e6 < peak < 80e6


def test_runner_writes_csv_and_figures(tmp_path, capsys):
    assert bench.main(["--out", str(tmp_path), "--quick", "--sizes", "3", "6",
                       "--methods", "gradient", "hessian_func", "hessian_row_loop", "--no-memory"]) == 0
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("# torch ") and "1 thread(s)" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert len(rows) == 2 * 2 * 3
    assert {r["method"] for r in rows} == {"gradient", "hessian_func", "hessian_row_loop"}
    assert all(float(r["median_s"]) > 0 for r in rows)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["time_mlp.png", "time_scalar.png"]
    assert "[ 12/12]" in capsys.readouterr().out


def test_unknown_problem_and_method_are_refused():
    with pytest.raises(ValueError, match="unknown problem 'cnn'"):
        bench.make_problem("cnn", 10)
    with pytest.raises(SystemExit):
        bench.main(["--methods", "magic"])



def test_shipped_results_load_and_cover_every_method():
    note, rows = bench.load_results()
    assert note.startswith("torch ") and "thread" in note
    assert {r.method for r in rows} == set(bench.METHODS)
    assert {r.problem for r in rows} == {"scalar", "mlp"}
    assert max(r.n for r in rows) >= 1000
