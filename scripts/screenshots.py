"""Screenshots of a chapter in the book (1400 px and 400 px) and in JupyterLab.

    python scripts/screenshots.py [--chapter 03_vhp_hvp_toy] [--out _build/screenshots]

Run by ``make screenshots``. Builds the book into a temporary folder, serves it on
127.0.0.1 and photographs it with Debian's Chromium (Playwright, no download; MathJax
from a local package), then opens the same chapter in JupyterLab. Writes:

    book-<chapter>-1400.png           the top of the chapter on a desktop
    book-<chapter>-1400-solution.png  the first solution dropdown, opened
    book-<chapter>-1400-error.png     the first cell that raises (short traceback)
    book-<chapter>-400.png            the top of the chapter on a phone
    book-<chapter>-400-nav.png        the phone's chapter list, opened
    lab-<chapter>.png                 the chapter in JupyterLab (jupyterlab-myst)
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import browser_kit as bk  # noqa: E402


def shoot_book(browser, base, chapter, out):
    written = []
    for width in (bk.WIDTHS["desktop"], bk.WIDTHS["phone"]):
        context = browser.new_context(viewport={"width": width, "height": 900})
        bk.offline(context)
        page = context.new_page()
        page.goto(f"{base}notebooks/{chapter}.html", wait_until="load")
        bk.wait_for_math(page)
        stem = out / f"book-{chapter}-{width}"
        page.screenshot(path=f"{stem}.png")
        written.append(f"{stem}.png")
        if width == bk.WIDTHS["phone"]:
            toggle = page.locator("button.primary-toggle:visible").first
            toggle.click()
            page.wait_for_timeout(500)
            page.screenshot(path=f"{stem}-nav.png")
            written.append(f"{stem}-nav.png")
        else:
            solution = page.locator(".solution.dropdown").first
            if solution.count():
                title = solution.locator(".admonition-title, summary, button").first
                title.scroll_into_view_if_needed()
                title.click()
                page.wait_for_timeout(500)
                solution.scroll_into_view_if_needed()
                page.screenshot(path=f"{stem}-solution.png")
                written.append(f"{stem}-solution.png")
            error = page.locator("div.output.traceback").first
            if error.count():
                error.evaluate("e => e.closest('.cell').scrollIntoView()")
                page.wait_for_timeout(200)
                page.screenshot(path=f"{stem}-error.png")
                written.append(f"{stem}-error.png")
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
    parser.add_argument("--chapter", default="03_vhp_hvp_toy")
    parser.add_argument(
        "--out", type=pathlib.Path, default=bk.ROOT / "_build/screenshots"
    )
    args = parser.parse_args(argv)
    reason = bk.missing()
    if reason:
        sys.exit(f"screenshots: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-book-") as tmp:
        html = bk.build_book(pathlib.Path(tmp))
        with bk.serve(html) as base, bk.browser() as browser:
            written = shoot_book(browser, base, args.chapter, args.out)
            lab, problems = shoot_lab(browser, args.chapter, args.out)
    for path in written + lab:
        print(
            "wrote",
            pathlib.Path(path).relative_to(bk.ROOT)
            if pathlib.Path(path).is_relative_to(bk.ROOT)
            else path,
        )
    for problem in problems:
        print("JupyterLab:", problem)


if __name__ == "__main__":
    main()
