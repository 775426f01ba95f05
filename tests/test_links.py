"""Every "chapter N" and "exercise N.M" in the prose is a link (conventions: a
Markdown link to the notebook, ``[chapter 3](03_vhp_hvp_toy.ipynb)``, or a {ref},
{doc} or {numref} role), so a reader can follow it in the book, JupyterLab and Colab.

Code (fenced blocks, code cells, inline code), math, MyST comments and link texts
are not prose; "this chapter" and "chapter N" with a letter need no link.
"""

from __future__ import annotations

import re

import jupytext
import pytest

from conftest import CHAPTERS_MD, ROOT

BOOK_MD = sorted((ROOT / "book").glob("*.md"))

# A reference that must be a link: "chapter 3", "Chapters 7", "exercise 10.1".
REFERENCE = re.compile(r"\b(?:[Cc]hapters?|[Ee]xercises?)\s+\d+(?:\.\d+)?\b")
LINKED = [
    re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)]*\)"),  # [text](target)
    re.compile(r"\{(?:ref|doc|numref|eq|download)\}`[^`]*`"),  # {ref}`text <label>`
]
NOT_PROSE = [
    re.compile(r"(?ms)^(`{3,}|~{3,}).*?^\1[ \t]*$"),  # fenced blocks, directives
    re.compile(r"(?ms)^:{3,}.*?$"),  # colon-fence lines (::::{exercise-start})
    re.compile(r"(?m)^%.*$"),  # MyST comments
    re.compile(r"(?m)^:[a-z-]+:.*$"),  # directive options (:label: ...)
    re.compile(r"(?s)\$\$.*?\$\$"),  # display math
    re.compile(r"(?<!\\)\$[^$\n]+\$"),  # inline math
    re.compile(r"``.+?``|`[^`\n]+`"),  # inline code
    re.compile(r"(?s)<!--.*?-->"),  # HTML comments
]


def prose(markdown: str) -> str:
    """The markdown with code, math, comments and links blanked out (same length,
    so that line numbers stay right)."""

    def blank(match):
        return re.sub(r"[^\n]", " ", match.group(0))

    for pattern in NOT_PROSE + LINKED:
        markdown = pattern.sub(blank, markdown)
    return markdown


def unlinked(markdown: str, name: str, first_line: int = 1) -> list[str]:
    text = prose(markdown)
    found = []
    for match in REFERENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + first_line
        source_line = markdown.splitlines()[line - first_line].strip()
        found.append(f"{name}:{line}: unlinked {match.group(0)!r}: {source_line[:100]}")
    return found


def markdown_cells(md_path):
    """(first line, source) of each markdown cell of a chapter's MyST twin."""
    text = md_path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="md:myst")
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        position = text.find(cell.source)
        line = text.count("\n", 0, position) + 1 if position >= 0 else 1
        yield line, cell.source


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=lambda p: p.stem)
def test_chapter_references_are_links(md):
    problems = []
    for line, source in markdown_cells(md):
        problems += unlinked(source, md.name, line)
    assert not problems, (
        f"{len(problems)} reference(s) to a chapter or exercise that are not links "
        "(write [chapter 3](03_vhp_hvp_toy.ipynb), {ref}`exercise 10.1 <ex-10-...>`; "
        "CONTRIBUTING.md, 'Citations and links'):\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("md", BOOK_MD, ids=lambda p: p.stem)
def test_book_page_references_are_links(md):
    problems = unlinked(md.read_text(encoding="utf-8"), f"book/{md.name}")
    assert not problems, (
        f"{len(problems)} reference(s) to a chapter or exercise that are not links "
        "(from book/ pages: [chapter 3](../notebooks/03_vhp_hvp_toy.ipynb)):\n"
        + "\n".join(problems)
    )


def test_the_check_finds_unlinked_references():
    text = (
        "As chapter 3 showed, and [chapter 4](04_jacobians.ipynb) too; chapters\n"
        "[7](07_parameter_hessians.ipynb)–[11](11_newton.ipynb). Try exercise 10.1\n"
        "or {ref}`exercise 10.2 <ex-10-lanczos>`. `chapter 5` is code, and so is\n"
        "```python\n# chapter 6\n```\n$\\text{chapter } 7$. Chapters 8 to 9 are not.\n"
        "% chapter 12: a comment\n"
    )
    found = [p.split("unlinked ")[1].split(":")[0] for p in unlinked(text, "x.md")]
    assert found == ["'chapter 3'", "'exercise 10.1'", "'Chapters 8'"], found
