"""A chapter as a student sees it in JupyterLab: math typesets, MyST renders.

JupyterLab runs on a free port of 127.0.0.1 with a random token, on a copy of the
chapter in a temporary folder (so nothing in notebooks/ is touched), and Debian's
Chromium (driven by Playwright, no browser download) opens it. The screenshot is
kept next to the test's temporary files; `make screenshots` writes one to
_build/screenshots. Skipped, with the reason printed by pytest -ra, when Chromium
or Playwright is missing.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest

from conftest import ROOT, browser_kit

bk = browser_kit()  # shared with the other browser test file

pytestmark = [
    pytest.mark.skipif(
        bk.missing() is not None, reason=f"JupyterLab browser test: {bk.missing()}"
    ),
]

CHAPTER = "03_vhp_hvp_toy.ipynb"
BROKEN = "zz_broken_math.ipynb"


def broken_notebook(path):
    """A notebook whose math uses a command nobody defined: the check must see it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("A product $\\Hess\\vv$ and $x^2$.")]
    nbformat.write(nb, path)


def test_chapter_renders_in_jupyterlab(tmp_path):
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / CHAPTER, work / CHAPTER)
    broken_notebook(work / BROKEN)
    with bk.jupyterlab(work, tmp_path / "lab.log") as (base, token), bk.browser() as b:
        context = b.new_context(viewport={"width": 1400, "height": 1000})
        refused = bk.offline(context)
        page = context.new_page()

        bk.lab_open(page, base, token, CHAPTER)
        page.screenshot(path=str(tmp_path / "lab.png"))
        problems = page.evaluate(bk.LAB_PROBLEMS)
        formulas = page.evaluate(
            "() => document.querySelectorAll('.katex, mjx-container').length"
        )
        rendered_myst = page.evaluate(
            "() => document.querySelectorAll('.jp-MarkdownCell .myst').length"
        )

        # The same check on a notebook built to fail it, so it is known to work.
        bk.lab_open_beside(page, BROKEN, settle_ms=2000)
        panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
        caught = page.evaluate(
            f"(root) => ({bk.LAB_PROBLEMS})(document.querySelector('{panel}'))"
        )
        # MyST left as source, as JupyterLab without jupyterlab-myst shows it.
        unrendered = page.evaluate(
            f"""() => {{
              const div = document.createElement('div');
              div.className = 'jp-RenderedMarkdown';
              div.innerHTML = '<p>See {{doc}}<code>setup</code>.</p>'
                + '<p>:::{{note}}<br>text<br>:::</p>'
                + '<pre><code class="language-{{exercise}}">x</code></pre>';
              return ({bk.LAB_PROBLEMS})(div.parentNode || (() => {{
                const root = document.createElement('div');
                root.appendChild(div); return root; }})());
            }}"""
        )
        context.close()

    assert formulas > 0, "expected typeset math in the chapter, found none"
    if not bk.myst_installed():
        problems = [p for p in problems if not p.startswith("MyST")]
    else:
        assert rendered_myst > 0, "expected MyST-rendered markdown (jupyterlab-myst)"
    assert not problems, (
        f"JupyterLab shows {CHAPTER} with {len(problems)} problem(s) "
        f"(screenshot {tmp_path / 'lab.png'}):\n" + "\n".join(problems[:40])
    )
    assert any("error" in p or "red" in p for p in caught), (
        f"expected the check to catch the undefined commands in {BROKEN}, got {caught}"
    )
    assert len(unrendered) == 3, f"expected 3 MyST problems, got {unrendered}"
    assert not refused, f"JupyterLab asked for remote files: {refused}"
