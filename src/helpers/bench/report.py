r"""Results files, and the tables and figures that summarise them.

A results file is a CSV with ``#`` header lines (the machine, the budget,
what was skipped and why, the wall time) and one line per :class:`Row`, whose
``times`` column holds the per-run times separated by spaces.
:func:`load_results` reads one (by default ``$BENCH_RESULTS``, else the
results shipped with the package); :class:`Results` indexes the rows and
writes the Markdown tables chapter 12 shows, so that a reader's own run can be
summarised without the chapter::

    from helpers.bench import report
    res = report.Results.load("_build/bench/results.csv")
    print(res.times_table("scalar", res.of_kind("hvp")))

Every verdict in them is :func:`helpers.bench.stats.compare` (a rank test at
level 1 % with a 5 % margin), every ratio :func:`helpers.bench.stats.ratio`
(ratio of medians, with the Hodges-Lehmann 99 % interval).
"""

from __future__ import annotations

import csv
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields

from helpers.bench.measure import Row
from helpers.bench.methods import CHUNK, METHODS
from helpers.bench.problems import PROBLEMS
from helpers.bench.stats import compare, ratio

__all__ = [
    "COLUMNS",
    "Results",
    "default_results_path",
    "load_results",
    "md_list",
    "md_table",
    "methods_table",
    "methods_table",
    "plot",
    "styles",
    "write_csv",
]

COLUMNS = [f.name for f in fields(Row)]


def _format(value: object) -> str:
    if isinstance(value, tuple):
        return " ".join(f"{v:.4e}" for v in value)
    if isinstance(value, float):
        return f"{value:.6e}"
    return str(value)


def write_csv(rows: Iterable[Row], path: str, notes: Sequence[str]) -> None:
    """Write ``notes`` as ``#`` lines, then the rows (times space-separated)."""
    with open(path, "w", newline="") as fh:
        for note in notes:
            fh.write(f"# {note}\n")
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([_format(getattr(r, c)) for c in COLUMNS])


def default_results_path() -> str:
    """``$BENCH_RESULTS`` if set, else the results shipped with the package."""
    if os.environ.get("BENCH_RESULTS"):
        return os.environ["BENCH_RESULTS"]
    from importlib.resources import files

    return str(files("helpers").joinpath("bench_results.csv"))


def load_results(path: str | None = None) -> tuple[list[str], list[Row]]:
    """Header notes and rows of a results CSV (default :func:`default_results_path`)."""
    with open(path or default_results_path()) as fh:
        lines = fh.read().splitlines()
    notes = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    types = {f.name: f.type for f in fields(Row)}
    cast: dict[str, Callable[[str], object]] = {"str": str, "int": int, "float": float}
    rows = []
    for r in csv.DictReader(body):
        missing = set(COLUMNS) - set(r)
        if missing:
            raise ValueError(
                f"{path or default_results_path()}: no column(s) {sorted(missing)}; "
                "a results file from an older helpers.bench? Re-run the benchmark."
            )
        values = {k: cast[types[k]](r[k]) for k in COLUMNS if k != "times"}
        times = tuple(float(t) for t in r["times"].split())
        rows.append(Row(**values, times=times))
    return notes, rows


def md_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """A Markdown table: one header row, then the body's rows."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def md_list(items: Iterable[str], width: int = 96) -> str:
    """A Markdown bullet list, each item wrapped to lines of ``width``."""
    return "\n".join(
        textwrap.fill(
            f"- {item}", width, subsequent_indent="  ", break_on_hyphens=False
        )
        for item in items
    )


def ratio_text(a: Row, b: Row, k: float = 1.0) -> str:
    """Median ratio of a's time to ``k`` times b's, with its interval, as text."""
    r, lo, hi = (q / k for q in ratio(a, b))
    return f"{r:.2f}× ({lo:.2f}–{hi:.2f})"


class Results:
    """Rows of a results file, indexed by (problem, method, n, dtype)."""

    def __init__(self, notes: list[str], rows: list[Row]) -> None:
        self.notes = notes
        self.rows = rows
        self.index = {(r.problem, r.method, r.n, r.dtype): r for r in rows}
        present = {r.problem for r in rows}
        self.problems = [pr for pr in PROBLEMS if pr in present]
        self.problems += sorted(present - set(PROBLEMS))

    @classmethod
    def load(cls, path: str | None = None) -> Results:
        """:func:`load_results`, indexed."""
        return cls(*load_results(path))

    def get(
        self, problem: str, method: str, n: int, dtype: str = "float64"
    ) -> Row | None:
        """The row, or None where the method was not measured."""
        return self.index.get((problem, method, n, dtype))

    def sizes(self, problem: str, dtype: str = "float64") -> list[int]:
        """The sizes measured on ``problem``, ascending."""
        return sorted(
            {r.n for r in self.rows if r.problem == problem and r.dtype == dtype}
        )

    def of_kind(self, *kinds: str) -> list[str]:
        """The methods of those kinds, in :data:`METHODS` order."""
        return [m for m, (k, _) in METHODS.items() if k in kinds]

    @property
    def skipped(self) -> list[str]:
        """The header's "skipped: ..." sentences."""
        return [ln for ln in self.notes if ln.startswith("skipped: ")]

    def leaders(
        self, problem: str, methods: Sequence[str], n: int, dtype: str = "float64"
    ) -> list[str]:
        """The fastest measured method at ``n`` and every method tied with it."""
        here = [r for m in methods if (r := self.get(problem, m, n, dtype))]
        if not here:
            return []
        best = min(here, key=lambda r: r.median_s)
        return [
            r.method
            for r in sorted(here, key=lambda r: r.median_s)
            if compare(r, best) != "slower"
        ]

    def times_table(
        self, problem: str, methods: Sequence[str], dtype: str = "float64"
    ) -> str:
        """Median milliseconds per call, methods by sizes; "—" where not run."""
        ns = self.sizes(problem, dtype)
        body = []
        for m in methods:
            cells = [self.get(problem, m, n, dtype) for n in ns]
            if not any(cells):
                continue
            body.append(
                [f"`{m}`"] + [f"{c.median_s * 1e3:.3g}" if c else "—" for c in cells]
            )
        return md_table(["ms per call"] + [f"n={n}" for n in ns], body)

    def podium(self, problem: str, methods: Sequence[str]) -> str:
        """Per size: "best" for the fastest method, "tied" for those tied with it.

        An empty cell is a method measured and slower than the best; "—" a size
        it was not run at (too slow, too big, or a chunked method with
        ``n <= chunk``, where it would not chunk).
        """
        ns = [n for n in self.sizes(problem) if self.leaders(problem, methods, n)]
        marks = {n: self.leaders(problem, methods, n) for n in ns}
        body = []
        for m in methods:
            if not any(self.get(problem, m, n) for n in ns):
                continue
            body.append(
                [f"`{m}`"]
                + [
                    "best"
                    if marks[n][0] == m
                    else "tied"
                    if m in marks[n]
                    else ""
                    if self.get(problem, m, n)
                    else "—"
                    for n in ns
                ]
            )
        return md_table([problem] + [f"n={n}" for n in ns], body)

    def shared_sizes(self, problem: str, methods: Sequence[str]) -> list[int]:
        """Sizes at which at least two of the methods were measured."""
        return [
            n
            for n in self.sizes(problem)
            if sum(bool(self.get(problem, m, n)) for m in methods) > 1
        ]

    def verdict(
        self, problem: str, methods: Sequence[str], near: int | None = None
    ) -> str:
        """Leaders at the largest shared size (or at the one nearest ``near``)."""
        ns = self.shared_sizes(problem, methods)
        if not ns:
            return "—"
        n = ns[-1] if near is None else min(ns, key=lambda k: abs(k - near))
        named = ", ".join(f"`{m}`" for m in self.leaders(problem, methods, n))
        return f"n = {n}: {named}"

    def pairs(
        self,
        a: str,
        b: str,
        problems: Sequence[str] | None = None,
        dtype_a: str = "float64",
        dtype_b: str = "float64",
    ) -> list[tuple[str, int, Row, Row]]:
        """Every (problem, n, row of a, row of b) where both were measured."""
        out = []
        for problem in problems or self.problems:
            for n in self.sizes(problem):
                ra, rb = (
                    self.get(problem, a, n, dtype_a),
                    self.get(problem, b, n, dtype_b),
                )
                if ra and rb:
                    out.append((problem, n, ra, rb))
        return out

    def pair_table(
        self,
        a: str,
        b: str,
        header: Sequence[str],
        problems: Sequence[str] | None = None,
        dtype_a: str = "float64",
        dtype_b: str = "float64",
    ) -> str:
        """A against b at every shared size: ratio (interval) and the verdict."""
        body = [
            [problem, str(n), ratio_text(ra, rb), compare(ra, rb)]
            for problem, n, ra, rb in self.pairs(a, b, problems, dtype_a, dtype_b)
        ]
        return md_table(header, body)


_MARKERS = "osD^v<>pPXh*"


def styles(methods: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    """A distinct colour and filled marker for each of ``methods``.

    Up to 12 methods get 12 colours and 12 markers; beyond that colours repeat
    with a different marker, so every (colour, marker) pair stays distinct.
    Products are drawn dashed, everything else solid.
    """
    import matplotlib

    methods = list(METHODS) if methods is None else list(methods)
    colours = list(matplotlib.colormaps["tab10"].colors) + ["tab:olive", "gold"]
    out = {}
    for i, method in enumerate(methods):
        kind = METHODS[method][0] if method in METHODS else ""
        out[method] = {
            "color": colours[i % len(colours)],
            "marker": _MARKERS[(i + 5 * (i // len(_MARKERS))) % len(_MARKERS)],
            "ls": "--" if kind.startswith("hvp") or kind == "gnvp" else "-",
        }
    return out


def panels(
    res: Results,
    methods: Sequence[str],
    field: str = "median_s",
    label: str = "time per call (s)",
    reference: tuple[str, Callable[[int], float], dict] | None = None,
    problems: Sequence[str] | None = None,
):  # noqa: ANN201 (a matplotlib Figure)
    """One log-log panel per problem, stacked, legend above (6.4 in wide).

    Method names that share a prefix ("hessian_") are shown without it, in a
    legend titled with the prefix; ``reference`` is an extra line
    ``(label, function of n, style)``.
    """
    import matplotlib.pyplot as plt

    problems = [pr for pr in (problems or res.problems) if pr in PROBLEMS]
    prefix = os.path.commonprefix(list(methods))
    prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
    fig, axes = plt.subplots(
        len(problems),
        1,
        figsize=(6.4, 2.3 * len(problems) + 1.6),
        sharex=True,
        layout="constrained",
        squeeze=False,
    )
    style = styles(methods)
    for ax, problem in zip(axes[:, 0], problems, strict=True):
        for m in methods:
            pts = sorted(
                (r.n, getattr(r, field))
                for r in res.rows
                if r.problem == problem
                and r.method == m
                and r.dtype == "float64"
                and getattr(r, field) > 0
            )
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    ms=5,
                    label=m.removeprefix(prefix),
                    **style[m],
                )
        if reference:
            name, law, ref_style = reference
            ns = res.sizes(problem)
            ax.plot(ns, [law(n) for n in ns], label=name, **ref_style)
        ax.set(xscale="log", yscale="log", ylabel=label)
        ax.set_title(problem, loc="left")
        ax.grid(True, which="major", alpha=0.3)
    axes[-1, 0].set_xlabel("n (inputs or parameters)")
    handles, labels = {}, {}
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels.setdefault(lab, lab)
    fig.legend(
        list(handles.values()),
        list(labels.values()),
        loc="outside upper center",
        ncol=2,
        frameon=False,
        title=f"method ({prefix}…)" if prefix else None,
        columnspacing=1.2,
        handlelength=1.8,
    )
    return fig


def plot(rows: list[Row], out_dir: str) -> list[str]:
    """Write ``time_<problem>.png`` and ``memory_<problem>.png`` (float64 rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    res = Results([], [r for r in rows if r.dtype == "float64"])
    for field, label, fname in (
        ("median_s", "median time per call (s)", "time"),
        ("peak_bytes", "tensor memory one call adds (bytes)", "memory"),
    ):
        for problem in [pr for pr in PROBLEMS if pr in res.problems]:
            here = [
                m
                for m in METHODS
                if any(
                    r.method == m
                    and r.problem == problem
                    and math.isfinite(getattr(r, field))
                    and getattr(r, field) > 0
                    for r in res.rows
                )
            ]
            if not here:
                continue
            fig = panels(res, here, field, label, problems=[problem])
            path = os.path.join(out_dir, f"{fname}_{problem}.png")
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
    return written


COMPUTES = {
    "gradient": "one gradient",
    "hvp": "a Hessian-vector product",
    "hvp_amortised": "a product, after a set-up at the point",
    "gnvp": "a Gauss-Newton product",
    "jacobian": "a Jacobian",
    "hessian": "a full Hessian",
    "hessian_x4": "Hessians at 4 points",
    "iterative": "an iteration of products",
}


def methods_table() -> str:
    """Every method under its kind, with the first line of its docstring.

    A chunked method's line says where it is measured: only at n > k.
    """
    lines, seen = [], set()
    for name, (kind, prepare) in METHODS.items():
        if kind not in seen:  # a row that names the group, then its methods
            seen.add(kind)
            lines.append([f"**{kind}**", f"*{COMPUTES[kind]}*"])
        doc = (prepare.__doc__ or "").strip().splitlines()[0].replace("|", "/")
        if name in CHUNK:
            doc += f" Only at n > {CHUNK[name]}."
        lines.append([f"`{name}`", doc])
    return md_table(["method", "how it computes"], lines)
