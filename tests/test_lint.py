"""Lint: ruff over the code and the chapters, with the configuration in pyproject.toml.

* ``ruff check`` (rules E F W I B UP, lines of at most 88 characters) runs over
  ``src/``, ``tests/``, ``scripts/`` and the chapters' ``.ipynb``: ruff reads
  notebooks, and each ``.md`` has the same cells as its ``.ipynb`` (see
  test_notebooks.py), so the chapters' code is linted once.
* ``ruff format --check`` runs over the Python files only. The chapters' code is
  laid out for the reader, and reformatting it would change the ``.md`` sources
  and require re-executing every chapter, so the format of notebooks is not
  imposed.

The last two tests show the same commands failing on a file that breaks the rules.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

PYTHON_DIRS = ["src", "tests", "scripts", "conftest.py"]
CONFIG = ROOT / "pyproject.toml"


def ruff(command, *args, cwd=ROOT):
    """Run `ruff COMMAND ARGS` without a cache; its exit code and output."""
    if command == "check":
        args = ("--output-format", "concise", *args)
    result = subprocess.run(
        [sys.executable, "-m", "ruff", command, "--no-cache", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def test_ruff_check_passes_on_the_python_files():
    code, log = ruff("check", *PYTHON_DIRS)
    assert code == 0, f"ruff check {' '.join(PYTHON_DIRS)} found problems:\n{log}"


def test_ruff_check_passes_on_the_chapters():
    chapters = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("notebooks/*.ipynb"))
    assert chapters, "no notebooks/*.ipynb found"
    code, log = ruff("check", *chapters)
    assert code == 0, f"ruff check found problems in the chapters' code:\n{log}"


def test_python_files_are_formatted():
    code, log = ruff("format", "--check", *PYTHON_DIRS)
    assert code == 0, (
        f"run `.venv/bin/ruff format {' '.join(PYTHON_DIRS)}`; "
        f"these files are not formatted:\n{log}"
    )


@pytest.fixture
def bad_files(tmp_path):
    long_line = "x = '" + "a" * 90 + "'\n"
    (tmp_path / "bad.py").write_text("import os\n" + long_line)
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c1",
                "metadata": {},
                "outputs": [],
                "source": [long_line],
            }
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "bad.ipynb").write_text(json.dumps(nb))
    (tmp_path / "ugly.py").write_text("x = {  'a':1 }\n")
    return tmp_path


def test_ruff_check_fails_on_a_long_line_and_an_unused_import(bad_files):
    code, log = ruff("check", "--config", str(CONFIG), str(bad_files))
    assert code == 1, log
    assert "bad.py:1:8: F401" in log, log
    assert "bad.py:2:89: E501" in log, log
    assert "bad.ipynb:cell 1:1:89: E501" in log, log


def test_ruff_format_check_fails_on_an_unformatted_file(bad_files):
    code, log = ruff(
        "format",
        "--check",
        "--config",
        str(CONFIG),
        str(bad_files / "ugly.py"),
    )
    assert code == 1, log
    assert "would be reformatted" in log and "ugly.py" in log, log
