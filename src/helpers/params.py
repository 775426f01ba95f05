r"""Parameter dicts as one vector, and nested Hessian blocks as one matrix.

The course flattens a model's parameters in one order everywhere (the
notation page): parameters in the dict's order (``named_parameters()``), each
one row-major (``Tensor.flatten``).  For parameters
:math:`a, b, \dots` with :math:`p = \sum_a \mathrm{numel}(a)` entries:

* :func:`flatten` turns ``{name: tensor}`` (or a sequence of tensors) into one
  vector of shape ``(p,)``;
* :func:`unflatten` cuts a ``(p,)`` vector back into ``{name: tensor}`` shaped
  like a given dict;
* :func:`flatten_hessian` turns the nested blocks that ``torch.func.hessian``
  returns, ``H[a][b]`` of shape ``a.shape + b.shape``, into the ``(p, p)``
  matrix whose block ``(a, b)`` is ``H[a][b].reshape(numel(a), numel(b))``.

Dtypes and devices are kept; nothing is detached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["flatten", "flatten_hessian", "unflatten"]

Tensors = Mapping[str, torch.Tensor] | Sequence[torch.Tensor]


def _values(tensors: Tensors, what: str) -> list[torch.Tensor]:
    values = list(tensors.values()) if isinstance(tensors, Mapping) else list(tensors)
    if not values:
        raise ValueError(f"{what} is empty: expected a dict or sequence of tensors.")
    for i, t in enumerate(values):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}[{i}] is {type(t).__name__}; expected a tensor.")
    return values


def flatten(tensors: Tensors) -> torch.Tensor:
    """One vector ``(p,)``: the tensors in order, each flattened row-major."""
    return torch.cat([t.reshape(-1) for t in _values(tensors, "tensors")])


def unflatten(
    vector: torch.Tensor, like: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``{name: part}`` with ``part.shape == like[name].shape``.

    The parts are cut from ``vector`` in the order of ``like``.
    """
    shapes = {name: t.shape for name, t in like.items()}
    sizes = [t.numel() for t in _values(like, "like")]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(
            f"vector has shape {tuple(vector.shape)}; expected ({sum(sizes)},), the "
            f"number of entries in {dict((k, tuple(s)) for k, s in shapes.items())}."
        )
    return {
        name: part.reshape(shapes[name])
        for name, part in zip(shapes, vector.split(sizes), strict=True)
    }


def flatten_hessian(
    blocks: Mapping[str, Mapping[str, torch.Tensor]], like: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """The ``(p, p)`` matrix of nested blocks ``blocks[a][b]``, ordered as ``like``."""
    numel = {name: t.numel() for name, t in like.items()}
    _values(like, "like")
    rows = []
    for a in like:
        if a not in blocks:
            raise KeyError(f"blocks has no row {a!r}; its rows are {list(blocks)}.")
        row = []
        for b in like:
            if b not in blocks[a]:
                raise KeyError(
                    f"blocks[{a!r}] has no block {b!r}; it has {list(blocks[a])}."
                )
            block = blocks[a][b]
            expected = tuple(like[a].shape) + tuple(like[b].shape)
            if tuple(block.shape) != expected:
                raise ValueError(
                    f"blocks[{a!r}][{b!r}] has shape {tuple(block.shape)}; expected "
                    f"{expected} (shape of {a!r} + shape of {b!r})."
                )
            row.append(block.reshape(numel[a], numel[b]))
        rows.append(torch.cat(row, dim=1))
    return torch.cat(rows, dim=0)
