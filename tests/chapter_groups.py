"""How the test suite is spread over xdist workers, and nbval's runs recorded.

A plugin, loaded by the repository's top ``conftest.py`` rather than kept in
``tests/conftest.py``: its hooks must also reach the notebooks, which lie outside
``tests/``, and must apply however pytest is called (``pytest notebooks/`` too).
"""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTER_STEMS = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md")}

# How `make test` (`pytest -n 2 --dist loadscope --no-loadscope-reorder`) spreads
# the work.  xdist hands each worker whole scopes, each run in collection order:
#
# * a chapter's nbval cells, its fault-injection test and its exercise-message test
#   form one scope, the chapter's (``ChapterScopes`` below), so that the last two
#   read nbval's recorded clean run of the chapter instead of executing it again;
# * every other test's scope is its module (or class), as xdist's loadscope has it.
#
# Scopes start in this order: the longest modules (a book build, a browser session,
# real nbgrader runs; minutes each), then the chapters from the last (Part V, the
# longest) to the first, then the many short tests, which fill in at the end.
LONGEST_FIRST = (
    "tests/test_browser.py",
    "tests/test_nbgrader.py",
    "tests/test_student.py",
    "tests/test_lab.py",
)
CHAPTER_TESTS = ("tests/test_fault_injection.py", "tests/test_exercise_messages.py")


def chapter_of(nodeid: str) -> str | None:
    """The chapter whose scope the test ``nodeid`` belongs to, or None."""
    path = nodeid.split("::")[0]
    if path.startswith("notebooks/"):
        stem = pathlib.PurePosixPath(path).stem
        return stem if stem in CHAPTER_STEMS else None
    if path in CHAPTER_TESTS and nodeid.count("::") >= 2:
        stem = nodeid.split("::")[1].removeprefix("Test_")
        return stem if stem in CHAPTER_STEMS else None
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    """Put the tests in the order above (each scope's tests stay in order)."""

    def rank(item):
        path = item.nodeid.split("::")[0]
        for i, prefix in enumerate(LONGEST_FIRST):
            if path.startswith(prefix):
                return (i, "", 0)
        stem = chapter_of(item.nodeid)
        if stem is not None:
            part = 0 if path.startswith("notebooks/") else 1 + CHAPTER_TESTS.index(path)
            return (len(LONGEST_FIRST), _descending(stem), part)
        return (len(LONGEST_FIRST) + 1, "", 0)

    items.sort(key=rank)  # stable


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadscope``: xdist's scheduler with the chapters' scopes."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ChapterScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            stem = chapter_of(nodeid)
            if stem is not None:
                return f"notebooks/{stem}.ipynb"
            return super()._split_scope(nodeid)

    return ChapterScopes(config, log)


def _descending(stem: str) -> str:
    """A key that sorts chapter ``NN_...`` from the highest NN to the lowest."""
    return f"{99 - int(stem[:2]):02d}"


def _nbval_chapter(item) -> str | None:
    if type(item).__name__ != "IPyNbCell":
        return None
    return chapter_of(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Before nbval starts a chapter's kernel: make it record every check
    (and still raise), for the chapter's fault and exercise-message tests."""
    stem = _nbval_chapter(item)
    saved: dict[str, str | None] = {}
    if stem is not None and item.cell_num == 0:
        import faults

        where = faults.shared_dir(item.config._tmp_path_factory)
        env = faults.nbval_record_env(stem, where)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After nbval ran a chapter's cell: note how many checks it recorded."""
    outcome = yield
    stem = _nbval_chapter(item)
    if stem is None or call.when != "call":
        return
    import faults

    where = faults.shared_dir(item.config._tmp_path_factory)
    faults.note_nbval_cell(stem, where, item.cell_num, outcome.get_result().passed)


# ---------------------------------------------------------- kernels forked, not started
# Every kernel that this process starts for its own Python (nbval's, the fault
# runs', the fault harness's) is forked from one server that has imported torch,
# SymPy and matplotlib once: see tests/kernel_forkserver.py.
# COURSE_FORK_KERNELS=0 starts every kernel afresh instead.


class _ForkServer:
    """This process's kernel fork server, started for the first kernel."""

    def __init__(self) -> None:
        self.process = None
        self.directory: str | None = None
        self.path = ""
        # The environment the server starts with: this process's at configuration,
        # not whatever a test has set when the first kernel starts (a student
        # bundle's PYTHONPATH, say, would send every later kernel to a fresh start).
        self.env: dict[str, str] | None = None

    def socket(self) -> str:
        import subprocess
        import sys
        import tempfile

        import kernel_forkserver

        if self.process is None:
            self.directory = tempfile.mkdtemp(prefix="course-kernels-")
            self.path = os.path.join(self.directory, "server")
            self.log = os.path.join(self.directory, "log")
            with open(self.log, "w") as log:  # refusals and failures, shown at exit
                self.process = subprocess.Popen(
                    [sys.executable, kernel_forkserver.__file__, "serve", self.path],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=self.env,
                )
        elif self.process.poll() is not None:
            raise RuntimeError(
                f"the kernel fork server exited ({self.process.returncode}):\n"
                f"{self._log_text()}\nCOURSE_FORK_KERNELS=0 starts kernels afresh."
            )
        return self.path

    def _log_text(self) -> str:
        try:
            with open(self.log) as fh:
                return fh.read()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        import shutil
        import subprocess
        import sys

        if self.process is not None:
            text = self._log_text()
            if text.strip():  # what it refused to fork, or a failure: say so
                print(
                    f"\nkernel fork server (pid {self.process.pid}):\n{text}",
                    file=sys.__stderr__,
                )
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


_SERVER = _ForkServer()


def fork_server_socket() -> str | None:
    """This process's fork server (started if need be), or None when turned off."""
    import sys

    if os.environ.get("COURSE_FORK_KERNELS", "1") == "0":
        return None
    if not sys.platform.startswith("linux"):
        return None
    return _SERVER.socket()


def pytest_configure(config) -> None:
    import sys

    import kernel_forkserver

    kernel_forkserver.patch_kernel_manager(_SERVER.socket)
    # The venv's scripts on PATH, as in an activated venv (nbgrader runs `alembic`):
    # set once here, so that kernels started later share the fork server's PATH.
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path
    _SERVER.env = dict(os.environ)


def pytest_unconfigure(config) -> None:
    _SERVER.stop()
