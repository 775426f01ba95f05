"""Every check is shown to fail when autograd's derivatives are wrong (issue 11).

Each chapter is executed twice in a fresh kernel (see ``tests/faults.py``): with
every derivative autograd returns scaled by 1.001 (``scale``), and with a
per-entry skew plus an offset on exact zeros (``skew``).
``helpers.check.assert_close`` records every check instead of raising.  The
test fails when

1. a check fails without a fault, outside a cell tagged ``raises-exception``
   (or a cell raises without a fault and is not so tagged).  nbval checks this
   in the same ``make test`` (it re-runs every chapter strictly), so the clean
   run is made here only with ``FAULT_CLEAN=1`` in the environment;
2. a check passes under every fault, unless it declares
   ``not_autograd="..."`` (it is not about a value autograd computed) or
   ``expected_from_autograd="..."`` (it compares two autograd routes, and says
   why that is acceptable);
3. a check's expected side changes under a fault (so it came from autograd),
   unless it declares ``expected_from_autograd="..."``.  Without a clean run
   the expected sides under the two faults are compared: they differ whenever
   the expected side depends on autograd.

Select one chapter with ``-k 03_``.  With ``FAULT_REPORT=/path/file.txt`` in the
environment, each chapter's verdict (every check and what each fault did to it)
is also written there.
"""

from __future__ import annotations

import os
import pathlib

import faults

from conftest import CHAPTERS_MD, update_report


def checks_fail_under_faults(md: pathlib.Path, tmp_path_factory) -> None:
    """The chapter's checks obey the three rules above."""
    where = faults.shared_dir(tmp_path_factory)
    runs = {
        "scale": faults.value_run(md, tmp_path_factory),
        "skew": faults.run_chapter(md, "skew", where),
    }
    if os.environ.get("FAULT_CLEAN", "") not in ("", "0"):
        runs["none"] = faults.run_chapter(md, "none", where)
    verdict = faults.judge(runs)
    text = faults.report_text([verdict])
    update_report("FAULT_REPORT", verdict.chapter, text.split(": ", 1)[1])
    assert not verdict.problems, (
        f"{md.name}: {len(verdict.problems)} check(s) break the rules of "
        "tests/test_fault_injection.py:\n" + "\n".join(verdict.problems)
    )


faults.per_chapter_classes(globals(), CHAPTERS_MD, checks_fail_under_faults)
