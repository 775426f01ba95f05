r"""Part V's data-set products as benchmark rows (:mod:`helpers.curvature`).

The problem ``digits`` is the digits network of chapter 13
(:func:`helpers.data.digits_mlp`, 64 → 128 → 128 → 10, :math:`p` = 26,122
parameters, trained for 30 epochs as :func:`helpers.curvature.bench` does),
with the mean cross-entropy over the :math:`N` training images.  The product is
:math:`\mathbf H\mathbf v = \frac1N \sum_n \nabla^2_\theta \ell_n\,\mathbf v`,
``(p,)``.  Four methods:

``dataset_accumulated``
    :func:`~helpers.curvature.curvature_operator` over batches of 256: one
    batch's graph alive at a time, the products summed;
``dataset_one_batch``
    the same operator over one batch of all :math:`N` images;
``dataset_two_process`` / ``dataset_one_process``
    :func:`~helpers.curvature.torchrun`: two processes (one thread each), each
    with half the images, all-reducing their sums, against rank 0 alone over
    all of them, measured in the same launch.  Each round is one job of
    ``PER_JOB`` products, and its time the workers' median of them.

The first two are timed in interleaved rounds like every other method
(:func:`helpers.bench.measure.time_rounds`), with their tensor memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from helpers.bench.measure import Budget, Row, peak_tensor_bytes, quartiles, time_rounds

__all__ = ["DATASET_METHODS", "PER_JOB", "dataset_rows"]

DATASET_METHODS = (
    "dataset_accumulated",
    "dataset_one_batch",
    "dataset_two_process",
    "dataset_one_process",
)
PER_JOB = 3
BATCH_SIZE = 256


def _row(
    method: str,
    n: int,
    N: int,
    times: list[float],
    number: int,
    setup: float,
    peak: float,
) -> Row:
    q1, med, q3 = quartiles(times)
    return Row(
        "digits",
        method,
        "dataset_hvp",
        "float64",
        n,
        N,
        med,
        q1,
        q3,
        len(times),
        number,
        setup,
        peak,
        tuple(times),
    )


def dataset_rows(
    budget: Budget,
    *,
    memory: bool = True,
    nproc: int = 2,
    epochs: int = 30,
    progress: Callable[[str], None] = print,
) -> list[Row]:
    """Time the four data-set products (module docstring); return their rows.

    Raises ``RuntimeError`` if the accumulated and one-batch products differ
    (they are the same sum) or if the workers' products differ from this
    process's.
    """
    from helpers import data
    from helpers.curvature import batches, curvature_operator, torchrun

    start = time.perf_counter()
    split = data.digits()
    model = data.digits_mlp(128)
    data.train_classifier(model, split.X_train, split.y_train, epochs=epochs)
    X, y = split.X_train, split.y_train
    ce = nn.CrossEntropyLoss(reduction="none")
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    accumulated = curvature_operator(model, ce, batches(X, y, BATCH_SIZE))
    setup_acc = time.perf_counter() - t0
    t0 = time.perf_counter()
    one_batch = curvature_operator(model, ce, [(X, y)])
    setup_one = time.perf_counter() - t0
    p, N = accumulated.shape[0], int(X.shape[0])
    v = torch.randn(p, generator=g, dtype=torch.float64)
    hv = accumulated @ v
    if not torch.allclose(hv, one_batch @ v, rtol=1e-10, atol=1e-13):
        raise RuntimeError("accumulated and one-batch products differ")
    calls = {
        "dataset_accumulated": lambda: accumulated @ v,
        "dataset_one_batch": lambda: one_batch @ v,
    }
    timed = time_rounds(calls, rounds=budget.rounds, run_s=budget.run_s)
    rows = []
    for method, setup in (
        ("dataset_accumulated", setup_acc),
        ("dataset_one_batch", setup_one),
    ):
        times, number = timed[method]
        peak = peak_tensor_bytes(calls[method]) if memory else math.nan
        rows.append(_row(method, p, N, times, number, setup, peak))
    progress(
        f"digits       p={p}: one process, 2 methods "
        f"({time.perf_counter() - start:.1f} s)"
    )
    job = {"model": model, "loss_fn": ce, "X": X, "y": y, "vectors": v[:, None]}
    out = torchrun(
        [dict(job, repeats=PER_JOB) for _ in range(budget.rounds)], nproc=nproc
    )
    for entry in out["jobs"]:
        if not torch.allclose(entry["products"][:, 0], hv, rtol=1e-10, atol=1e-13):
            raise RuntimeError(
                "the workers' data-set product differs from this process's"
            )
    for method, key, setup in (
        ("dataset_two_process", "seconds_distributed", out.seconds),
        ("dataset_one_process", "seconds_single", math.nan),
    ):
        times = [float(entry[key]) for entry in out["jobs"]]
        rows.append(_row(method, p, N, times, PER_JOB, setup, math.nan))
    progress(
        f"digits       p={p}: {nproc} processes, launch and {budget.rounds} jobs in "
        f"{out.seconds:.1f} s ({time.perf_counter() - start:.1f} s)"
    )
    return rows
