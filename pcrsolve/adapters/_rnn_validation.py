"""Arguments of :class:`~pcrsolve.adapters.RNN`: cell name, parameters, inputs and ``h0``.

Checks names, shapes and dtypes with messages that name the argument, what was expected,
what was given and the fix; returns the arrays in the backend's library, cast to one real
floating dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend
from ._cells import CELLS, Cell
from ._dense import _float_dtype, _shape

__all__ = ["RNNArgs", "check_rnn", "check_steps"]


@dataclass(frozen=True)
class RNNArgs:
    """Validated arguments: backend, cell, parameters, inputs, ``h0`` and sizes."""

    be: Any
    cell: Cell
    params: dict[str, Any]
    inputs: Any
    h0: Any
    T: int
    batch: tuple[int, ...]
    width: int
    d_in: int
    m: int


def check_cell(cell: Any) -> Cell:
    """The :class:`Cell` named ``cell`` (ValueError / TypeError otherwise)."""
    names = ", ".join(map(repr, CELLS))
    if not isinstance(cell, str):
        raise TypeError(f"`cell` must be a cell name ({names}); got {type(cell).__name__}.")
    if cell not in CELLS:
        raise ValueError(f"unknown `cell` {cell!r}; choose one of {names}.")
    return CELLS[cell]


def _expected_shapes(cell: Cell, w: int, d_in: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for name in cell.recurrent:
        shapes[name] = (w, w) if cell.dense_recurrent else (w,)
    for name in cell.input_names:
        shapes[name] = (w, d_in)
    for name in cell.bias_names:
        shapes[name] = (w,)
    return shapes


def check_params(cell: Cell, params: Any, where: str = "`params`") -> None:
    """The parameter names: a mapping with exactly the cell's names."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{where} must be a dict of arrays named {', '.join(cell.names)} for cell {cell.name!r}; "
            f"got {type(params).__name__}."
        )
    missing = [n for n in cell.names if n not in params]
    unknown = sorted(str(n) for n in params if n not in cell.names)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"unexpected {', '.join(map(repr, unknown))}")
        raise ValueError(
            f"{where} of cell {cell.name!r} must hold exactly {', '.join(map(repr, cell.names))}; "
            f"{' and '.join(parts)}."
        )


def check_steps(k: Any, s: int, T: int) -> Any:
    """``k`` (NumPy) as ``s`` integer step indices in ``[0, T)`` (ValueError otherwise)."""
    kk = np.asarray(k)
    if kk.shape != (s,) or kk.dtype.kind not in "iu":
        raise ValueError(
            f"`k` must hold one integer step index per step, shape ({s},); got shape {kk.shape} and "
            f"dtype {kk.dtype}."
        )
    if s and (kk.min() < 0 or kk.max() >= T):
        raise ValueError(f"`k` must hold step indices in [0, {T}); got values in [{kk.min()}, {kk.max()}].")
    return kk


def check_rnn(cell: Any, params: Any, inputs: Any, h0: Any, *, where: str = "`params`") -> RNNArgs:
    """Validate the arguments of ``RNN(cell, params, inputs, h0=h0)``."""
    c = check_cell(cell)
    check_params(c, params, where)
    arrays = {"inputs": inputs, "h0": h0, **{f"params[{n!r}]": params[n] for n in c.names}}
    be = _backend.resolve(arrays)
    xp = be.xp
    conv: dict[str, Any] = {}
    for key, a in arrays.items():
        if a is None:
            continue
        try:
            conv[key] = be.asarray(a)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{key}` must be a numeric array; could not convert it ({exc}).") from None
    dtype = xp.result_type(*(_float_dtype(xp, a.dtype, key) for key, a in conv.items()))
    x = conv["inputs"]
    if x.ndim < 2:
        raise ValueError(
            f"`inputs` must have shape (T, *batch, d_in): one input vector per step; got shape {_shape(x)}. "
            "Use inputs[:, None] for a sequence of scalars."
        )
    T, batch, d_in = int(x.shape[0]), _shape(x)[1:-1], int(x.shape[-1])
    U0 = conv[f"params[{c.input_names[0]!r}]"]
    if U0.ndim != 2:
        raise ValueError(
            f"`params[{c.input_names[0]!r}]` must have shape (w, d_in): hidden width w by input size "
            f"d_in; got shape {_shape(U0)}."
        )
    w = int(U0.shape[0])
    if int(U0.shape[1]) != d_in:
        raise ValueError(
            f"`params[{c.input_names[0]!r}]` must have shape (w, d_in) = ({w}, {d_in}) to match the "
            f"input size d_in = {d_in} of `inputs` {_shape(x)}; got shape {_shape(U0)}."
        )
    for name, want in _expected_shapes(c, w, d_in).items():
        got = _shape(conv[f"params[{name!r}]"])
        if got != want:
            raise ValueError(
                f"`params[{name!r}]` of cell {c.name!r} must have shape {want} (hidden width w = {w} "
                f"from `params[{c.input_names[0]!r}]`); got shape {got}."
            )
    m = c.parts * w
    if "h0" in conv and _shape(conv["h0"]) != (*batch, m):
        state = "[c; h], 2w" if c.parts == 2 else "w"
        raise ValueError(
            f"`h0` must have shape (*batch, m) = {(*batch, m)} (the batch axes of `inputs` {_shape(x)}, "
            f"m = {state} = {m}); got shape {_shape(conv['h0'])}. Broadcast a shared initial state "
            "yourself, e.g. np.broadcast_to(h0, (*batch, m))."
        )
    # Copies (astype copies too): the RNN's arrays are those of its construction; its caches
    # of them (input projections, converted parameters) could not see changes made in place.
    out = {k: xp.astype(a, dtype) if a.dtype != dtype else xp.asarray(a, copy=True) for k, a in conv.items()}
    for key, a in out.items():
        if not bool(xp.all(xp.isfinite(a))):
            raise ValueError(f"`{key}` contains NaN or inf; the RNN needs finite parameters and inputs.")
    h = out.get("h0")
    if h is None:
        h = xp.zeros((*batch, m), dtype=dtype)
    prm = {n: out[f"params[{n!r}]"] for n in c.names}
    return RNNArgs(be, c, prm, out["inputs"], h, T, batch, w, d_in, m)
