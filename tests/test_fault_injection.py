"""Every check is shown to fail when autograd's derivatives are wrong (issue 11).

Each chapter is executed under the ``skew`` fault in a fresh kernel (see
``tests/faults.py``): every derivative autograd returns has each entry scaled
by its own factor between 1.001 and 1.004, and exact zeros get an offset.
``helpers.check.assert_close`` records every check instead of raising.  The
clean run it is compared with is nbval's own run of the chapter in the same
``make test``, recorded (``tests/conftest.py``); when nbval did not run the
chapter, or failed on it, the chapter is also executed here without a fault.
The test fails when

1. a check fails without a fault, outside a cell tagged ``raises-exception``
   (or a cell raises without a fault and is not so tagged): nbval fails on it
   first, and this test on its own clean run;
2. a check passes under the fault, unless it declares ``not_autograd="..."``
   (it is not about a value autograd computed) or
   ``expected_from_autograd="..."`` (it compares two autograd routes, and says
   why that is acceptable);
3. a check's expected side changes under the fault (so it came from
   autograd), unless it declares ``expected_from_autograd="..."``.

Select one chapter with ``-k 03_``.  With ``FAULT_REPORT=/path/file.txt`` in the
environment, each chapter's verdict (every check and what the fault did to it)
is also written there.  ``FAULT_ALL=1`` runs the ``scale`` fault as well.
"""

from __future__ import annotations

import os
import pathlib

import faults

from conftest import CHAPTERS_MD, update_report


def checks_fail_under_faults(md: pathlib.Path, tmp_path_factory) -> None:
    """The chapter's checks obey the three rules above."""
    where = faults.shared_dir(tmp_path_factory)
    chosen = (
        faults.FAULTS
        if os.environ.get("FAULT_ALL", "") not in ("", "0")
        else faults.CHAPTER_FAULTS
    )
    runs = {"none": faults.clean_run(md, tmp_path_factory)}
    runs.update({f: faults.run_chapter(md, f, where) for f in chosen})
    verdict = faults.judge(runs)
    text = faults.report_text([verdict])
    update_report("FAULT_REPORT", verdict.chapter, text.split(": ", 1)[1])
    assert not verdict.problems, (
        f"{md.name}: {len(verdict.problems)} check(s) break the rules of "
        "tests/test_fault_injection.py:\n" + "\n".join(verdict.problems)
    )


faults.per_chapter_classes(globals(), CHAPTERS_MD, checks_fail_under_faults)
