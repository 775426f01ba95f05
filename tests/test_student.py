"""The student bundle: no solution survives, notebooks are valid, the stub is nbgrader's

Also the shared reading of the chapters (scripts/bundle_common.py) on small notebooks
built here: splitting a solution into answer and check, hidden tests, written
answers, points tags (read from the .md), broken gates, MyST as plain Markdown.

The zip installs without the repository: its helpers wheel goes into a
directory put first on ``sys.path`` (the installed torch and the rest are
reused: a fresh venv would download torch), ``helpers`` is then imported from
the wheel, every module any student notebook imports is found, and chapters
STUDENT_RUN (and the synthetic chapter) run with only the answer cells'
stubs raising (and the checks after them). ``STUDENT_RUN=all`` runs every
chapter (slow: a kernel per chapter).

The student book is built once (marker ``book``) and checked for what must not
be published: repository, issue and launch buttons or links, the instructors'
guide, solutions, and the same in its search index.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
import yaml

from conftest import CHAPTERS_IPYNB, ROOT, browser_kit

sys.path.insert(0, str(ROOT / "scripts"))
spec = importlib.util.spec_from_file_location(
    "student_bundle", ROOT / "scripts" / "student_bundle.py"
)
student_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_bundle)
import bundle_common  # noqa: E402
import synthetic_chapter  # noqa: E402
from bundle_leaks import leaks, n_solutions, solution_lines  # noqa: E402

STUDENT_RUN = ["01_autograd_refresher", "03_vhp_hvp_toy"]
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The chapters as they are now (others may re-execute them during the run)."""
    out = tmp_path_factory.mktemp("chapters")
    for path in CHAPTERS_IPYNB:
        shutil.copy(path, out / path.name)
        if path.with_suffix(".md").exists():
            shutil.copy(path.with_suffix(".md"), out / path.with_suffix(".md").name)
    nbformat.write(synthetic_chapter.chapter(), out / synthetic_chapter.NAME)
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, snapshot):
    out = tmp_path_factory.mktemp("student")
    student_bundle.write_bundle(out, snapshot)
    return out


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
@pytest.mark.parametrize("folder", ["notebooks", "plain"])
def test_no_solution_survives(bundle, snapshot, path, folder):
    original = nbformat.read(snapshot / path.name, as_version=4)
    student = nbformat.read(bundle / folder / path.name, as_version=4)
    nbformat.validate(student)
    assert solution_lines(original), f"{path.name} has no solution lines to hide"
    assert leaks(original, student, path.name) == []
    assert "jupytext" not in student.metadata
    cells = student.cells
    stubs = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "code" and "raise NotImplementedError()" in c.source
    ]
    assert len(stubs) == n_solutions(original)
    for i in stubs:
        stub, check = cells[i], cells[i + 1]
        assert stub.outputs == [] and stub.execution_count is None
        assert stub.source.startswith("# YOUR CODE HERE\nraise NotImplementedError()")
        assert check.cell_type == "code" and "check." in check.source, (
            f"{path.name}: expected the check cell after the answer cell, got "
            f"{check.source[:80]!r}"
        )
        assert check.source.startswith(bundle_common.RESTORE), "integrity line"
        assert check.outputs == [], "the check's output would show the answer"
    text = json.dumps(cells)
    for marker in ("BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME", "**Rubric"):
        assert marker not in text, f"{path.name}: {marker} in the student notebook"
    if folder == "plain":
        markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        assert not re.search(r"\{[a-z:-]+\}`|^\s*(:{3,}|`{3,})\{", markdown, re.M), (
            f"{path.name}: MyST left in the plain notebook"
        )


def test_other_outputs_are_kept(bundle, snapshot):
    for path in CHAPTERS_IPYNB:
        original = nbformat.read(snapshot / path.name, as_version=4)
        student = nbformat.read(bundle / "plain" / path.name, as_version=4)
        kept = {
            c.get("id"): c.outputs
            for c in student.cells
            if c.cell_type == "code" and c.outputs
        }
        for cell in original.cells:
            if cell.cell_type == "code" and bundle_common.BEGIN not in cell.source:
                assert kept.get(cell.get("id"), []) == cell.outputs, (
                    f"{path.name}: outputs of cell {cell.get('id')} changed"
                )


def test_bundle_is_a_buildable_book_without_launch_buttons(bundle):
    config = yaml.safe_load((bundle / "_config.yml").read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True
    launch = config["launch_buttons"]
    assert launch["colab_url"] == "" and launch["binderhub_url"] == "", (
        "launch buttons would open the repository's notebooks, with solutions"
    )
    assert "repository" not in config and not config["html"]["use_repository_button"]
    assert (bundle / "_toc.yml").exists() and (bundle / "book" / "intro.md").exists()
    assert not (bundle / "book" / "instructors.md").exists()
    assert "book/instructors" not in (bundle / "_toc.yml").read_text()
    assert not list((bundle / "notebooks").glob("*.md")), (
        "the bundle holds notebooks only"
    )
    intro = (bundle / "book" / "intro.md").read_text()
    assert f"<../{student_bundle.ZIP_NAME}>" in intro
    assert "instructors" not in intro and "make test" not in intro
    setup = (bundle / "book" / "setup.md").read_text()
    assert "clone" not in setup and "make " not in setup
    with zipfile.ZipFile(bundle / student_bundle.ZIP_NAME) as zf:
        names = sorted(zf.namelist())
        notebooks = [n for n in names if n.startswith("notebooks/")]
        assert notebooks == sorted(
            [f"notebooks/{p.name}" for p in CHAPTERS_IPYNB]
            + [f"notebooks/{synthetic_chapter.NAME}"]
        )
        for name in notebooks:
            plain = bundle / "plain" / name.split("/")[1]
            assert zf.read(name) == plain.read_bytes()
        assert {"README.md", "requirements.txt", "requirements-nodeps.txt"} <= set(
            names
        )
        assert [n for n in names if n.endswith(".whl")], "the helpers wheel"


@pytest.fixture(scope="module")
def unzipped(bundle, tmp_path_factory):
    """The zip extracted, and its wheel installed (no deps) into site/."""
    out = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(bundle / student_bundle.ZIP_NAME) as zf:
        zf.extractall(out)
    (wheel,) = out.glob("course_helpers-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
         "--disable-pip-version-check", "--target", str(out / "site"), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


def student_env(unzipped):
    """The environment of a student who installed the zip: its helpers first."""
    path = os.pathsep.join([str(unzipped / "site"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}


def test_readme_has_two_commands_and_pins(unzipped):
    readme = (unzipped / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).strip()
    commands = block.splitlines()
    assert len(commands) == 2, commands
    (wheel,) = unzipped.glob("course_helpers-*.whl")
    assert "-r requirements.txt" in commands[0] and wheel.name in commands[0]
    assert "jupyter lab notebooks" in commands[1]
    pins = (unzipped / "requirements.txt").read_text()
    torch = re.search(r"^torch==\S+", (ROOT / "requirements.txt").read_text(), re.M)
    assert torch.group(0) in pins.splitlines()
    for tool in ("jupyter-book", "pytest", "playwright"):
        assert tool not in pins, f"{tool} is not for students"
    assert "jupyterlab==" in pins


def test_helpers_comes_from_the_wheel_and_every_import_resolves(unzipped):
    modules = set()
    for path in (unzipped / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for line in cell.source.splitlines():
                found = re.match(r"\s*(?:import|from)\s+([A-Za-z_][\w]*)", line)
                if found:
                    modules.add(found.group(1))
    script = (
        "import importlib.util, sys, helpers, helpers.grading\n"
        "print(helpers.__file__)\n"
        f"missing = [m for m in {sorted(modules)!r} "
        "if importlib.util.find_spec(m) is None]\n"
        "print('missing', missing)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env=student_env(unzipped), cwd=unzipped, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    where, missing = run.stdout.splitlines()[-2:]
    assert where.startswith(str(unzipped / "site")), where
    assert missing == "missing []"


def run_student_notebook(path, env):
    """Execute a student notebook; the (cell index, error name) of each error."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = os.environ.copy()
    os.environ.update(env)
    try:
        NotebookClient(
            nb,
            timeout=600,
            allow_errors=True,
            resources={"metadata": {"path": path.parent}},
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb, [
        (i, o.ename)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]


def chapters_to_run():
    chosen = os.environ.get("STUDENT_RUN")
    stems = [p.stem for p in CHAPTERS_IPYNB]
    picked = stems if chosen == "all" else [s for s in STUDENT_RUN if s in stems]
    return picked + [synthetic_chapter.NAME.removesuffix(".ipynb")]


@pytest.mark.parametrize("stem", chapters_to_run())
def test_student_notebook_runs_from_the_zip(unzipped, stem):
    """Only the answer stubs raise (and the checks that need their answers)."""
    nb, errors = run_student_notebook(
        unzipped / "notebooks" / f"{stem}.ipynb", student_env(unzipped)
    )
    stubs = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.startswith("# YOUR CODE HERE")
    ]
    assert stubs
    raised = dict(errors)
    for i in stubs:
        assert raised.get(i) == "NotImplementedError", f"{stem}: cell {i}"
    for i, name in errors:
        cell = nb.cells[i]
        expected_to_raise = "raises-exception" in cell.metadata.get("tags", [])
        after_a_stub = any(
            j < i and all(nb.cells[k].source.startswith(bundle_common.RESTORE)
                          or bundle_common.HIDDEN_HEADER in nb.cells[k].source
                          for k in range(j + 1, i + 1))
            for j in stubs
        )  # fmt: skip
        assert i in stubs or after_a_stub or expected_to_raise, (
            f"{stem}: cell {i} raised {name} and is not an answer or its check:\n"
            f"{cell.source[:300]}"
        )


def test_no_check_prints_its_expected_value():
    """A check cell shows ✓ or an error, never the value it expects."""
    import jupytext

    problems = []
    for md in CHAPTERS_IPYNB:
        md = md.with_suffix(".md")
        if not md.exists():
            continue
        for cell in jupytext.read(md).cells:
            if cell.cell_type != "code" or bundle_common.END not in cell.source:
                continue
            _, check = bundle_common.split_solution(cell.source, md.name)
            for line in check.splitlines():
                if re.match(r"\s*(print|display|Markdown)\(", line):
                    problems.append(f"{md.name}: {line.strip()[:80]}")
    assert not problems, "check cells that print:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def student_html(bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("student_book")
    shutil.copytree(bundle, out, dirs_exist_ok=True)
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "jupyter-book"), "build", str(out),
         *browser_kit().BOOK_FLAGS],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"student book build failed:\n{log[-4000:]}"
    assert "WARNING" not in log, log[-4000:]
    return out / "_build" / "html"


@pytest.mark.book
def test_student_book_builds_without_warnings_or_solutions(student_html):
    """The student book builds with warnings as errors (one build for this module;
    tests/test_browser.py builds the main book), with stubs, no solutions."""
    chapter = (student_html / "notebooks" / "03_vhp_hvp_toy.html").read_text()
    assert "NotImplementedError" in chapter
    assert "BEGIN SOLUTION" not in chapter
    assert "H_from_products = (2 * torch.ones" not in chapter


@pytest.mark.book
def test_student_book_is_safe_to_publish(student_html, bundle):
    pages = sorted(student_html.rglob("*.html"))
    assert any(p.name == "03_vhp_hvp_toy.html" for p in pages)
    assert not (student_html / "book" / "instructors.html").exists()
    index = (student_html / "searchindex.js").read_text()
    problems = []
    solution_code = []
    for p in CHAPTERS_IPYNB:
        nb = nbformat.read(p, as_version=4)
        public = "\n".join(
            bundle_common.strip_solution_code(c.source)
            for c in nb.cells
            if c.cell_type == "code"
        )
        # lines the chapter also shows outside its solutions (code or prose) are
        # public; test_no_solution_survives proves the notebooks hold no other
        shown = (bundle / "notebooks" / p.name).read_text()
        solution_code += [
            ln
            for ln in solution_lines(nb)
            if len(ln) > 25 and ln not in public and json.dumps(ln)[1:-1] not in shown
        ]
    for page in pages + [student_html / "searchindex.js"]:
        text = page.read_text(errors="replace")
        where = page.relative_to(student_html)
        for needle in (
            REPOSITORY,
            "github.com/second-order-autodiff",
            "instructors.html",
            "Instructors",
            "mybinder",
            "colab.research.google.com/github",
        ):
            if needle in text:
                problems.append(f"{where}: {needle!r}")
        for marker in (
            "BEGIN SOLUTION",
            "BEGIN HIDDEN",
            "MARK SCHEME",
            "**Rubric",
            "solution-start",
        ):
            if marker in text:
                problems.append(f"{where}: {marker!r}")
        problems += [f"{where}: solution line {ln!r}" for ln in solution_code
                     if ln in text]  # fmt: skip
    assert "Instructors" not in index
    assert not problems, "\n".join(problems[:40])


def test_stub_keeps_indentation_and_refuses_broken_fences():
    src = (
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
        "check.x()"
    )
    assert student_bundle.strip_solution_code(src) == (
        "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\ncheck.x()"
    )
    with pytest.raises(ValueError, match="without END"):
        student_bundle.strip_solution_code("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without BEGIN"):
        student_bundle.strip_solution_code("x = 1\n### END SOLUTION")


def test_split_keeps_the_whole_check_in_the_check_cell():
    src = (
        "given = 1\n### BEGIN SOLUTION\nanswer = 2\n### END SOLUTION\n"
        "expected = 2\n"
        "check.assert_close(\n    answer,\n    expected,\n"
        '    not_autograd="a count, not a derivative",\n'
        '    what="Exercise 1.1: x",\n)'
    )
    answer, check = bundle_common.split_solution(src)
    assert answer == "given = 1\n### BEGIN SOLUTION\nanswer = 2\n### END SOLUTION"
    assert check.startswith("expected = 2\ncheck.assert_close(")
    assert check.endswith(
        'not_autograd="a count, not a derivative",\n    what="Exercise 1.1: x",\n)'
    )
    assert bundle_common.solution_body(src) == "given = 1\nanswer = 2\n" + check
    with pytest.raises(ValueError, match="expected a check after"):
        bundle_common.split_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n")
    with pytest.raises(ValueError, match="found none"):
        bundle_common.split_solution("x = 1")


def chapter(tags=None, prose="Why: because.", code=None):
    code = code or "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\ncheck.same(x, 1)"
    cell = nbformat.v4.new_code_cell(code)
    if tags is not None:
        cell.metadata["tags"] = tags
    cell.outputs = [nbformat.v4.new_output("stream", text="✓ x\n")]
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "::::{exercise-start}\n:label: ex-04-a\n::::"
            ),
            nbformat.v4.new_markdown_cell("Statement."),
            nbformat.v4.new_markdown_cell("::::{exercise-end}\n::::"),
            nbformat.v4.new_markdown_cell(
                "::::{solution-start} ex-04-a\n:class: dropdown\n::::"
            ),
            cell,
            nbformat.v4.new_markdown_cell(prose),
            nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
        ]
    )


def test_student_cells_roles_numbers_and_points():
    items = bundle_common.student_cells(
        chapter(tags=["points-2", "keep"]), "04_x.ipynb"
    )
    roles = [i.role for i in items]
    assert roles == ["plain", "plain", "plain", "answer", "check"]
    answer, check = items[3], items[4]
    assert answer.exercise.label == "ex-04-a" and answer.exercise.number == "4.1"
    assert answer.exercise.points == 2.0
    assert answer.cell.metadata["tags"] == ["keep"], "the points tag is consumed"
    assert answer.cell.outputs == [] and check.cell.outputs == []
    assert check.cell.source == bundle_common.RESTORE + "\ncheck.same(x, 1)"
    assert "Why: because." not in json.dumps([i.cell for i in items])
    default = bundle_common.student_cells(chapter(), "04_x.ipynb")
    assert default[3].exercise.points == bundle_common.DEFAULT_POINTS
    for bad in ("points-0", "points-two", "points--1"):
        with pytest.raises(ValueError, match=f"got '{bad}'"):
            bundle_common.student_cells(chapter(tags=[bad]), "04_x.ipynb")


def test_unfenced_code_inside_a_solution_is_refused():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("::::{solution-start} ex\n::::"),
            nbformat.v4.new_code_cell("answer = 42"),
            nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
        ]
    )
    with pytest.raises(ValueError, match="has no '### BEGIN SOLUTION' fence"):
        student_bundle.student_notebook(nb, "x.ipynb")


def test_two_solution_cells_in_one_gate_are_refused():
    nb = chapter()
    nb.cells.insert(5, nbformat.v4.new_code_cell(nb.cells[4].source))
    with pytest.raises(ValueError, match="expected exactly one code cell, got 2"):
        bundle_common.student_cells(nb, "04_x.ipynb")


def test_gate_sharing_a_cell_is_refused():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "::::{solution-end}\n::::\n\n"
                "::::{exercise-start}\n:label: b\n::::\nNext"
            ),
        ]
    )
    with pytest.raises(ValueError, match="give it a cell of its own"):
        student_bundle.student_notebook(nb, "x.ipynb")
    alone = [
        nbformat.v4.new_markdown_cell(
            "::::{solution-start} ex-1\n:class: dropdown\n::::"
        ),
        nbformat.v4.new_markdown_cell("::::{solution-end}\n::::"),
    ]
    with pytest.raises(ValueError, match="expected exactly one code cell, got 0"):
        student_bundle.student_notebook(nbformat.v4.new_notebook(cells=alone), "y")


def test_leak_detector_finds_leaks():
    original = chapter(prose="The answer is one because x equals one.")
    clean = student_bundle.student_notebook(nbformat.from_dict(original), "04_x.ipynb")
    assert leaks(original, clean, "x") == []
    leaky = nbformat.from_dict(clean)
    leaky.cells[3].source = "x = 1"
    leaky.cells.append(
        nbformat.v4.new_markdown_cell("The answer is one because x equals one.")
    )
    found = leaks(original, leaky, "x")
    assert any("solution line 'x = 1'" in f for f in found)
    assert any("solution prose" in f for f in found)


def test_hidden_tests_and_written_answers_in_the_student_view():
    items = bundle_common.student_cells(synthetic_chapter.chapter(), "90_synthetic")
    roles = [(i.role, i.exercise.label if i.exercise else None) for i in items]
    assert roles[3:] == [
        ("answer", "ex-90-rayleigh"),
        ("check", "ex-90-rayleigh"),
        ("hidden", "ex-90-rayleigh"),
        ("written", "ex-90-rayleigh"),
        ("rubric", "ex-90-rayleigh"),
        ("plain", None),
        ("answer", "ex-90-double"),
        ("check", "ex-90-double"),
    ]
    exercise = items[3].exercise
    assert exercise.written[0][0] == 2.0 and exercise.hidden_points == 1.0
    assert exercise.hidden.startswith(bundle_common.BEGIN_HIDDEN)
    views = {i.role: bundle_common.student_view(i).source for i in items[3:8]}
    assert "BEGIN HIDDEN" not in views["check"] + views["hidden"]
    assert views["hidden"] == bundle_common.HIDDEN_HEADER + "\n" + bundle_common.RESTORE
    assert views["written"] == bundle_common.TEXT_STUB
    assert views["rubric"] == "*The answer above is graded by hand: 2 points.*"


def test_broken_hidden_tests_and_written_answers_are_refused():
    code = synthetic_chapter.SOLUTION_2 + "\n### BEGIN HIDDEN TESTS\nassert y[0] == 2"
    with pytest.raises(ValueError, match="expected one"):
        bundle_common.student_cells(chapter(code=code), "04_x.ipynb")
    code += "\n### END HIDDEN TESTS\nprint(1)"
    with pytest.raises(ValueError, match="at the end of the cell"):
        bundle_common.student_cells(chapter(code=code), "04_x.ipynb")
    nb = chapter()
    nb.cells[5].metadata["tags"] = ["written-answer"]  # prose without a rubric
    with pytest.raises(ValueError, match=r"\*\*Rubric"):
        bundle_common.student_cells(nb, "04_x.ipynb")
    nb.cells[5].source = "Because.\n\n**Rubric.** 1 point: because."
    nb.cells.append(nb.cells.pop(5))  # after solution-end: outside the gate
    with pytest.raises(ValueError, match="outside a solution gate"):
        bundle_common.student_cells(nb, "04_x.ipynb")


def test_points_come_from_the_md_source(tmp_path):
    import jupytext

    nb = chapter(tags=["points-2"])
    nbformat.write(nb, tmp_path / "04_x.ipynb")
    md = jupytext.reads(jupytext.writes(nb, fmt="md:myst"), fmt="md:myst")
    md.cells[4].metadata["tags"] = ["points-3", "hidden-points-0.5"]
    jupytext.write(md, tmp_path / "04_x.md", fmt="md:myst")
    items = bundle_common.student_cells(nb, tmp_path / "04_x.ipynb")
    assert items[3].exercise.points == 3.0 and items[3].exercise.hidden_points == 0.5


def test_plain_markdown():
    nb = synthetic_chapter.chapter()
    nb.cells.insert(
        2,
        nbformat.v4.new_markdown_cell(
            "(sec-x)=\nSee {numref}`fig-90-a`, {cite}`pearlmutter1994`, "
            "{doc}`../book/notation` and {ref}`the warm-up <ex-90-rayleigh>`.\n\n"
            ":::{note} A title\n:class: tip\nInside.\n:::"
        ),
    )
    nb.cells[1].metadata["mystnb"] = {"figure": {"name": "fig-90-a"}}
    items = bundle_common.plain_markdown(
        bundle_common.student_cells(nb, "90_synthetic.ipynb"), "90_synthetic.ipynb"
    )
    text = "\n\n".join(i.cell.source for i in items if i.cell.cell_type == "markdown")
    assert "See Fig. 90.1, (Pearlmutter 1994), *Notation" in text
    assert "and the warm-up." in text and "(sec-x)=" not in text
    assert "> **Note: A title.**\n> Inside." in text
    assert "### Exercise 90.1\n\n**Warm-up" in text and "exercise-end" not in text
    assert "(see exercise 90.1)" in text


def _bound_at_top(tree) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside its functions)."""
    import ast

    names: set[str] = set()

    def targets(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)

    def visit(stmts):
        for st in stmts:
            if isinstance(st, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(st.name)
            elif isinstance(st, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in st.names)
            elif isinstance(st, ast.Assign):
                for t in st.targets:
                    targets(t)
            elif isinstance(st, ast.AnnAssign | ast.AugAssign):
                targets(st.target)
            elif isinstance(st, ast.For | ast.AsyncFor):
                targets(st.target)
                visit(st.body + st.orelse)
            elif isinstance(st, ast.With | ast.AsyncWith):
                for item in st.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
                visit(st.body)
            elif isinstance(st, ast.If | ast.While):
                visit(st.body + st.orelse)
            elif isinstance(st, ast.Try):
                visit(st.body + st.orelse + st.finalbody)
                for handler in st.handlers:
                    visit(handler.body)
            for sub in ast.walk(st):
                if isinstance(sub, ast.NamedExpr):
                    targets(sub.target)

    visit(tree.body)
    return names


def _loaded(tree) -> set[str]:
    import ast

    return {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def names_a_student_lacks(md_text: str, name: str) -> list[str]:
    """Names that a check or a later chapter cell reads but only a solution binds.

    A student's notebook has the stub instead of the solution, so such a cell
    fails with a NameError even for a right answer, unless the exercise's
    statement asks for that name (the student then writes it).
    """
    import ast

    import jupytext
    from IPython.core.inputtransformer2 import TransformerManager

    def parse(source: str):
        return ast.parse(TransformerManager().transform_cell(source))

    problems: list[str] = []
    chapter_names: set[str] = set(dir(__builtins__)) | {"__file__", "get_ipython"}
    solution_only: dict[str, str] = {}  # name -> label of the exercise binding it
    statement, label = "", "?"
    for cell in jupytext.reads(md_text, fmt="md:myst").cells:
        if cell.cell_type == "markdown":
            if bundle_common.EXERCISE_START.search(cell.source):
                found = bundle_common.EXERCISE_LABEL.search(cell.source)
                label, statement = (found.group(1) if found else "?"), ""
            statement += "\n" + cell.source
            continue
        if bundle_common.END not in cell.source:
            tree = parse(cell.source)
            for used in sorted(_loaded(tree) & set(solution_only)):
                problems.append(
                    f"{name}: a chapter cell reads {used!r}, bound only by the "
                    f"solution of {solution_only[used]}: "
                    f"{cell.source.strip().splitlines()[0][:60]}"
                )
            chapter_names |= _bound_at_top(tree)
            continue
        answer, check = bundle_common.split_solution(cell.source, name)
        visible, _ = bundle_common.split_hidden(check, name)
        bound = _bound_at_top(parse(bundle_common.solution_body(answer)))
        visible_tree = parse(visible)
        asked = {w for w in bound if re.search(rf"\b{re.escape(w)}\b", statement)}
        lacking = (_loaded(visible_tree) - _bound_at_top(visible_tree)) & (
            bound - chapter_names - asked
        )
        for used in sorted(lacking):
            problems.append(
                f"{name}, {label}: the check reads {used!r}, which only the solution "
                "binds and the statement does not ask for"
            )
        for w in bound - chapter_names - asked:
            solution_only.setdefault(w, label)
        chapter_names |= asked | _bound_at_top(visible_tree)
    return problems


@pytest.mark.parametrize("path", CHAPTERS_IPYNB, ids=[p.stem for p in CHAPTERS_IPYNB])
def test_checks_read_only_what_a_student_writes(path):
    md = path.with_suffix(".md")
    problems = names_a_student_lacks(md.read_text(), md.name)
    assert not problems, "\n".join(problems)


def test_a_check_reading_a_solution_only_name_is_found():
    chapter = """---
jupyter:
  kernelspec: {name: python3, display_name: Python 3}
---

::::{exercise-start}
:label: ex-90-a
::::

Store the answer in `answer`.

::::{exercise-end}
::::

::::{solution-start} ex-90-a
::::

```{code-cell} ipython3
### BEGIN SOLUTION
helper_value = 2
answer = helper_value + 1
### END SOLUTION
assert answer == helper_value + 1
```

::::{solution-end}
::::

```{code-cell} ipython3
print(helper_value)
```
"""
    found = names_a_student_lacks(chapter, "ch.md")
    assert len(found) == 2, found
    assert "the check reads 'helper_value'" in found[0]
    assert "a chapter cell reads 'helper_value'" in found[1]
    fixed = chapter.replace("assert answer == helper_value + 1", "assert answer == 3")
    fixed = fixed.replace("print(helper_value)", "print(answer)")
    assert names_a_student_lacks(fixed, "ch.md") == []
