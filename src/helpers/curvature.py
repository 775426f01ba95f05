r"""The Hessian and the GGN of a loss over a whole data set, as matrix-free operators.

For a model with parameters :math:`\theta \in \mathbb{R}^p` and a data set of
:math:`N` samples :math:`(x_n, y_n)`, with outputs :math:`f_n = f(x_n; \theta)`
(shape ``(C,)``) and per-sample losses :math:`\ell_n = \ell(f_n, y_n)`, the
data-set loss is :math:`L = \frac{1}{N} \sum_n \ell_n` (``reduce="mean"``) or
:math:`L = \sum_n \ell_n` (``reduce="sum"``).  Differentiation is linear, so

.. math::

    \mathbf{H} = \frac{1}{N} \sum_{n=1}^{N} \nabla^2_\theta \ell_n,
    \qquad
    \mathbf{G} = \frac{1}{N} \sum_{n=1}^{N}
        \mathbf{J}_n^{\top} \mathbf{H}_{\ell, n} \mathbf{J}_n,

with :math:`\mathbf{J}_n = \partial f_n / \partial \theta` (``(C, p)``) and
:math:`\mathbf{H}_{\ell, n} = \nabla^2_{f} \ell(f_n, y_n)` (``(C, C)``): the
Hessian and the generalised Gauss-Newton (GGN) matrix, both ``(p, p)``.  A sum
over samples is a sum over batches, and over the shards of several processes,
so :func:`curvature_operator` computes :math:`\mathbf{H}\mathbf{v}` or
:math:`\mathbf{G}\mathbf{v}` one batch at a time: it sums the batches' products
(and the batches' sample counts), all-reduces both over the processes of
``group``, and divides by the total :math:`N` once.  That is the exact data-set
mean however unequal the batches and shards are; a mean of batch means is not.
The count travels in one extra row of the all-reduced tensor when the
parameters are float64 (exact below :math:`2^{53}`), in a second all-reduce of
an int64 otherwise.

Shapes: ``v`` is ``(p,)`` (or ``(p, k)``: ``k`` products, each column in turn,
sharing each batch's graph), the result has the shape of ``v``;
:math:`p = \sum \mathrm{numel}` over ``model.named_parameters()`` that require
grad, in that order, each flattened row-major (as :mod:`helpers.params`).
Parameters that do not require grad are held fixed.  Products use the
parameters' current values, dtype and device; ``v`` must have that dtype (the
course uses float64).  Only one batch's graph is alive at a time.

Example::

    op = curvature_operator(model, nn.CrossEntropyLoss(reduction="none"),
                            batches(X, y, 256), kind="ggn")
    Gv = op @ v                                  # (p,)
    eigsh(op.to_scipy(), k=10, which="LA")       # Lanczos on the GGN
    op.num_products                              # matrix-vector products so far

:func:`batches` and :func:`shard` cut a tensor data set into a re-iterable list of
batches and into one process's contiguous share.  :func:`saved_bytes` measures
the bytes autograd saves for backward while a function runs.  :func:`torchrun`
runs the products on several processes (``python -m helpers.curvature_worker``
under ``torchrun``; see that module), and :func:`bench` (``python -m
helpers.curvature``) times the digits network's products.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CurvatureOperator",
    "WorkerResult",
    "batches",
    "bench",
    "curvature_operator",
    "saved_bytes",
    "shard",
    "torchrun",
]

KINDS = ("hessian", "ggn")
REDUCTIONS = ("mean", "sum")


def batches(
    X: torch.Tensor, y: torch.Tensor, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(X[i:i+b], y[i:i+b]), ...]`` in order; the last batch may be smaller.

    A list (of views, no copies), so it can be iterated once per product, unlike a
    generator.  ``X``: ``(N, ...)``, ``y``: ``(N, ...)``.
    """
    if (
        not isinstance(batch_size, int)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y hold different numbers of samples: {X.shape[0]} and {y.shape[0]}."
        )
    return [
        (X[i : i + batch_size], y[i : i + batch_size])
        for i in range(0, X.shape[0], batch_size)
    ]


def shard(
    X: torch.Tensor,
    y: torch.Tensor,
    rank: int,
    world_size: int,
    sizes: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Process ``rank``'s contiguous share of ``(X, y)``.

    Without ``sizes``: ``torch.tensor_split``, shares that differ by at most one
    sample.  With ``sizes`` (one count per process, summing to ``N``): shares of
    exactly those sizes.  Together the shares hold every sample once.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}); got {rank}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y hold different numbers of samples: {X.shape[0]} and {y.shape[0]}."
        )
    if sizes is None:
        return X.tensor_split(world_size)[rank], y.tensor_split(world_size)[rank]
    sizes = [int(s) for s in sizes]
    if len(sizes) != world_size or sum(sizes) != X.shape[0] or min(sizes) < 0:
        raise ValueError(
            f"sizes must hold {world_size} non-negative counts summing to "
            f"{X.shape[0]}; got {sizes}."
        )
    return X.split(sizes)[rank], y.split(sizes)[rank]


class CurvatureOperator:
    """The data-set Hessian or GGN of ``model`` as a ``(p, p)`` linear operator.

    Made by :func:`curvature_operator` (arguments and maths there and in the
    module docstring).  ``op @ v`` is the product, ``op.to_scipy()`` a
    :class:`scipy.sparse.linalg.LinearOperator`, ``op.to_dense()`` the matrix
    (``p`` products: small models only).  Attributes: ``shape``, ``dtype``,
    ``device``, ``names`` (the parameters, in order), ``sizes`` (their numels),
    ``num_products`` (matrix-vector products so far; a ``(p, k)`` block counts
    ``k``), ``num_samples`` (the :math:`N` of the last product, over every
    process) and ``seconds`` (wall time spent in products).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
        loader: Iterable[Any],
        kind: str = "hessian",
        reduce: str = "mean",
        group: Any = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}.")
        if reduce not in REDUCTIONS:
            raise ValueError(
                f"unknown reduce {reduce!r}; expected one of {REDUCTIONS}."
            )
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module; got {type(model).__name__}."
            )
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable; got {type(loss_fn).__name__}.")
        if isinstance(loader, torch.Tensor) or not hasattr(loader, "__iter__"):
            raise TypeError(
                "loader must be an iterable of (inputs, targets) batches, such as a "
                f"DataLoader or helpers.curvature.batches(X, y, b); got "
                f"{type(loader).__name__}."
            )
        named = [(n, t) for n, t in model.named_parameters() if t.requires_grad]
        if not named:
            raise ValueError("model has no parameters that require grad.")
        self.model = model
        self.loss_fn = loss_fn
        self.loader = loader
        self.kind = kind
        self.reduce = reduce
        self.group = group
        self.names = tuple(n for n, _ in named)
        self.params = tuple(t for _, t in named)
        self.sizes = tuple(t.numel() for t in self.params)
        p = sum(self.sizes)
        self.shape = (p, p)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.num_products = 0
        self.num_samples: int | None = None
        self.seconds = 0.0

    def __repr__(self) -> str:
        where = "" if self.group is None else ", distributed"
        return (
            f"CurvatureOperator(kind={self.kind!r}, reduce={self.reduce!r}, "
            f"p={self.shape[0]}, {str(self.dtype).removeprefix('torch.')}{where})"
        )

    # ------------------------------------------------------------------ products
    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        if not isinstance(v, torch.Tensor):
            raise TypeError(
                f"op @ v needs a torch.Tensor of shape ({self.shape[0]},); got "
                f"{type(v).__name__} (op.to_scipy() takes NumPy arrays)."
            )
        p = self.shape[0]
        if v.dim() not in (1, 2) or v.shape[0] != p:
            raise ValueError(
                f"v has shape {tuple(v.shape)}; expected ({p},), one entry per "
                f"parameter (or ({p}, k) for k products)."
            )
        if v.dtype != self.dtype:
            raise TypeError(
                f"v is {str(v.dtype).removeprefix('torch.')} but the parameters are "
                f"{str(self.dtype).removeprefix('torch.')}; pass v.to({self.dtype})."
            )
        start = time.perf_counter()
        V = v.detach().to(self.device).reshape(p, -1)
        out = self._products(V)
        self.num_products += V.shape[1]
        self.seconds += time.perf_counter() - start
        return out.reshape(v.shape).to(v.device)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``op @ v``."""
        return self @ v

    def _products(self, V: torch.Tensor) -> torch.Tensor:
        """``(p, k)`` -> ``(p, k)``: sum over this process's batches, reduce, divide."""
        k = V.shape[1]
        pieces = [list(col.split(self.sizes)) for col in V.unbind(1)]
        pieces = [
            [piece.reshape(t.shape) for piece, t in zip(col, self.params, strict=True)]
            for col in pieces
        ]
        # one extra row holds the sample count, so a single all-reduce carries both
        total = torch.zeros(self.shape[0] + 1, k, dtype=self.dtype, device=self.device)
        count = 0
        for batch in self.loader:
            inputs, targets = _unpack(batch)
            with torch.enable_grad():
                if self.kind == "hessian":
                    cols, n = self._hessian_batch(inputs, targets, pieces)
                else:
                    cols, n = self._ggn_batch(inputs, targets, pieces)
            total[:-1] += torch.stack(cols, dim=1)
            count += n
        n_total = count
        if self.group is not None:
            import torch.distributed as dist

            total[-1] = count
            dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group)
            if self.dtype == torch.float64:  # counts below 2**53 are exact
                n_total = int(round(total[-1, 0].item()))
            else:  # float32 counts are exact only below 2**24, bfloat16 below 2**8
                counted = torch.tensor([count], dtype=torch.int64, device=self.device)
                dist.all_reduce(counted, op=dist.ReduceOp.SUM, group=self.group)
                n_total = int(counted.item())
        if n_total == 0:
            where = "on any process" if self.group is not None else ""
            raise ValueError(
                f"loader yielded no samples {where}".rstrip()
                + " (an exhausted generator yields nothing on its second pass: pass a "
                "list, e.g. helpers.curvature.batches(X, y, b), or a DataLoader)."
            )
        self.num_samples = n_total
        result = total[:-1]
        return result / n_total if self.reduce == "mean" else result

    def _batch_losses(self, inputs: Any, targets: Any) -> tuple[torch.Tensor, Any]:
        outputs = self.model(inputs)
        return outputs, self._losses(outputs, targets)

    def _losses(self, outputs: torch.Tensor, targets: Any) -> torch.Tensor:
        losses = self.loss_fn(outputs, targets)
        if not isinstance(losses, torch.Tensor) or losses.dim() != 1:
            shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else losses
            raise ValueError(
                f"loss_fn returned {shape}; expected per-sample losses of shape (B,), "
                'like nn.CrossEntropyLoss(reduction="none").'
            )
        return losses

    def _hessian_batch(
        self, inputs: Any, targets: Any, pieces: list[list[torch.Tensor]]
    ) -> tuple[list[torch.Tensor], int]:
        _, losses = self._batch_losses(inputs, targets)
        grads = torch.autograd.grad(
            losses.sum(), self.params, create_graph=True, allow_unused=True
        )
        # the Hessian-vector product as the vjp of the gradient: grad(g, θ, v) = H v
        used = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        cols = []
        for j, col in enumerate(pieces):
            if not used:  # the loss is linear in every parameter
                cols.append(
                    torch.zeros(self.shape[0], dtype=self.dtype, device=self.device)
                )
                continue
            hv = torch.autograd.grad(
                [grads[i] for i in used],
                self.params,
                grad_outputs=[col[i] for i in used],
                retain_graph=j < len(pieces) - 1,
                allow_unused=True,
            )
            cols.append(_flat(hv, self.params))
        return cols, losses.shape[0]

    def _ggn_batch(
        self, inputs: Any, targets: Any, pieces: list[list[torch.Tensor]]
    ) -> tuple[list[torch.Tensor], int]:
        outputs = self.model(inputs)
        # J v by the double-vjp trick: u -> J^T u is linear in u, so its vjp is J v
        u = torch.zeros_like(outputs, requires_grad=True)
        jtu = torch.autograd.grad(
            outputs, self.params, grad_outputs=u, create_graph=True, allow_unused=True
        )
        used = [(g, i) for i, g in enumerate(jtu) if g is not None]
        # H_l (the loss's Hessian in the outputs) on a detached copy of the outputs
        f = outputs.detach().requires_grad_(True)
        losses = self._losses(f, targets)
        (dl_df,) = torch.autograd.grad(losses.sum(), f, create_graph=True)
        cols = []
        for col in pieces:
            (jv,) = torch.autograd.grad(
                [g for g, _ in used],
                u,
                grad_outputs=[col[i] for _, i in used],
                retain_graph=True,
            )
            (hjv,) = torch.autograd.grad(dl_df, f, grad_outputs=jv, retain_graph=True)
            jthjv = torch.autograd.grad(
                outputs,
                self.params,
                grad_outputs=hjv,
                retain_graph=True,
                allow_unused=True,
            )
            cols.append(_flat(jthjv, self.params))
        return cols, losses.shape[0]

    # ------------------------------------------------------------------ views
    def to_scipy(self) -> Any:
        """A :class:`scipy.sparse.linalg.LinearOperator` (NumPy float64 in and out).

        Each NumPy vector is turned into a tensor of the parameters' dtype and
        device; the operator is symmetric, so ``rmatvec`` is ``matvec``.
        """
        from scipy.sparse.linalg import LinearOperator

        def matvec(x: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.asarray(x).reshape(-1), dtype=self.dtype)
            return (self @ v.to(self.device)).cpu().numpy().astype(np.float64)

        def matmat(X: np.ndarray) -> np.ndarray:
            V = torch.as_tensor(np.asarray(X), dtype=self.dtype).to(self.device)
            return (self @ V).cpu().numpy().astype(np.float64)

        return LinearOperator(
            self.shape, matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=np.float64
        )

    def to_dense(self) -> torch.Tensor:
        """The ``(p, p)`` matrix, one column per basis vector (``p`` products)."""
        eye = torch.eye(self.shape[0], dtype=self.dtype, device=self.device)
        return self @ eye


def curvature_operator(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
    loader: Iterable[Any],
    kind: str = "hessian",
    reduce: str = "mean",
    group: Any = None,
) -> CurvatureOperator:
    """The data-set Hessian (``kind="hessian"``) or GGN (``"ggn"``) as an operator.

    - ``loss_fn(outputs, targets)`` returns per-sample losses of shape ``(B,)``,
      like ``nn.CrossEntropyLoss(reduction="none")``.
    - ``loader``: any re-iterable of ``(inputs, targets)`` batches (a
      ``DataLoader``, a list, :func:`batches`); it is iterated once per product.
    - ``reduce="mean"`` divides the sum over every batch (and every process) by
      the total number of samples; ``"sum"`` does not divide.
    - ``group``: a ``torch.distributed`` process group (``dist.group.WORLD``
      after ``init_process_group``); each process iterates over its own shard,
      and the sums and counts are all-reduced, so every process returns the same
      vector.  Every process must call ``op @ v`` with the same ``v``.

    Errors: an unknown ``kind`` or ``reduce`` (``ValueError``, here); a ``v`` of
    the wrong length or dtype, a ``loss_fn`` that does not return ``(B,)``, and a
    loader that yields no samples (``ValueError``/``TypeError`` at ``op @ v``).
    See the module docstring for the maths and shapes.
    """
    return CurvatureOperator(model, loss_fn, loader, kind, reduce, group)


def _unpack(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, list | tuple) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        "each batch must be a pair (inputs, targets); got "
        f"{type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, list | tuple) else "")
        + "."
    )


def _flat(grads: tuple[torch.Tensor | None, ...], params: tuple[torch.Tensor, ...]):
    return torch.cat(
        [
            (torch.zeros_like(t) if g is None else g).reshape(-1)
            for g, t in zip(grads, params, strict=True)
        ]
    )


def saved_bytes(
    fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()
) -> tuple[Any, int]:
    """Run ``fn()``; return its result and the peak bytes autograd held saved.

    Counts, through :func:`torch.autograd.graph.saved_tensors_hooks`, the storage
    of every tensor a graph saves for backward while it is alive (each storage
    once), leaving out ``exclude`` (pass the parameters: they live anyway).  This
    is the memory a graph adds; it does not count the outputs, nor memory that
    operations allocate and free at once.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    alive: dict[int, list[int]] = {}  # storage pointer -> [references, bytes]
    state = {"now": 0, "peak": 0}

    class _Held:
        __slots__ = ("key", "tensor")

        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor
            storage = tensor.untyped_storage()
            self.key = storage.data_ptr()
            if self.key in skip or storage.nbytes() == 0:
                self.key = None
                return
            entry = alive.setdefault(self.key, [0, storage.nbytes()])
            if entry[0] == 0:
                state["now"] += entry[1]
                state["peak"] = max(state["peak"], state["now"])
            entry[0] += 1

        def __del__(self) -> None:
            if self.key is None:
                return
            entry = alive[self.key]
            entry[0] -= 1
            if entry[0] == 0:
                state["now"] -= entry[1]
                del alive[self.key]

    with torch.autograd.graph.saved_tensors_hooks(_Held, lambda held: held.tensor):
        result = fn()
    return result, state["peak"]


def _autograd_probe() -> torch.Tensor:
    r"""A gradient with a known answer: :math:`\nabla \sum x^3 / 3 = x^2`.

    Computed with ``torch.autograd.grad`` from this module, in the caller and in
    every worker, so :func:`torchrun` can tell whether they differentiate alike.
    """
    x = torch.linspace(-1.0, 2.0, 7, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad((x**3).sum() / 3, x)
    return g.detach()


class WorkerResult(dict):
    """What :func:`torchrun` returns: a dict (keys in :mod:`helpers.curvature_worker`).

    ``result["jobs"][i]["products"]`` is job ``i``'s ``(p, k)`` products;
    ``result.command`` the command that ran, ``result.seconds`` its wall time.
    """

    command: str = ""
    seconds: float = 0.0


def torchrun(
    jobs: list[dict[str, Any]],
    nproc: int = 2,
    repeats: int = 0,
    timeout: float = 120.0,
) -> WorkerResult:
    """Run :mod:`helpers.curvature_worker` under ``torchrun`` with ``nproc`` processes.

    Each job is a dict: ``model``, ``loss_fn``, ``X``, ``y``, ``vectors`` ``(p,
    k)``, and optionally ``batch_size`` (default 256), ``kind`` (``"hessian"``),
    ``reduce`` (``"mean"``) and ``shard_sizes`` (one sample count per process;
    default: as equal as possible, see :func:`shard`), ``repeats`` (timed
    products for this job; default: the ``repeats`` argument).  The processes are
    started on this machine (``--standalone``: rendezvous on loopback), one thread
    each, gloo backend.  Raises ``RuntimeError`` with the workers' last lines of
    output if they fail, and if a worker's autograd probe differs from this
    process's (a fault or patch that reached this process but not the workers; see
    ``HELPERS_WORKER_PRELUDE`` in :mod:`helpers.curvature_worker`).
    """
    import os
    import pathlib
    import shlex
    import subprocess
    import sys
    import tempfile

    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer; got {nproc!r}.")
    required = ("model", "loss_fn", "X", "y", "vectors")
    full = []
    for i, job in enumerate(jobs):
        missing = [key for key in required if key not in job]
        if missing:
            raise ValueError(f"job {i} lacks {missing}; each job needs {required}.")
        unknown_kind = job.get("kind", "hessian")
        unknown_reduce = job.get("reduce", "mean")
        if unknown_kind not in KINDS or unknown_reduce not in REDUCTIONS:
            raise ValueError(
                f"job {i}: kind must be one of {KINDS} and reduce one of "
                f"{REDUCTIONS}; got {unknown_kind!r} and {unknown_reduce!r}."
            )
        defaults = {"batch_size": 256, "kind": "hessian", "reduce": "mean"}
        full.append({**defaults, "shard_sizes": None, **job})
    with tempfile.TemporaryDirectory(prefix="curvature-") as tmp:
        spec, out = pathlib.Path(tmp, "spec.pt"), pathlib.Path(tmp, "out.pt")
        torch.save({"jobs": full, "repeats": repeats}, spec)
        launcher = [sys.executable, "-m", "torch.distributed.run"]
        args = ["--standalone", f"--nproc-per-node={nproc}"]
        args += ["-m", "helpers.curvature_worker", str(spec), str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        done = subprocess.run(
            launcher + args,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise RuntimeError(
                f"torchrun exited with code {done.returncode}; last lines:\n{tail}"
            )
        result = WorkerResult(torch.load(out, weights_only=False))
    result.command = shlex.join(
        ["torchrun", *args[:2], "-m", "helpers.curvature_worker"]
    )
    result.command += " SPEC OUT"
    result.seconds = seconds
    _check_probes(result["probes"])
    return result


def _check_probes(probes: list[list[float]]) -> None:
    """Raise unless every worker's autograd probe equals this process's."""
    here = _autograd_probe().tolist()
    for rank, probe in enumerate(probes):
        if probe != here:
            raise RuntimeError(
                f"worker {rank}'s autograd differs from this process's (probe "
                f"{probe} against {here}): something patched autograd here but not "
                "in the workers; give them the same patch with HELPERS_WORKER_PRELUDE."
            )


def bench(nproc: int = 2, repeats: int = 10) -> dict[str, float]:
    """Time the digits network's data-set products; print and return the numbers.

    ``python -m helpers.curvature`` runs it: the accumulated (batches of 256)
    against the one-batch Hessian-vector product, two processes against one
    (``torchrun``, one thread each), and ``eigsh``'s top 10 of the Hessian
    (products and seconds).  One thread in this process, like the workers.
    """
    from scipy.sparse.linalg import eigsh

    from helpers import data

    torch.set_num_threads(1)
    split = data.digits()
    model = data.digits_mlp(128)
    data.train_classifier(model, split.X_train, split.y_train, epochs=30)
    X, y = split.X_train, split.y_train
    ce = nn.CrossEntropyLoss(reduction="none")
    batched = curvature_operator(model, ce, batches(X, y, 256))
    full = curvature_operator(model, ce, [(X, y)])
    v = torch.randn(batched.shape[0], dtype=torch.float64)

    def per_product(op: CurvatureOperator) -> float:
        op @ v
        start = time.perf_counter()
        for _ in range(repeats):
            op @ v
        return (time.perf_counter() - start) / repeats

    out = {"accumulated / full batch": per_product(batched) / per_product(full)}
    run = torchrun(
        [{"model": model, "loss_fn": ce, "X": X, "y": y, "vectors": v[:, None]}],
        nproc=nproc,
        repeats=repeats,
    )
    job = run["jobs"][0]
    out[f"speedup, {nproc} processes"] = (
        job["seconds_single"] / job["seconds_distributed"]
    )
    out["torchrun launch seconds"] = run.seconds
    before, start = batched.num_products, time.perf_counter()
    eigsh(batched.to_scipy(), k=10, which="LA", v0=np.ones(batched.shape[0]), tol=1e-3)
    out["eigsh top 10: products"] = batched.num_products - before
    out["eigsh top 10: seconds"] = time.perf_counter() - start
    for key, value in out.items():
        print(f"{key}: {value:.3g}")
    return out


if __name__ == "__main__":
    bench()
