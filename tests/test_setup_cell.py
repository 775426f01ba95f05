"""The chapters' set-up cell (tests/test_notebooks.py, SETUP_CELL) installs the
course's helpers whenever they are missing, from the repository at the course's
version, with one line saying so; where they are installed it installs nothing.

The cell is run as IPython runs it (its %-magics turned into calls), in a fake
IPython that records each magic instead of running pip.
"""

from __future__ import annotations

import importlib.util
import io
import re
import string
import sys
from contextlib import redirect_stdout

import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from test_notebooks import setup_cell_source

from conftest import ROOT


class FakeIPython:
    """Records line magics (name, argument after IPython's {variable} expansion)."""

    def __init__(self, namespace):
        self.namespace = namespace
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name, line, _stack_depth=1):
        expanded = string.Formatter().vformat(line, (), self.namespace)
        self.magics.append((name, expanded))


def run_cell(monkeypatch, *, helpers_installed: bool, in_colab: bool = False):
    source = TransformerManager().transform_cell(setup_cell_source())
    namespace: dict = {"__name__": "__main__"}
    shell = FakeIPython(namespace)
    namespace["get_ipython"] = lambda: shell
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "helpers" and not helpers_installed:
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(source, "<set-up cell>", "exec"), namespace)
    return shell.magics, out.getvalue(), namespace


def course_version():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]


def repository():
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


@pytest.mark.parametrize("in_colab", [False, True], ids=["downloaded", "colab"])
def test_installs_helpers_when_missing(monkeypatch, in_colab):
    magics, printed, _ = run_cell(
        monkeypatch, helpers_installed=False, in_colab=in_colab
    )
    version, url = course_version(), repository()
    pips = [line for name, line in magics if name == "pip"]
    assert pips == [f'install --quiet "course-helpers @ git+{url}@v{version}"'], magics
    assert printed.splitlines() == [
        f"Installing the course's helpers {version} from {url}"
    ], f"expected one line saying what is installed, got {printed!r}"
    assert ("xmode", "Minimal") in magics


@pytest.mark.parametrize("in_colab", [False, True], ids=["local", "colab"])
def test_installs_nothing_when_helpers_are_there(monkeypatch, in_colab):
    magics, printed, namespace = run_cell(
        monkeypatch, helpers_installed=True, in_colab=in_colab
    )
    assert not [m for m in magics if m[0] == "pip"], f"expected no %pip, got {magics}"
    assert printed == "", f"expected no output, got {printed!r}"
    assert ("xmode", "Minimal") in magics
    # The warning format of the cell: one line, no file path.
    line = namespace["warnings"].formatwarning("careful", UserWarning, "/x.py", 3)
    assert line == "UserWarning: careful\n"


def test_installs_the_version_the_course_is_at():
    """The pinned helpers version is the package's and the citation's, and the tag
    it installs from is written v<version>."""
    import helpers

    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^version = "{re.escape(helpers.__version__)}"', pyproject, re.M)
    assert course_version() == helpers.__version__
    assert f'HELPERS_VERSION = "{helpers.__version__}"' in setup_cell_source()
    assert "@v{HELPERS_VERSION}" in setup_cell_source()
