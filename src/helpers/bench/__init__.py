"""Every way the course computes second-order quantities, timed side by side.

Run it with ``make bench`` (``python -m helpers.bench --out _build/bench``;
``--quick`` for a small version, ``--help`` for the options).  One job per
module:

:mod:`~helpers.bench.problems`
    the problems (``scalar``, ``mlp``, ``mlp_overhead``) and their derivatives
    in closed form, without autograd;
:mod:`~helpers.bench.methods`
    the timed methods, what each computes, and what each must return;
:mod:`~helpers.bench.measure`
    interleaved timed rounds, peak tensor memory, the machine header, the
    runner;
:mod:`~helpers.bench.stats`
    "faster", "slower" or "tied" with a known false-positive rate, and ratio
    intervals;
:mod:`~helpers.bench.report`
    the results file, the Markdown tables and the figures;
:mod:`~helpers.bench.dataset`
    Part V's data-set products (:mod:`helpers.curvature`) as rows;
``__main__``
    the command line.

The names below are re-exported, so ``from helpers import bench;
bench.compare_times(...)`` works.
"""

from helpers.bench import dataset, measure, methods, problems, report, stats
from helpers.bench.measure import (
    QUICK,
    Budget,
    Row,
    device_memory,
    machine_notes,
    peak_memory,
    peak_tensor_bytes,
    run,
    synchronizer,
    time_rounds,
)
from helpers.bench.methods import (
    CG_DAMPING,
    CG_STEPS,
    CHUNK,
    FLOAT32_METHODS,
    LANCZOS_STEPS,
    MEMORY_METHODS,
    METHODS,
    applies,
    conjugate_gradient,
    expected_reference,
    lanczos,
)
from helpers.bench.problems import (
    BATCH,
    PROBLEMS,
    Problem,
    closed_form_large,
    closed_form_reference,
    make_problem,
    mlp_hidden_for,
)
from helpers.bench.report import (
    COLUMNS,
    Results,
    default_results_path,
    load_results,
    md_list,
    md_table,
    plot,
    styles,
    write_csv,
)
from helpers.bench.stats import (
    ALPHA,
    MARGIN,
    compare,
    compare_times,
    mann_whitney_p,
    ratio,
    ratio_interval,
)

__all__ = [
    "ALPHA",
    "BATCH",
    "CG_DAMPING",
    "CG_STEPS",
    "CHUNK",
    "COLUMNS",
    "FLOAT32_METHODS",
    "LANCZOS_STEPS",
    "MARGIN",
    "MEMORY_METHODS",
    "METHODS",
    "PROBLEMS",
    "QUICK",
    "Budget",
    "Problem",
    "Results",
    "Row",
    "applies",
    "closed_form_large",
    "closed_form_reference",
    "compare",
    "compare_times",
    "conjugate_gradient",
    "dataset",
    "default_results_path",
    "device_memory",
    "expected_reference",
    "lanczos",
    "load_results",
    "machine_notes",
    "make_problem",
    "mann_whitney_p",
    "measure",
    "md_list",
    "md_table",
    "methods",
    "mlp_hidden_for",
    "peak_memory",
    "peak_tensor_bytes",
    "plot",
    "problems",
    "ratio",
    "ratio_interval",
    "report",
    "run",
    "stats",
    "styles",
    "synchronizer",
    "time_rounds",
    "write_csv",
]
