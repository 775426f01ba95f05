"""Check one chapter on its own: execute it, run its tests and nbval, build a book.

    .venv/bin/python scripts/check_chapter.py notebooks/05_full_hessians.md

The build uses a temporary table of contents that adds the chapter to the
book's, so a chapter can be checked before it is listed in _toc.yml.  Nothing
outside notebooks/ and a temporary folder is written.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


def run(cmd: list[str], what: str) -> None:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout[-8000:], result.stderr[-8000:], sep="\n")
        sys.exit(f"FAILED: {what} ({took:.1f} s)")
    print(f"ok: {what} ({took:.1f} s)", flush=True)


def main(md: pathlib.Path) -> None:
    md = md.resolve()
    stem = md.stem
    run(
        [sys.executable, "scripts/execute.py", str(md.relative_to(ROOT))],
        "execute in a fresh kernel",
    )
    run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "tests/test_notebooks.py",
            "tests/test_student.py",
            "-k",
            f"{stem} or bundle or gate or stub or unfenced",
        ],
        "pairing, conventions, student bundle",
    )
    run(
        [sys.executable, "-m", "pytest", "-q", f"notebooks/{stem}.ipynb"],
        "nbval (strict) re-run",
    )
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entry = f"notebooks/{stem}"
    listed = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    if entry not in listed:
        toc["parts"].insert(-1, {"caption": "Draft", "chapters": [{"file": entry}]})
    with tempfile.TemporaryDirectory() as tmp:
        toc_path = pathlib.Path(tmp) / "_toc.yml"
        toc_path.write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
        run(
            [
                str(BIN / "jupyter-book"),
                "build",
                ".",
                "--toc",
                str(toc_path),
                "--path-output",
                tmp,
                "--warningiserror",
                "--nitpick",
                "--keep-going",
                "--quiet",
            ],
            "book build, warnings as errors",
        )
        html = pathlib.Path(tmp) / "_build" / "html" / "notebooks" / f"{stem}.html"
        print(f"rendered page (deleted on exit): {html}, {html.stat().st_size} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].endswith(".md"):
        sys.exit(
            "usage: .venv/bin/python scripts/check_chapter.py notebooks/NN_slug.md"
        )
    main(pathlib.Path(sys.argv[1]))
