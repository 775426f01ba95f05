"""Command line: ``python -m helpers.bench --out _build/bench`` (``make bench``).

Times every method on every problem and size in interleaved rounds, float64
and (for the main methods) float32, then Part V's data-set products; writes
``results.csv`` (header: machine, budget, what was skipped, load, wall time)
and one time and one memory figure per problem into ``--out``.  ``--quick``
is a small version for development (a minute or two).  It never writes into
the package.

Maintainer step: to ship a run with the course, on a quiet machine run
``make bench``, then ``cp _build/bench/results.csv src/helpers/bench_results.csv``
and re-execute chapter 12 (``.venv/bin/python scripts/execute.py
notebooks/12_which_method_when.md``).  Readers point chapter 12 at their own
run with ``BENCH_RESULTS=path/to/results.csv`` instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from helpers.bench.measure import QUICK, Budget, load_average, machine_notes, run
from helpers.bench.methods import MEMORY_METHODS, METHODS
from helpers.bench.problems import PROBLEMS
from helpers.bench.report import plot, write_csv

DEFAULT_SIZES = {
    "scalar": [10, 30, 100, 300, 1000, 2000],
    "mlp": [11, 31, 101, 301, 1001, 3001],
    "mlp_overhead": [11, 101, 1001],
}
QUICK_SIZES = {
    "scalar": [10, 30, 100],
    "mlp": [11, 31, 101, 301],
    "mlp_overhead": [11, 31],
}


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark, write the CSV and the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--out", default="_build/bench", help="output folder")
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or mps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sizes", type=int, nargs="*", help="n values, every problem")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument(
        "--dtypes",
        nargs="*",
        default=["float64", "float32"],
        choices=["float64", "float32"],
    )
    parser.add_argument("--rounds", type=int, help="timed rounds (default 10, quick 6)")
    parser.add_argument("--memory-budget", type=float, help="bytes (default 1e9)")
    parser.add_argument("--no-memory", action="store_true", help="skip memory")
    parser.add_argument(
        "--no-dataset", action="store_true", help="skip Part V's data-set products"
    )
    parser.add_argument("--note", default="", help="a line for the CSV header")
    args = parser.parse_args(argv)

    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    bad = set(args.problems) - set(PROBLEMS)
    if bad:
        parser.error(f"unknown problems {sorted(bad)}; choose from {list(PROBLEMS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build sees no CUDA device")
    if args.device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: no MPS device is available")
    torch.set_num_threads(args.threads)
    base = QUICK if args.quick else Budget()
    budget = Budget(
        rounds=args.rounds or base.rounds,
        run_s=base.run_s,
        cap_s=base.cap_s,
        memory_bytes=args.memory_budget or base.memory_bytes,
        memory_cap_s=base.memory_cap_s,
    )
    table = QUICK_SIZES if args.quick else DEFAULT_SIZES
    sizes = {pr: args.sizes or table[pr] for pr in args.problems}
    os.makedirs(args.out, exist_ok=True)
    notes = machine_notes(args.device, args.threads)
    notes.append(
        f"budget: {budget.rounds} interleaved rounds, runs of about "
        f"{budget.run_s * 1e3:g} ms; cap {budget.cap_s:g} s a call "
        f"({budget.memory_cap_s:g} s for {', '.join(MEMORY_METHODS)}); memory budget "
        f"{budget.memory_bytes / 1e9:g} GB; dtypes {' '.join(args.dtypes)}"
        + ("; quick" if args.quick else "")
    )
    if args.note:
        notes.append(args.note)
    print("Benchmark: " + " | ".join(notes), flush=True)
    start = time.perf_counter()
    skipped: list[str] = []
    rows = run(
        args.problems,
        sizes,
        args.methods,
        budget=budget,
        memory=not args.no_memory,
        device=args.device,
        dtypes=tuple(args.dtypes),
        progress=lambda s: print(s, flush=True),
        skipped=skipped,
    )
    if not args.no_dataset and args.device == "cpu":
        from helpers.bench.dataset import dataset_rows

        rows += dataset_rows(
            budget, memory=not args.no_memory, progress=lambda s: print(s, flush=True)
        )
    notes += skipped
    notes.append(f"load average after (1, 5, 15 min): {load_average()}")
    notes.append(f"wall time {time.perf_counter() - start:.0f} s")
    csv_path = os.path.join(args.out, "results.csv")
    write_csv(rows, csv_path, notes)
    figures = plot(rows, args.out)
    print(
        f"wrote {csv_path} and {len(figures)} figures in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
