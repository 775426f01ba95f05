r"""Closed forms derived with SymPy, evaluated as float64 torch tensors.

The course checks every derivative that autograd computes against a closed
form.  This module derives those closed forms symbolically and turns them into
functions of tensors.

Functions of named symbols
--------------------------
For an expression :math:`f(s_1, \dots, s_n)` in SymPy symbols,

* :func:`gradient` gives :math:`\nabla f`, an :math:`n`-vector,
* :func:`hessian` gives :math:`\nabla^2 f`, an :math:`n \times n` matrix with
  entries :math:`\partial^2 f / \partial s_i \partial s_j`,
* :func:`jacobian` gives, for :math:`m` expressions :math:`f_1, \dots, f_m`,
  the :math:`m \times n` matrix with entries :math:`\partial f_i / \partial s_j`.

Each returns a :class:`ClosedForm`: ``.matrix`` is the SymPy result (it shows as
LaTeX in a notebook) and calling it with one value per symbol evaluates it.
The values are numbers or tensors that broadcast together; the result has shape
``broadcast_shape + (n,)`` (gradient), ``+ (n, n)`` (Hessian) or ``+ (m, n)``
(Jacobian).  So the per-element 2×2 Hessian of :math:`f(x, y)` evaluated on two
tensors of shape ``(3,)`` has shape ``(3, 2, 2)``.

Functions of a model's parameters
---------------------------------
:func:`param_gradient` and :func:`param_hessian` take a loss written as a plain
Python function of SymPy matrices, one per parameter and one per data entry, and
return exactly the structure that ``torch.func.grad`` and ``torch.func.hessian``
return for the same parameter dict::

    param_gradient(loss, params, **data)[a].shape == params[a].shape
    param_hessian(loss, params, **data)[a][b].shape
        == params[a].shape + params[b].shape

A tensor of shape ``()`` becomes a symbol, one of shape ``(k,)`` a ``k×1``
matrix and one of shape ``(r, c)`` an ``r×c`` matrix.  Parameters are flattened
in the order of the dict and each one row-major (as ``Tensor.flatten``), which
is the order of :attr:`ParamClosedForm.gradient_matrix` and
:attr:`ParamClosedForm.hessian_matrix`.  Derivations are cached: the first call
for a given loss and given shapes derives, later calls only evaluate.

A loss written over the whole data set is expanded symbolically over every
sample, so its derivation slows down as the data grow.

Per-sample losses over a batch (``reduce=``)
--------------------------------------------
With ``reduce="mean"`` or ``reduce="sum"`` (on :func:`param_derive`,
:func:`param_gradient` and :func:`param_hessian`) the loss is written for **one**
sample, :math:`\ell(\theta; d)`, and the closed forms are those of

.. math::

    L(\theta) = \frac{1}{N} \sum_{n=1}^{N} \ell(\theta; d_n)
    \quad \text{(mean)}, \qquad
    L(\theta) = \sum_{n=1}^{N} \ell(\theta; d_n) \quad \text{(sum)},

with :math:`\nabla L` and :math:`\nabla^2 L` the mean or sum of the
per-sample :math:`\nabla \ell` and :math:`\nabla^2 \ell`.  Every data entry is
a batch along its first axis, all with the same :math:`N \ge 1`, and the loss
receives one sample of it::

    data entry shape     the loss receives
    (N,)                 a symbol               y
    (N, k)               a k×1 matrix           x_{0}, ..., x_{k-1}
    (N, k, m)            a k×m matrix           A_{0,0}, ..., A_{k-1,m-1}

Parameters reach the loss as before (their shapes have no batch axis).  SymPy
differentiates :math:`\ell` once: the gradient, then the upper triangle of the
Hessian (:math:`n(n+1)/2` entries for :math:`n` parameters), one
``sympy.cse`` over all entries, one ``lambdify`` to NumPy.  None of this
depends on :math:`N`; one derivation serves every batch size and both
reductions.  The batch is then evaluated in float64, vectorised over the
samples (each data symbol an ``(N,)`` array), chunked so that about 64 MiB of
intermediates are alive at once, and summed (divided by :math:`N` for the
mean).  The result has the same structure as without ``reduce``; the derived
object is a :class:`PerSampleClosedForm`, which also gives the per-sample
losses and gradients.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch

__all__ = [
    "ClosedForm",
    "ParamClosedForm",
    "PerSampleClosedForm",
    "gradient",
    "hessian",
    "jacobian",
    "param_derive",
    "param_gradient",
    "param_hessian",
    "REDUCTIONS",
    "value",
]

Value = float | int | torch.Tensor | np.ndarray


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------


def _as_expression(obj: Any, what: str) -> sympy.Expr:
    """Return ``obj`` as a SymPy scalar, refusing strings and other objects.

    Python numbers are accepted (SymPy wraps them exactly); strings are refused
    so that nothing the caller typed is ever parsed by ``sympify``.
    """
    if isinstance(obj, bool) or isinstance(obj, str):
        raise TypeError(
            f"{what} must be a SymPy expression; got {type(obj).__name__} {obj!r}. "
            "Build expressions from sympy.symbols(...) instead of strings."
        )
    if isinstance(obj, sympy.MatrixBase):
        if obj.shape == (1, 1):
            return obj[0, 0]
        raise ValueError(
            f"{what} must be a scalar expression; got a {obj.shape[0]}×{obj.shape[1]} "
            "SymPy matrix."
        )
    if isinstance(obj, (int, float)):
        return sympy.Integer(obj) if isinstance(obj, int) else sympy.Float(obj)
    if isinstance(obj, sympy.Expr):
        return obj
    raise TypeError(f"{what} must be a SymPy expression; got {type(obj).__name__}.")


def _as_symbols(symbols: Any) -> tuple[sympy.Symbol, ...]:
    if isinstance(symbols, sympy.Symbol):
        symbols = (symbols,)
    if isinstance(symbols, str) or not isinstance(symbols, Sequence):
        raise TypeError(
            "symbols must be a sequence of sympy.Symbol, e.g. sympy.symbols('x y'); "
            f"got {type(symbols).__name__}."
        )
    out = tuple(symbols)
    if not out:
        raise ValueError("symbols is empty: give at least one sympy.Symbol.")
    for s in out:
        if not isinstance(s, sympy.Symbol):
            raise TypeError(
                f"symbols must all be sympy.Symbol; got {type(s).__name__} {s!r}."
            )
    if len(set(out)) != len(out):
        raise ValueError(f"symbols has repeats: {out}.")
    return out


def _check_free_symbols(
    exprs: Sequence[sympy.Expr], symbols: tuple[sympy.Symbol, ...]
) -> None:
    free = set().union(*(e.free_symbols for e in exprs))
    unknown = free - set(symbols)
    if unknown:
        names = ", ".join(sorted(str(s) for s in unknown))
        raise ValueError(
            f"the expression depends on {names}, which is not among symbols "
            f"{tuple(str(s) for s in symbols)}: every symbol needs a value."
        )


def _to_array(value: Any, what: str) -> np.ndarray:
    """A float64 NumPy array of ``value``, refusing NaN and non-numeric input."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(
                f"{what} is a complex tensor; the course works in real numbers."
            )
        arr = value.detach().to("cpu", torch.float64).numpy(force=True)
    elif isinstance(value, bool):
        raise TypeError(f"{what} is a bool; expected a number or a tensor.")
    elif isinstance(value, (int, float, np.ndarray, np.number)):
        arr = np.asarray(value, dtype=np.float64)
    else:
        raise TypeError(
            f"{what} must be a number or a tensor; got {type(value).__name__}."
        )
    if np.isnan(arr).any():
        raise ValueError(f"{what} contains NaN.")
    return arr


def _broadcast_shape(
    arrays: Sequence[np.ndarray], names: Sequence[str]
) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
    except ValueError:
        shapes = ", ".join(
            f"{n}: {tuple(a.shape)}" for n, a in zip(names, arrays, strict=True)
        )
        raise ValueError(f"the values do not broadcast together ({shapes}).") from None


# --------------------------------------------------------------------------
# closed forms of functions of named symbols
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedForm:
    """A SymPy matrix of expressions and a float64 evaluator for it.

    ``matrix`` has shape ``(rows, cols)`` in SymPy; calling the object with one
    value per symbol returns a float64 tensor of shape
    ``broadcast_shape + out_shape``, where ``out_shape`` is ``(n,)`` for a
    gradient and ``matrix.shape`` otherwise.
    """

    matrix: sympy.Matrix
    symbols: tuple[sympy.Symbol, ...]
    out_shape: tuple[int, ...]
    kind: str
    _entries: tuple[Callable[..., Any], ...] = field(repr=False, compare=False)

    def __call__(self, *values: Value) -> torch.Tensor:
        if len(values) != len(self.symbols):
            raise TypeError(
                f"this {self.kind} takes one value per symbol "
                f"{tuple(str(s) for s in self.symbols)}: expected {len(self.symbols)} "
                f"values, got {len(values)}."
            )
        names = [str(s) for s in self.symbols]
        arrays = [
            _to_array(v, f"the value for {n}")
            for v, n in zip(values, names, strict=True)
        ]
        batch = _broadcast_shape(arrays, names)
        with np.errstate(all="ignore"):
            entries = [
                np.broadcast_to(np.asarray(f(*arrays), dtype=np.float64), batch)
                for f in self._entries
            ]
        out = np.stack(entries, axis=-1).reshape(
            batch + self.out_shape
        )  # out_shape () for a value
        return torch.from_numpy(
            np.array(out, dtype=np.float64, order="C")
        )  # keeps 0-d as 0-d

    def _repr_latex_(self) -> str:
        return "$\\displaystyle " + sympy.latex(self.matrix) + "$"

    def __repr__(self) -> str:
        return f"ClosedForm({self.kind}, symbols={self.symbols}, matrix={self.matrix})"


def _lambdify(
    symbols: Sequence[sympy.Symbol], expr: Any, cse: bool = False
) -> Callable[..., Any]:
    """``sympy.lambdify`` on identifier-safe stand-ins for ``symbols``.

    Names such as ``x_{0}`` or ``0.weight_{1,2}`` read well as LaTeX but are not
    Python identifiers; lambdify would rename them one substitution at a time,
    which is slow for large data.  One ``xreplace`` does it at once.
    """
    safe = [sympy.Symbol(f"_a{i}") for i in range(len(symbols))]
    renamed = sympy.sympify(expr).xreplace(dict(zip(symbols, safe, strict=True)))
    return sympy.lambdify(safe, renamed, modules="numpy", cse=cse, dummify=False)


def _closed_form(
    matrix: sympy.Matrix,
    symbols: tuple[sympy.Symbol, ...],
    out_shape: tuple[int, ...],
    kind: str,
) -> ClosedForm:
    entries = tuple(_lambdify(symbols, e) for e in matrix)
    return ClosedForm(
        matrix=matrix, symbols=symbols, out_shape=out_shape, kind=kind, _entries=entries
    )


def _wrt(wrt: Any, syms: tuple[sympy.Symbol, ...]) -> tuple[sympy.Symbol, ...]:
    """The symbols to differentiate by: all of ``syms``, or the subset ``wrt``.

    The subset keeps the order of ``wrt``.
    """
    if wrt is None:
        return syms
    chosen = _as_symbols(wrt)
    outside = [str(s) for s in chosen if s not in syms]
    if outside:
        raise ValueError(
            f"wrt has {outside}, which are not among symbols {tuple(map(str, syms))}."
        )
    return chosen


def value(expr: Any, symbols: Any) -> ClosedForm:
    r"""A scalar expression itself, :math:`f(s_1, \dots, s_n)`, as a function.

    The evaluated result has shape ``broadcast_shape``: a determinant, a loss,
    a log-likelihood, evaluated element by element on tensors that broadcast.
    """
    f = _as_expression(expr, "value's expr")
    syms = _as_symbols(symbols)
    _check_free_symbols([f], syms)
    return _closed_form(sympy.Matrix([[f]]), syms, (), "value")


def gradient(expr: Any, symbols: Any, *, wrt: Any = None) -> ClosedForm:
    r"""The gradient :math:`(\partial f/\partial s_1, \dots, \partial f/\partial s_n)`.

    ``expr`` is a scalar SymPy expression (a 1×1 matrix is accepted) and
    ``symbols`` the symbols it depends on, one value each when evaluated.  It is
    differentiated by ``wrt`` (default: all of ``symbols``), :math:`n` symbols;
    the others are held fixed.  The evaluated result has shape
    ``broadcast_shape + (n,)``; ``.matrix`` is the :math:`n \times 1` column.
    """
    f = _as_expression(expr, "gradient's expr")
    syms = _as_symbols(symbols)
    _check_free_symbols([f], syms)
    by = _wrt(wrt, syms)
    column = sympy.Matrix([sympy.diff(f, s) for s in by])
    return _closed_form(column, syms, (len(by),), "gradient")


def hessian(expr: Any, symbols: Any, *, wrt: Any = None) -> ClosedForm:
    r"""The Hessian :math:`H_{ij} = \partial^2 f / \partial s_i \partial s_j`.

    ``expr`` is a scalar SymPy expression in ``symbols``, differentiated by
    ``wrt`` (default: all of ``symbols``), :math:`n` symbols; the evaluated
    result has shape ``broadcast_shape + (n, n)``.
    """
    f = _as_expression(expr, "hessian's expr")
    syms = _as_symbols(symbols)
    _check_free_symbols([f], syms)
    by = _wrt(wrt, syms)
    matrix = sympy.hessian(f, by)
    return _closed_form(matrix, syms, (len(by), len(by)), "hessian")


def jacobian(exprs: Any, symbols: Any, *, wrt: Any = None) -> ClosedForm:
    r"""The Jacobian :math:`J_{ij} = \partial f_i / \partial s_j` of m functions.

    ``exprs`` is a sequence of :math:`m` scalar SymPy expressions or a SymPy
    row or column vector in ``symbols``, differentiated by ``wrt`` (default:
    all of ``symbols``), :math:`n` symbols; the evaluated result has shape
    ``broadcast_shape + (m, n)``.
    """
    if isinstance(exprs, sympy.MatrixBase):
        if 1 not in exprs.shape:
            raise ValueError(
                f"jacobian's exprs must be a vector of expressions; got a "
                f"{exprs.shape[0]}×{exprs.shape[1]} matrix (flatten it first)."
            )
        items = list(exprs)
    elif isinstance(exprs, Sequence) and not isinstance(exprs, str):
        items = list(exprs)
    else:
        raise TypeError(
            "jacobian's exprs must be a list or tuple of SymPy expressions or a SymPy "
            f"vector; got {type(exprs).__name__}."
        )
    if not items:
        raise ValueError("jacobian's exprs is empty.")
    fs = [_as_expression(e, f"jacobian's exprs[{i}]") for i, e in enumerate(items)]
    syms = _as_symbols(symbols)
    _check_free_symbols(fs, syms)
    by = _wrt(wrt, syms)
    matrix = sympy.Matrix(fs).jacobian(by)
    return _closed_form(matrix, syms, (len(fs), len(by)), "jacobian")


# --------------------------------------------------------------------------
# closed forms with respect to a model's parameters
# --------------------------------------------------------------------------


def _symbol_matrix(name: str, shape: tuple[int, ...]) -> sympy.Basic:
    """SymPy stand-in for a tensor of ``shape`` named ``name``."""
    if len(shape) == 0:
        return sympy.Symbol(name, real=True)
    if len(shape) == 1:
        return sympy.Matrix(
            shape[0], 1, lambda i, _: sympy.Symbol(f"{name}_{{{i}}}", real=True)
        )
    if len(shape) == 2:
        return sympy.Matrix(
            shape[0],
            shape[1],
            lambda i, j: sympy.Symbol(f"{name}_{{{i},{j}}}", real=True),
        )
    raise ValueError(
        f"{name!r} has shape {shape}; closed forms take tensors of at most 2 "
        "dimensions (a scalar, a vector or a matrix)."
    )


def _flat_symbols(stand_in: sympy.Basic) -> list[sympy.Symbol]:
    if isinstance(stand_in, sympy.Symbol):
        return [stand_in]
    return list(stand_in)  # SymPy matrices iterate row-major


def _shape_of(name: str, value: Any, kind: str) -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ()
    raise TypeError(f"{kind} {name!r} must be a tensor; got {type(value).__name__}.")


@dataclass(frozen=True)
class ParamClosedForm:
    r"""Loss, gradient and Hessian of a loss in closed form, for given shapes.

    ``stand_ins`` maps every parameter and data name to the SymPy symbol or
    matrix the loss was called with.  ``gradient_matrix`` (:math:`n \times 1`)
    and ``hessian_matrix`` (:math:`n \times n`) are flattened in parameter
    order, each parameter row-major; ``flat_names`` names their rows.  The
    Hessian is derived the first time it is asked for.
    """

    loss_expr: sympy.Expr
    stand_ins: dict[str, sympy.Basic]
    param_shapes: dict[str, tuple[int, ...]]
    data_shapes: dict[str, tuple[int, ...]]
    gradient_matrix: sympy.Matrix
    flat_names: tuple[str, ...]
    _param_symbols: tuple[sympy.Symbol, ...] = field(repr=False, compare=False)
    _arg_symbols: tuple[sympy.Symbol, ...] = field(repr=False, compare=False)
    _gradient_fn: Callable[..., Any] = field(repr=False, compare=False)

    @functools.cached_property
    def hessian_matrix(self) -> sympy.Matrix:
        """The :math:`n \\times n` Hessian, derived on first use.

        It is symmetric, so only the upper triangle is differentiated.
        """
        syms = self._param_symbols
        n = len(syms)
        hess = sympy.zeros(n, n)
        for i in range(n):
            for j in range(i, n):
                hess[i, j] = hess[j, i] = sympy.diff(self.gradient_matrix[i], syms[j])
        return hess

    @functools.cached_property
    def _hessian_fn(self) -> Callable[..., Any]:
        return _lambdify(self._arg_symbols, self.hessian_matrix, cse=True)

    def _arguments(
        self, params: Mapping[str, Any], data: Mapping[str, Any]
    ) -> list[float]:
        _check_names(params, data, self.param_shapes, self.data_shapes)
        args: list[float] = []
        for kind, values, shapes in (
            ("parameter", params, self.param_shapes),
            ("data entry", data, self.data_shapes),
        ):
            for name, shape in shapes.items():
                got = _shape_of(name, values[name], kind)
                if got != shape:
                    raise ValueError(
                        f"{kind} {name!r} has shape {got}, but this closed form was "
                        f"derived for shape {shape}."
                    )
                args.extend(
                    _to_array(values[name], f"{kind} {name!r}").reshape(-1).tolist()
                )
        return args

    @functools.cached_property
    def _loss_fn(self) -> Callable[..., Any]:
        return _lambdify(self._arg_symbols, self.loss_expr)

    def loss(self, params: Mapping[str, Any], **data: Any) -> torch.Tensor:
        """The loss itself at ``params`` and ``data``, a float64 ``()`` tensor."""
        return torch.tensor(
            float(self._loss_fn(*self._arguments(params, data))), dtype=torch.float64
        )

    def gradient(
        self, params: Mapping[str, Any], **data: Any
    ) -> dict[str, torch.Tensor]:
        """``{name: dL/dname}``, each of shape ``params[name].shape``, float64."""
        flat = np.asarray(
            self._gradient_fn(*self._arguments(params, data)), dtype=np.float64
        ).reshape(-1)
        return _split_gradient(flat, self.param_shapes)

    def hessian(
        self, params: Mapping[str, Any], **data: Any
    ) -> dict[str, dict[str, torch.Tensor]]:
        """``{a: {b: d²L/da db}}``, block ``[a][b]`` of shape ``shape_a + shape_b``."""
        n = len(self.flat_names)
        flat = np.asarray(
            self._hessian_fn(*self._arguments(params, data)), dtype=np.float64
        ).reshape(n, n)
        return _split_hessian(flat, self.param_shapes)

    def flat_hessian(self, params: Mapping[str, Any], **data: Any) -> torch.Tensor:
        """The Hessian as one ``(n, n)`` float64 matrix in ``flat_names`` order."""
        n = len(self.flat_names)
        flat = self._hessian_fn(*self._arguments(params, data))
        return torch.from_numpy(np.asarray(flat, dtype=np.float64).reshape(n, n).copy())


def _split_gradient(
    flat: np.ndarray, param_shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """Cut a flat ``(n,)`` gradient into ``{name: tensor of params[name].shape}``."""
    out: dict[str, torch.Tensor] = {}
    start = 0
    for name, shape in param_shapes.items():
        size = math.prod(shape)
        out[name] = torch.from_numpy(flat[start : start + size].reshape(shape).copy())
        start += size
    return out


def _split_hessian(
    flat: np.ndarray, param_shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, dict[str, torch.Tensor]]:
    """Cut a flat ``(n, n)`` Hessian into blocks ``[a][b]``, ``shape_a + shape_b``."""
    offsets: dict[str, tuple[int, int]] = {}
    start = 0
    for name, shape in param_shapes.items():
        offsets[name] = (start, start + math.prod(shape))
        start += math.prod(shape)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for a, sa in param_shapes.items():
        out[a] = {}
        for b, sb in param_shapes.items():
            (a0, a1), (b0, b1) = offsets[a], offsets[b]
            out[a][b] = torch.from_numpy(flat[a0:a1, b0:b1].reshape(sa + sb).copy())
    return out


def _check_names(
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    param_shapes: Mapping[str, Any],
    data_shapes: Mapping[str, Any],
) -> None:
    for kind, given, wanted in (
        ("params", params, param_shapes),
        ("data", data, data_shapes),
    ):
        missing = [k for k in wanted if k not in given]
        extra = [k for k in given if k not in wanted]
        if missing or extra:
            raise KeyError(
                f"{kind} has names {sorted(given)}, but this closed form was "
                "derived for "
                f"{sorted(wanted)} (missing: {missing}, extra: {extra})."
            )


def _validate_call(
    loss: Callable[..., Any], params: Mapping[str, Any], data: Mapping[str, Any]
) -> None:
    if not callable(loss):
        raise TypeError(f"loss must be a function; got {type(loss).__name__}.")
    if not isinstance(params, Mapping) or not params:
        raise TypeError(
            "params must be a non-empty dict of name -> tensor, as "
            f"dict(model.named_parameters()); got {type(params).__name__}."
        )
    both = sorted(set(params) & set(data))
    if both:
        raise ValueError(
            f"{both} is both a parameter and a data entry: give each name once."
        )
    try:
        signature = inspect.signature(loss)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        signature.bind(**{**params, **data})
    except TypeError as err:
        raise TypeError(
            f"loss{signature} cannot be called with params {sorted(params)} and data "
            f"{sorted(data)}: {err}."
        ) from None


def _loss_expression(
    loss: Callable[..., Any], stand_ins: Mapping[str, sympy.Basic]
) -> sympy.Expr:
    """Call ``loss`` on the SymPy stand-ins and return its value as a SymPy scalar."""
    result = loss(**stand_ins)
    if isinstance(result, sympy.MatrixBase) and result.shape != (1, 1):
        raise ValueError(
            "loss must return a scalar; it returned a "
            f"{result.shape[0]}×{result.shape[1]} "
            "SymPy matrix (sum or reduce it)."
        )
    if not isinstance(result, (sympy.Expr, sympy.MatrixBase, int, float)) or isinstance(
        result, bool
    ):
        raise TypeError(
            "loss must return a SymPy scalar expression; it returned "
            f"{type(result).__name__}."
        )
    return _as_expression(result, "the loss's value")


def _symbolic_loss(
    loss: Callable[..., Any],
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...],
    data_shapes: tuple[tuple[str, tuple[int, ...]], ...],
) -> tuple[dict[str, Any], sympy.Expr, list[sympy.Symbol], list[sympy.Symbol]]:
    """Call ``loss`` on symbolic stand-ins of the given shapes.

    Returns the stand-ins by name, the loss expression, and the flat (row-major,
    in dict order) parameter symbols and data symbols.
    """
    stand_ins = {
        name: _symbol_matrix(name, shape) for name, shape in param_shapes + data_shapes
    }
    expr = _loss_expression(loss, stand_ins)
    param_syms = [s for name, _ in param_shapes for s in _flat_symbols(stand_ins[name])]
    data_syms = [s for name, _ in data_shapes for s in _flat_symbols(stand_ins[name])]
    return stand_ins, expr, param_syms, data_syms


@functools.lru_cache(maxsize=64)
def _derive(
    loss: Callable[..., Any],
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...],
    data_shapes: tuple[tuple[str, tuple[int, ...]], ...],
) -> ParamClosedForm:
    stand_ins, expr, param_syms, data_syms = _symbolic_loss(
        loss, param_shapes, data_shapes
    )
    grad = sympy.Matrix([sympy.diff(expr, s) for s in param_syms])
    args = param_syms + data_syms
    return ParamClosedForm(
        loss_expr=expr,
        stand_ins=stand_ins,
        param_shapes=dict(param_shapes),
        data_shapes=dict(data_shapes),
        gradient_matrix=grad,
        flat_names=tuple(str(s) for s in param_syms),
        _param_symbols=tuple(param_syms),
        _arg_symbols=tuple(args),
        _gradient_fn=_lambdify(args, grad, cse=True),
    )


# --------------------------------------------------------------------------
# per-sample losses reduced over a batch (``reduce="mean"`` or ``"sum"``)
# --------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum")

# At most this many float64 values (per-sample intermediates and results, each
# one per sample of a chunk) are alive at once while a batch is evaluated:
# 2**23 values is 64 MiB.  The batch is cut into chunks to stay below it.
_CHUNK_VALUES = 2**23


def _check_reduce(reduce: Any) -> str:
    if not isinstance(reduce, str) or reduce not in REDUCTIONS:
        raise ValueError(
            "reduce must be 'mean' or 'sum' (or None for a loss written over the "
            f"whole data set); got {reduce!r}."
        )
    return reduce


def _batch_shapes(
    data: Mapping[str, Any], reduce: str
) -> tuple[int, tuple[tuple[str, tuple[int, ...]], ...]]:
    """``(N, ((name, per-sample shape), ...))`` of batched data entries.

    Every entry must be a tensor (or NumPy array) whose first axis runs over the
    same ``N >= 1`` samples and whose per-sample shape has at most 2 axes.
    """
    if not data:
        raise ValueError(
            f"reduce={reduce!r} takes the {reduce} over the samples of the data "
            "entries, but no data entry was given: expected at least one tensor "
            "with a leading batch axis (call without reduce for a loss of the "
            "parameters alone)."
        )
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for name, v in data.items():
        if not isinstance(v, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"data entry {name!r} is a {type(v).__name__}; with reduce={reduce!r} "
                "every data entry must be a tensor of shape (N, ...), one row per "
                "sample."
            )
        shape = tuple(v.shape)
        if len(shape) == 0:
            raise ValueError(
                f"data entry {name!r} has shape () (a 0-d tensor), but with "
                f"reduce={reduce!r} every data entry needs a leading batch axis: "
                "expected shape (N,), (N, k) or (N, k, m), one row per sample. A "
                "value shared by all samples can be written into the loss or "
                "repeated N times (t.expand(N))."
            )
        if len(shape) > 3:
            raise ValueError(
                f"data entry {name!r} has shape {shape}, so each sample has shape "
                f"{shape[1:]}; a sample reaches the loss as a symbol, a vector or "
                "a matrix, so expected at most 3 axes: (N,), (N, k) or (N, k, m)."
            )
        shapes.append((name, shape))
    sizes = {shape[0] for _, shape in shapes}
    if len(sizes) > 1:
        listed = ", ".join(f"{n}: shape {s} (N = {s[0]})" for n, s in shapes)
        raise ValueError(
            f"with reduce={reduce!r}, each data entry is a batch along its first "
            "axis, so all must hold the same number of samples N; expected equal "
            f"leading axes, got {listed}."
        )
    n_samples = sizes.pop()
    if n_samples == 0:
        raise ValueError(
            f"the batch is empty: data entry {shapes[0][0]!r} has shape "
            f"{shapes[0][1]}; reduce={reduce!r} needs at least one sample "
            "(expected N >= 1, got N = 0)."
        )
    return n_samples, tuple((name, shape[1:]) for name, shape in shapes)


@dataclass(frozen=True)
class _BatchFunction:
    """Scalar expressions of per-sample symbols, evaluated over a batch.

    Built once with one ``sympy.cse`` over all ``count`` expressions and one
    ``lambdify`` to NumPy.  Called with one float per parameter symbol and one
    ``(N,)`` array per data symbol, it returns a ``(count, N)`` array (``reduce``
    None) or the ``(count,)`` mean or sum over the samples, evaluating
    ``chunk`` samples at a time.
    """

    count: int
    chunk: int
    _fn: Callable[..., Any] = field(repr=False)

    @classmethod
    def build(
        cls, symbols: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]
    ) -> _BatchFunction:
        # cse first, then rename the (much smaller) result to identifiers
        common, shared = sympy.cse(
            [sympy.sympify(e) for e in exprs], symbols=sympy.numbered_symbols("_c")
        )
        safe = [sympy.Symbol(f"_a{i}") for i in range(len(symbols))]
        rename = dict(zip(symbols, safe, strict=True))
        replacements = [(c, e.xreplace(rename)) for c, e in common]
        reduced = [e.xreplace(rename) for e in shared]
        fn = sympy.lambdify(
            safe,
            list(reduced),
            modules="numpy",
            dummify=False,
            cse=lambda _: (replacements, reduced),
        )
        alive = len(replacements) + len(reduced) + len(symbols)
        return cls(count=len(reduced), chunk=max(256, _CHUNK_VALUES // alive), _fn=fn)

    def __call__(
        self,
        scalars: Sequence[float],
        columns: Sequence[np.ndarray],
        n_samples: int,
        reduce: str | None,
    ) -> np.ndarray:
        total = np.zeros(self.count)
        rows = None if reduce else np.empty((self.count, n_samples))
        for start in range(0, n_samples, self.chunk):
            stop = min(start + self.chunk, n_samples)
            part = np.empty((self.count, stop - start))
            values = self._fn(*scalars, *(c[start:stop] for c in columns))
            for k, v in enumerate(values):
                part[k] = v  # broadcasts entries that do not depend on the data
            if rows is None:
                total += part.sum(axis=1)
            else:
                rows[:, start:stop] = part
        if rows is not None:
            return rows
        return total / n_samples if reduce == "mean" else total


@dataclass(frozen=True)
class _SampleDerivation:
    """The symbolic derivation for one sample, shared by every N and reduction."""

    loss_expr: sympy.Expr
    stand_ins: dict[str, sympy.Basic]
    param_shapes: dict[str, tuple[int, ...]]
    data_shapes: dict[str, tuple[int, ...]]
    gradient_matrix: sympy.Matrix
    flat_names: tuple[str, ...]
    param_symbols: tuple[sympy.Symbol, ...]
    arg_symbols: tuple[sympy.Symbol, ...]

    @functools.cached_property
    def hessian_upper(self) -> tuple[sympy.Expr, ...]:
        """Entries ``(i, j)`` with ``i <= j`` of the per-sample Hessian, row by row."""
        syms = self.param_symbols
        upper = []
        for i, g in enumerate(self.gradient_matrix):
            free = g.free_symbols
            upper.extend(
                sympy.diff(g, s) if s in free else sympy.S.Zero for s in syms[i:]
            )
        return tuple(upper)

    @functools.cached_property
    def hessian_matrix(self) -> sympy.Matrix:
        n = len(self.param_symbols)
        hess = sympy.zeros(n, n)
        entries = iter(self.hessian_upper)
        for i in range(n):
            for j in range(i, n):
                hess[i, j] = hess[j, i] = next(entries)
        return hess

    @functools.cached_property
    def loss_fn(self) -> _BatchFunction:
        return _BatchFunction.build(self.arg_symbols, [self.loss_expr])

    @functools.cached_property
    def gradient_fn(self) -> _BatchFunction:
        return _BatchFunction.build(self.arg_symbols, list(self.gradient_matrix))

    @functools.cached_property
    def hessian_fn(self) -> _BatchFunction:
        return _BatchFunction.build(self.arg_symbols, self.hessian_upper)


@functools.lru_cache(maxsize=64)
def _derive_per_sample(
    loss: Callable[..., Any],
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...],
    sample_shapes: tuple[tuple[str, tuple[int, ...]], ...],
) -> _SampleDerivation:
    stand_ins, expr, param_syms, data_syms = _symbolic_loss(
        loss, param_shapes, sample_shapes
    )
    return _SampleDerivation(
        loss_expr=expr,
        stand_ins=stand_ins,
        param_shapes=dict(param_shapes),
        data_shapes=dict(sample_shapes),
        gradient_matrix=sympy.Matrix([sympy.diff(expr, s) for s in param_syms]),
        flat_names=tuple(str(s) for s in param_syms),
        param_symbols=tuple(param_syms),
        arg_symbols=tuple(param_syms + data_syms),
    )


@dataclass(frozen=True)
class PerSampleClosedForm:
    r"""A loss written for one sample, reduced over a batch, in closed form.

    With :math:`\ell(\theta; d)` the loss of one sample :math:`d` (what
    ``sample_loss`` returns) and a batch :math:`d_1, \dots, d_N`,

    .. math::

        L(\theta) = \frac{1}{N} \sum_{n=1}^{N} \ell(\theta; d_n), \quad
        \nabla L = \frac{1}{N} \sum_n \nabla \ell(\theta; d_n), \quad
        \nabla^2 L = \frac{1}{N} \sum_n \nabla^2 \ell(\theta; d_n)

    for ``reduce="mean"``, and the same without :math:`1/N` for ``"sum"``.
    SymPy differentiates :math:`\ell` once, by the parameters, with the sample's
    data as symbols (``stand_ins``; a data entry of shape ``(N,)`` is a symbol,
    ``(N, k)`` a ``k×1`` matrix, ``(N, k, m)`` a ``k×m`` matrix), so the
    derivation does not depend on :math:`N`; the same form evaluates batches of
    any size.  Evaluation is float64 NumPy, vectorised over the samples and
    chunked so that at most about 64 MiB of intermediates are alive.

    The structures match :class:`ParamClosedForm`: :meth:`gradient` gives
    ``{name: tensor of params[name].shape}``, :meth:`hessian` the blocks
    ``[a][b]`` of shape ``params[a].shape + params[b].shape``,
    :meth:`flat_hessian` an ``(n, n)`` matrix in ``flat_names`` order,
    :meth:`loss` a ``()`` tensor.  ``loss_expr``, ``gradient_matrix`` and
    ``hessian_matrix`` are those of **one** sample, :math:`\ell`,
    :math:`\nabla\ell` and :math:`\nabla^2\ell`; ``data_shapes`` are per-sample
    shapes.  :meth:`sample_losses` and :meth:`sample_gradients` give the
    unreduced per-sample values (a leading axis of :math:`N`).
    """

    reduce: str
    _derivation: _SampleDerivation = field(repr=False)

    @property
    def loss_expr(self) -> sympy.Expr:
        """:math:`\\ell(\\theta; d)`, the loss of one sample."""
        return self._derivation.loss_expr

    @property
    def stand_ins(self) -> dict[str, sympy.Basic]:
        return self._derivation.stand_ins

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._derivation.param_shapes

    @property
    def data_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes: the data entries' shapes without the batch axis."""
        return self._derivation.data_shapes

    @property
    def gradient_matrix(self) -> sympy.Matrix:
        """:math:`\\nabla \\ell`, ``n×1``, of one sample."""
        return self._derivation.gradient_matrix

    @property
    def hessian_matrix(self) -> sympy.Matrix:
        """:math:`\\nabla^2 \\ell`, ``n×n``, of one sample (derived on first use)."""
        return self._derivation.hessian_matrix

    @property
    def flat_names(self) -> tuple[str, ...]:
        return self._derivation.flat_names

    def _arguments(
        self, params: Mapping[str, Any], data: Mapping[str, Any]
    ) -> tuple[list[float], list[np.ndarray], int]:
        """Parameter values as floats, data as one ``(N,)`` column per symbol, and N."""
        _check_names(params, data, self.param_shapes, self.data_shapes)
        n_samples, sample_shapes = _batch_shapes(data, self.reduce)
        scalars: list[float] = []
        for name, shape in self.param_shapes.items():
            got = _shape_of(name, params[name], "parameter")
            if got != shape:
                raise ValueError(
                    f"parameter {name!r} has shape {got}, but this closed form was "
                    f"derived for shape {shape}."
                )
            arr = _to_array(params[name], f"parameter {name!r}")
            scalars.extend(np.float64(v) for v in arr.reshape(-1))
        columns: list[np.ndarray] = []
        for name, shape in sample_shapes:
            if shape != self.data_shapes[name]:
                raise ValueError(
                    f"data entry {name!r} has shape {tuple(data[name].shape)}, so "
                    f"samples of shape {shape}, but this closed form was derived "
                    f"for samples of shape {self.data_shapes[name]}."
                )
            arr = _to_array(data[name], f"data entry {name!r}")
            columns.extend(np.ascontiguousarray(arr.reshape(n_samples, -1).T))
        return scalars, columns, n_samples

    def _reduced(
        self,
        fn: _BatchFunction,
        params: Mapping[str, Any],
        data: Mapping[str, Any],
        reduce: str | None,
    ) -> np.ndarray:
        scalars, columns, n_samples = self._arguments(params, data)
        return fn(scalars, columns, n_samples, reduce)

    def loss(self, params: Mapping[str, Any], **data: Any) -> torch.Tensor:
        """:math:`L`, the mean or sum of the per-sample losses, a float64 ``()``."""
        out = self._reduced(self._derivation.loss_fn, params, data, self.reduce)
        return torch.tensor(float(out[0]), dtype=torch.float64)

    def gradient(
        self, params: Mapping[str, Any], **data: Any
    ) -> dict[str, torch.Tensor]:
        """:math:`\\nabla L` as ``{name: tensor of params[name].shape}``, float64."""
        flat = self._reduced(self._derivation.gradient_fn, params, data, self.reduce)
        return _split_gradient(flat, self.param_shapes)

    def flat_hessian(self, params: Mapping[str, Any], **data: Any) -> torch.Tensor:
        """:math:`\\nabla^2 L` as a float64 ``(n, n)`` matrix, ``flat_names`` order."""
        n = len(self.flat_names)
        upper = self._reduced(self._derivation.hessian_fn, params, data, self.reduce)
        flat = np.empty((n, n))
        rows, cols = np.triu_indices(n)  # row by row, the order of hessian_upper
        flat[rows, cols] = upper
        flat[cols, rows] = upper
        return torch.from_numpy(flat)

    def hessian(
        self, params: Mapping[str, Any], **data: Any
    ) -> dict[str, dict[str, torch.Tensor]]:
        """:math:`\\nabla^2 L` as blocks ``[a][b]`` of shape ``shape_a + shape_b``."""
        flat = self.flat_hessian(params, **data).numpy()
        return _split_hessian(flat, self.param_shapes)

    def sample_losses(self, params: Mapping[str, Any], **data: Any) -> torch.Tensor:
        r""":math:`\ell(\theta; d_n)` for every sample, a float64 ``(N,)`` tensor."""
        rows = self._reduced(self._derivation.loss_fn, params, data, None)
        return torch.from_numpy(rows[0].copy())

    def sample_gradients(
        self, params: Mapping[str, Any], **data: Any
    ) -> dict[str, torch.Tensor]:
        r""":math:`\nabla\ell(\theta; d_n)` per sample, ``{name: (N,) + shape}``.

        The structure ``torch.func.vmap(torch.func.grad(...))`` returns; no
        reduction is applied (``reduce`` does not matter here).
        """
        rows = self._reduced(self._derivation.gradient_fn, params, data, None)
        n_samples = rows.shape[1]
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, shape in self.param_shapes.items():
            size = math.prod(shape)
            block = rows[start : start + size].T.reshape((n_samples, *shape))
            out[name] = torch.from_numpy(np.ascontiguousarray(block))
            start += size
        return out


def param_derive(
    loss: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    reduce: str | None = None,
    **data: Any,
) -> ParamClosedForm | PerSampleClosedForm:
    """Derive (once per loss and shapes) the loss's gradient and Hessian in closed form.

    Without ``reduce``, ``loss`` is called by keyword with one SymPy stand-in per
    parameter and per data entry (see the module docstring for the shapes) and
    must return a scalar: the whole loss, written over every sample.  The
    result is a :class:`ParamClosedForm`.

    With ``reduce="mean"`` or ``"sum"``, ``loss`` is the loss of **one** sample:
    every data entry is a batch along its first axis (``N`` samples, the same
    ``N`` for all entries, ``N >= 1``) and ``loss`` receives one sample's
    stand-in (shape ``(N,)`` -> a symbol, ``(N, k)`` -> a ``k×1`` matrix,
    ``(N, k, m)`` -> a ``k×m`` matrix).  The result is a
    :class:`PerSampleClosedForm` for the mean or sum of the per-sample losses;
    its derivation does not depend on ``N``.  ``reduce`` is therefore not
    available as a data-entry name.

    Parameter names that are not Python identifiers (``"0.weight"``) reach a
    loss written as ``def loss(**p)``.
    """
    if reduce is not None:
        reduce = _check_reduce(reduce)
    _validate_call(loss, params, data)
    param_shapes = tuple((k, _shape_of(k, v, "parameter")) for k, v in params.items())
    if reduce is None:
        data_shapes = tuple((k, _shape_of(k, v, "data entry")) for k, v in data.items())
        return _derive(loss, param_shapes, data_shapes)
    _, sample_shapes = _batch_shapes(data, reduce)
    return PerSampleClosedForm(
        reduce, _derive_per_sample(loss, param_shapes, sample_shapes)
    )


def param_gradient(
    loss: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    reduce: str | None = None,
    **data: Any,
) -> dict[str, torch.Tensor]:
    r"""The gradient of ``loss`` with respect to ``params``, in closed form.

    Returns ``{name: tensor}`` with ``out[name].shape == params[name].shape``
    (float64), the structure ``torch.func.grad`` returns for a function of the
    same dict.  With ``reduce="mean"`` or ``"sum"``, ``loss`` is written for one
    sample and the result is the mean or sum over the batch (see
    :func:`param_derive`).
    """
    return param_derive(loss, params, reduce=reduce, **data).gradient(params, **data)


def param_hessian(
    loss: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    reduce: str | None = None,
    **data: Any,
) -> dict[str, dict[str, torch.Tensor]]:
    r"""The Hessian of ``loss`` with respect to ``params``, in closed form.

    Returns nested dicts with ``out[a][b]`` of shape
    ``params[a].shape + params[b].shape``, entries
    :math:`\partial^2 L / \partial a_{\dots} \partial b_{\dots}` (float64), the
    structure ``torch.func.hessian`` returns for a function of the same dict.
    With ``reduce="mean"`` or ``"sum"``, ``loss`` is written for one sample and
    the result is the mean or sum over the batch (see :func:`param_derive`).
    """
    return param_derive(loss, params, reduce=reduce, **data).hessian(params, **data)
