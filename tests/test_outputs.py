"""What the committed outputs show a reader: no machine paths, short tracebacks that
end with the whole error message, figures with real alt text, no over-long lines.

Each check is a function over one notebook that returns its problems, so the tests
below can show it failing on a small notebook built to break it.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import CHAPTERS_IPYNB

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Where the executing machine's files live: home and work folders, temporary files,
# the virtual environment and installed packages, Windows user folders.
MACHINE_PATH = re.compile(
    r"(/work/|/root/|/home/|/Users/|/tmp/|/var/folders/|site-packages|dist-packages"
    r"|\.venv\b|[A-Za-z]:\\\\?Users\\)"
)
# Mime types that hold text a reader sees (images are base64: '/tmp/' can occur in
# their alphabet by chance).
TEXT_MIME = ("text/plain", "text/html", "text/latex", "text/markdown")
TRACEBACK_EXTRA_LINES = 2  # lines a short traceback may add to the message itself
OUTPUT_LINE_LIMIT = 100  # characters; longer output lines are clipped in the book
FILE_ALT = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif|webp)$|^\.\.?/", re.I)


def plain(text) -> str:
    if isinstance(text, list):
        text = "".join(text)
    return ANSI.sub("", text)


def output_texts(output):
    """(kind, text) pairs of what one output shows."""
    kind = output.get("output_type")
    if kind == "stream":
        yield f"stream {output.get('name')}", plain(output.get("text", ""))
    elif kind in ("execute_result", "display_data"):
        for mime in TEXT_MIME:
            if mime in output.get("data", {}):
                yield mime, plain(output["data"][mime])
    elif kind == "error":
        yield "error", plain("\n".join(output.get("traceback", [])))
        yield "error value", plain(output.get("evalue", ""))


def code_cells(nb):
    """(execution label, cell) for each code cell, labelled as a reader finds it."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            label = f"cell {index} (In [{cell.get('execution_count')}])"
            yield label, cell


def machine_paths(nb, name):
    problems = []
    for label, cell in code_cells(nb):
        for output in cell.get("outputs", []):
            for kind, text in output_texts(output):
                for line in text.splitlines():
                    if MACHINE_PATH.search(line):
                        problems.append(
                            f"{name}, {label}, {kind}: {line.strip()[:160]}"
                        )
    return problems


def error_endings(nb, name):
    """A raising cell's traceback ends with the full `Type: message` and is short;
    the error is the cell's last output."""
    problems = []
    for label, cell in code_cells(nb):
        outputs = cell.get("outputs", [])
        for position, output in enumerate(outputs):
            if output.get("output_type") != "error":
                continue
            where = f"{name}, {label}"
            message = f"{output.get('ename')}: {plain(output.get('evalue', ''))}"
            text = plain("\n".join(output.get("traceback", []))).rstrip()
            if not text.endswith(message.rstrip()):
                last = text.splitlines()[-1] if text else "(empty traceback)"
                problems.append(
                    f"{where}: expected the traceback to end with {message!r}, "
                    f"it ends with {last!r}"
                )
            extra = len(text.splitlines()) - len(message.rstrip().splitlines())
            if extra > TRACEBACK_EXTRA_LINES:
                problems.append(
                    f"{where}: expected a short traceback (the message and at most "
                    f"{TRACEBACK_EXTRA_LINES} more lines), got {extra} more lines "
                    "(is %xmode Minimal set in the first cell?)"
                )
            if position != len(outputs) - 1:
                problems.append(
                    f"{where}: output after the error; the error must be last"
                )
    return problems


def figure_alt_texts(nb, name):
    """Each cell that draws a figure describes it (mystnb: image: alt:)."""
    problems = []
    for label, cell in code_cells(nb):
        images = [
            o
            for o in cell.get("outputs", [])
            if any(m.startswith("image/") for m in o.get("data", {}))
        ]
        if not images:
            continue
        alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
        alt = alt.strip() if isinstance(alt, str) else ""
        if not alt or FILE_ALT.search(alt) or len(alt.split()) < 3:
            problems.append(
                f"{name}, {label}: draws a figure; expected alt text of a few words "
                f"in its metadata (mystnb: image: alt:), got {alt!r}"
            )
    return problems


def long_output_lines(nb, name):
    """Printed lines a reader can see whole (error messages wrap in the book)."""
    problems = []
    for label, cell in code_cells(nb):
        for output in cell.get("outputs", []):
            for kind, text in output_texts(output):
                if kind.startswith("error") or kind in ("text/html", "text/latex"):
                    continue
                richer = {"text/html", "text/latex", "text/markdown"}
                if kind == "text/plain" and richer & set(output.get("data", {})):
                    continue  # the book and JupyterLab show the richer form
                for line in text.splitlines():
                    if len(line) > OUTPUT_LINE_LIMIT:
                        problems.append(
                            f"{name}, {label}, {kind}: a {len(line)}-character line "
                            f"(limit {OUTPUT_LINE_LIMIT}; wrap or tabulate): "
                            f"{line[:80]}..."
                        )
    return problems


# Fonts whose characters are not the Unicode ones they draw: matplotlib's mathtext
# writes TeX's cmsy10 prime as "0" and STIX's non-Unicode glyphs in the private use
# area; an SVG keeps them as text (svg.fonttype "none"), so a browser shows a "0"
# or a blank box. helpers.figures.course_rc sets Unicode math fonts.
NON_UNICODE_FONT = re.compile(
    r"font-family:\s*'?(cm[a-z]+10|STIXNonUnicode|STIXSize\w*)"
)
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def figure_glyphs(nb, name):
    """SVG figures draw their text with Unicode characters a browser can show."""
    problems = []
    for label, cell in code_cells(nb):
        for output in cell.get("outputs", []):
            svg = output.get("data", {}).get("image/svg+xml", "")
            svg = "".join(svg) if isinstance(svg, list) else svg
            fonts = sorted(set(NON_UNICODE_FONT.findall(svg)))
            private = PRIVATE_USE.findall(svg)
            if fonts or private:
                problems.append(
                    f"{name}, {label}: figure text in {fonts or 'no odd font'} with "
                    f"{len(private)} private-use character(s); expected Unicode text "
                    "(use helpers.figures.use_course_style())"
                )
    return problems


def read(path):
    return nbformat.read(path, as_version=4)


ids = [p.stem for p in CHAPTERS_IPYNB]


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids)
def test_no_output_holds_a_machine_path(path):
    problems = machine_paths(read(path), path.name)
    assert not problems, "absolute paths of the executing machine:\n" + "\n".join(
        problems[:40]
    )


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids)
def test_tracebacks_are_short_and_end_with_the_message(path):
    problems = error_endings(read(path), path.name)
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids)
def test_figures_have_alt_text(path):
    problems = figure_alt_texts(read(path), path.name)
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids)
def test_output_lines_fit(path):
    problems = long_output_lines(read(path), path.name)
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=ids)
def test_figure_text_is_unicode(path):
    problems = figure_glyphs(read(path), path.name)
    assert not problems, "\n".join(problems[:40])


# ------------------------------------------------------ the checks can fail


def notebook(*outputs, metadata=None):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x", execution_count=1, metadata=metadata or {})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    return nb


def error(ename, evalue, traceback):
    return {
        "output_type": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback,
    }


def test_a_machine_path_is_found_with_chapter_cell_and_line():
    nb = notebook(
        {
            "output_type": "stream",
            "name": "stderr",
            "text": "ok\n/work/main/.venv/lib/python3.11/site-packages/t.py:3: W\n",
        },
        {
            "output_type": "display_data",
            "data": {"image/png": "aGVsbG8/tmp/AAAA", "text/plain": "<Figure>"},
        },
    )
    problems = machine_paths(nb, "99_demo.ipynb")
    assert problems == [
        "99_demo.ipynb, cell 0 (In [1]), stream stderr: "
        "/work/main/.venv/lib/python3.11/site-packages/t.py:3: W"
    ], problems
    clean = notebook({"output_type": "stream", "name": "stdout", "text": "a/b = 2\n"})
    assert machine_paths(clean, "99_demo.ipynb") == []


def test_a_long_or_cut_traceback_is_found():
    message = "RuntimeError: element 0 of tensors does not require grad"
    short = error(
        "RuntimeError",
        message.split(": ", 1)[1],
        [f"\x1b[31mRuntimeError\x1b[39m: {message.split(': ', 1)[1]}"],
    )
    assert error_endings(notebook(short), "n") == []
    long = error(
        "RuntimeError",
        message.split(": ", 1)[1],
        [
            "-" * 40,
            "Traceback (most recent call last)",
            "  File a",
            "  File b",
            "  File c",
            message,
        ],
    )
    assert any("short traceback" in p for p in error_endings(notebook(long), "n"))
    cut = error(
        "ValueError",
        "shapes (2, 3) and (4,) differ; expected (3,)",
        ["Traceback", "ValueError: shapes (2, 3) and (4,) differ"],
    )
    (problem,) = error_endings(notebook(cut), "n")
    assert "expected the traceback to end with" in problem, problem
    after = notebook(short, {"output_type": "stream", "name": "stdout", "text": "x\n"})
    assert any("error must be last" in p for p in error_endings(after, "n"))


def test_a_figure_without_alt_text_is_found():
    figure = {
        "output_type": "display_data",
        "data": {"image/png": "AAAA", "text/plain": "<Figure>"},
    }
    assert len(figure_alt_texts(notebook(figure), "n")) == 1
    as_path = {"mystnb": {"image": {"alt": "../_images/abc.png"}}}
    assert len(figure_alt_texts(notebook(figure, metadata=as_path), "n")) == 1
    good = {"mystnb": {"image": {"alt": "A log-log plot of time against n"}}}
    assert figure_alt_texts(notebook(figure, metadata=good), "n") == []


def test_a_long_output_line_is_found():
    line = "eigenvalues: " + ", ".join(["1.2345"] * 20)
    nb = notebook({"output_type": "stream", "name": "stdout", "text": line + "\n"})
    (problem,) = long_output_lines(nb, "n")
    assert f"a {len(line)}-character line" in problem, problem


def test_a_figure_in_a_tex_font_is_found():
    svg = (
        "<svg><text style=\"font: 12px 'DejaVu Sans'\">f</text>"
        "<text style=\"font-family: 'cmsy10'\">0</text></svg>"
    )
    found = figure_glyphs(
        notebook({"output_type": "display_data", "metadata": {},
                  "data": {"image/svg+xml": svg}}), "ch.ipynb")  # fmt: skip
    assert found and "cmsy10" in found[0]
    blank = "<svg><text style=\"font-family: 'DejaVu Sans'\">\ue15f</text></svg>"
    found = figure_glyphs(
        notebook({"output_type": "display_data", "metadata": {},
                  "data": {"image/svg+xml": blank}}), "ch.ipynb")  # fmt: skip
    assert found and "1 private-use" in found[0]
    fine = "<svg><text style=\"font-family: 'DejaVu Sans'\">ℒ ′</text></svg>"
    assert not figure_glyphs(
        notebook({"output_type": "display_data", "metadata": {},
                  "data": {"image/svg+xml": fine}}), "ch.ipynb")  # fmt: skip
