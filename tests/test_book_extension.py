"""The book's own Sphinx extension (book/_ext/course_book.py), without a build.

Its pybtex look-up cache: remembered classes are the ones pybtex finds, the
course's own styles (registered at run time) included, and a failed look-up still
raises every time (it is not remembered as a result).
"""

from __future__ import annotations

import importlib.util

import pybtex.plugin
import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def course_book():
    spec = importlib.util.spec_from_file_location(
        "course_book_under_test", ROOT / "book" / "_ext" / "course_book.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_lookups_are_remembered_and_still_right(course_book):
    load = pybtex.plugin._load_entry_point
    assert hasattr(load, "cache_info"), "expected pybtex's look-up to be cached"
    course_book.remember_plugin_lookups()  # a second call does not wrap it again
    assert pybtex.plugin._load_entry_point is load

    from pybtex.style.formatting.unsrt import Style as Unsrt

    before = load.cache_info()
    for _ in range(3):
        assert pybtex.plugin.find_plugin("pybtex.style.formatting", "unsrt") is Unsrt
        assert (
            pybtex.plugin.find_plugin("pybtex.style.labels", "course_author_year")
            is course_book.AuthorYearLabels
        )
    after = load.cache_info()
    assert after.hits - before.hits >= 4, (before, after)


def test_a_missing_plugin_still_raises_each_time(course_book):
    for _ in range(2):
        with pytest.raises(pybtex.plugin.PluginNotFound, match="no_such_style"):
            pybtex.plugin.find_plugin("pybtex.style.formatting", "no_such_style")
