"""Loads tests/chapter_groups.py into every pytest run in this repository.

It decides which xdist worker runs what (a chapter's nbval cells and its
fault-injection and exercise-message tests on one worker, in that order) and
records nbval's runs of the chapters; see that file.  The shared test helpers
are in tests/conftest.py.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "tests"))
pytest_plugins = ["chapter_groups"]
