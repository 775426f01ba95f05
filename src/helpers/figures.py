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
  a dark figure, not a white slab;
* sets math text ($f'$, $\mathcal{L}$) in DejaVu Sans with Unicode characters, so
  that a browser draws the glyphs the figure means (see :func:`course_rc`).

Figures wider than :data:`WIDTH_IN` inches break the 9 px rule on a phone: put
two panels one above the other rather than side by side.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_FONT_PT", "WIDTH_IN", "course_rc", "use_course_style"]

WIDTH_IN = 6.4
MIN_FONT_PT = 12.0
# matplotlib's tab10, its olive and cyan darkened (see course_rc).
TAB10_DARKENED = (
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #8c8d12 #12a0b0"
).split()


def course_rc() -> dict[str, Any]:
    """The matplotlib rcParams of the course's style."""
    from cycler import cycler  # installed with matplotlib

    size = MIN_FONT_PT
    return {
        # matplotlib's tab10 with its two lightest colours darkened: olive
        # (#bcbd22, contrast 2.0 on white and 2.9 on the dark theme's inverted
        # page) and cyan (#17becf, 2.3 on white) became hard to see as the ninth
        # and tenth lines of a figure; now at least 3.1 on both themes.
        "axes.prop_cycle": cycler(color=TAB10_DARKENED),
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
        # Mathtext in the fonts a browser has. With svg.fonttype "none" each glyph
        # is written as a character in its font's encoding; matplotlib's default
        # math fonts draw the prime of $f'$ from TeX's cmsy10 (character "0") and
        # $\mathcal{L}$ from STIX's private-use area, which a browser shows as a
        # zero and a blank box. DejaVu Sans (the text font) has Unicode primes,
        # operators and Greek; the few symbols it lacks (a radical) come from STIX
        # Sans as Unicode characters.
        "mathtext.fontset": "custom",
        "mathtext.rm": "DejaVu Sans",
        "mathtext.sf": "DejaVu Sans",
        "mathtext.it": "DejaVu Sans:italic",
        "mathtext.bf": "DejaVu Sans:bold",
        "mathtext.cal": "DejaVu Sans:italic",
        "mathtext.tt": "DejaVu Sans Mono",
        "mathtext.fallback": "stixsans",
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
