"""Dask inputs of the linear solvers: conversion, checks on metadata, chunk alignment, meta.

Nothing here touches the data: shapes and dtypes are validated by the single-machine
validators run on zero-stride stand-ins (arrays of the real shapes that own one element), so
error messages are the same as on one machine and building a graph allocates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import array_api_compat.numpy as _cnp
import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array

from .. import _backend, _validation

__all__ = ["Aligned", "align", "lift", "namespace_backend", "result_dtype", "result_meta", "standin"]

# The backend the stand-ins are validated on: the xp kernels' checks, on NumPy.
_CHECK_BACKEND = _backend.Backend("numpy", _cnp)


def standin(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A read-only array of ``shape`` that owns one element (all strides zero)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def lift(arrays: Mapping[str, Any]) -> dict[str, da.Array | None]:
    """Every input as a Dask array (plain arrays become one chunk); dtypes checked numeric."""
    out: dict[str, da.Array | None] = {}
    for name, a in arrays.items():
        if a is None:
            out[name] = None
            continue
        if not isinstance(a, da.Array):
            if isinstance(a, (list, tuple, int, float, complex, bool)):
                a = np.asarray(a)
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise TypeError(f"`{name}` must be a numeric array; got {type(a).__name__}.")
            a = da.from_array(a, chunks=a.shape or ())
        # The single-machine check, on an empty array of the same dtype.
        _validation._numeric(_CHECK_BACKEND, np.empty(0, dtype=a.dtype), name)
        out[name] = a
    return out


def _chunk_library(a: da.Array) -> str:
    return type(a._meta).__module__.split(".")[0]


def namespace_backend(arrays: Mapping[str, da.Array | None], backend: str | None) -> str | None:
    """The ``backend=`` the chunks are solved with; mixed NumPy/CuPy chunks raise TypeError."""
    if backend is not None:
        _backend.resolve({}, backend)  # the single-machine check of the name
        return backend
    owners: dict[str, str] = {}
    for name, a in arrays.items():
        if a is not None:
            owners.setdefault(_chunk_library(a), name)
    if len(owners) > 1:
        listed = ", ".join(f"{lib} chunks for `{arg}`" for lib, arg in owners.items())
        raise TypeError(
            f"the inputs' chunks come from different array libraries ({listed}); convert them to "
            'one library (e.g. x.map_blocks(cupy.asarray)), or pass backend="numba" or "cupy".'
        )
    return None


def result_meta(arrays: Mapping[str, da.Array | None], backend: str | None, ndim: int, dtype: Any):
    """An empty array of the result's chunk type: the inputs' (or ``backend``'s) library."""
    if backend in ("numba", "numpy"):
        like = np.empty((0,) * ndim, dtype=dtype)
    elif backend == "cupy":
        import cupy

        like = cupy.empty((0,) * ndim, dtype=dtype)
    else:
        like = next(a._meta for a in arrays.values() if a is not None)
    return meta_from_array(like, ndim=ndim, dtype=dtype)


def result_dtype(arrays: Mapping[str, da.Array | None]):
    """The single-machine promotion rule on the inputs' dtypes."""
    stand = [np.empty(0, dtype=a.dtype) for a in arrays.values() if a is not None]
    return np.dtype(_validation.result_dtype(_CHECK_BACKEND.xp, *stand))


# ----------------------------------------------------------------------- alignment


@dataclass(frozen=True)
class Aligned:
    """Inputs rechunked onto one grid.

    ``arrays[name]`` has the chunks of the output on every axis it shares with it (batch
    axes right-aligned, the sequence axis, block axes whole); size-1 (broadcast) axes are one
    chunk. ``batch`` and ``batch_chunks`` describe the output's batch axes, ``seq_chunks``
    its sequence axis.
    """

    arrays: dict[str, da.Array | None]
    batch: tuple[int, ...]
    batch_chunks: tuple[tuple[int, ...], ...]
    seq_chunks: tuple[int, ...]

    @property
    def split(self) -> bool:
        """Whether the sequence axis has more than one chunk."""
        return len(self.seq_chunks) > 1


def _check_block_axes(a: da.Array, name: str, k: int) -> None:
    """The last ``k`` axes (the block axes) must be one chunk each."""
    if k and any(len(c) > 1 for c in a.chunks[a.ndim - k :]):
        axes = {-i: -1 for i in range(1, k + 1)}
        raise ValueError(
            f"`{name}` is chunked along its block axes (chunks {a.chunks[a.ndim - k :]}); each chunk "
            f"must hold whole {'m x m blocks' if k == 2 else 'state vectors'}: rechunk them into one "
            f"chunk with {name}.rechunk({axes})."
        )


def align(
    arrays: Mapping[str, da.Array | None],
    tails: Mapping[str, int],
    ref: str,
    n: int,
    pad: Mapping[str, str] | None = None,
) -> Aligned:
    """Rechunk ``arrays`` onto the chunks of ``ref`` (the right-hand side).

    ``tails[name]`` is the number of trailing non-batch axes of each array (the sequence axis
    first, then block axes). The sequence axis takes ``ref``'s chunks; a length-1 sequence axis
    (a time-invariant ``A``) stays one chunk. ``pad[name]`` is ``"lower"`` or ``"upper"`` for
    off-diagonals, which may have length ``n-1`` (LAPACK layout): when the sequence axis is split
    they are padded to length ``n`` (a zero in the ignored corner) so that row ``k`` of every
    array sits in the same chunk; when it is one chunk they stay as given.
    """
    pad = pad or {}
    present = {k: a for k, a in arrays.items() if a is not None}
    for name, a in present.items():
        _check_block_axes(a, name, tails[name] - 1)
    batches = {k: tuple(a.shape[: a.ndim - tails[k]]) for k, a in present.items()}
    batch = _validation._broadcast_batch(batches)
    nb = len(batch)
    r = present[ref]
    seq_axis = r.ndim - tails[ref]
    seq_chunks = tuple(r.chunks[seq_axis])
    # Batch chunks: from `ref` where it spans the axis, else from the first input that does.
    batch_chunks = []
    for i in range(nb):
        chosen = (batch[i],)
        for name in (ref, *present):
            a = present[name]
            j = i - (nb - len(batches[name]))
            if j >= 0 and a.shape[j] == batch[i]:
                chosen = tuple(a.chunks[j])
                break
        batch_chunks.append(chosen)
    out: dict[str, da.Array | None] = {k: None for k in arrays}
    split = len(seq_chunks) > 1
    for name, a in present.items():
        bdims = len(batches[name])
        target: dict[int, Any] = {}
        for j in range(bdims):
            i = j + nb - bdims
            target[j] = batch_chunks[i] if a.shape[j] == batch[i] and batch[i] != 1 else -1
        s = a.ndim - tails[name]
        length = a.shape[s]
        if length == n and n > 0:
            target[s] = seq_chunks
        elif name in pad and length == n - 1 and split:
            a = _pad(a, s, pad[name])
            target[s] = seq_chunks
        else:
            target[s] = -1
        out[name] = a.rechunk(target) if _needs(a, target) else a
    return Aligned(out, batch, tuple(batch_chunks), seq_chunks)


def _needs(a: da.Array, target: dict[int, Any]) -> bool:
    for axis, c in target.items():
        want = (a.shape[axis],) if c == -1 else tuple(c)
        if tuple(a.chunks[axis]) != want:
            return True
    return False


def _pad(a: da.Array, axis: int, side: str) -> da.Array:
    """A LAPACK-layout off-diagonal padded to length ``n`` along ``axis`` (a zero corner)."""
    shape = list(a.shape)
    shape[axis] = 1
    chunks = [(s,) if i == axis else c for i, (s, c) in enumerate(zip(shape, a.chunks))]
    zero = da.zeros(tuple(shape), dtype=a.dtype, chunks=tuple(chunks), meta=a._meta)
    parts = [zero, a] if side == "lower" else [a, zero]
    return da.concatenate(parts, axis=axis)
