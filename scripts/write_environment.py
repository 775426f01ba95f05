"""Write environment.yml from requirements.txt, so the two can never disagree.

Run by ``make environment.yml``; tests/test_environment.py checks the result.
"""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pins(text: str) -> list[str]:
    """The ``name==version`` lines of a requirements file, in order."""
    return [
        line.split("#")[0].strip()
        for line in text.splitlines()
        if line.split("#")[0].strip()
    ]


def render(requirements: list[str]) -> str:
    lines = [
        "# Generated from requirements.txt by scripts/write_environment.py: "
        "edit that file,",
        "# then run `make environment.yml`. "
        "After `conda env create -f environment.yml`,",
        "# add Part V's curvature libraries without their declared torchvision:",
        "#   pip install --no-deps -r requirements-nodeps.txt",
        "name: second-order-autodiff",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *[f"      - {r}" for r in requirements],
        "      - -e .",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    reqs = pins((ROOT / "requirements.txt").read_text())
    (ROOT / "environment.yml").write_text(render(reqs))
    print(f"wrote environment.yml with {len(reqs)} pins")
