"""Small helpers shared by the xp kernels (tridiagonal, block, recurrence).

Every function takes the array namespace ``xp`` first and uses only Array API standard
functions of it: no NumPy calls on the arrays, no host synchronisation (no ``float()``,
``int()``, ``bool()`` or ``.item()`` of array values), no in-place item assignment.
Python ints and floats passed in (strides, row numbers, fill values) are host values.

The sequence axis is an argument (``axis``, default ``-1``): scalar systems keep it last
(``(B, n)``), block systems and recurrences have it second (``(B, n, m, m)``, ``(B, n, m)``).
"""

from __future__ import annotations

from typing import Any

import array_api_compat

__all__ = [
    "INDEX_DTYPE",
    "bad_pivot",
    "device",
    "eps",
    "first_bad_row",
    "info_zeros",
    "merge_info",
    "pad",
    "safe_divisor",
    "shift",
    "update_info",
]

#: Name of the dtype of ``info`` arrays in the kernel contract (``getattr(xp, INDEX_DTYPE)``).
INDEX_DTYPE = "int64"


def device(x: Any) -> Any:
    """The device of array ``x`` (works for NumPy < 2 too, which lacks ``x.device``)."""
    return array_api_compat.device(x)


def eps(xp: Any, dtype: Any) -> float:
    """Machine epsilon of ``dtype`` as a Python float; for a complex dtype, of its real part."""
    return float(xp.finfo(dtype).eps)


def _index(ndim: int, axis: int, sl: slice) -> tuple:
    """An indexing tuple that applies ``sl`` on ``axis`` and takes everything elsewhere."""
    axis = axis % ndim
    return (slice(None),) * axis + (sl, Ellipsis)


def shift(xp: Any, a: Any, s: int, *, axis: int = -1, fill: Any = 0) -> Any:
    """Shift ``a`` by ``s`` places along ``axis``, filling the vacated places with ``fill``.

    ``shift(a, s)[k] == a[k - s]`` where ``0 <= k - s < n``, else ``fill``: with ``s > 0``
    row ``k`` sees its neighbour ``k - s`` (the previous one), with ``s < 0`` the neighbour
    ``k + |s|`` (the next one). ``|s| >= n`` gives all ``fill``; ``s == 0`` returns ``a``.
    The result has the dtype and device of ``a``; ``fill`` is a Python scalar.
    """
    if s == 0:
        return a
    n = a.shape[axis]
    if abs(s) >= n:
        return xp.full_like(a, fill)
    if s > 0:
        keep = a[_index(a.ndim, axis, slice(0, n - s))]
        pad_ = xp.full_like(a[_index(a.ndim, axis, slice(0, s))], fill)
        return xp.concat([pad_, keep], axis=axis)
    s = -s
    keep = a[_index(a.ndim, axis, slice(s, n))]
    pad_ = xp.full_like(a[_index(a.ndim, axis, slice(0, s))], fill)
    return xp.concat([keep, pad_], axis=axis)


def pad(xp: Any, a: Any, length: int, *, axis: int = -1, fill: Any = 0) -> Any:
    """``a`` extended at the end of ``axis`` to ``length`` places filled with ``fill``.

    Returns ``a`` itself when it is already that long (``length`` must not be shorter).
    """
    n = a.shape[axis]
    if length == n:
        return a
    shape = list(a.shape)
    shape[axis % a.ndim] = length - n
    extra = xp.full(tuple(shape), fill, dtype=a.dtype, device=device(a))
    return xp.concat([a, extra], axis=axis)


def bad_pivot(xp: Any, p: Any, scale: Any, tiny: float) -> Any:
    """Boolean mask of pivots that are zero, not finite, or tiny: ``|p| <= tiny * scale``.

    ``scale`` is a real array broadcastable with ``p`` (typically the row's
    ``|dl| + |d| + |du|``); ``tiny`` is a Python float (typically :func:`eps`). A zero pivot
    is always bad, also when ``scale`` is zero.
    """
    return xp.logical_or(xp.logical_not(xp.isfinite(p)), xp.abs(p) <= tiny * scale)


def safe_divisor(xp: Any, p: Any, bad: Any) -> Any:
    """``p`` with the entries flagged ``bad`` replaced by one, so dividing never traps.

    The kernels report the bad pivot through ``info``; the quotient is garbage but finite
    arithmetic carries on without division-by-zero warnings.
    """
    return xp.where(bad, xp.ones_like(p), p)


def info_zeros(xp: Any, like: Any) -> Any:
    """An ``int64`` zero ``info`` of shape ``like.shape[:1]`` (the batch), on ``like``'s device."""
    return xp.zeros(like.shape[:1], dtype=getattr(xp, INDEX_DTYPE), device=device(like))


def update_info(xp: Any, info: Any, bad: Any, row: int) -> Any:
    """Record ``row + 1`` in ``info`` where ``bad`` holds and no earlier row was recorded.

    For sequential sweeps: call once per row in increasing row order; ``bad`` has the
    shape of ``info`` (the batch), ``row`` is a Python int.
    """
    first = xp.logical_and(info == 0, bad)
    return xp.where(first, xp.full_like(info, row + 1), info)


def first_bad_row(xp: Any, bad: Any, *, axis: int = -1) -> Any:
    """``r + 1`` for the first ``r`` along ``axis`` where ``bad`` is true, else 0 (``int64``).

    ``bad`` is a boolean array; the result has its shape without ``axis``. Works for an
    empty ``axis`` (all zeros) and an empty batch.
    """
    n = bad.shape[axis]
    idt = getattr(xp, INDEX_DTYPE)
    out_shape = tuple(k for i, k in enumerate(bad.shape) if i != axis % bad.ndim)
    if n == 0:
        return xp.zeros(out_shape, dtype=idt, device=device(bad))
    rows = xp.arange(1, n + 1, dtype=idt, device=device(bad))
    rows = xp.reshape(rows, (n,) + (1,) * (bad.ndim - 1 - axis % bad.ndim))
    never = xp.full_like(rows, n + 1)
    first = xp.min(xp.where(bad, rows, never), axis=axis)
    return xp.where(first > n, xp.zeros_like(first), first)


def merge_info(xp: Any, a: Any, b: Any) -> Any:
    """Combine two ``info`` arrays: the smaller nonzero entry of each pair, else 0."""
    both = xp.logical_and(a > 0, b > 0)
    return xp.where(both, xp.minimum(a, b), xp.where(a > 0, a, b))
