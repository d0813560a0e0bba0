"""Shapes, dtypes and options of the public calls, and their error messages.

Each function takes the raw arguments and the call's :class:`~pcrsolve._backend.Backend`
and returns the canonical arrays the kernels expect (see :mod:`pcrsolve.kernels`):
one promoted dtype, off-diagonals padded with zero corners, batch axes broadcast and
flattened to one leading axis ``B``. It looks at arrays only through ``be.xp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "BlockSystem",
    "Recurrence",
    "TridiagonalSystem",
    "bidiagonal",
    "block_bidiagonal",
    "block_tridiagonal",
    "factored_rhs",
    "method",
    "recurrence",
    "tridiagonal",
]

METHODS = ("auto", "sequential", "pcr", "hybrid", "pivoting")


# --------------------------------------------------------------------------- helpers


def _numeric(be, a: Any, name: str):
    """``a`` as an array of the backend, with a numeric dtype (else TypeError)."""
    xp = be.xp
    try:
        arr = be.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a numeric array; could not convert it ({exc}).") from None
    try:
        ok = xp.isdtype(arr.dtype, ("numeric", "bool"))
    except Exception:  # object and structured dtypes are not dtypes isdtype knows
        ok = False
    if not ok:
        raise TypeError(
            f"`{name}` must have a numeric dtype (float or complex; integers promote to "
            f"float64); got dtype {arr.dtype}."
        )
    return arr


def _is_single(xp, dtype) -> bool:
    singles = [xp.float32, xp.complex64]
    if hasattr(xp, "float16"):
        singles.append(xp.float16)
    return any(dtype == s for s in singles)


def result_dtype(xp, *arrays):
    """The common dtype: complex if any is complex, double unless all are single precision.

    Integers and booleans count as double (they promote to float64), float16 as single.
    """
    arrays = [a for a in arrays if a is not None]
    complex_ = any(xp.isdtype(a.dtype, "complex floating") for a in arrays)
    single = bool(arrays) and all(_is_single(xp, a.dtype) for a in arrays)
    if complex_:
        return xp.complex64 if single else xp.complex128
    return xp.float32 if single else xp.float64


def _cast(xp, a, dtype):
    return xp.astype(a, dtype, copy=False) if a.dtype != dtype else a


def _at_least(a, ndim: int, name: str, layout: str):
    if a.ndim < ndim:
        raise ValueError(f"`{name}` must have at least {ndim} axes, {layout}; got shape {tuple(a.shape)}.")


def _broadcast_batch(batches: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*batches.values()))
    except ValueError:
        listed = ", ".join(f"`{k}` {v}" for k, v in batches.items())
        raise ValueError(
            f"the batch shapes (leading axes) do not broadcast: {listed}; batch axes follow "
            "NumPy broadcasting rules (equal, or 1)."
        ) from None


def _check_finite(be, arrays: dict[str, Any]) -> None:
    for name, a in arrays.items():
        if a is not None and not bool(be.kernels.all_finite(a)):
            raise ValueError(
                f"`{name}` contains NaN or inf; pass finite values, or check_finite=False to "
                "skip this check (the result is then undefined)."
            )


def _check_off_diagonal(a, n: int, name: str, ref: str, ref_shape, axis: int) -> None:
    """A (sub- or super-) diagonal must have length ``n-1`` or ``n`` on ``axis``."""
    length = a.shape[axis]
    if length not in (n - 1, n) or (n == 0 and length != 0):
        raise ValueError(
            f"`{name}` must have length n-1 = {n - 1} (LAPACK layout) or n = {n} (padded) on "
            f"axis {axis} to match `{ref}` of shape {tuple(ref_shape)}; got shape {tuple(a.shape)}."
        )


def _off_diagonal(xp, a, n: int, name: str, ref: str, ref_shape, lower: bool, axis: int):
    """Pad a (sub- or super-) diagonal to length ``n`` on ``axis``, zeroing the ignored corner."""
    _check_off_diagonal(a, n, name, ref, ref_shape, axis)
    if n == 0:
        return a
    length = a.shape[axis]
    zero_shape = list(a.shape)
    zero_shape[axis] = 1
    zero = xp.zeros(tuple(zero_shape), dtype=a.dtype)
    idx = [slice(None)] * a.ndim
    if length == n:  # padded layout: drop the ignored corner
        idx[axis] = slice(1, None) if lower else slice(None, n - 1)
        a = a[tuple(idx)]
    return xp.concat([zero, a] if lower else [a, zero], axis=axis)


def _flatten(be, a, batch: tuple[int, ...], tail: tuple[int, ...]):
    """Broadcast ``a`` to ``batch + tail`` and flatten the batch to one axis ``B``."""
    xp = be.xp
    full = batch + tail
    if tuple(a.shape) != full:
        a = xp.broadcast_to(a, full)
    return be.contiguous(xp.reshape(a, (math.prod(batch), *tail)))


def method(name: Any, allowed: tuple[str, ...], where: str) -> str:
    """Check a ``method=`` option against the ones ``where`` supports."""
    if not isinstance(name, str) or name not in allowed:
        hint = ""
        if name in METHODS:
            hint = f" ({name!r} is not available for {where})"
        raise ValueError(
            f"`method` must be one of {', '.join(map(repr, allowed))} for {where}; got {name!r}{hint}."
        )
    return name


# --------------------------------------------------------------------------- systems


@dataclass(frozen=True)
class TridiagonalSystem:
    """Canonical scalar tridiagonal input: ``(B, n)`` arrays.

    ``dl_in``, ``du_in`` are the off-diagonals as given (flattened, cast, contiguous):
    ``(B, n-1)`` in LAPACK layout or ``(B, n)`` padded, whose corners may hold anything.
    Kernels marked ``any_layout`` read them in place; ``dl``, ``du`` are the padded
    ``(B, n)`` arrays with zero corners that the other kernels need, built on first use.
    """

    dl_in: Any
    d: Any
    du_in: Any
    rhs: Any
    batch: tuple[int, ...]
    n: int
    xp: Any = field(repr=False, compare=False, default=None)

    @cached_property
    def dl(self) -> Any:
        return _off_diagonal(self.xp, self.dl_in, self.n, "dl", "d", self.d.shape, lower=True, axis=-1)

    @cached_property
    def du(self) -> Any:
        return _off_diagonal(self.xp, self.du_in, self.n, "du", "d", self.d.shape, lower=False, axis=-1)


def tridiagonal(be, dl, d, du, rhs, *, check_finite: bool) -> TridiagonalSystem:
    """Validate a scalar tridiagonal system; ``rhs=None`` validates the matrix alone."""
    xp = be.xp
    arrs = {"dl": _numeric(be, dl, "dl"), "d": _numeric(be, d, "d"), "du": _numeric(be, du, "du")}
    if rhs is not None:
        arrs["rhs"] = _numeric(be, rhs, "rhs")
    for name, a in arrs.items():
        _at_least(a, 1, name, "the sequence axis n last")
    dtype = result_dtype(xp, *arrs.values())
    arrs = {k: _cast(xp, a, dtype) for k, a in arrs.items()}
    dshape = arrs["d"].shape
    n = dshape[-1]
    # Off-diagonals stay in the layout given (no padded copies, see TridiagonalSystem).
    _check_off_diagonal(arrs["dl"], n, "dl", "d", dshape, axis=-1)
    _check_off_diagonal(arrs["du"], n, "du", "d", dshape, axis=-1)
    if rhs is not None and arrs["rhs"].shape[-1] != n:
        raise ValueError(
            f"`rhs` must have length n = {n} on its last axis to match `d` of shape "
            f"{tuple(dshape)}; got shape {tuple(arrs['rhs'].shape)}."
        )
    batch = _broadcast_batch({k: tuple(a.shape[:-1]) for k, a in arrs.items()})
    if check_finite:
        # The ignored corners of padded off-diagonals may hold anything: look inside them
        # only when the one-pass check of the whole array fails.
        checked = dict(arrs)
        for name, lower in (("dl", True), ("du", False)):
            a = arrs[name]
            if n and a.shape[-1] == n and not bool(be.kernels.all_finite(a)):
                checked[name] = a[..., 1:] if lower else a[..., : n - 1]
        _check_finite(be, checked)
    flat = {k: _flatten(be, a, batch, (a.shape[-1],)) for k, a in arrs.items()}
    return TridiagonalSystem(flat["dl"], flat["d"], flat["du"], flat.get("rhs"), batch, n, xp)


def factored_rhs(be, rhs, batch, tail: tuple[int, ...], dtype, *, check_finite: bool):
    """Validate a right-hand side ``(..., *tail)`` for a factored matrix of batch shape ``batch``.

    ``tail`` is ``(n,)`` for scalar and ``(n, m)`` for block systems. Returns
    ``(rhs (B, *tail), full_batch, dtype)``; the factors must be broadcast to ``full_batch``.
    """
    xp = be.xp
    r = _numeric(be, rhs, "rhs")
    layout = "the sequence axis n last" if len(tail) == 1 else "(..., n, m)"
    _at_least(r, len(tail), "rhs", layout)
    if tuple(r.shape[r.ndim - len(tail) :]) != tuple(tail):
        expected = (
            f"length n = {tail[0]} on its last axis"
            if len(tail) == 1
            else f"shape (..., n, m) = (..., {tail[0]}, {tail[1]})"
        )
        raise ValueError(
            f"`rhs` must have {expected} to match the factored matrix; got shape {tuple(r.shape)}."
        )
    full = _broadcast_batch({"factored matrix": batch, "rhs": tuple(r.shape[: r.ndim - len(tail)])})
    dt = result_dtype(xp, r, xp.zeros((), dtype=dtype))
    r = _cast(xp, r, dt)
    if check_finite:
        _check_finite(be, {"rhs": r})
    return _flatten(be, r, full, tuple(tail)), full, dt


@dataclass(frozen=True)
class BlockSystem:
    """Canonical block tridiagonal input: ``(B, n, m, m)`` blocks and ``(B, n, m)`` rhs."""

    L: Any
    D: Any
    U: Any
    rhs: Any
    batch: tuple[int, ...]
    n: int
    m: int


def _blocks(be, arrs: dict[str, Any]):
    for name, a in arrs.items():
        if name == "rhs":
            _at_least(a, 2, name, "(..., n, m)")
        else:
            _at_least(a, 3, name, "(..., n, m, m)")
            if a.shape[-1] != a.shape[-2]:
                raise ValueError(
                    f"the blocks of `{name}` must be square (..., m, m); got shape {tuple(a.shape)}."
                )


def _same_blocks(arrs: dict[str, Any], ref: str, m: int) -> None:
    for name, a in arrs.items():
        size = a.shape[-1]
        if size != m:
            layout = "(..., n, m)" if name == "rhs" else "(..., n, m, m)"
            raise ValueError(
                f"`{name}` must have block size m = {m} (from `{ref}`), as {layout}; got shape "
                f"{tuple(a.shape)}."
            )


def block_tridiagonal(be, L, D, U, rhs, *, check_finite: bool) -> BlockSystem:
    """Validate a block tridiagonal system; ``rhs=None`` validates the matrix alone."""
    xp = be.xp
    arrs = {"L": _numeric(be, L, "L"), "D": _numeric(be, D, "D"), "U": _numeric(be, U, "U")}
    if rhs is not None:
        arrs["rhs"] = _numeric(be, rhs, "rhs")
    _blocks(be, arrs)
    Dshape = arrs["D"].shape
    n, m = Dshape[-3], Dshape[-1]
    _same_blocks(arrs, "D", m)
    dtype = result_dtype(xp, *arrs.values())
    arrs = {k: _cast(xp, a, dtype) for k, a in arrs.items()}
    arrs["L"] = _off_diagonal(xp, arrs["L"], n, "L", "D", Dshape, lower=True, axis=-3)
    arrs["U"] = _off_diagonal(xp, arrs["U"], n, "U", "D", Dshape, lower=False, axis=-3)
    if rhs is not None and arrs["rhs"].shape[-2] != n:
        raise ValueError(
            f"`rhs` must have shape (..., n, m) = (..., {n}, {m}) to match `D` of shape "
            f"{tuple(Dshape)}; got shape {tuple(arrs['rhs'].shape)}."
        )
    batch = _broadcast_batch(
        {k: tuple(a.shape[:-2] if k == "rhs" else a.shape[:-3]) for k, a in arrs.items()}
    )
    if check_finite:
        _check_finite(be, arrs)
    flat = {k: _flatten(be, a, batch, (n, m) if k == "rhs" else (n, m, m)) for k, a in arrs.items()}
    return BlockSystem(flat["L"], flat["D"], flat["U"], flat.get("rhs"), batch, n, m)


@dataclass(frozen=True)
class Recurrence:
    """Canonical recurrence input: ``A (B, n, m, m)`` or ``(B, n, m)``, ``b (B, n, m)``, ``x0 (B, m)``.

    ``A``'s sequence axis may have length 1 (a time-invariant ``A``).
    """

    A: Any
    b: Any
    x0: Any
    dense: bool
    batch: tuple[int, ...]
    n: int
    m: int


def recurrence(be, A, b, x0, *, check_finite: bool, names=("A", "b", "x0")) -> Recurrence:
    """Validate ``x[k] = A[k] @ x[k-1] + b[k]``; ``A`` dense iff ``A.ndim == b.ndim + 1``."""
    xp = be.xp
    nA, nb, nx = names
    a, bb = _numeric(be, A, nA), _numeric(be, b, nb)
    x = None if x0 is None else _numeric(be, x0, nx)
    _at_least(bb, 2, nb, "(..., n, m)")
    n, m = bb.shape[-2], bb.shape[-1]
    if a.ndim == bb.ndim + 1:
        dense, tail = True, (n, m, m)
        if a.shape[-1] != a.shape[-2] or a.shape[-1] != m or a.shape[-3] not in (1, n):
            raise ValueError(
                f"`{nA}` with {a.ndim} axes holds dense blocks and must have shape (..., n, m, m) "
                f"= (..., {n}, {m}, {m}) to match `{nb}` of shape {tuple(bb.shape)}; got shape "
                f"{tuple(a.shape)}."
            )
    elif a.ndim == bb.ndim:
        dense, tail = False, (n, m)
        if a.shape[-1] not in (1, m) or a.shape[-2] not in (1, n):
            raise ValueError(
                f"`{nA}` with {a.ndim} axes holds diagonal blocks and must have shape (..., n, m) "
                f"= (..., {n}, {m}) to match `{nb}` of shape {tuple(bb.shape)}; got shape "
                f"{tuple(a.shape)}."
            )
    else:
        raise ValueError(
            f"`{nA}` must have {nb}.ndim + 1 = {bb.ndim + 1} axes (dense blocks (..., n, m, m)) or "
            f"{nb}.ndim = {bb.ndim} axes (diagonal (..., n, m)), with the same batch axes as "
            f"`{nb}` of shape {tuple(bb.shape)}; got shape {tuple(a.shape)}. To share one dense "
            "matrix across a batch, give it size-1 batch axes."
        )
    if x is not None:
        if x.ndim < 1 or x.shape[-1] != m or x.ndim > bb.ndim - 1:
            raise ValueError(
                f"`{nx}` must have shape (..., m) = (..., {m}) with at most {bb.ndim - 2} batch "
                f"axes to match `{nb}` of shape {tuple(bb.shape)}; got shape {tuple(x.shape)}."
            )
    dtype = result_dtype(xp, a, bb, x)
    a, bb = _cast(xp, a, dtype), _cast(xp, bb, dtype)
    x = xp.zeros((m,), dtype=dtype) if x is None else _cast(xp, x, dtype)
    batch = _broadcast_batch(
        {nA: tuple(a.shape[: a.ndim - len(tail)]), nb: tuple(bb.shape[:-2]), nx: tuple(x.shape[:-1])}
    )
    if check_finite:
        _check_finite(be, {nA: a, nb: bb, nx: x})
    # A time-invariant A (sequence axis of length 1) stays so: kernels that take it read it in
    # place, the others get it repeated (see linear._recurrence.recurrence_kernel).
    tail_A = (a.shape[a.ndim - len(tail)], *tail[1:])
    return Recurrence(
        _flatten(be, a, batch, tail_A),
        _flatten(be, bb, batch, (n, m)),
        _flatten(be, x, batch, (m,)),
        dense,
        batch,
        n,
        m,
    )


def bidiagonal(be, d, e, rhs, *, lower: bool, check_finite: bool) -> TridiagonalSystem:
    """Validate a scalar bidiagonal system as a tridiagonal one with a zero off-diagonal."""
    zeros_like_e = None
    sys_e = _numeric(be, e, "e")
    zeros_like_e = be.xp.zeros(sys_e.shape, dtype=sys_e.dtype)
    dl, du = (sys_e, zeros_like_e) if lower else (zeros_like_e, sys_e)
    try:
        return tridiagonal(be, dl, d, du, rhs, check_finite=check_finite)
    except ValueError as exc:
        raise ValueError(str(exc).replace("`dl`", "`e`").replace("`du`", "`e`")) from None


def block_bidiagonal(be, D, E, rhs, *, lower: bool, check_finite: bool) -> BlockSystem:
    """Validate a block bidiagonal system as a block tridiagonal one with a zero off-diagonal."""
    ee = _numeric(be, E, "E")
    zero = be.xp.zeros(ee.shape, dtype=ee.dtype)
    L, U = (ee, zero) if lower else (zero, ee)
    try:
        return block_tridiagonal(be, L, D, U, rhs, check_finite=check_finite)
    except ValueError as exc:
        raise ValueError(str(exc).replace("`L`", "`E`").replace("`U`", "`E`")) from None
