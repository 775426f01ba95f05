"""A real browser for the course's tests and screenshots, with nothing fetched.

Playwright's Python package drives Debian's Chromium (``/usr/bin/chromium``, or
``$CHROMIUM``); Playwright never downloads a browser. The built book is served from
a local HTTP server, MathJax 3 comes from the ``django-static-mathjax`` package
(routed in place of the CDN address Sphinx writes), and every other request that
leaves this machine is refused. Used by tests/test_browser.py, tests/test_lab.py
and scripts/screenshots.py.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/"
WIDTHS = {"desktop": 1400, "phone": 390}
# A phone as readers hold it (an iPhone 12-15 class screen): 390 x 844 CSS px at
# device pixel ratio 2 (screenshots); the tests measure in CSS px at the same width.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}  # fmt: skip


def chromium_path() -> str | None:
    """The system Chromium, or None."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return (
            "Playwright's Python package is not installed "
            "(pip install -r requirements.txt)"
        )
    if chromium_path() is None:
        return (
            "no Chromium at /usr/bin/chromium (Debian: apt-get install chromium; "
            ".ci/run does it)"
        )
    if mathjax_dir() is None:
        return "MathJax 3 is not installed (pip install django-static-mathjax)"
    return None


def mathjax_dir() -> pathlib.Path | None:
    """MathJax 3's es5/ folder, shipped by the django-static-mathjax package."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        es5 = pathlib.Path(location) / "static" / "mathjax" / "es5"
        if (es5 / "tex-mml-chtml.js").is_file():
            return es5
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(directory: pathlib.Path):
    """Serve a folder on 127.0.0.1; yields the base URL (ending in /)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no request log in the test output
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


REMOTE = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])[a-z][a-z0-9+.-]*://")


def offline(context):
    """Route MathJax's CDN address to the local package; refuse other remote URLs.

    Only remote URLs are intercepted (local ones load directly, which is faster).
    Returns the list that collects each refused URL, so a test can report them.
    """
    es5 = mathjax_dir()
    refused: list[str] = []
    cache: dict[str, bytes] = {}

    def handle(route):
        url = route.request.url
        if url.startswith(MATHJAX_CDN):
            rel = url[len(MATHJAX_CDN) :].split("?")[0].removeprefix("es5/")
            path = es5 / rel
            if path.is_file():
                if rel not in cache:
                    cache[rel] = path.read_bytes()
                route.fulfill(
                    body=cache[rel],
                    content_type=CONTENT_TYPES.get(
                        path.suffix, "application/octet-stream"
                    ),
                    headers={"Access-Control-Allow-Origin": "*"},
                )
                return
        refused.append(url)
        route.abort("blockedbyclient")

    context.route(REMOTE, handle)
    return refused


CONTENT_TYPES = {
    ".js": "text/javascript",
    ".woff": "font/woff",
    ".json": "application/json",
}


_SHARED: dict = {}


def _close_shared():
    with contextlib.suppress(Exception):
        _SHARED.pop("browser").close()
    with contextlib.suppress(Exception):
        _SHARED.pop("playwright").stop()


@contextlib.contextmanager
def browser():
    """A headless Chromium (Playwright over the system binary).

    One browser serves the whole process (Playwright's synchronous API allows one
    running instance per thread, and tests in several files use it); callers close
    the contexts they open, and the browser closes when the process exits.
    """
    if "browser" not in _SHARED:
        from playwright.sync_api import sync_playwright

        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(
            executable_path=chromium_path(), args=LAUNCH_FLAGS, headless=True
        )
        atexit.register(_close_shared)
    yield _SHARED["browser"]


BOOK_FLAGS = ["--warningiserror", "--nitpick", "--keep-going", "--quiet"]


def build_book(out: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Build the book into out as `make book` does; return its html folder and log.

    Warnings are errors (the Makefile's flags), but ``--keep-going`` writes every
    page all the same: tests/test_browser.py fails on a warning in the log in one
    test and judges what the pages show in the others, from this one build.
    """
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), *BOOK_FLAGS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    html = out / "_build" / "html"
    log = result.stdout + result.stderr
    if not (html / "index.html").is_file():
        raise RuntimeError(f"book build failed:\n{log[-4000:]}")
    if result.returncode != 0:
        log += f"\n(jupyter-book exited with {result.returncode})"
    return html, log


def wait_for_math(page, timeout_ms: int = 20000) -> None:
    """Wait until MathJax, when the page loads it, has typeset the page."""
    page.wait_for_function(
        """() => !document.querySelector('script[src*="mathjax"]') ||
                 (window.MathJax && window.MathJax.startup &&
                  window.MathJax.startup.promise)""",
        timeout=timeout_ms,
    )
    page.evaluate(
        """() => window.MathJax && window.MathJax.startup
                 ? window.MathJax.startup.promise.then(() => true) : true"""
    )


# ---------------------------------------------------------------- JupyterLab


# Render every cell (no windowing), so a check sees the whole notebook; no
# announcements pop up over the screenshot.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}


@contextlib.contextmanager
def jupyterlab(notebook_dir: pathlib.Path, log_path: pathlib.Path | None = None):
    """Start JupyterLab on a free local port with a random token.

    Yields (base_url, token). Its settings, workspaces and runtime files live in a
    temporary folder, so a user's own JupyterLab setup plays no part.
    """
    port = free_port()
    token = os.urandom(16).hex()
    with tempfile.TemporaryDirectory(prefix="course-lab-") as tmp:
        tmp = pathlib.Path(tmp)
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(tmp / "config"),
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
            JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
            JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        )
        log = open(log_path or tmp / "lab.log", "w")  # noqa: SIM115
        args = [sys.executable, "-m", "jupyter", "lab", "--no-browser"]
        args += [f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0"]
        args += [f"--IdentityProvider.token={token}"]
        args += [f"--ServerApp.root_dir={notebook_dir}", "--LabApp.news_url="]
        args += ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # CI runs as root
        for name, value in LAB_SETTINGS.items():
            path = tmp / "settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=notebook_dir,
        )
        base = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    log.flush()
                    text = pathlib.Path(log.name).read_text()[-3000:]
                    raise RuntimeError(f"JupyterLab exited:\n{text}")
                try:
                    url = f"{base}api/status?token={token}"
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not answer within 60 s")
                time.sleep(0.5)
            yield base, token
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


# What a student must not see in JupyterLab: math errors (MathJax's mjx-merror,
# KaTeX's .katex-error, or math drawn in red, as MathJax draws an undefined
# command) and MyST left as source (a role such as {doc} or a ::: fence printed
# as text, or a ```{directive} shown as a code block).
LAB_PROBLEMS = """(root) => {
  root = root || document;
  const MARKDOWN = '.jp-MarkdownCell .myst, .jp-RenderedMarkdown';
  const problems = [];
  const snippet = (e) => (e.textContent || '').trim().replace(/\\s+/g, ' ')
      .slice(0, 80);
  for (const e of root.querySelectorAll('mjx-merror, [data-mjx-error]')) {
    problems.push('MathJax error: ' + (e.getAttribute('data-mjx-error')
                                       || snippet(e)));
  }
  // KaTeX (jupyterlab-myst typesets markdown math with it) marks a formula it
  // cannot parse with .katex-error, or, in jupyterlab-myst, with the message as
  // the title of a highlighted span.
  for (const e of root.querySelectorAll('.katex-error, .myst [title]')) {
    const title = e.getAttribute('title') || '';
    if (e.classList.contains('katex-error')
        || /control sequence|ParseError|KaTeX|Expected|Missing/.test(title)) {
      problems.push('KaTeX error: ' + (title || snippet(e)));
    }
  }
  const red = /^rgb\\((255, 0, 0|204, 0, 0)\\)$/;
  for (const e of root.querySelectorAll(
      'mjx-container *, .katex *, .MathJax *')) {
    if (red.test(getComputedStyle(e).color) && e.children.length === 0) {
      problems.push('math drawn in red (an undefined command?): ' + snippet(e));
    }
  }
  for (const md of root.querySelectorAll(MARKDOWN)) {
    const copy = md.cloneNode(true);
    copy.querySelectorAll('.katex, mjx-container, .MathJax, code, pre')
        .forEach((e) => e.remove());
    const text = copy.textContent;
    const role = text.match(/\\{[a-z][a-z0-9:_-]*\\}/);
    if (role) problems.push('MyST role left as text: ' + role[0]);
    if (/:::/.test(text)) problems.push('MyST ::: fence left as text');
    for (const code of md.querySelectorAll('code[class*="language-{"]')) {
      problems.push('MyST directive shown as code: ' + code.className);
    }
  }
  return problems;
}"""


# A rendered markdown cell: jupyterlab-myst's, or JupyterLab's own.
LAB_MARKDOWN = (
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell :is(.myst, "
    ".jp-RenderedMarkdown)"
)


def lab_open(page, base, token, name, settle_ms=4000, timeout_ms=90000):
    """Open notebooks/<name> in JupyterLab and wait until its cells have rendered."""
    page.goto(f"{base}lab/tree/{name}?token={token}")
    page.wait_for_selector(LAB_MARKDOWN, timeout=timeout_ms)
    # Markdown renders and math typesets asynchronously: wait until the number
    # of typeset formulas stops changing.
    last, stable = -1, 0
    deadline = time.monotonic() + timeout_ms / 1000
    while stable < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(settle_ms // 4)
        count = page.evaluate(
            "() => document.querySelectorAll('.katex, mjx-container').length"
        )
        stable = stable + 1 if count == last else 0
        last = count


def lab_open_beside(page, name, settle_ms=2000, timeout_ms=90000):
    """Open <name> from the file browser of the JupyterLab already on ``page``, as a
    student would (a double click), without loading JupyterLab again (about 10 s
    of a 2-core machine); wait until its cells have rendered."""
    item = page.locator(".jp-DirListing-item", has_text=name)
    item.first.dblclick(timeout=timeout_ms)
    current = page.locator(
        ".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=name
    )
    current.wait_for(timeout=timeout_ms)  # its tab is the one shown
    page.wait_for_selector(LAB_MARKDOWN, timeout=timeout_ms)
    last, stable = -1, 0
    deadline = time.monotonic() + timeout_ms / 1000
    while stable < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(settle_ms // 4)
        count = page.evaluate(
            "() => document.querySelectorAll('.katex, mjx-container').length"
        )
        stable = stable + 1 if count == last else 0
        last = count


def myst_installed() -> bool:
    return importlib.util.find_spec("jupyterlab_myst") is not None
