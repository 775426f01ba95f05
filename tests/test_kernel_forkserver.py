"""The kernel fork server (tests/kernel_forkserver.py) that starts the suite's
kernels: a forked kernel is the kernel a fresh start gives, one it cannot fork is
started afresh, and its launcher behaves as a kernel's own process would."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from conftest import ROOT

PROBE = (
    "import json, os, signal, sys\n"
    "print(json.dumps({'argv0': sys.argv[0], 'path': sys.path, 'cwd': os.getcwd(),"
    " 'env': sorted(os.environ), 'preloaded': 'torch' in sys.modules,"
    " 'pid': os.getpid(), 'group_leader': os.getpgrp() == os.getpid(),"
    " 'sigpipe': str(signal.getsignal(signal.SIGPIPE)),"
    " 'sigint': str(signal.getsignal(signal.SIGINT)),"
    " 'mpl': os.environ.get('MPLBACKEND')}))"
)

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("COURSE_FORK_KERNELS", "1") == "0",
        reason="COURSE_FORK_KERNELS=0: every kernel is started afresh",
    ),
    pytest.mark.skipif(
        not sys.platform.startswith("linux"),
        reason="kernels are forked on Linux only",
    ),
]


def probe(monkeypatch, **env) -> dict:
    """What a kernel started as nbval and the fault runs start theirs reports."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PROBE)]
    where = {"metadata": {"path": str(ROOT / "notebooks")}}
    NotebookClient(nb, kernel_name="python3", timeout=120, resources=where).execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    return json.loads(text.splitlines()[-1])


def test_a_forked_kernel_is_the_kernel_a_fresh_start_gives(monkeypatch):
    forked = probe(monkeypatch)
    fresh = probe(monkeypatch, COURSE_FORK_KERNELS="0")
    assert forked["preloaded"] and not fresh["preloaded"], "was the kernel forked?"
    for key in ("argv0", "path", "cwd", "group_leader", "sigpipe", "sigint", "mpl"):
        assert forked[key] == fresh[key], key
    # torch._dynamo, preloaded, sets TORCHINDUCTOR_CACHE_DIR; a fresh kernel gets it
    # on its first torch.func call
    ours = {"TORCHINDUCTOR_CACHE_DIR", "COURSE_FORK_KERNELS"}  # and this test's own
    assert set(forked["env"]) - ours == set(fresh["env"]) - ours


def test_a_pythonpath_in_front_is_put_in_front(monkeypatch, tmp_path):
    """As a student bundle's: its folder first on sys.path, as in a fresh kernel."""
    (tmp_path / "course_probe_module.py").write_text("")
    forked = probe(monkeypatch, PYTHONPATH=str(tmp_path))
    fresh = probe(monkeypatch, PYTHONPATH=str(tmp_path), COURSE_FORK_KERNELS="0")
    assert forked["preloaded"] and not fresh["preloaded"]
    assert forked["path"] == fresh["path"]
    assert forked["path"][0] == str(tmp_path)


def test_a_pythonpath_that_hides_a_preloaded_module_gets_a_fresh_kernel(
    monkeypatch, tmp_path
):
    (tmp_path / "sympy").mkdir()
    (tmp_path / "sympy" / "__init__.py").write_text("")
    seen = probe(monkeypatch, PYTHONPATH=str(tmp_path))
    assert not seen["preloaded"]
    assert seen["path"][0] == str(tmp_path)


def start_kernel() -> tuple[KernelManager, object]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(ROOT / "notebooks"))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


@pytest.fixture
def kernel():
    km, kc = start_kernel()
    yield km, kc
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=True)


def kernel_pid(kc) -> int:
    pids = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            pids.append(int(msg["content"]["text"]))

    kc.execute_interactive("import os; print(os.getpid())", output_hook=hook)
    return pids[0]


def gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_an_interrupt_reaches_the_kernel(kernel):
    km, kc = kernel
    assert km.provisioner.process.pid != kernel_pid(kc), "the launcher stands between"
    msg_id = kc.execute("import time; time.sleep(60)")
    time.sleep(1.0)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def test_the_launcher_ends_with_its_kernel_and_the_kernel_with_it(kernel):
    km, kc = kernel
    pid = kernel_pid(kc)
    launcher = km.provisioner.process
    assert launcher.pid != pid, "the kernel was not forked"
    km.shutdown_kernel()  # a clean shutdown: the launcher exits with the kernel's 0
    assert gone(pid)
    assert launcher.poll() == 0
    km, kc = start_kernel()  # a killed launcher takes its kernel with it
    pid = kernel_pid(kc)
    assert km.provisioner.process.pid != pid, "the kernel was not forked"
    kc.stop_channels()
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    assert gone(pid), "the kernel outlived its killed launcher"
    km.shutdown_kernel(now=True)
