r"""Measuring: interleaved timed rounds, peak tensor memory, the machine header.

**Time.**  For one problem, size and dtype, every method is set up (timed once,
``setup_s``), called twice to warm up, and given a number of calls per run
``k`` so that a run lasts about ``run_s`` (a method slower than that is one
call a run).  Then ``rounds`` rounds: each round times one run of every method,
in an order rotated by one from round to round, so that a drift of the
machine (another process, the clock frequency) falls on all methods alike
instead of on whichever was timed in a bad block.  A run's time is its
``k`` calls' total over ``k``, with the device synchronised around it.  The
row keeps every run's time (``times``, seconds per call), and their median
and quartiles.

**Memory.**  :func:`peak_tensor_bytes` runs one call under PyTorch's
profiler with ``profile_memory=True``, which records every allocation and
free of PyTorch's CPU allocator with its time; the running sum of those, in
time order, peaks at the memory the call adds, to the byte, including its
result, what autograd saved, and the temporaries an operator allocates and
frees inside one kernel (``mv`` makes a contiguous copy of a transposed
matrix: n² numbers that a count of the tensors operators return misses).
Tests check it against known allocations and that temporary.  It reads the
profiler's event tree (``kineto_results.experimental_event_tree``, an
experimental interface of torch 2.13).  :func:`peak_memory` (resident memory,
Linux) is kept for the chapters that show it; it is a lower bound below about
a megabyte.

**Header.**  :func:`machine_notes` names the CPU (``/proc/cpuinfo``), the
logical CPUs and torch threads, the torch build and the load average;
:func:`run` adds the load average after and the wall time.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from helpers.bench.methods import (
    CHUNK,
    FLOAT32_METHODS,
    GROWTH,
    MEMORY_METHODS,
    METHODS,
    applies,
)
from helpers.bench.problems import Problem, make_problem

__all__ = [
    "QUICK",
    "Budget",
    "Row",
    "device_memory",
    "load_average",
    "machine_notes",
    "peak_memory",
    "peak_tensor_bytes",
    "run",
    "synchronizer",
    "time_rounds",
]

Call = Callable[[], object]
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class Row:
    """One measurement: a method on one problem, size and dtype.

    ``times`` are the per-run times (seconds per call), one a round;
    ``median_s``, ``q1_s``, ``q3_s`` summarise them.  ``batch`` is the number
    of data points (0 for ``scalar``), ``peak_bytes`` the tensor memory one call
    adds (NaN when not measured), ``setup_s`` the one-off set-up.
    """

    problem: str
    method: str
    kind: str
    dtype: str
    n: int
    batch: int
    median_s: float
    q1_s: float
    q3_s: float
    runs: int
    calls_per_run: int
    setup_s: float
    peak_bytes: float
    times: tuple[float, ...] = field(default_factory=tuple)

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s


def quartiles(xs: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (linear interpolation)."""
    t = torch.tensor(xs, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return float(q[0]), float(q[1]), float(q[2])


@dataclass
class Budget:
    """How to time: rounds, the length of a run (s), the cap on one call (s).

    A method is not run at a size where one call, extrapolated from the
    previous size with the method's expected growth, would exceed ``cap_s``, or
    where its memory, extrapolated likewise, would exceed ``memory_bytes``.
    """

    rounds: int = 10
    run_s: float = 0.02
    cap_s: float = 1.0
    memory_bytes: float = 1e9
    memory_cap_s: float = 3.0

    def cap(self, method: str) -> float:
        """The cap on one call: larger for the memory-limited methods.

        They are what remains where vectorised Hessians exceed the memory
        budget, so they are timed at one size beyond the others.
        """
        return self.memory_cap_s if method in MEMORY_METHODS else self.cap_s


QUICK = Budget(rounds=6, run_s=0.002, cap_s=0.15, memory_bytes=2e8, memory_cap_s=0.5)


# ---------------------------------------------------------------- memory


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null inside the block (C++ logging)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_tensor_bytes(call: Call) -> float:
    """Peak bytes that PyTorch's CPU allocator holds for ``call()`` at once.

    Every allocation (size > 0) and free (size < 0) that the profiler records
    during the call, in time order; the largest running sum is the peak.
    Memory allocated before the call is not counted, nor freed (a free of it
    only lowers the sum).  Temporaries inside one operator count: this is
    what the process needs, not only what the operators return.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with _quiet_stderr():  # the profiler logs its start and stop to file 2
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            result = call()
            del result
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return float(peak)


def _status_bytes(name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {name} in /proc/self/status")


def peak_memory(call: Call) -> float:
    """Peak resident memory (bytes) one ``call()`` adds; NaN without Linux's /proc.

    Freed memory is first handed back to the system (``malloc_trim``) and the
    high-water mark reset (``/proc/self/clear_refs``), so the peak belongs to
    this call and includes its result.  Small allocations served from memory
    the process already holds do not show: below about a megabyte the number is
    a lower bound (:func:`peak_tensor_bytes` counts tensors to the byte).
    """
    if not os.path.exists("/proc/self/clear_refs"):
        return math.nan
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current VmRSS
    except OSError:
        return math.nan
    start = _status_bytes("VmRSS")
    result = call()
    peak = _status_bytes("VmHWM")
    del result
    return float(max(0, peak - start))


def device_memory(call: Call, device: str) -> float:
    """Memory one call adds: tensor bytes (CPU), the allocator's peak (CUDA).

    On MPS, the allocator's memory still held with the result (a lower bound).
    """
    gc.collect()
    if device == "cpu":
        return peak_tensor_bytes(call)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
        return float(peak - start)
    if device == "mps":
        torch.mps.synchronize()
        torch.mps.empty_cache()
        start = torch.mps.current_allocated_memory()
        result = call()
        torch.mps.synchronize()
        held = torch.mps.current_allocated_memory()
        del result
        return float(held - start)
    return math.nan


# ---------------------------------------------------------------- time


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on CPU)."""
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


def time_rounds(
    calls: dict[str, Call],
    *,
    rounds: int,
    run_s: float,
    sync: Callable[[], None] = lambda: None,
    cap_s: float | dict[str, float] = math.inf,
    dropped: list[str] | None = None,
) -> dict[str, tuple[list[float], int]]:
    """Per-run times (s per call) of every call, interleaved, and calls per run.

    Each call is warmed up (two calls, the second timed to choose the calls per
    run ``k``, about ``run_s`` a run).  Round ``i`` then times one run of every
    call, starting at the ``i``-th in the order given and wrapping round, so
    each method is timed as often early as late in a round.  A call whose
    second warm-up takes over ``cap_s`` (a number, or one per name) is not
    timed; its name is appended to ``dropped``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1; got {rounds}.")
    names = list(calls)
    number: dict[str, int] = {}
    for name in names:
        calls[name]()
        sync()
        t0 = time.perf_counter()
        calls[name]()
        sync()
        once = time.perf_counter() - t0
        limit = cap_s.get(name, math.inf) if isinstance(cap_s, dict) else cap_s
        if once > limit:
            if dropped is not None:
                dropped.append(name)
            continue
        number[name] = max(1, int(run_s / max(once, 1e-7)))
    names = [name for name in names if name in number]
    times: dict[str, list[float]] = {name: [] for name in names}
    if not names:
        return {}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            call, k = calls[name], number[name]
            sync()
            t0 = time.perf_counter()
            for _ in range(k):
                call()
            sync()
            times[name].append((time.perf_counter() - t0) / k)
    return {name: (times[name], number[name]) for name in names}


# ---------------------------------------------------------------- header


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or "unknown"."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_notes(device: str, threads: int) -> list[str]:
    """Header lines: the machine, the torch build, the load average before."""
    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    build = "CUDA " + torch.version.cuda if torch.version.cuda else "CPU-only build"
    return [
        f"device {name}; {threads} torch thread(s); cpu {cpu_model()}; "
        f"{os.cpu_count()} logical CPUs",
        f"torch {torch.__version__} ({build}); python {platform.python_version()}; "
        f"{platform.system()} {platform.machine()}",
        f"load average before (1, 5, 15 min): {load_average()}",
    ]


# ---------------------------------------------------------------- runner


def _arithmetic_power(problem: str) -> int:
    return 2 if problem == "scalar" else 1


def _memory_power(method: str, kind: str) -> int:
    if kind in ("hessian", "hessian_x4", "jacobian"):
        return 1 if method in CHUNK or method == "hessian_row_loop" else 2
    return 1


def _extrapolate(
    history: list[tuple[int, float, float]], n: int, problem: str, method: str
) -> tuple[float, float]:
    """Expected seconds per call and bytes at ``n``, from the sizes measured so far.

    The time grows at most like n to the power of (passes + arithmetic): one
    pass's arithmetic is n² (``scalar``) or n (networks), and a Hessian or
    Jacobian makes n passes.  At small n fixed overheads hide that growth, so
    with two sizes measured the exponent is the measured local slope plus one
    half (at least the number of passes' power, at most the arithmetic's); with
    one size, the full power if that call took over 10 ms, else the passes'.
    """
    kind = METHODS[method][0]
    full = GROWTH[kind] + _arithmetic_power(problem)
    n1, t1, b1 = history[-1]
    if len(history) >= 2:
        n0, t0, _ = history[-2]
        slope = math.log(t1 / t0) / math.log(n1 / n0) if t0 > 0 and t1 > 0 else full
        power = min(full, max(GROWTH[kind], slope + 0.5))
    else:
        power = full if t1 > 0.01 else GROWTH[kind]
    return t1 * (n / n1) ** power, b1 * (n / n1) ** _memory_power(method, kind)


def _too_big_unmeasured(p: Problem, method: str) -> bool:
    # without memory readings, the rule of thumb: n copies of every (1024 x h)
    # intermediate of the big network are several GB beyond n = 400
    kind = METHODS[method][0]
    vectorised = kind in ("hessian", "hessian_x4") and method not in MEMORY_METHODS
    return p.name == "mlp" and vectorised and p.n > 400


def run(
    problems: list[str],
    sizes: dict[str, list[int]],
    methods: list[str],
    *,
    budget: Budget,
    memory: bool,
    device: str = "cpu",
    dtypes: tuple[str, ...] = ("float64",),
    progress: Callable[[str], None] = print,
    skipped: list[str] | None = None,
) -> list[Row]:
    """Measure every method on every problem, size and dtype, in interleaved rounds.

    float32 is timed only for :data:`~helpers.bench.methods.FLOAT32_METHODS`,
    in the same rounds as float64.  A measurement left out (chunked at ``n <=``
    its chunk, or over the time cap or memory budget by extrapolation) is
    reported through ``progress`` and appended to ``skipped`` as a sentence.
    """
    rows: list[Row] = []
    skipped = [] if skipped is None else skipped
    sync = synchronizer(device)
    start = time.perf_counter()
    for problem in problems:
        last: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
        stopped: set[tuple[str, str]] = set()  # left out once: not at larger n
        for size in sizes[problem]:
            probs = {
                dt: make_problem(problem, size, DTYPES[dt], device) for dt in dtypes
            }
            n = next(iter(probs.values())).n
            calls: dict[tuple[str, str], Call] = {}
            setup: dict[tuple[str, str], float] = {}
            for dt, p in probs.items():
                for method in methods:
                    if dt != "float64" and method not in FLOAT32_METHODS:
                        continue
                    kind, prepare = METHODS[method]
                    label = f"{problem} {dt} n={n} {method}"
                    if not applies(method, n):
                        continue  # chunk >= n: the unchunked method, not listed
                    why = None
                    if (method, dt) in stopped:
                        why = "left out at a smaller n"
                    elif (method, dt) in last:
                        guess, mem = _extrapolate(
                            last[(method, dt)], n, problem, method
                        )
                        if guess > budget.cap(method):
                            why = (
                                f"~{guess:.1f} s a call > cap {budget.cap(method):g} s"
                            )
                        elif not math.isfinite(mem) and _too_big_unmeasured(p, method):
                            why = "no memory reading; n > 400 on the 1024-point net"
                        elif math.isfinite(mem) and mem > budget.memory_bytes:
                            why = (
                                f"~{mem / 1e9:.2f} GB > memory budget "
                                f"{budget.memory_bytes / 1e9:.2f} GB"
                            )
                    if why:
                        stopped.add((method, dt))
                        skipped.append(f"skipped: {label} ({why})")
                        progress(f"{label}: skipped ({why})")
                        continue
                    sync()
                    t0 = time.perf_counter()
                    calls[(method, dt)] = prepare(p)
                    sync()
                    setup[(method, dt)] = time.perf_counter() - t0
            t = time.perf_counter()
            too_slow: list[str] = []
            timed = time_rounds(
                {f"{m} {dt}": c for (m, dt), c in calls.items()},
                rounds=budget.rounds,
                run_s=budget.run_s,
                sync=sync,
                cap_s={f"{m} {dt}": 3 * budget.cap(m) for m, dt in calls},
                dropped=too_slow,
            )
            for name in too_slow:
                method, dt = name.split()
                why = f"one call took over 3 × cap {budget.cap(method):g} s"
                skipped.append(f"skipped: {problem} {dt} n={n} {method} ({why})")
                progress(f"{problem} {dt} n={n} {method}: skipped ({why})")
                del calls[(method, dt)]
                stopped.add((method, dt))
            if not calls:
                continue
            for (method, dt), call in calls.items():
                times, number = timed[f"{method} {dt}"]
                q1, med, q3 = quartiles(times)
                peak = device_memory(call, device) if memory else math.nan
                p = probs[dt]
                row = Row(
                    problem,
                    method,
                    METHODS[method][0],
                    dt,
                    n,
                    p.data["X"].shape[0] if "X" in p.data else 0,
                    med,
                    q1,
                    q3,
                    len(times),
                    number,
                    setup[(method, dt)],
                    peak,
                    tuple(times),
                )
                rows.append(row)
                last.setdefault((method, dt), []).append((n, med, peak))
            progress(
                f"{problem:12s} n={n:5d}: {len(calls):2d} methods x {budget.rounds} "
                f"rounds in {time.perf_counter() - t:5.1f} s "
                f"({time.perf_counter() - start:4.0f} s total)"
            )
            del probs, calls
            gc.collect()
    return rows
