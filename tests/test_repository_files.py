"""The files a public course repository carries: licences, citation, Binder, git hooks.

Each check is shown failing on a broken copy where a tool does the checking
(the citation schema, pre-commit's config validation, the pairing hook).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import jupytext
import pytest
import yaml

from conftest import ROOT, check_jsonschema

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"]


def pins(path):
    """{name: version} of the name==version lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.split("#")[0].strip())
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found


PINS = pins(ROOT / "requirements.txt")


# Licences ------------------------------------------------------------------


def test_code_licence_is_the_mit_that_pyproject_claims():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License"), text[:40]
    assert "Permission is hereby granted, free of charge" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject


def test_text_licence_is_cc_by_4_and_stated_in_readme_and_footer():
    text = (ROOT / "LICENSE-text.md").read_text()
    assert "CC BY 4.0" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    readme = (ROOT / "README.md").read_text()
    assert "CC BY 4.0" in readme and "MIT" in readme
    assert "LICENSE-text.md" in readme and "(LICENSE)" in readme
    footer = CONFIG["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer


# Citation ------------------------------------------------------------------


def validate_citation(*paths):
    code, report = check_jsonschema("vendor.citation-file-format", *paths)
    return code, [(e["filename"], e["path"]) for e in report["errors"]]


def test_citation_file_is_valid_and_a_broken_one_is_not(tmp_path):
    good = ROOT / "CITATION.cff"
    broken = tmp_path / "CITATION.cff"
    data = yaml.safe_load(good.read_text())
    del data["authors"]
    data["license"] = ["MIT", "CC-BY-4"]
    broken.write_text(yaml.safe_dump(data))
    code, errors = validate_citation(good, broken)
    assert code == 1
    assert not [e for e in errors if e[0] == str(good)], errors
    assert {path for name, path in errors if name == str(broken)} == {"$", "$.license"}


def test_citation_matches_the_package_and_the_repository_setting():
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(
        r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M
    )
    assert data["version"] == version.group(1)
    assert data["repository-code"] == REPOSITORY
    assert data["title"] == CONFIG["title"]
    assert set(data["license"]) == {"MIT", "CC-BY-4.0"}


# Binder --------------------------------------------------------------------


def test_binder_installs_cpu_torch_the_pins_and_the_helpers():
    lines = [
        line.strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert f"torch=={PINS['torch']}+cpu" in lines, lines
    assert "-r ../requirements.txt" in lines and "-e ." in lines
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python={runtime.removeprefix('python-')}" in env["dependencies"], runtime
    assert not (ROOT / "binder" / "environment.yml").exists(), (
        "repo2docker would use binder/environment.yml instead of requirements.txt"
    )


# Git hooks -----------------------------------------------------------------


def pre_commit(*args, cwd=ROOT):
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_pre_commit_config_is_valid_and_a_broken_one_is_not(tmp_path):
    code, log = pre_commit("validate-config", ".pre-commit-config.yaml")
    assert code == 0, log
    text = (ROOT / ".pre-commit-config.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("        entry: ", "        entri: ", 1))
    code, log = pre_commit("validate-config", str(broken))
    assert code == 1 and "entry" in log, log


def test_hooks_use_the_pinned_tools_and_cover_code_and_chapters():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    for hook in hooks.values():
        for dep in hook.get("additional_dependencies", []):
            name, _, version = dep.partition("==")
            assert PINS.get(name.lower()) == version, (
                f"hook {hook['id']}: {dep}, but requirements.txt pins "
                f"{name}=={PINS.get(name.lower())}"
            )
    assert re.search(hooks["ruff-check"]["files"], "notebooks/03_vhp_hvp_toy.ipynb")
    assert re.search(hooks["ruff-check"]["files"], "src/helpers/params.py")
    pairing = hooks["chapter-pairing"]
    assert pairing["entry"] == "python scripts/check_pairing.py"
    for path in ["notebooks/03_vhp_hvp_toy.md", "notebooks/03_vhp_hvp_toy.ipynb"]:
        assert re.search(pairing["files"], path), path
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/pre-commit install" in readme


CHAPTER_MD = """\
---
jupyter:
  jupytext:
    formats: ipynb,md:myst
  kernelspec:
    name: python3
    display_name: Python 3
    language: python
---

# A chapter

Some prose.

```{code-cell} ipython3
:tags: [remove-cell]

x = 1
```

## Summary

- One point.
"""


def load_check_pairing():
    spec = importlib.util.spec_from_file_location(
        "check_pairing", ROOT / "scripts" / "check_pairing.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def chapter_pair(tmp_path, monkeypatch):
    """A small paired chapter, notebooks/01_a.md and .ipynb, in a temporary folder."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    md = folder / "01_a.md"
    md.write_text(CHAPTER_MD)
    jupytext.write(jupytext.read(md), folder / "01_a.ipynb", fmt="ipynb")
    monkeypatch.chdir(tmp_path)
    return md


def test_pairing_hook_passes_on_a_paired_chapter(chapter_pair):
    hook = load_check_pairing()
    assert hook.main(["notebooks/01_a.md", "notebooks/01_a.ipynb", "README.md"]) == 0


def test_pairing_hook_fails_when_the_md_was_edited_after_execution(chapter_pair):
    chapter_pair.write_text(CHAPTER_MD.replace("- One point.", "- One point.\n- Two."))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_pairing.py"),
         "notebooks/01_a.ipynb"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 1, log
    assert "01_a.md and 01_a.ipynb differ from cell 3 on (3 and 3 cells)" in log, log
    assert "scripts/execute.py" in log


def test_pairing_hook_fails_on_a_changed_tag_or_a_missing_twin(chapter_pair, capsys):
    hook = load_check_pairing()
    chapter_pair.write_text(CHAPTER_MD.replace(":tags: [remove-cell]", ":tags: []"))
    assert hook.main(["notebooks/01_a.md"]) == 1
    assert "differ from cell 2 on" in capsys.readouterr().out
    (chapter_pair.parent / "01_a.ipynb").unlink()
    assert hook.main(["notebooks/01_a.md"]) == 1
    assert "twin 01_a.ipynb is missing" in capsys.readouterr().out


# Set-up instructions ---------------------------------------------------------


def test_setup_pages_install_the_pinned_cpu_torch_and_mirror_the_makefile():
    setup = (ROOT / "book" / "setup.md").read_text().replace("\\\n    ", "")
    readme = (ROOT / "README.md").read_text().replace("\\\n    ", "")
    cpu = f"--index-url https://download.pytorch.org/whl/cpu torch=={PINS['torch']}"
    assert f".venv/bin/python -m pip install {cpu}" in setup
    assert f".venv/bin/python -m pip install {cpu}" in readme
    assert f".venv\\Scripts\\python -m pip install {cpu}" in setup
    flags = re.search(r"^BOOK_FLAGS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert f".venv\\Scripts\\jupyter-book build . {flags.group(1)}" in setup
    assert "binder/requirements.txt" in setup and "binder/runtime.txt" in setup
