r"""Data-set curvature products on several processes: the script ``torchrun`` runs.

Launch (what :func:`helpers.curvature.torchrun` does)::

    torchrun --standalone --nproc-per-node 2 -m helpers.curvature_worker SPEC OUT

``SPEC`` is a file written with :func:`torch.save`: ``{"jobs": [job, ...],
"repeats": r}``, each job a dict with ``model``, ``loss_fn`` (picklable, e.g.
``nn.CrossEntropyLoss(reduction="none")``), ``X`` ``(N, ...)``, ``y`` ``(N,)``,
``batch_size``, ``kind``, ``reduce``, ``vectors`` ``(p, k)`` and
``shard_sizes`` (``None``: as equal as possible).  Each process
(``torchrun`` sets ``RANK`` and ``WORLD_SIZE``) takes its contiguous shard
(:func:`helpers.curvature.shard`: with ``N`` not divisible by the number of
processes the shards are unequal), builds
``curvature_operator(..., group=dist.group.WORLD)`` on it and multiplies every
vector; the all-reduce inside makes every process hold the data-set products.
Rank 0 writes ``OUT`` (:func:`torch.save`) with, per job, the products ``(p, k)``,
the total number of samples, every process's shard size, and, when ``repeats > 0``,
the seconds per product on all processes and on rank 0 alone over the whole data set
(the one-process baseline, measured in the same launch with the same one thread per
process), and the seconds of one all-reduce of ``p + 1`` numbers (medians).
``OUT`` also holds every process's *autograd probe*: a gradient with a
known answer, computed in the worker, which :func:`helpers.curvature.torchrun`
compares with the same probe computed by the calling process, so a worker whose
autograd differs from the caller's (a test harness that patched the caller only) is
never trusted silently.

If the environment variable ``HELPERS_WORKER_PRELUDE`` names a Python file,
each worker runs it first (:func:`run_prelude`; a worker script of your own can
call it too): a fault-injection harness uses it to give the workers the same
fault as the notebook that launched them.

On GPUs with NCCL: ``backend="nccl"``, ``torch.cuda.set_device(local_rank)``,
and the model, data and vectors on ``f"cuda:{local_rank}"`` (NCCL all-reduces
only CUDA tensors); nothing else changes (``HELPERS_BACKEND=nccl``).
"""

from __future__ import annotations

import os
import runpy
import statistics
import sys
import time

import torch
import torch.distributed as dist

from helpers.curvature import _autograd_probe, batches, curvature_operator, shard


def run_prelude() -> None:
    """Run the file ``HELPERS_WORKER_PRELUDE`` names, if any (call it first)."""
    prelude = os.environ.get("HELPERS_WORKER_PRELUDE")
    if prelude:
        runpy.run_path(prelude, run_name="__helpers_prelude__")


def _median_seconds(op, v, repeats: int, group) -> float:
    times = []
    for _ in range(repeats):
        if group is not None:
            dist.barrier(group)
        start = time.perf_counter()
        op @ v
        if group is not None:
            dist.barrier(group)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _AllReduce:
    """``op @ v`` stand-in that only all-reduces ``p + 1`` numbers (for timing)."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, group) -> None:
        self.buffer = torch.zeros(n, dtype=dtype, device=device)
        self.group = group

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(self.buffer, group=self.group)
        return self.buffer


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(
            "usage: torchrun ... -m helpers.curvature_worker SPEC OUT", file=sys.stderr
        )
        return 2
    spec_path, out_path = argv
    run_prelude()
    backend = os.environ.get("HELPERS_BACKEND", "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        group = dist.group.WORLD
        spec = torch.load(spec_path, weights_only=False)
        spec_repeats = int(spec.get("repeats", 0))
        results = []
        for job in spec["jobs"]:
            repeats = int(job.get("repeats", spec_repeats))
            model = job["model"].to(device)
            X, y = job["X"].to(device), job["y"].to(device)
            Xr, yr = shard(X, y, rank, world, job.get("shard_sizes"))
            sizes = [None] * world
            dist.all_gather_object(sizes, int(Xr.shape[0]))
            V = job["vectors"].to(device)
            args = (model, job["loss_fn"])
            kw = {"kind": job["kind"], "reduce": job["reduce"]}
            op = curvature_operator(
                *args, batches(Xr, yr, job["batch_size"]), group=group, **kw
            )
            products = op @ V
            entry = {
                "products": products.cpu(),
                "num_samples": op.num_samples,
                "shard_sizes": sizes,
            }
            if repeats > 0:
                v = V[:, 0].contiguous()
                entry["seconds_distributed"] = _median_seconds(op, v, repeats, group)
                reduce_only = _AllReduce(V.shape[0] + 1, V.dtype, device, group)
                entry["seconds_all_reduce"] = _median_seconds(
                    reduce_only, v, repeats, group
                )
                dist.barrier()
                if rank == 0:
                    whole = curvature_operator(
                        *args, batches(X, y, job["batch_size"]), **kw
                    )
                    entry["seconds_single"] = _median_seconds(whole, v, repeats, None)
                dist.barrier()
            results.append(entry)
        probes = [None] * world
        dist.all_gather_object(probes, _autograd_probe().tolist())
        if rank == 0:
            out = {
                "world_size": world,
                "backend": backend,
                "probes": probes,
                "jobs": results,
                "threads": torch.get_num_threads(),
            }
            torch.save(out, out_path)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
