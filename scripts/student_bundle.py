"""Write the student bundle: the course with every solution taken out.

    python scripts/student_bundle.py _build/student

From the committed, executed notebooks it writes, reading each chapter with
``bundle_common.student_cells`` (the same reading ``make nbgrader`` uses, so the
two bundles show a student the same cells):

* ``<out>/notebooks/*.ipynb``, the pages of the student book: the solution
  gates, the solution prose, model answers, rubrics and hidden tests removed;
  each exercise's solution becomes an answer cell in which the fenced region
  is replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (the
  stub nbgrader writes), followed by the check (and, for an exercise with
  hidden tests, a cell where they run when graded, and for a written answer a
  markdown cell ``YOUR ANSWER HERE``); these cells have no outputs, every other
  cell keeps its outputs and figures; jupytext's pairing metadata is dropped;
* ``<out>/plain/*.ipynb``: the same notebooks with the MyST the book renders
  (exercise directives, roles) rewritten as plain Markdown
  (``bundle_common.plain_markdown``): what students download and open;
* ``<out>/student-notebooks.zip``: ``notebooks/`` (the plain notebooks), the
  ``helpers`` wheel (``pip wheel --no-deps`` of this repository), the student
  requirements (the course's pins without the book's and the tests') and a
  README with the two commands that set up a virtual environment and open the
  notebooks, so a student needs no clone of the repository;
* a student edition of the book: the book's pages and configuration with
  sphinx-exercise's ``hide_solutions`` on, no repository, issue, Colab or
  Binder buttons (they lead to the repository's notebooks, which hold the
  solutions), no instructors' guide, a set-up page written for students, and a
  front page that links the zip. ``jupyter-book build <out>`` builds it; ``make
  student`` then replaces each page's downloadable notebook by the plain one.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

import nbformat
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bundle_common import (  # noqa: E402
    BEGIN,
    END,
    STUB,
    drop_pairing,
    plain_markdown,
    strip_solution_code,
    student_cells,
    student_view,
)

__all__ = ["BEGIN", "END", "STUB", "strip_solution_code", "student_notebook"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
ZIP_NAME = "student-notebooks.zip"
STUDENT_BASEURL = "https://second-order-autodiff.github.io/course/student/"
# Pages of the book that are not for students.
INSTRUCTOR_PAGES = ["book/instructors"]
# Sections of requirements.txt a student's environment leaves out.
NOT_FOR_STUDENTS = (
    "# The book",
    "# Tests",
    "# Chapters in parallel",
    "# Browser",
    "# MathJax",
    "# Repository health",
)
DOWNLOAD_NOTE = f"""

## The notebooks for students

This is the student edition: the exercises have no solutions. Download
{{download}}`every chapter as a notebook <../{ZIP_NAME}>` (a zip with the
course's `helpers` package and a README that sets everything up), or a single
chapter with its page's download button; {{doc}}`setup` says how to run them.
"""
STUDENT_SETUP = f"""# Running the notebooks

The book is readable online without installing anything. To do the exercises,
run the chapters as notebooks on your own machine, or on the JupyterHub your
instructor gives you (where everything is installed already).

## On your own machine

You need Python 3.11. Download {{download}}`the student notebooks <../{ZIP_NAME}>`,
unzip it, and in the unzipped folder run the two commands of its `README.md`:
the first creates a virtual environment `.venv` with the course's pinned
packages and its `helpers` package (the wheel in the zip), the second opens the
notebooks in JupyterLab. On Linux without a GPU, the README also shows how to
install PyTorch's much smaller CPU build first.

## Working on an exercise

Each exercise has an answer cell that starts with `# YOUR CODE HERE` and
`raise NotImplementedError()`: replace both lines by your answer, run the cell,
then run the check cell below it. The check prints one line starting with `✓`
when the answer is right; otherwise its error says what is wrong (a shape, an
entry, a factor). Some exercises also ask a question in words: write your
answer in the markdown cell that says `YOUR ANSWER HERE`. When the course is
graded, hidden tests also check how an answer was computed (for example, with
Hessian-vector products rather than the whole Hessian, as the exercise asks),
and your instructor reads the written answers.

## Colab

Upload a chapter's notebook to [Colab](https://colab.research.google.com). Its
first cell installs the course's `helpers` package when it is missing.
"""
README = """# Second-order autodiff in PyTorch: the student notebooks

Set up once, in this folder (Python 3.11; on Windows use `.venv\\Scripts\\`
instead of `.venv/bin/`):

```bash
python3.11 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/pip install --no-deps -r requirements-nodeps.txt {wheel}
.venv/bin/jupyter lab notebooks
```

The second command opens the notebooks; run it again whenever you work on
them. On Linux without a GPU, first run
`python3.11 -m venv .venv && .venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch=={torch}`
(PyTorch's CPU build, much smaller than the default one).

Each exercise has an answer cell (`# YOUR CODE HERE`): replace it by your
answer, run it, then run the check cell below it. Written questions have a
cell that says `YOUR ANSWER HERE`.
"""  # noqa: E501


def student_notebook(
    nb: nbformat.NotebookNode, name, plain: bool = False
) -> nbformat.NotebookNode:
    """The chapter as the student bundle writes it (``plain``: MyST rewritten).

    ``name`` is the file name, or its path (then the ``.md`` beside it, if
    any, gives the points tags).
    """
    items = student_cells(nb, name)
    if plain:
        items = plain_markdown(items, pathlib.Path(name).name)
    nb = nbformat.from_dict(nb)
    nb.cells = [student_view(item) for item in items]
    return drop_pairing(nb)


def student_config(config: dict) -> dict:
    config = dict(config)
    config["title"] = config["title"] + " (student edition)"
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["hide_solutions"] = True
    sphinx["html_baseurl"] = STUDENT_BASEURL
    theme = sphinx.setdefault("html_theme_options", {})
    theme["repository_url"] = ""
    for button in (
        "use_repository_button",
        "use_issues_button",
        "use_edit_page_button",
    ):
        theme[button] = False
    config.pop("repository", None)
    html = dict(config.get("html") or {})
    for button in (
        "use_repository_button",
        "use_issues_button",
        "use_edit_page_button",
    ):
        html[button] = False
    config["html"] = html
    launch = dict(config.get("launch_buttons") or {})
    launch["colab_url"] = ""  # empty: sphinx-book-theme shows no Colab button
    launch["binderhub_url"] = ""
    launch["jupyterhub_url"] = ""
    launch["thebe"] = False
    config["launch_buttons"] = launch
    return config


def student_toc(toc: dict) -> dict:
    """The table of contents without the instructors' pages."""
    for part in toc.get("parts", []):
        part["chapters"] = [
            c for c in part.get("chapters", []) if c.get("file") not in INSTRUCTOR_PAGES
        ]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    for part in toc["parts"]:
        if "instructors" in part.get("caption", "").lower():
            part["caption"] = "Reference"
    return toc


def student_intro(text: str) -> str:
    """The front page without what is for instructors or contributors."""
    sentences = re.compile(r" ?[^.\n]*(?:\n[^.\n]+)*\{doc\}`instructors`[^.]*\.")
    text = sentences.sub("", text)
    for heading in ("## Getting started", "## Cite this course"):
        text = re.sub(
            rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", "", text, flags=re.S | re.M
        )
    getting = (
        "## Getting started\n\n{doc}`setup` says how to run the notebooks. "
        "{doc}`notation` fixes the symbols and shapes that every chapter uses.\n"
    )
    return text.rstrip("\n") + "\n\n" + getting + DOWNLOAD_NOTE


def student_requirements(text: str) -> str:
    """requirements.txt without the sections for the book, tests and repository."""
    out, skip = [], False
    for line in text.splitlines():
        if (
            line.startswith("#")
            and not line.startswith("# Exact")
            and line[2:3].isupper()
        ):
            skip = line.startswith(NOT_FOR_STUDENTS)
        if not skip:
            out.append(line)
    return "\n".join(out) + "\n"


def build_wheel(out: pathlib.Path) -> pathlib.Path:
    """The helpers wheel of this repository, built without a network.

    It is built from a copy of the package's files, so that setuptools' build/
    directory is not left in the repository.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (ROOT / name).exists():
                shutil.copy(ROOT / name, source / name)
        shutil.copytree(
            ROOT / "src",
            source / "src",
            ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
        )
        wheels = pathlib.Path(tmp) / "wheels"
        for isolation in (["--no-build-isolation"], []):
            run = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "--disable-pip-version-check", *isolation, "-w", str(wheels),
                 str(source)],
                capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode == 0:
                break
        else:
            raise RuntimeError(f"pip wheel failed:\n{run.stderr[-2000:]}")
        (wheel,) = wheels.glob("course_helpers-*.whl")
        out.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(shutil.copy(wheel, out / wheel.name))


def write_bundle(
    out: pathlib.Path, notebooks: pathlib.Path | None = None, wheel: bool = True
) -> list[pathlib.Path]:
    """Write the bundle from the notebooks in `notebooks` (default: the chapters)."""
    notebooks = notebooks or ROOT / "notebooks"
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    (out / "plain").mkdir()
    shutil.copytree(ROOT / "book", out / "book")
    # the book's extension (book/_ext) reads the version from CITATION.cff
    shutil.copy(ROOT / "CITATION.cff", out / "CITATION.cff")
    for page in INSTRUCTOR_PAGES:
        (out / f"{page}.md").unlink(missing_ok=True)
    intro = out / "book" / "intro.md"
    intro.write_text(student_intro(intro.read_text()))
    (out / "book" / "setup.md").write_text(STUDENT_SETUP)
    toc = student_toc(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    config = student_config(yaml.safe_load((ROOT / "_config.yml").read_text()))
    (out / "_config.yml").write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    written = []
    for path in sorted(notebooks.glob("*.ipynb")):
        for folder, plain in (("notebooks", False), ("plain", True)):
            nb = nbformat.read(path, as_version=4)
            nb = student_notebook(nb, path, plain=plain)
            nbformat.validate(nb)
            nbformat.write(nb, out / folder / path.name)
        written.append(out / "notebooks" / path.name)
    extras = [
        p
        for p in sorted(notebooks.iterdir())
        if p.suffix not in {".md", ".ipynb"} and p.is_file()
    ]
    for extra in extras:
        for folder in ("notebooks", "plain"):
            shutil.copy(extra, out / folder / extra.name)
    requirements = (ROOT / "requirements.txt").read_text()
    (out / "requirements.txt").write_text(student_requirements(requirements))
    shutil.copy(ROOT / "requirements-nodeps.txt", out / "requirements-nodeps.txt")
    files = [out / "requirements.txt", out / "requirements-nodeps.txt"]
    wheel_name = "course_helpers-VERSION-py3-none-any.whl"
    if wheel:
        built = build_wheel(out)
        files.append(built)
        wheel_name = built.name
    torch = re.search(r"^torch==(\S+)", requirements, re.M)
    (out / "README.md").write_text(
        README.format(wheel=wheel_name, torch=torch.group(1) if torch else "")
    )
    files.append(out / "README.md")
    with zipfile.ZipFile(out / ZIP_NAME, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in written + [out / "notebooks" / p.name for p in extras]:
            zf.write(out / "plain" / path.name, f"notebooks/{path.name}")
        for path in files:
            zf.write(path, path.name)
    return written


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "_build/student")
    files = write_bundle(target)
    print(f"wrote {len(files)} student notebooks to {target / 'notebooks'}")
    print(f"and {target / ZIP_NAME}")
