"""Start the test suite's Jupyter kernels by forking one process that imported torch.

``make test`` executes every chapter twice (under nbval, then under a fault), and
the fault harness and the student tests a few more notebooks: some 35 kernels.
Each fresh kernel spent about 8 s of CPU on this machine importing the same
modules (torch about 4 s, the ``torch._dynamo`` that ``torch.func`` imports on
first use about 3, SymPy, matplotlib, IPython) before a chapter's own code ran.

So each pytest worker starts this module once, as a *server* that imports those
modules and waits. A kernel is then started as this module's *launcher*, a small
stdlib-only process that hands the server its command line, environment,
working directory and standard streams. The server forks a child that becomes
``ipykernel`` as ``python -m ipykernel_launcher`` would: same ``sys.argv``,
``sys.path``, environment, working directory and streams, fresh random seeds.
The launcher stays in between: it forwards signals (an interrupt, termination)
to the kernel and exits with the kernel's status; if it is killed, so is the
kernel.

What is imported before the fork is third-party only: never the course's
``helpers`` (which reads its environment when imported) nor ``ipykernel``'s
application (which reads ``JPY_PARENT_PID``); matplotlib is imported with the
backend ipykernel chooses. No tensor operation runs, so no thread is lost in the
fork (the server refuses to fork if one exists). A kernel whose environment
differs from the server's in a variable that an import may read (a student
bundle's ``PYTHONPATH``, say) is started afresh instead.

The chapters' committed outputs are made by ``scripts/execute.py`` in plain
fresh kernels, and nbval compares a forked kernel's outputs with them: that
comparison is itself the check that forking changes nothing a reader sees.
``tests/test_kernel_forkserver.py`` checks the rest. Linux only (on macOS a
process that loaded these libraries is not safe to fork); ``COURSE_FORK_KERNELS=0``
turns forking off.

    python tests/kernel_forkserver.py serve SOCKET           # the server
    python tests/kernel_forkserver.py launch SOCKET ARGS...  # one kernel
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

# What a forked kernel finds already imported (the costly part of a kernel's start).
PRELOAD = (
    "numpy",
    "scipy.linalg",
    "sympy",
    "torch",
    "torch._dynamo",  # imported by torch.func's transforms on first use
    "torch.func",
    "matplotlib.pyplot",  # with the backend ipykernel would choose (see serve)
    "IPython",  # not ipykernel: its kernel app reads JPY_PARENT_PID on import
    "zmq",
    "jupyter_client.session",
)
# Variables a kernel may get that the modules above do not read when imported
# (the kernel manager's, the helpers', pytest's, nbgrader's); a kernel whose
# environment differs from the server's in any other is started afresh instead.
UNREAD = (
    *("JPY_", "HELPERS_", "PYDEVD_", "PYTEST_", "COURSE_", "NBGRADER_"),
    *("COLUMNS", "LINES"),
    "KMP_",  # Intel OpenMP's (scikit-learn sets two on import); torch uses GNU's
)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
CONNECT_SECONDS = 120.0  # how long a launcher waits for the server's imports
PR_SET_PDEATHSIG = 1


# ------------------------------------------------------------------ the launcher


def _send_message(sock: socket.socket, message: dict, fds: list[int]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(len(data).to_bytes(8, "big"))
    socket.send_fds(sock, [data], fds)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("the kernel fork server closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def launch(sock_path: str, argv: list[str]) -> int:
    """Be the kernel's process for the kernel manager; return the kernel's status."""
    deadline = time.monotonic() + CONNECT_SECONDS
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            sock.connect(sock_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                print(f"kernel fork server {sock_path}: no answer", file=sys.stderr)
                return 1
            time.sleep(0.05)
    message = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    _send_message(sock, message, [0, 1, 2])
    pid = int(_recv_exact(sock, 8).decode())
    if pid < 0:  # the server cannot fork this kernel (see serve): start afresh
        sock.close()
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])

    def forward(signum, _frame):  # to the kernel's group, as to a fresh kernel's
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    try:
        status = int(_recv_exact(sock, 8).decode())
    except ConnectionError:
        return 1
    return status


# ------------------------------------------------------------------ the server


def patch_kernel_manager(server_socket) -> None:
    """Make jupyter_client start ``python -m ipykernel_launcher`` kernels of this
    Python through the server whose socket path ``server_socket()`` returns
    (called on the first such kernel, so that it can start the server then)."""
    from jupyter_client.manager import KernelManager

    if getattr(KernelManager.format_kernel_cmd, "forks", False):
        return
    plain = KernelManager.format_kernel_cmd

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = plain(self, extra_arguments)
        forking = (
            sys.platform.startswith("linux")  # elsewhere, forking torch is unsafe
            and os.environ.get("COURSE_FORK_KERNELS", "1") != "0"
        )
        if forking and cmd[:3] == [sys.executable, "-m", "ipykernel_launcher"]:
            return [
                sys.executable,
                os.path.abspath(__file__),
                "launch",
                server_socket(),
                *cmd[3:],
            ]
        return cmd

    format_kernel_cmd.forks = True
    KernelManager.format_kernel_cmd = format_kernel_cmd


def module_command(module: str, server_socket: str | None) -> list[str]:
    """``python -m MODULE`` (append its arguments), its kernels forked by the server
    at ``server_socket`` (as is, when None): for tools such as nbgrader that start
    kernels in a process of their own."""
    if server_socket is None:
        return [sys.executable, "-m", module]
    code = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import kernel_forkserver\n"
        "sys.path.pop(0)\n"
        f"kernel_forkserver.patch_kernel_manager(lambda: {server_socket!r})\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code]


def _recv_message(conn: socket.socket) -> tuple[dict, list[int]]:
    size = int.from_bytes(_recv_exact(conn, 8), "big")
    data, fds, _flags, _addr = socket.recv_fds(conn, size, 3)
    while len(data) < size:
        data += _recv_exact(conn, size - len(data))
    return json.loads(data), list(fds)


def _become_kernel(message: dict, fds: list[int], closing: list[int]) -> None:
    """In the forked child: turn into ``python -m ipykernel_launcher ARGV``."""
    try:
        _die_with_parent(signal.SIGKILL)  # the server
        os.setsid()  # a group of its own, as jupyter_client starts a fresh kernel
        for fd in closing:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for signum in (*FORWARDED, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython starts
        os.environ.clear()
        os.environ.update(message["env"])
        os.environ.update(_SET_BY_IMPORTS)
        os.chdir(message["cwd"])
        import random

        random.seed()  # a fresh process would draw its own seeds, not share one
        import numpy as np
        import sympy.core.random as sympy_random
        import torch

        np.random.seed()
        torch.seed()  # as a fresh kernel's generator (seen here: not a fixed seed)
        sympy_random.rng.seed()
        sympy_random._assumptions_rng.seed()
        import ipykernel

        launcher = os.path.join(os.path.dirname(ipykernel.__file__), "..")
        sys.argv = [
            os.path.realpath(os.path.join(launcher, "ipykernel_launcher.py")),
            *message["argv"],
        ]
        sys.path[:] = [*message.get("path_before", []), *_KERNEL_PATH]
        from ipykernel import kernelapp

        app = kernelapp.IPKernelApp.instance()
        app.initialize()
        # torch's log handlers hold the sys.stderr of their import: the kernel's own
        # in a fresh kernel, so give them this kernel's
        torch._logging._internal._init_logs()
        app.start()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:  # what the interpreter's exit would do: join threads, run atexit handlers
        import atexit
        import threading

        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_KERNEL_PATH: list[str] = []
_SET_BY_IMPORTS: dict[str, str] = {}


def _import_settings(env) -> dict[str, str]:
    """The environment that the preloaded modules may have read when imported."""
    return {k: v for k, v in env.items() if not k.startswith(UNREAD)}


def _die_with_parent(signum: int) -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signum)
    except OSError:
        pass


def _path_before(ours: dict, theirs: dict) -> tuple[list[str], str | None]:
    """The directories a kernel's PYTHONPATH puts before the server's (a student
    bundle's ``site`` with the course's helpers, say), and why they cannot be
    (a preloaded module they would hide, or another PYTHONPATH), or None."""
    old = [e for e in ours.get("PYTHONPATH", "").split(os.pathsep) if e]
    new = [e for e in theirs.get("PYTHONPATH", "").split(os.pathsep) if e]
    extra = new[: len(new) - len(old)]
    if new[len(extra) :] != old:
        return [], "PYTHONPATH differs from the server's, not only at its front"
    loaded = {name.partition(".")[0] for name in sys.modules}
    for folder in extra:
        if not os.path.isabs(folder):
            return [], f"PYTHONPATH's {folder} is relative (to the kernel's cwd)"
        names = os.listdir(folder) if os.path.isdir(folder) else []
        hidden = sorted(loaded & {n.partition(".")[0] for n in names})
        if hidden:
            return [], f"PYTHONPATH's {folder} holds the preloaded {hidden}"
    return extra, None


def _refusal(started: dict, message: dict) -> str | None:
    """Why the server must not fork this kernel, or None."""
    ours, theirs = _import_settings(started), _import_settings(message["env"])
    for key, value in _SET_BY_IMPORTS.items():  # as the preloaded imports set them
        if theirs.get(key, value) == value:
            ours.pop(key, None)
            theirs.pop(key, None)
    differ = sorted(
        k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)
    )
    if differ == ["PYTHONPATH"]:
        message["path_before"], why = _path_before(ours, theirs)
        if why:
            return why
    elif differ:
        return f"{', '.join(differ)} differ from the server's"
    threads = (
        len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    )
    if threads > 1:
        return f"the server has {threads} threads, and a fork keeps only one"
    return None


def serve(sock_path: str) -> None:
    """Import once, then fork a kernel for each launcher that connects."""
    _die_with_parent(signal.SIGTERM)  # the pytest worker that started the server
    # sys.path as `python -m ipykernel_launcher` has it (that script drops the cwd)
    _KERNEL_PATH[:] = [p for p in sys.path[1:]]
    started = dict(os.environ)
    if not started.get("MPLBACKEND"):  # as ipykernel will, before matplotlib reads it
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    for name in PRELOAD:
        __import__(name)
    # what the imports set (torch._dynamo sets TORCHINDUCTOR_CACHE_DIR), which a
    # fresh kernel would also have after importing them
    _SET_BY_IMPORTS.update({k: v for k, v in os.environ.items() if started.get(k) != v})
    # Keep the collector off the preloaded objects in every kernel (Python's advice
    # for a server that forks): fewer pages copied, and gc.collect() then takes
    # milliseconds instead of the 0.5 s a full heap of torch and SymPy costs.
    import gc

    gc.collect()
    gc.freeze()
    sys.stdout.flush()
    sys.stderr.flush()

    import selectors

    tmp = sock_path + ".tmp"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    server.listen(16)
    os.rename(tmp, sock_path)  # launchers connect only once the imports are done
    select = selectors.DefaultSelector()
    select.register(server, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}  # kernel pid -> its launcher's socket
    while True:
        for key, _ in select.select(timeout=0.1):
            if key.fileobj is server:
                try:
                    _accept(server, select, children, started)
                except Exception:  # one launcher's trouble must not end the server
                    import traceback

                    print("kernel fork server: a launch failed:", file=sys.stderr)
                    traceback.print_exc()
            else:  # a launcher closed its end (it was killed): kill its kernel
                select.unregister(key.fileobj)
                _kill_group(key.data)
        _reap(select, children)


def _accept(server, select, children: dict, started: dict) -> None:
    import selectors

    conn, _ = server.accept()
    fds: list[int] = []
    try:
        message, fds = _recv_message(conn)
        refusal = _refusal(started, message)
        if refusal:
            print(f"kernel fork server: {refusal}: a fresh kernel", file=sys.stderr)
            conn.sendall(b"-1".rjust(8))
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            keep = {c.fileno() for c in children.values()}
            keep |= {server.fileno(), conn.fileno(), select.fileno()}
            _become_kernel(message, fds, sorted(keep))
    except BaseException:
        conn.close()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    children[pid] = conn
    try:
        conn.sendall(str(pid).rjust(8).encode())
    except OSError:  # the launcher is gone already
        _kill_group(pid)
        return
    select.register(conn, selectors.EVENT_READ, pid)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def _reap(select, children: dict) -> None:
    """Wait for the kernels that ended; tell each one's launcher its status."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        try:
            select.unregister(conn)
        except (KeyError, ValueError):
            pass
        try:
            conn.sendall(str(code).rjust(8).encode())
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "launch":
        sys.exit(launch(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit(__doc__)
