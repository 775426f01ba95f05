"""Screenshots of the book as readers meet it: desktop and phone, light and dark.

    python scripts/screenshots.py [--chapter 12_which_method_when ...] [--no-lab]
                                  [--out _build/screenshots] [--html _build/html]

Run by ``make screenshots`` (``make screenshots CHAPTER=12_which_method_when`` for
one chapter). Builds the book into a temporary folder (or takes a built one:
--html), serves it on 127.0.0.1 and photographs it with Debian's Chromium
(Playwright, no download; MathJax from a local package), then opens the first
chapter in JupyterLab. Without --chapter it covers the landing, set-up, notation,
instructors' and bibliography pages and every chapter. For each page, in each of

    desktop-light, desktop-dark   1400 x 900
    phone-light,  phone-dark      390 x 844 at device pixel ratio 2

it writes ``<page>-<mode>.png`` (the top of the page), ``-figure.png``,
``-figure-2.png``, ... (each figure, scrolled into view), ``-table.png`` (the
first table in an output), and
on the desktop in light mode ``-solution.png`` (the first solution, opened) and
``-error.png`` (the first cell that raises); on the phone in light mode
``-nav.png`` (the chapter list, opened). ``lab-<chapter>.png`` is JupyterLab.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import browser_kit as bk  # noqa: E402

# The pages outside the chapters, photographed when no --chapter is given.
BOOK_PAGES = ("intro", "setup", "notation", "instructors", "bibliography")
MODES = {
    "desktop-light": ({"viewport": {"width": 1400, "height": 900}}, "light"),
    "desktop-dark": ({"viewport": {"width": 1400, "height": 900}}, "dark"),
    "phone-light": (bk.PHONE, "light"),
    "phone-dark": (bk.PHONE, "dark"),
}


def scroll_to(page, locator) -> bool:
    if not locator.count():
        return False
    locator.first.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(250)
    return True


def shoot_page(browser, base, path, stem, out):
    """Every mode's screenshots of one page; returns the files written."""
    written = []
    for mode, (options, scheme) in MODES.items():
        context = browser.new_context(color_scheme=scheme, **options)
        bk.offline(context)
        page = context.new_page()
        page.goto(base + path, wait_until="load")
        bk.wait_for_math(page)
        page.wait_for_timeout(300)
        name = out / f"{stem}-{mode}"
        page.screenshot(path=f"{name}.png")
        written.append(f"{name}.png")
        # Every figure, each scrolled into view: -figure.png, -figure-2.png, ...
        figures = page.locator("article div.cell_output img, article figure img")
        for i in range(figures.count()):
            if scroll_to(page, figures.nth(i)):
                suffix = "" if i == 0 else f"-{i + 1}"
                page.screenshot(path=f"{name}-figure{suffix}.png")
                written.append(f"{name}-figure{suffix}.png")
        if scroll_to(page, page.locator("article div.cell_output table")):
            page.screenshot(path=f"{name}-table.png")
            written.append(f"{name}-table.png")
        if mode == "phone-light":
            page.evaluate("() => window.scrollTo(0, 0)")
            toggle = page.locator("button.primary-toggle:visible").first
            if toggle.count():
                toggle.click()
                page.wait_for_timeout(500)
                page.screenshot(path=f"{name}-nav.png")
                written.append(f"{name}-nav.png")
        if mode == "desktop-light":
            solution = page.locator(".solution.dropdown").first
            if solution.count():
                title = solution.locator(".admonition-title, summary, button").first
                title.scroll_into_view_if_needed()
                title.click()
                page.wait_for_timeout(500)
                solution.scroll_into_view_if_needed()
                page.screenshot(path=f"{name}-solution.png")
                written.append(f"{name}-solution.png")
            if scroll_to(page, page.locator("div.output.traceback")):
                page.screenshot(path=f"{name}-error.png")
                written.append(f"{name}-error.png")
        context.close()
    return written


def shoot_lab(browser, chapter, out):
    with tempfile.TemporaryDirectory(prefix="course-lab-nb-") as tmp:
        work = pathlib.Path(tmp)
        shutil.copy(bk.ROOT / "notebooks" / f"{chapter}.ipynb", work)
        with bk.jupyterlab(work) as (base, token):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            bk.offline(context)
            page = context.new_page()
            bk.lab_open(page, base, token, f"{chapter}.ipynb")
            path = out / f"lab-{chapter}.png"
            page.screenshot(path=str(path))
            problems = page.evaluate(bk.LAB_PROBLEMS)
            context.close()
    return [str(path)], problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chapter", action="append", help="a chapter's stem (repeatable)"
    )
    parser.add_argument("--no-lab", action="store_true", help="skip JupyterLab")
    parser.add_argument(
        "--html",
        type=pathlib.Path,
        help="photograph this built book (its _build/html folder) instead of "
        "building one",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=bk.ROOT / "_build/screenshots"
    )
    args = parser.parse_args(argv)
    reason = bk.missing()
    if reason:
        sys.exit(f"screenshots: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)
    chapters = args.chapter or [
        p.stem for p in sorted((bk.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    ]
    targets = [(f"notebooks/{c}.html", f"book-{c}") for c in chapters]
    if not args.chapter:
        targets[:0] = [(f"book/{p}.html", f"book-{p}") for p in BOOK_PAGES]
    written, lab, problems = [], [], []
    with tempfile.TemporaryDirectory(prefix="course-book-") as tmp:
        html = args.html or bk.build_book(pathlib.Path(tmp))[0]
        with bk.serve(html) as base, bk.browser() as browser:
            for path, stem in targets:
                if (html / path).is_file():
                    written += shoot_page(browser, base, path, stem, args.out)
                else:
                    print(f"skipped {path}: not in the built book")
            if not args.no_lab:
                lab, problems = shoot_lab(browser, chapters[0], args.out)
    for path in written + lab:
        path = pathlib.Path(path)
        print(
            "wrote", path.relative_to(bk.ROOT) if path.is_relative_to(bk.ROOT) else path
        )
    for problem in problems:
        print("JupyterLab:", problem)


if __name__ == "__main__":
    main()
