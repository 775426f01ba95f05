"""The course's own Sphinx extension (listed in _config.yml, sphinx.local_extensions).

* The footer: the licences (``html.extra_footer`` in _config.yml), then the course's
  version (``git describe``, or the package version outside a git checkout) and the
  date the book was built (``SOURCE_DATE_EPOCH`` when set, for reproducible builds).
* ``{course-citation}``: "Cite this course", generated from CITATION.cff (a sentence
  and a BibTeX entry), used on the landing page.
* A 404 page (``404.html``) in the book's theme, with a ``<base>`` so that its links
  work at whatever depth the web server shows it.
* Author-year labels in the bibliography ("Pearlmutter 1994", not "[Pea94]"), so
  that the list matches the author-year citations in the text.
* MathJax only on pages that have math: Jupyter Book loads it on every page (the
  "always" assets policy of its singlehtml builder leaks into HTML builds through
  sphinx-exercise and myst-nb); here a page without math drops the script.
* pybtex's plugin look-ups remembered: pybtex scans every installed package's entry
  points on each look-up, and sphinxcontrib-bibtex makes hundreds of them, which
  cost about 7 s of every build in the course's environment.
"""

from __future__ import annotations

import datetime
import functools
import os
import pathlib
import subprocess

import pybtex.plugin
import yaml
from docutils import nodes
from docutils.parsers.rst import Directive
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

ROOT = pathlib.Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ version, date


def course_version() -> str:
    """``git describe --tags --always`` ("v0.2.0", "v0.2.0-3-gabc1234" or a commit),
    or the helpers package's version when there is no git checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--tags", "--always"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    return f"v{cff['version']}"


def build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        if epoch
        else datetime.datetime.now(datetime.timezone.utc)
    )
    return when.strftime("%Y-%m-%d")


def footer(app, config):
    options = dict(config.html_theme_options or {})
    version, date = course_version(), build_date()
    repo = (config.html_theme_options or {}).get("repository_url", "")
    if not repo:
        link = version
    elif version.startswith("v") and "-g" not in version:  # a release tag
        link = f'<a href="{repo}/releases/tag/{version}">{version}</a>'
    else:  # a commit: "0a55d4b" or "v0.2.0-3-g0a55d4b"
        link = f'<a href="{repo}/commit/{version.rsplit("-g", 1)[-1]}">{version}</a>'
    extra = options.get("extra_footer", "")
    options["extra_footer"] = (
        f"{extra}\n<p class='course-version'>Version {link}, built {date}.</p>"
    )
    config.html_theme_options = options


# ------------------------------------------------------------------ citation


def citation() -> dict:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    names = [
        a.get("name")
        or " ".join(p for p in (a.get("given-names"), a.get("family-names")) if p)
        for a in cff.get("authors", [])
    ]
    released = str(cff.get("date-released", ""))[:4]
    year = released or str(datetime.date.today().year)
    return {
        "authors": names,
        "title": cff["title"],
        "version": str(cff.get("version", "")),
        "url": cff.get("url") or cff.get("repository-code", ""),
        "doi": cff.get("doi", ""),
        "year": year,
        "message": cff.get("message", ""),
    }


class CourseCitation(Directive):
    """The course's citation from CITATION.cff: one sentence and a BibTeX entry."""

    has_content = False

    def run(self):
        c = citation()
        authors = " and ".join(c["authors"])
        para = nodes.paragraph()
        para += nodes.Text(f"{authors} ({c['year']}). ")
        para += nodes.emphasis(text=c["title"])
        para += nodes.Text(f", version {c['version']}. ")
        target = f"https://doi.org/{c['doi']}" if c["doi"] else c["url"]
        para += nodes.reference(text=target, refuri=target)
        para += nodes.Text(".")
        bib = (
            "@software{second_order_autodiff_course,\n"
            f"  author  = {{{{{authors}}}}},\n"
            f"  title   = {{{c['title']}}},\n"
            f"  version = {{{c['version']}}},\n"
            f"  year    = {{{c['year']}}},\n"
            + (f"  doi     = {{{c['doi']}}},\n" if c["doi"] else "")
            + f"  url     = {{{c['url']}}}\n}}"
        )
        block = nodes.literal_block(bib, bib, language="bibtex")
        intro = nodes.paragraph(
            text=(c["message"] or "If you use this course, please cite it as below.")
            + " (From the repository's CITATION.cff.)"
        )
        return [intro, para, block]


# ------------------------------------------------------------------ 404 page

NOT_FOUND = """
<h1>Page not found</h1>
<p>There is no page at this address. The course's chapters moved or were renamed
perhaps; the <a href="book/intro.html">landing page</a> lists every chapter, and
the search (the magnifying glass at the top, or Ctrl+K) finds a topic.</p>
<p>If a link in the course brought you here, please
<a href="{issues}">report it</a>.</p>
"""


def not_found_page(app):
    if app.builder.name != "html":
        return []
    repo = (app.config.html_theme_options or {}).get("repository_url", "")
    base = urlpath(app.config.html_baseurl)
    context = {
        "title": "Page not found",
        "body": NOT_FOUND.format(issues=f"{repo}/issues/new" if repo else "#"),
        "metatags": f'<base href="{base}">' if base else "",
        "display_toc": False,
    }
    return [("404", context, "page.html")]


def urlpath(url: str) -> str:
    """The path part of the book's public address ("/course/"), or ""."""
    if not url:
        return ""
    from urllib.parse import urlsplit

    path = urlsplit(url).path or "/"
    return path if path.endswith("/") else path + "/"


# ------------------------------------------------------------------ MathJax


def mathjax_only_with_math(app, pagename, templatename, context, doctree):
    """Drop MathJax from a page without math (Sphinx's own rule, which Jupyter
    Book turns off by setting the "always" assets policy)."""
    if app.builder.name != "html" or doctree is None:
        return
    # The page's own math (domain.has_equations(page) also counts every page in
    # the page's toctree, which makes the landing page load MathJax).
    if app.env.get_domain("math").data["has_equations"].get(pagename):
        return
    for key in ("script_files",):
        files = context.get(key)
        if not files:
            continue
        kept = [
            f for f in files
            if "mathjax" not in str(getattr(f, "filename", f)).lower()
            and "MathJax" not in str(getattr(f, "attributes", {}).get("body", ""))
        ]  # fmt: skip
        context[key] = kept


# ------------------------------------------------------------------ bibliography


def last_name(person) -> str:
    # LaTeX accents become characters: Mor{\'e} is "Moré", not "Mor\'e".
    name = " ".join(person.prelast_names + person.last_names)
    return Text.from_latex(name).render_as("text")


class AuthorYearLabels(BaseLabelStyle):
    """Pearlmutter 1994; Griewank and Walther 2008; Ghorbani et al. 2019."""

    def format_labels(self, sorted_entries):
        labels = [self.label(entry) for entry in sorted_entries]
        # Two works with one label become "Dangel et al. 2020a" and "... 2020b".
        counts = {label: labels.count(label) for label in labels}
        seen: dict[str, int] = {}
        for label in labels:
            if counts[label] > 1:
                seen[label] = seen.get(label, 0) + 1
                label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label

    @staticmethod
    def label(entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [last_name(p) for p in people]
        who = f"{names[0]} et al." if len(names) >= 3 else " and ".join(names)
        return f"{who or entry.key} {entry.fields.get('year', '')}".strip()


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "course_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "course_author_year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "course_author_year", AuthorYearStyle)


def remember_plugin_lookups() -> None:
    """Cache ``pybtex.plugin._load_entry_point`` (group, name) -> class for the build.

    Each call of the original runs ``importlib.metadata.entry_points``, which reads
    the metadata of every installed distribution (about 20 ms here, 345 calls per
    build of this book). The installed packages do not change during a build, and a
    plugin registered at run time (``register_plugin``, as above) is registered when
    an extension is imported, before any look-up; a look-up that fails raises and
    is not remembered. Left alone if pybtex no longer has this private function.
    """
    load = getattr(pybtex.plugin, "_load_entry_point", None)
    if load is not None and not hasattr(load, "cache_info"):
        pybtex.plugin._load_entry_point = functools.lru_cache(maxsize=None)(load)


remember_plugin_lookups()


# ------------------------------------------------------------------ singlehtml


def html_handlers_for_singlehtml(app):
    """Sphinx looks node visitors up by builder name first. Once any extension
    registers one for "singlehtml", the ones registered for "html" (myst-nb's
    hidden-cell node, for example) are no longer found there, and the single-page
    build of ``make pdf`` fails; give singlehtml every html visitor it lacks."""
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for node, visitors in handlers.get("html", {}).items():
        single.setdefault(node, visitors)


def setup(app):
    app.connect("builder-inited", html_handlers_for_singlehtml)
    app.connect("config-inited", footer)
    app.add_directive("course-citation", CourseCitation)
    app.connect("html-collect-pages", not_found_page)
    app.connect("html-page-context", mathjax_only_with_math, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
