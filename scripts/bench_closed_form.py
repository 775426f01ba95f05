"""Time the parameter Hessian in closed form: per-sample route against today's.

Two models no chapter uses at these sizes:

* ``logistic``: logistic regression, 10 features plus a bias (11 parameters),
  mean negative log-likelihood;
* ``mlp``: a 4-8-1 tanh MLP with mean squared error (49 parameters).

For each N (default 10^2 ... 10^5) it times, in a fresh SymPy cache,

* the per-sample route, ``param_hessian(sample_loss, params, reduce="mean",
  **data)``: derivation plus evaluation, then evaluation alone (derivation
  cached);
* today's route, ``param_hessian(batch_loss, params, **data)``, whose loss is
  written over all N samples, in a child process stopped after ``--old-limit``
  CPU seconds; once it takes more than ``--old-cap`` CPU seconds at some N,
  larger N are not run (its cost grows at least linearly in N).

Times are wall-clock and CPU seconds of the process: on a shared machine the
wall-clock time grows with the other processes' load, the CPU time much less.

Every Hessian is compared with ``torch.func.hessian`` in float64 (max |diff|).
Times are printed, never asserted.

Usage::

    .venv/bin/python scripts/bench_closed_form.py
    .venv/bin/python scripts/bench_closed_form.py --sizes 100 1000 --models mlp
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import sympy
import torch

from helpers import closed_form

F64 = torch.float64


# --- the two models: one-sample loss, whole-batch loss, torch loss ---------


def logistic_one(weight: Any, bias: Any, x: Any, y: Any) -> Any:
    z = (weight * x)[0, 0] + bias[0]
    return sympy.log(1 + sympy.exp(z)) - y * z


def logistic_batch(weight: Any, bias: Any, X: Any, y: Any) -> Any:
    n = X.shape[0]
    z = X * weight.T + sympy.ones(n, 1) * bias[0]
    return sum(sympy.log(1 + sympy.exp(z[i])) - y[i] * z[i] for i in range(n)) / n


def logistic_torch(p: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> Any:
    z = X @ p["weight"].T[:, 0] + p["bias"][0]
    return torch.nn.functional.softplus(z).mean() - (y * z).mean()


def mlp_one(**p: Any) -> Any:
    hidden = (p["0.weight"] * p["x"] + p["0.bias"]).applyfunc(sympy.tanh)
    out = (p["2.weight"] * hidden)[0, 0] + p["2.bias"][0]
    return (out - p["y"]) ** 2


def mlp_batch(**p: Any) -> Any:
    X, y = p["X"], p["y"]
    total = 0
    for i in range(X.shape[0]):
        hidden = (p["0.weight"] * X[i, :].T + p["0.bias"]).applyfunc(sympy.tanh)
        total += ((p["2.weight"] * hidden)[0, 0] + p["2.bias"][0] - y[i]) ** 2
    return total / X.shape[0]


def mlp_torch(p: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> Any:
    hidden = torch.tanh(X @ p["0.weight"].T + p["0.bias"])
    out = hidden @ p["2.weight"].T[:, 0] + p["2.bias"][0]
    return ((out - y) ** 2).mean()


Data = tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]


def make(model: str, n: int) -> Data:
    """Seeded parameters and data for ``model`` with ``n`` samples."""
    gen = torch.Generator().manual_seed(0)
    if model == "logistic":
        params = {
            "weight": 0.3 * torch.randn(1, 10, generator=gen, dtype=F64),
            "bias": torch.randn(1, generator=gen, dtype=F64),
        }
        X = torch.randn(n, 10, generator=gen, dtype=F64)
        prob = torch.sigmoid(X @ params["weight"][0] + params["bias"])
        y = torch.bernoulli(prob, generator=gen)
        return params, X, y
    params = {
        "0.weight": 0.5 * torch.randn(8, 4, generator=gen, dtype=F64),
        "0.bias": 0.1 * torch.randn(8, generator=gen, dtype=F64),
        "2.weight": 0.5 * torch.randn(1, 8, generator=gen, dtype=F64),
        "2.bias": 0.1 * torch.randn(1, generator=gen, dtype=F64),
    }
    X = torch.randn(n, 4, generator=gen, dtype=F64)
    y = torch.sin(X[:, 0]) + 0.1 * torch.randn(n, generator=gen, dtype=F64)
    return params, X, y


ONE: dict[str, Callable[..., Any]] = {"logistic": logistic_one, "mlp": mlp_one}
BATCH: dict[str, Callable[..., Any]] = {"logistic": logistic_batch, "mlp": mlp_batch}
TORCH: dict[str, Callable[..., Any]] = {"logistic": logistic_torch, "mlp": mlp_torch}


def flat(
    blocks: dict[str, dict[str, torch.Tensor]], params: dict[str, torch.Tensor]
) -> torch.Tensor:
    sizes = [p.numel() for p in params.values()]
    rows = [
        torch.cat(
            [blocks[a][b].reshape(sa, sb) for b, sb in zip(params, sizes, strict=True)],
            1,
        )
        for a, sa in zip(params, sizes, strict=True)
    ]
    return torch.cat(rows, 0)


def torch_gap(
    model: str,
    params: dict[str, torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    blocks: dict[str, dict[str, torch.Tensor]],
) -> float:
    """max |closed form - torch.func.hessian| over all entries, float64."""
    auto = torch.func.hessian(lambda p: TORCH[model](p, X, y))(params)
    return float((flat(blocks, params) - flat(auto, params)).abs().max())


def fresh() -> None:
    closed_form._derive.cache_clear()
    closed_form._derive_per_sample.cache_clear()
    sympy.core.cache.clear_cache()


def time_new(model: str, n: int) -> tuple[float, float, float, float]:
    """(wall, CPU) seconds of derivation + evaluation, wall of evaluation, gap."""
    params, X, y = make(model, n)
    fresh()
    start, cpu = time.perf_counter(), time.process_time()
    blocks = closed_form.param_hessian(ONE[model], params, reduce="mean", x=X, y=y)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    closed_form.param_hessian(ONE[model], params, reduce="mean", x=X, y=y)
    evaluate = time.perf_counter() - start
    return total, total_cpu, evaluate, torch_gap(model, params, X, y, blocks)


def run_old(model: str, n: int) -> None:
    """Child process: today's route at N = n; prints 'wall cpu gap'."""
    params, X, y = make(model, n)
    fresh()
    start, cpu = time.perf_counter(), time.process_time()
    blocks = closed_form.param_hessian(BATCH[model], params, X=X, y=y)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{seconds} {cpu} {torch_gap(model, params, X, y, blocks)}")


def time_old(model: str, n: int, cpu_limit: int) -> tuple[float, float, float] | None:
    """Today's route in a child process limited to ``cpu_limit`` CPU seconds."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 5))

    cmd = [sys.executable, __file__, "--old", model, str(n)]
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            timeout=30 * cpu_limit,
            preexec_fn=limit,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    seconds, cpu, gap = done.stdout.split()
    return float(seconds), float(cpu), float(gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 100, 1_000, 10_000, 100_000]
    )
    parser.add_argument(
        "--models", nargs="+", default=["logistic", "mlp"], choices=["logistic", "mlp"]
    )
    parser.add_argument(
        "--old-limit",
        type=int,
        default=60,
        help="CPU seconds after which today's route is stopped",
    )
    parser.add_argument(
        "--old-cap",
        type=float,
        default=30.0,
        help="CPU seconds above which larger N are not tried",
    )
    parser.add_argument("--no-old", action="store_true", help="skip today's route")
    parser.add_argument(
        "--old", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.old:
        run_old(args.old[0], int(args.old[1]))
        return
    torch.set_num_threads(1)
    print("Parameter Hessian in closed form, seconds in this run: wall-clock and")
    print("CPU time of this process (the machine may be shared, so wall is noisy).")
    print("new = per-sample route (reduce='mean'): derivation + evaluation, and")
    print("      evaluation alone (derivation cached);")
    print("old = today's route (loss written over all N samples);")
    print("gap = max |closed form - torch.func.hessian| (float64).")
    for model in args.models:
        n_params = sum(p.numel() for p in make(model, 1)[0].values())
        print(f"\n{model} ({n_params} parameters)")
        print(
            f"{'N':>7} | {'new wall':>8} {'cpu':>6} {'eval':>6} {'gap':>7} | "
            f"{'old wall':>8} {'cpu':>6} {'gap':>7}"
        )
        old_note = "not run (--no-old)" if args.no_old else ""
        for n in args.sizes:
            total, total_cpu, evaluate, gap = time_new(model, n)
            if old_note:
                old = old_note
            else:
                got = time_old(model, n, args.old_limit)
                if got is None:
                    old = f"stopped after {args.old_limit} s CPU"
                    old_note = "not run (smaller N exceeded the cap)"
                else:
                    old = f"{got[0]:8.2f} {got[1]:6.2f} {got[2]:7.1e}"
                    if got[1] > args.old_cap:
                        old_note = f"not run (N = {n} took > {args.old_cap:.0f} s CPU)"
            print(
                f"{n:>7} | {total:8.2f} {total_cpu:6.2f} {evaluate:6.3f} "
                f"{gap:7.1e} | {old}"
            )


if __name__ == "__main__":
    main()
