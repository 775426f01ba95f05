"""The instructors' guide's time estimates follow the chapters (time_estimate.py).

Exercise counts must match exactly; minutes may drift by TOLERANCE while chapters are
edited, after which `python scripts/time_estimate.py --write book/instructors.md`
brings the guide up to date.
"""

from __future__ import annotations

import re
import sys

import nbformat
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import time_estimate  # noqa: E402

GUIDE = ROOT / "book" / "instructors.md"
TOLERANCE = 0.25  # relative drift of a chapter's total minutes before the test fails
ROW = re.compile(
    r"^\| (\d+) \| (\d+) \| (\d+) \| (\d+) / (\d+) / (\d+) "
    r"\| (\d+) \| (\d+) \| (\d+) \|$",
    re.M,
)


@pytest.fixture(scope="module")
def rows():
    return time_estimate.all_rows()


def test_guide_table_follows_the_chapters(rows):
    block = time_estimate.current_table(GUIDE.read_text())
    shown = {int(m.group(1)): m.groups() for m in ROW.finditer(block)}
    assert sorted(shown) == [int(r["chapter"][:2]) for r in rows], (
        "expected one row per chapter in book/instructors.md; run "
        "python scripts/time_estimate.py --write book/instructors.md"
    )
    for r in rows:
        g = shown[int(r["chapter"][:2])]
        kinds = (r["kinds"]["warm-up"], r["kinds"]["exercise"], r["kinds"]["stretch"])
        assert tuple(int(x) for x in g[3:6]) == kinds, (
            f"chapter {r['chapter']}: exercises expected {kinds}, "
            f"guide shows {g[3:6]}; "
            "run python scripts/time_estimate.py --write book/instructors.md"
        )
        total = r["reading"] + r["exercises"]
        assert abs(int(g[8]) - total) <= TOLERANCE * total, (
            f"chapter {r['chapter']}: estimate is now {total} min, guide shows {g[8]}; "
            "run python scripts/time_estimate.py --write book/instructors.md"
        )


def test_schedules_fit_the_estimates(rows):
    for name, (per_week, sessions) in time_estimate.SCHEDULES.items():
        _, fits = time_estimate.schedule(rows, per_week, sessions)
        assert fits, f"schedule {name!r}: a week's exercises exceed its sessions"


def test_counts_on_a_small_chapter(tmp_path):
    cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nOne two three four."),
        nbformat.v4.new_code_cell("x = 1\n\ny = 2"),
        nbformat.v4.new_code_cell("%pip install x"),
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n::::{exercise-start}\n:label: ex-01-a\n::::\n\n"
            "**Warm-up: a.** Do it."
        ),
        nbformat.v4.new_markdown_cell("::::{solution-start} ex-01-a\n::::"),
        nbformat.v4.new_code_cell(
            "### BEGIN SOLUTION\nz = 3\n### END SOLUTION\ncheck.ok(z)"
        ),
        nbformat.v4.new_markdown_cell("Solution prose is not read by students."),
        nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
        nbformat.v4.new_markdown_cell(
            "::::{exercise-start}\n:label: ex-01-b\n::::\n\n**Stretch: b.** Go."
        ),
    ]
    cells[2].metadata["tags"] = ["remove-cell"]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    got = time_estimate.chapter_counts(path)
    # words (split on white space): 6 in the title cell, 2 in "## Exercises", 4 in
    # statement a, 3 in statement b; directive lines and solution prose not counted
    assert got["words"] == 15
    assert got["code"] == 2, "blank lines, remove-cell cells and exercises not counted"
    assert got["kinds"] == {"warm-up": 1, "exercise": 0, "stretch": 1}
    minutes = time_estimate.MINUTES_PER_EXERCISE
    assert got["exercises"] == time_estimate.round5(
        minutes["warm-up"] + minutes["stretch"]
    )
    assert got["reading"] == time_estimate.round5(15 / 120 + 2 * 0.25) == 5


def test_replace_table_needs_its_markers():
    text = f"a\n{time_estimate.BEGIN_MARK}\nold\n{time_estimate.END_MARK}\nb"
    assert time_estimate.replace_table(text, "new") == (
        f"a\n{time_estimate.BEGIN_MARK}\nnew\n{time_estimate.END_MARK}\nb"
    )
    with pytest.raises(ValueError, match="expected one"):
        time_estimate.replace_table("no markers", "new")
