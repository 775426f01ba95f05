r"""One figure style for every chapter: vector, legible on a phone, fit for dark mode.

:func:`use_course_style` is called by every chapter's hidden set-up cell.  It

* makes the notebook's inline figures SVG (vector: sharp at any zoom and on
  retina screens), with text kept as text (``svg.fonttype = "none"``) so that
  the browser test can measure it, and with deterministic ids and no creation
  date, so that re-executing a chapter changes no figure that did not change;
* sets a default size of :data:`WIDTH_IN` x 4 inches and every font to at
  least :data:`MIN_FONT_PT` points.  A figure ``W`` inches wide shows at its
  natural ``96 W`` CSS px on a desktop and shrinks to the column's 358 px on a
  390 px phone (``book/_static/course.css`` gives output figures the column's
  whole width), so a font of ``s`` points shows at ``s * 4/3 * 358 / (96 W)`` CSS
  px; with ``W <= 6.4`` and ``s >= 12`` that is at least 9.3 px, and
  ``tests/test_browser.py`` measures it in every figure;
* draws on a transparent background, so that the book's dark theme (which
  inverts figure colours with a CSS filter, ``book/_static/course.css``) shows
  a dark figure, not a white slab.

Figures wider than :data:`WIDTH_IN` inches break the 9 px rule on a phone: put
two panels one above the other rather than side by side.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_FONT_PT", "WIDTH_IN", "course_rc", "use_course_style"]

WIDTH_IN = 6.4
MIN_FONT_PT = 12.0


def course_rc() -> dict[str, Any]:
    """The matplotlib rcParams of the course's style."""
    size = MIN_FONT_PT
    return {
        "figure.figsize": (WIDTH_IN, 4.0),
        "figure.dpi": 96,
        "font.size": size,
        "axes.titlesize": size,
        "axes.labelsize": size,
        "xtick.labelsize": size,
        "ytick.labelsize": size,
        "legend.fontsize": size,
        "legend.title_fontsize": size,
        "figure.titlesize": size + 1,
        "svg.fonttype": "none",
        "svg.hashsalt": "second-order-autodiff",
        "figure.facecolor": "none",
        "axes.facecolor": "none",
        "savefig.facecolor": "none",
        "savefig.transparent": True,
        "legend.framealpha": 0.0,
    }


def use_course_style() -> None:
    """Apply :func:`course_rc` and, inside IPython, make inline figures SVG."""
    import matplotlib
    import matplotlib.pyplot  # noqa: F401  (loads the inline backend's own rc first)

    matplotlib.rcParams.update(course_rc())
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with the course
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("svg", metadata={"Date": None}, bbox_inches="tight")
