"""Shared paths for the tests."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS_MD = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
CHAPTERS_IPYNB = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
