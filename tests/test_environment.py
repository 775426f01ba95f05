"""requirements.txt and environment.yml pin the same packages at the same versions."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, (
                f"requirements.txt: {line!r} is not an exact pin (name==version)"
            )
            pins[name.lower()] = version
    return pins


def test_requirements_are_exact_and_include_the_essentials():
    pins = requirement_pins()
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"] == "1.0.4.post1"
    for name in [
        "jupytext",
        "nbval",
        "sympy",
        "matplotlib",
        "numpy",
        "ipykernel",
        "jupyterlab",
        "pytest",
        "sphinx-exercise",
        "scipy",
    ]:
        assert name in pins, f"{name} is not pinned"


def test_environment_yml_has_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = {}
    for item in pip_section:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", item)
        if m:
            env_pins[m.group(1).lower()] = m.group(2)
    assert env_pins == requirement_pins(), (
        "run `make environment.yml` after editing requirements.txt"
    )
    assert "python=3.11" in env["dependencies"]


def test_nodeps_pins_are_exact_and_import_without_torchvision():
    """requirements-nodeps.txt: exact pins, each importable with torchvision absent.

    They declare torchvision; PyPI's wheel of it is a CUDA build that fails to
    import beside the CPU torch, so the Makefile installs them with --no-deps.
    """
    import importlib.util

    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
    ]
    pins = dict(line.split("==") for line in lines if line)
    assert set(pins) == {
        "backpack-for-pytorch",
        "curvlinops-for-pytorch",
        "laplace-torch",
    }
    assert not set(pins) & set(requirement_pins()), "a package pinned twice"
    assert importlib.util.find_spec("torchvision") is None, (
        "torchvision is installed: the nodeps libraries would import its CUDA build"
    )
    from importlib.metadata import version

    import backpack  # noqa: F401
    import curvlinops  # noqa: F401
    from laplace import Laplace  # noqa: F401

    for name, pinned in pins.items():
        assert version(name) == pinned, (
            f"{name}: installed {version(name)}, pinned {pinned}"
        )
