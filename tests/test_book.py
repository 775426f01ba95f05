"""The book builds with warnings as errors (-W -n --keep-going).

The student book's build is tested once, in tests/test_student.py.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from conftest import ROOT

FLAGS = ["--warningiserror", "--nitpick", "--keep-going", "--quiet"]


def build(source, out):
    result = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "jupyter-book"),
            "build",
            str(source),
            "--path-output",
            str(out),
            *FLAGS,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"book build failed:\n{log[-6000:]}"
    assert "WARNING" not in log, log[-6000:]
    return out / "_build" / "html"


@pytest.mark.book
def test_book_builds_without_warnings(tmp_path):
    html = build(ROOT, tmp_path)
    index = (html / "book" / "intro.html").read_text()
    assert "Second-order autodiff in PyTorch" in index
    chapter = (html / "notebooks" / "03_vhp_hvp_toy.html").read_text()
    assert "✓ vhp(pow_reducer) equals vᵀH" in chapter
    assert "solution-start" not in chapter and "exercise-start" not in chapter
    assert "dropdown" in chapter
    assert "Colab" in chapter or "colab" in chapter
