"""What the graded cells of the course's nbgrader bundle use (issue 25).

A student's answer cell runs in the same kernel as the locked cells that grade
it, so it can rebind names those cells use: ``check.assert_close = lambda
*a, **k: None``, ``helpers.check = ...``, ``torch.testing.assert_close = ...``,
``numpy.allclose = ...``.  This module snapshots, when ``helpers.check`` is
first imported (that is, at ``import helpers``), every attribute of
``helpers.check``, ``numpy``, ``numpy.linalg``, ``numpy.testing``,
``torch.testing``, the methods of ``torch.Tensor`` and the handful of ``torch``
functions a check may call; :func:`restore` puts them
back and returns the pristine ``helpers.check`` module.  Each check cell of
the bundles starts with

    check = __import__("helpers.grading").grading.restore()

so a rebinding in an answer cell cannot change a check's verdict.  It also
drops IPython custom exception handlers (``set_custom_exc``), which would
swallow a failing check's error.

What it cannot do: code in the same kernel can also replace this module's own
functions, rewrite later cells before they run (IPython input transformers),
or patch torch's C-level tensors.  :func:`suspicious` finds such code in an
answer cell (``scripts/scan_answers.py NOTEBOOK ...`` lists it) so that an
instructor can read those answers; the instructors' guide says what nbgrader
itself offers.

For hidden tests: :func:`no_explicit_hessian` makes ``torch.func.hessian`` and
``torch.autograd.functional.hessian`` raise inside a ``with`` block (a Hessian
assembled by hand, e.g. ``jacfwd(jacrev(f))``, is not detected: count the HVP
calls instead), and
:class:`CallCounter` wraps a function (an HVP) and counts its calls.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "CallCounter",
    "ExplicitHessianError",
    "no_explicit_hessian",
    "restore",
    "suspicious",
]

# module name -> attributes to restore (None: every attribute of the module)
GUARDED: dict[str, tuple[str, ...] | None] = {
    "helpers.check": None,
    "numpy": None,
    "numpy.linalg": None,
    "numpy.testing": None,
    "torch.testing": None,
    "torch": (
        "allclose",
        "isclose",
        "equal",
        "abs",
        "all",
        "any",
        "isfinite",
        "isnan",
        "as_tensor",
        "tensor",
        "float64",
        "float32",
        "Tensor",
    ),
}

_SNAPSHOT: dict[str, tuple[types.ModuleType, dict[str, Any]]] = {}
_CLASSES: dict[str, tuple[type, dict[str, Any]]] = {}


def _take_snapshot() -> None:
    for name, attrs in GUARDED.items():
        module = importlib.import_module(name)
        values = (
            dict(vars(module))
            if attrs is None
            else {a: getattr(module, a) for a in attrs if hasattr(module, a)}
        )
        _SNAPSHOT[name] = (module, values)
    import torch

    _CLASSES["torch.Tensor"] = (torch.Tensor, dict(vars(torch.Tensor)))


def restore() -> types.ModuleType:
    """Undo every rebinding in the guarded modules; return ``helpers.check``."""
    for name, (module, values) in _SNAPSHOT.items():
        sys.modules[name] = module
        current = vars(module)
        for attr, value in values.items():
            if current.get(attr, _MISSING) is not value:
                setattr(module, attr, value)
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, module)
    for cls, values in _CLASSES.values():
        for attr in [a for a in vars(cls) if a not in values]:
            delattr(cls, attr)  # e.g. a method added to torch.Tensor
        for attr, value in values.items():
            if vars(cls).get(attr, _MISSING) is not value:
                setattr(cls, attr, value)
    shell = _ipython()
    if shell is not None:
        shell.custom_exceptions = ()
    return _SNAPSHOT["helpers.check"][0]


_MISSING = object()


def _ipython():
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # pragma: no cover - an IPython without a shell
        return None


class ExplicitHessianError(AssertionError):
    """Raised when an exercise that forbids the explicit Hessian forms one."""


@contextlib.contextmanager
def no_explicit_hessian(
    what: str = "this exercise",
    jacobians: bool = False,
    namespace: dict[str, Any] | None = None,
    asks_for: str = "Hessian-vector products",
) -> Iterator[None]:
    """Inside the block, ``torch.func.hessian`` and
    ``torch.autograd.functional.hessian`` raise :class:`ExplicitHessianError`;
    with ``jacobians=True`` so do ``torch.func.jacrev``, ``torch.func.jacfwd``
    and ``torch.autograd.functional.jacobian``, through which a Hessian can be
    assembled too. ``namespace`` (a notebook's ``globals()``): names bound
    there to those functions (``from torch.func import jacrev``) are disabled
    too. ``asks_for`` names, in the error, what the exercise asks for instead
    (``"a Hessian assembled by hand"``, ``"Jacobian-vector products"``)."""
    import torch
    import torch.autograd.functional as taf
    import torch.func

    banned = "the explicit Hessian" + (" or a Jacobian" if jacobians else "")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ExplicitHessianError(
            f"{what} asks for {asks_for}, not {banned} (a hidden "
            "test ran the answer with those functions disabled)."
        )

    names = [(torch.func, "hessian"), (taf, "hessian")]
    if jacobians:
        names += [(torch.func, "jacrev"), (torch.func, "jacfwd"), (taf, "jacobian")]
    saved = [(module, attr, getattr(module, attr)) for module, attr in names]
    banned_functions = [value for _, _, value in saved]
    bound = [
        (name, value)
        for name, value in (namespace or {}).items()
        if any(value is f for f in banned_functions)
    ]
    try:
        for name, _ in bound:
            namespace[name] = refuse
        for module, attr, _ in saved:
            setattr(module, attr, refuse)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
        for name, value in bound:
            namespace[name] = value


class CallCounter:
    """Wrap ``fn``; ``.calls`` counts its calls ("a single HVP", "one batched call").

    With ``batch_arg=i``, ``.vectors`` also counts the vectors passed as the
    i-th positional argument: the length of its first dimension when it has two
    or more dimensions (a batch of vectors), else 1.
    """

    def __init__(self, fn: Callable[..., Any], batch_arg: int | None = None):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.batch_arg = batch_arg
        self.calls = 0
        self.vectors = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.batch_arg is not None and len(args) > self.batch_arg:
            arg = args[self.batch_arg]
            ndim = getattr(arg, "ndim", 1)
            self.vectors += int(arg.shape[0]) if ndim >= 2 else 1
        return self.fn(*args, **kwargs)


# --- finding code that reaches around the checks ------------------------------------

_SUSPICIOUS_NAMES = {
    "get_ipython": "touches the IPython shell (it can rewrite or silence later cells)",
    "set_custom_exc": "installs an exception handler that can swallow a failing check",
    "input_transformers_post": "rewrites the source of later cells",
    "input_transformers_cleanup": "rewrites the source of later cells",
    "builtins": "rebinds Python's builtins",
    "__builtins__": "rebinds Python's builtins",
    "grading": "touches helpers.grading, which restores the checks",
    "modules": "touches sys.modules",
    "setattr": "sets attributes by name",
    "excepthook": "replaces the exception hook",
}
_GUARDED_ROOTS = {"check", "helpers", "np", "numpy", "torch", "testing"}


def suspicious(source: str) -> list[str]:
    """Why an answer cell's code might reach around the checks ([] if nothing found).

    Flags assignments to an attribute of ``check``, ``helpers``, ``numpy``/``np``,
    ``torch`` (e.g. ``check.assert_close = ...``, ``torch.testing.x = ...``),
    rebinding the name ``check``, and the names in ``_SUSPICIOUS_NAMES``.  A
    flag is a reason to read the answer, not a verdict.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []
    roots = set(_GUARDED_ROOTS)
    for node in ast.walk(tree):  # aliases: import numpy as _np, import helpers.check
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in {"numpy", "torch", "helpers"}:
                    roots.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
            "numpy",
            "torch",
            "helpers",
        }:
            roots.update(a.asname or a.name for a in node.names)

    def root(node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = (
                list(node.targets) if isinstance(node, ast.Assign) else [node.target]
            )
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                targets.extend(target.elts)
            elif isinstance(target, ast.Starred):
                targets.append(target.value)
            elif isinstance(target, (ast.Attribute, ast.Subscript)):
                if root(target) in roots:
                    found.append(f"line {node.lineno}: rebinds {ast.unparse(target)}")
            elif isinstance(target, ast.Name) and target.id == "check":
                found.append(f"line {node.lineno}: rebinds the name check")
        if isinstance(node, ast.Name) and node.id in _SUSPICIOUS_NAMES:
            found.append(f"line {node.lineno}: {node.id} {_SUSPICIOUS_NAMES[node.id]}")
        if isinstance(node, ast.Attribute) and node.attr in _SUSPICIOUS_NAMES:
            found.append(
                f"line {node.lineno}: {node.attr} {_SUSPICIOUS_NAMES[node.attr]}"
            )
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
            if any(n in {"builtins", "helpers.grading", "IPython"} for n in names):
                found.append(
                    f"line {node.lineno}: imports {', '.join(filter(None, names))}"
                )
    return sorted(set(found), key=lambda s: (int(s.split()[1].rstrip(":")), s))


def scan(paths: list[str]) -> int:
    """Print what :func:`suspicious` finds in the answer cells; return the count."""
    import nbformat

    flagged = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("solution"):
                continue
            for reason in suspicious(cell.source):
                flagged += 1
                print(f"{path}: {meta.get('grade_id')}: {reason}")
    return flagged


_take_snapshot()
