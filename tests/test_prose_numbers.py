r"""Every decimal number in a chapter's prose is traced (issue 11).

A decimal number (one with a decimal point: ``0.4835``, ``2.8×``, ``1.4 ms``,
``$5.96 \times 10^{-8}$``) in a chapter's markdown cells must be

1. printed by one of the chapter's cells (an output of the executed
   ``.ipynb``: text, stream, HTML, LaTeX or an error message), matched by
   rounding: prose ``0.4835`` matches an output ``0.48352``, prose ``4.6``
   matches ``4.5872``; or
2. a literal in one of the chapter's code cells (a tolerance, a step size),
   matched the same way; or
3. listed in the chapter's markdown, one per line, as a MyST comment line
   (invisible in the book) with its source::

       % value 0.9203: seed 003's printed p-value

Signs are ignored (prose writes ``−4.12`` with a Unicode minus).  Scales are
understood: ``5.1\times10^{-4}`` (or ``× 10^{-4}``) is 0.00051; a number followed
by ``%`` or ``percent`` also matches an output 100 times smaller (a fraction);
``thousand``, ``million``, ``billion`` multiply; a number followed by a time
unit (s, ms, µs, us, ns) also matches an output in another of those units.

Not checked (each a number that is not a result):

- integers (no decimal point): counts, sizes, seeds, years;
- version numbers: two or more dots (``0.9.6``, ``2.13.0``), or a number right
  after ``PyTorch``, ``torch``, ``Python``, ``SymPy``, ``NumPy``, ``CUDA``,
  ``version``, ``v``, ``>=``, ``==``, ``<=``, ``<`` or ``>`` (``torch 2.13``,
  ``PyTorch >= 2.3``), or the pinned major.minor of a package named in the 60
  characters before it (``PyTorch ... in 2.13``, from ``requirements.txt``);
- references to numbered things: after ``exercise(s)``, ``section(s)``,
  ``chapter(s)``, ``figure``, ``table``, ``equation``, ``eq.``, ``§``,
  ``part``, ``step``, ``appendix`` (``exercise 6.3``, ``exercises 6.3 and
  6.4``);
- link targets and roles: URLs, ``](target)``, ``{cite}`...```, ``{doc}`...```,
  ``{ref}`...```, ``{numref}`...```, ``{download}`...```, labels ``(name)=``;
- directive option lines (``:width: 80%``) and the comment lines themselves.

Numbers inside LaTeX are checked like any other, exponents included: a
fitted exponent (``n^{2.1}``) is a computed number.

With ``PROSE_REPORT=/path/file.txt`` in the environment, each chapter's
untraced numbers are also written there.
"""

from __future__ import annotations

import math
import pathlib
import re

import jupytext
import nbformat
import pytest

from conftest import CHAPTERS_MD, ROOT, update_report

NUMBER = re.compile(
    r"(?<![\w.])(\d+\.\d+)"  # the mantissa: digits, a point, digits
    r"(?:\s*(?:\\times|×|\\cdot|·)\s*10\s*\^\s*\{?\s*([-−]?\d+)\s*\}?"  # × 10^{e}
    r"|[eE]([-+−]?\d+))?"  # or e-07
    r"(?![\w.]*\.\d)"  # not the start of a version number such as 0.9.6
)
VERSION = re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w.])")
AFTER_WORD = re.compile(
    r"(?:\b(?:PyTorch|torch|Python|SymPy|NumPy|CUDA|version|v)|>=|==|<=|<|>)\s*$",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"(?:\b(?:exercises?|sections?|chapters?|figures?|tables?|equations?|eq\.|parts?|"
    r"steps?|appendix)|§)\s*\(?\d+(?:\.\d+)+\)?"
    r"(?:\s*(?:,|and|or|to|–|-)\s*\(?\d+(?:\.\d+)+\)?)*",
    re.IGNORECASE,
)
STRIP = [
    re.compile(r"https?://\S+"),
    re.compile(r"\]\([^)]*\)"),
    re.compile(r"\{(?:cite(?::\w+)?|doc|ref|numref|download|eq|term)\}`[^`]*`"),
    re.compile(r"^\([\w-]+\)=\s*$", re.MULTILINE),
    re.compile(r"^\s*:[\w-]+:.*$", re.MULTILINE),  # directive options
    re.compile(r"<!--.*?-->", re.DOTALL),
]
COMMENT = re.compile(r"^%\s*value\s+([-−]?[\d.eE+-]+)\s*:\s*(\S.*)$", re.MULTILINE)
ANY_COMMENT = re.compile(r"^%.*$", re.MULTILINE)
OUTPUT_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?")
SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
TIME_UNIT = re.compile(r"^\s*\$?\s*(?:s|ms|µs|μs|us|ns|seconds?|milliseconds?)\b")
PERCENT = re.compile(r"^\s*\$?\s*(?:%|\\%|percent)")


def _pins() -> dict[str, str]:
    """Package name -> pinned major.minor, from requirements.txt."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)==(\d+\.\d+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    pins["pytorch"] = pins.get("torch", "")
    return pins


PINS = _pins()


def _pinned_version_nearby(number: str, before: str) -> bool:
    """``in 2.13`` shortly after ``PyTorch``: the pinned version of a package named."""
    words = {w.lower() for w in re.findall(r"[A-Za-z][\w.-]*", before)}
    return any(PINS.get(w) == number for w in words)


def prose_numbers(text: str) -> list[tuple[str, float, list[float], str]]:
    """(as written, value, scales an output may need, context) per checked number."""
    text = ANY_COMMENT.sub("", text)
    for pattern in STRIP:
        text = pattern.sub(" ", text)
    text = REFERENCE.sub(" ", text)
    text = VERSION.sub(" ", text)
    found = []
    for m in NUMBER.finditer(text):
        if AFTER_WORD.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        if _pinned_version_nearby(m.group(0), text[max(0, m.start() - 60) : m.start()]):
            continue
        mantissa, exponent = m.group(1), m.group(2) or m.group(3)
        power = 10.0 ** int(exponent.replace("−", "-")) if exponent else 1.0
        written = re.sub(r"\s+", " ", m.group(0))
        after = text[m.end() : m.end() + 16]
        scales = [power]
        word = re.match(r"[\s$}]*(\w+)", after)
        if word and word.group(1).lower() in SCALE_WORDS:
            scales = [power * SCALE_WORDS[word.group(1).lower()]]
        if PERCENT.match(after):
            scales.append(power / 100)
        if TIME_UNIT.match(after):
            scales += [power * 1000.0**k for k in (-3, -2, -1, 1, 2, 3)]
        context = text[max(0, m.start() - 40) : m.end() + 20].replace("\n", " ")
        found.append((written, float(mantissa), scales, context.strip()))
    return found


def listed_numbers(text: str) -> dict[str, str]:
    """The chapter's ``% value <number>: <source>`` lines."""
    return {n.replace("−", "-").lstrip("-"): src for n, src in COMMENT.findall(text)}


def output_numbers(nb) -> list[float]:
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type == "error":
                texts.append(f"{out.ename}: {out.evalue}")
            else:
                for kind in ("text/plain", "text/html", "text/markdown", "text/latex"):
                    if kind in out.get("data", {}):
                        texts.append(str(out.data[kind]))
    return numbers_in("\n".join(texts))


def numbers_in(text: str) -> list[float]:
    joined = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 4,528,384 -> 4528384
    values = set()
    for t in (text, joined):
        for m in OUTPUT_NUMBER.finditer(t):
            try:
                values.add(abs(float(m.group(0))))
            except ValueError:
                continue
    return sorted(values)


def matches(
    mantissa: float, decimals: int, scales: list[float], values: list[float]
) -> bool:
    half = 0.5 * 10.0**-decimals
    for scale in scales:
        for v in values:
            if abs(v / scale - mantissa) <= half * (1 + 1e-9) + 1e-12 * mantissa:
                return True
    return False


def untraced(md: pathlib.Path) -> list[str]:
    nb = jupytext.read(md)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    twin = md.with_suffix(".ipynb")
    outputs = output_numbers(nbformat.read(twin, as_version=4)) if twin.exists() else []
    literals = numbers_in(code)
    listed = listed_numbers(prose)
    missing = []
    for written, mantissa, scales, context in prose_numbers(prose):
        decimals = len(re.match(r"\d+\.(\d+)", written).group(1))
        key = re.match(r"\d+\.\d+", written).group(0)
        if key in listed or any(_same(key, k) for k in listed):
            continue
        if matches(mantissa, decimals, scales, outputs) or matches(
            mantissa, decimals, scales[:1], literals
        ):
            continue
        missing.append(f"{written!s}  (…{context}…)")
    return missing


def _same(key: str, listed: str) -> bool:
    try:
        return math.isclose(float(key), float(listed), rel_tol=1e-12)
    except ValueError:
        return False


@pytest.mark.parametrize("md", CHAPTERS_MD, ids=[p.stem for p in CHAPTERS_MD])
def test_prose_numbers_are_traced(md):
    missing = untraced(md)
    update_report(
        "PROSE_REPORT",
        md.stem,
        "".join(f"  {m}\n" for m in missing) or "  (all traced)\n",
    )
    assert not missing, (
        f"{md.name}: {len(missing)} decimal number(s) in the prose appear in no output "
        "and no code cell; print them from a cell, or list each as a MyST comment "
        "line `% value <number>: <source>`:\n  " + "\n  ".join(missing)
    )


# --- the extractor itself can fail and can tell what to skip --------------------------


def _written(text):
    return [w for w, *_ in prose_numbers(text)]


def test_extractor_finds_results_and_skips_what_is_not_a_result():
    text = (
        "The loss is 0.4835 and the ratio 2.8×; it took 1.4 ms. "
        "Installed torch 2.13 and nbval 0.9.6 (PyTorch >= 2.3); see exercise 6.3, "
        "exercises 6.3 and 6.4, section 2.1 and https://x.org/a/1.5/ and "
        "{cite}`a1.2` and [link](b/3.4). We used 42 samples. In PyTorch it is "
        "kept in 2.13 but not 2.14.\n"
        "% value 0.9203: seed 003's printed p-value\n"
        "$2^{-24} \\approx 5.96 \\times 10^{-8}$ and $n^{2.1}$\n"
    )
    assert _written(text + "a 1.19e-07 gap, $4.5$ million") == [
        "0.4835",
        "2.8",
        "1.4",
        "2.14",
        "5.96 \\times 10^{-8}",
        "2.1",
        "1.19e-07",
        "4.5",
    ]
    values = {w: (m, s) for w, m, s, _ in prose_numbers(text)}
    assert values["5.96 \\times 10^{-8}"] == (5.96, [pytest.approx(1e-8)])
    values = {
        w: (m, s) for w, m, s, _ in prose_numbers(text + "1.19e-07, $4.5$ million")
    }
    assert values["1.19e-07"] == (1.19, [pytest.approx(1e-7)])
    assert values["4.5"] == (4.5, [1e6])


def test_matching_by_rounding_scale_and_listing(tmp_path):
    assert matches(0.4835, 4, [1.0], [0.48352])
    assert not matches(0.4835, 4, [1.0], [0.48362])
    assert matches(4.6, 1, [1.0, 0.01], [0.04587])  # 4.6 % and a printed fraction
    assert matches(4.5, 1, [1e6], [4528384.0])  # about 4.5 million
    assert not matches(4.5, 1, [1e6], [4628384.0])
    assert numbers_in("n = 4,528,384; x = -1.19e-07") == sorted(
        {4.0, 528.0, 384.0, 4528384.0, 1.19e-07}
    )
    assert listed_numbers("% value 0.9203: seed 003\n% value −4.1: a paper") == {
        "0.9203": "seed 003",
        "4.1": "a paper",
    }


def test_untraced_numbers_are_reported(tmp_path):
    md = tmp_path / "99_demo.md"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "The loss is 0.4835, the step 0.05, the p-value 0.9203 and the bound "
                "0.25.\n\n% value 0.9203: seed 003's printed p-value"
            ),
            nbformat.v4.new_code_cell(
                "step = 0.05",
                execution_count=1,
                outputs=[nbformat.v4.new_output("stream", text="loss 0.48352\n")],
            ),
        ]
    )
    jupytext.write(nb, md, fmt="md:myst")
    nbformat.write(nb, md.with_suffix(".ipynb"))
    missing = untraced(md)
    assert len(missing) == 1 and missing[0].startswith("0.25")
