"""The whole book as one PDF: Sphinx's single-page HTML, printed by Chromium.

    python scripts/pdf.py [--out _build/html/downloads/second-order-autodiff.pdf]
                          [--solutions include|omit] [--html DIR]

Run by ``make pdf``. Builds the book with the ``singlehtml`` builder into a temporary
folder (or takes an already built one with ``--html``), serves it on 127.0.0.1 and
prints it with Debian's Chromium through Playwright: nothing is downloaded (MathJax
comes from a local package, as in the browser tests). Before printing it opens
every dropdown (solutions, hidden cells), leaves the solutions out with
``--solutions omit``, and refuses to write a PDF in which code is cut at the right
margin or a "Click to hide" label shows (``print_problems``); course.css's print
rules wrap code and hide buttons and navigation.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import browser_kit as bk  # noqa: E402

DEFAULT_OUT = bk.ROOT / "_build" / "html" / "downloads" / "second-order-autodiff.pdf"
# A4 with 15 mm margins: the width Chromium lays the printed page out at, in CSS px.
PAGE = {"format": "A4", "margin": {"top": "15mm", "bottom": "15mm",
                                   "left": "15mm", "right": "15mm"}}  # fmt: skip
PRINT_WIDTH_PX = round((210 - 2 * 15) / 25.4 * 96)  # 680

# Open everything a reader would open; optionally drop the solutions.
PREPARE = """(omit) => {
  window.dispatchEvent(new Event('beforeprint'));
  document.querySelectorAll('details').forEach((d) => d.setAttribute('open', ''));
  document.querySelectorAll('.toggle-hidden').forEach(
      (e) => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('.course-scroll-hint').forEach((e) => e.remove());
  document.documentElement.classList.toggle('course-no-solutions', omit);
  return document.querySelectorAll('.solution').length;
}"""

# What a printed page must not show: code running past its box or the page, and
# toggle labels. Evaluated with print media emulated at the printed width.
PRINT_PROBLEMS = """() => {
  const problems = [];
  const limit = document.documentElement.clientWidth + 1;
  const first = (el) => (el.textContent || '').trim().split('\\n')[0].slice(0, 60);
  for (const pre of document.querySelectorAll('pre')) {
    if (!pre.checkVisibility()) continue;
    const r = pre.getBoundingClientRect();
    if (pre.scrollWidth > pre.clientWidth + 1) {
      problems.push(`code cut at the right (${pre.scrollWidth} > ` +
                    `${pre.clientWidth} px): ${first(pre)}`);
    } else if (r.right > limit) {
      problems.push(`code beyond the page (${Math.round(r.right)} px): ${first(pre)}`);
    }
  }
  const text = document.body.innerText;
  for (const label of ['Click to hide', 'Click to show']) {
    if (text.includes(label)) problems.push(`the page prints "${label}"`);
  }
  return problems;
}"""


def prepare_for_print(page, solutions: bool = True) -> int:
    """Open every dropdown, hide solutions if asked, lay out for print; returns the
    number of solutions on the page."""
    count = page.evaluate(PREPARE, not solutions)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": PRINT_WIDTH_PX, "height": 900})
    page.wait_for_timeout(200)
    return count


def print_problems(page) -> list[str]:
    """Cut code and toggle labels in the print layout (after prepare_for_print)."""
    return page.evaluate(PRINT_PROBLEMS)


def print_pdf(page, out: pathlib.Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(out), print_background=True, prefer_css_page_size=False, **PAGE)


def page_count(pdf: pathlib.Path) -> int:
    """Pages in a PDF (the /Count of its page tree's root: the largest /Count, as
    every page tree node counts the pages below it; no PDF library needed)."""
    counts = re.findall(rb"/Count (\d+)", pdf.read_bytes())
    return max((int(c) for c in counts), default=0)


def build_singlehtml(out: pathlib.Path) -> pathlib.Path:
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jb), "build", str(bk.ROOT), "--builder", "singlehtml",
         "--path-output", str(out), "--quiet"],
        capture_output=True, text=True, cwd=bk.ROOT, timeout=900,
    )  # fmt: skip
    html = out / "_build" / "singlehtml"
    if result.returncode != 0 or not (html / "index.html").is_file():
        raise RuntimeError(
            f"singlehtml build failed:\n{(result.stdout + result.stderr)[-4000:]}"
        )
    return html


PRINT_PAGE = "course-print.html"


def write_pdf(html: pathlib.Path, out: pathlib.Path, solutions: bool) -> list[str]:
    # The single page is the root document (_toc.yml's root, book/intro.html), but
    # its links (_static/, _images/) are written relative to the folder's top, as
    # if it were there (index.html only redirects to it): put a copy there.
    root = yaml.safe_load((bk.ROOT / "_toc.yml").read_text())["root"]
    (html / PRINT_PAGE).write_text(
        (html / f"{root}.html").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with bk.serve(html) as base, bk.browser() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        bk.offline(context)
        page = context.new_page()
        page.set_default_timeout(300000)  # the whole book is one long page
        page.goto(f"{base}{PRINT_PAGE}", wait_until="load")
        bk.wait_for_math(page, timeout_ms=240000)
        prepare_for_print(page, solutions)
        problems = print_problems(page)
        if not problems:
            print_pdf(page, out)
        context.close()
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--solutions", choices=("include", "omit"), default="include")
    parser.add_argument("--html", type=pathlib.Path, help="a built singlehtml folder")
    args = parser.parse_args(argv)
    reason = bk.missing()
    if reason:
        sys.exit(f"pdf: {reason}")
    with tempfile.TemporaryDirectory(prefix="course-pdf-") as tmp:
        html = args.html or build_singlehtml(pathlib.Path(tmp))
        problems = write_pdf(html, args.out, args.solutions == "include")
    if problems:
        sys.exit(
            "pdf: not written, the print layout has problems:\n"
            + "\n".join(problems[:40])
        )
    print(
        f"wrote {args.out} ({page_count(args.out)} pages, "
        f"{args.out.stat().st_size / 1e6:.1f} MB, solutions {args.solutions}d)"
    )


if __name__ == "__main__":
    main()
