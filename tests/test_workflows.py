"""The GitHub workflows: valid against GitHub's schema, and doing what they say.

They cannot run here, so every file in .github/workflows/ is validated against
the workflow schema that check-jsonschema vendors (``--builtin-schema
vendor.github-workflows``: no network), and the tests below read what each
workflow runs. The broken-workflow tests show the validation failing.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, check_jsonschema

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def validate(*paths):
    """check-jsonschema's verdict on workflow files: {file name: [error, ...]}.

    One call for all the files (each call takes seconds); a valid file has no
    errors.
    """
    code, report = check_jsonschema("vendor.github-workflows", *paths)
    verdicts = {pathlib.Path(p).name: [] for p in paths}
    for error in report["errors"]:
        match = error.get("best_match") or error
        verdicts[pathlib.Path(error["filename"]).name].append(
            f"{match['path']}: {match['message']}"
        )
    for error in report.get("parse_errors", []):
        verdicts[pathlib.Path(error["filename"]).name].append(error["message"])
    failed = any(verdicts.values())
    assert code == int(failed), (code, verdicts)
    return verdicts


@pytest.fixture(scope="module")
def verdicts():
    return validate(*WORKFLOWS)


def load(name):
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def runs(job):
    """The shell commands of a job's steps, in order."""
    return [step.get("run", "") for step in job["steps"]]


def test_there_are_the_three_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "publish.yml", "scheduled.yml"} <= names, names


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_is_valid_against_the_schema(path, verdicts):
    errors = verdicts[path.name]
    assert not errors, f"{path.name} is not a valid GitHub workflow:\n" + "\n".join(
        errors
    )


BREAKAGES = {
    # name: (text to replace in ci.yml, replacement, what the schema reports)
    "job without runs-on": (
        "    runs-on: ubuntu-24.04\n",
        "",
        "'runs-on' is a required",
    ),
    "unknown event": ("  pull_request:\n", "  pull_requests:\n", "$.on"),
    "step with uses and run": (
        "      - uses: actions/checkout@v6\n",
        "      - uses: actions/checkout@v6\n        run: echo both\n",
        "$.jobs.test",
    ),
    "steps not a list": (
        "    steps:\n",
        "    steps: none\n    old_steps:\n",
        "$.jobs.test",
    ),
}


@pytest.fixture(scope="module")
def broken_verdicts(tmp_path_factory):
    """Each breakage applied to ci.yml, plus a YAML syntax error, validated at once."""
    folder = tmp_path_factory.mktemp("broken")
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    paths = []
    for i, (old, new, _) in enumerate(BREAKAGES.values()):
        assert text.count(old) == 1, f"ci.yml no longer has {old!r}: update BREAKAGES"
        paths.append(folder / f"broken{i}.yml")
        paths[-1].write_text(text.replace(old, new))
    paths.append(folder / "syntax.yml")
    paths[-1].write_text("on: [push\njobs: {}\n")
    return validate(*paths)


@pytest.mark.parametrize("i", range(len(BREAKAGES)), ids=list(BREAKAGES))
def test_schema_validation_fails_on_a_broken_workflow(i, broken_verdicts):
    name, (_, _, expected) = list(BREAKAGES.items())[i]
    errors = broken_verdicts[f"broken{i}.yml"]
    assert errors, f"the schema accepted a workflow with a {name}"
    assert any(expected in e for e in errors), errors


def test_validation_reports_a_yaml_syntax_error(broken_verdicts):
    errors = broken_verdicts["syntax.yml"]
    assert any("Failed to parse" in e for e in errors), errors


def test_ci_installs_cpu_torch_then_runs_exactly_ci_run():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"]), ci["on"]
    (job,) = ci["jobs"].values()
    commands = runs(job)
    assert commands[-1].strip() == "bash .ci/run", commands[-1]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    install = next(i for i, c in enumerate(commands) if CPU_INDEX in c)
    assert install < len(commands) - 1, "torch's CPU wheel must come before the tests"
    cache = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/cache")
    )
    assert cache["with"]["path"] == ".venv"
    assert "hashFiles('requirements*.txt', 'pyproject.toml')" in cache["with"]["key"]


def test_the_torch_version_the_workflows_install_is_the_pin(tmp_path):
    """Each workflow reads the torch pin from requirements.txt, the same way."""
    pin = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    pipeline = "grep -E '^torch==' requirements.txt | cut -d= -f3"
    for path in WORKFLOWS:
        text = path.read_text()
        if CPU_INDEX in text:
            assert pipeline in text, f"{path.name}: torch version not read from the pin"
    out = subprocess.run(["bash", "-c", pipeline], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    assert out == pin.group(1), (out, pin.group(1))


def test_publish_builds_book_and_bundle_and_deploys_with_the_pages_actions():
    publish = load("publish.yml")
    assert publish["on"]["push"]["branches"] == ["main"]
    build, deploy = publish["jobs"]["build"], publish["jobs"]["deploy"]
    commands = "\n".join(runs(build))
    for command in ["make book", "make student", CPU_INDEX]:
        assert command in commands, f"publish.yml does not run {command!r}"
    uses = [s.get("uses", "").split("@")[0] for s in build["steps"] + deploy["steps"]]
    for action in ["actions/configure-pages", "actions/upload-pages-artifact",
                   "actions/deploy-pages"]:  # fmt: skip
        assert action in uses, f"publish.yml does not use {action}"
    upload = next(
        s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", "")
    )
    assert upload["with"]["path"] == "_build/html"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["needs"] == "build"


def test_publish_puts_the_student_zip_where_the_instructors_page_links_it():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import student_bundle
    finally:
        sys.path.pop(0)
    commands = "\n".join(runs(load("publish.yml")["jobs"]["build"]))
    assert (
        f"_build/student/{student_bundle.ZIP_NAME} _build/html/downloads/" in commands
    )
    assert student_bundle.ZIP_NAME == "student-notebooks.zip"


def test_scheduled_runs_newest_torch_without_blocking_and_the_link_check():
    scheduled = load("scheduled.yml")
    assert scheduled["on"]["schedule"][0]["cron"]
    newest = scheduled["jobs"]["newest-torch"]
    assert "cache" not in str(newest["steps"]), "must not overwrite CI's cached .venv"
    tests = next(s for s in newest["steps"] if s.get("id") == "tests")
    assert tests["continue-on-error"] is True
    assert "pytest" in tests["run"]
    upgrade = next(c for c in runs(newest) if "--upgrade" in c)
    assert "pyproject.toml" in upgrade and CPU_INDEX in upgrade
    assert any("make linkcheck" in c for c in runs(scheduled["jobs"]["linkcheck"]))
    makefile = (ROOT / "Makefile").read_text()
    target = r"^linkcheck:.*\n\t.*jupyter-book build \. --builder linkcheck"
    assert re.search(target, makefile, re.M), "the Makefile has no linkcheck target"
