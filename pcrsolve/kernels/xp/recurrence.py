"""Linear recurrence kernels on an array namespace ``xp``: sequential, doubling, hybrid scan.

Forward recurrences ``x[:, k] = A[:, k] @ x[:, k-1] + b[:, k]`` with ``x[:, -1] = x0``:
``dense_*`` take ``A: (B, n, m, m)``, ``diag_*`` a diagonal ``A: (B, n, m)`` (elementwise
products); ``b, x: (B, n, m)``, ``x0: (B, m)``. They return ``x`` only (no breakdown is
possible). See :mod:`pcrsolve.kernels` for the contract.

Only Array API functions of ``xp`` are used; loops run over rows, doubling levels or rows
of a chunk, never over batch elements, and no array value is brought back to the host.
The chain solver calls these every Newton iteration, so they keep few temporaries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import pad

__all__ = [
    "dense_hybrid",
    "dense_pcr",
    "dense_sequential",
    "diag_hybrid",
    "diag_pcr",
    "diag_sequential",
]


# The two ways of applying a map: ``mv(A, v)`` is A applied to the vectors ``v (..., m)``,
# ``mm(A2, A1)`` the composition "A1 first, then A2".
def _dense_mv(xp: Any, A: Any, v: Any) -> Any:
    return xp.matmul(A, v[..., None])[..., 0]


def _dense_mm(xp: Any, A2: Any, A1: Any) -> Any:
    return xp.matmul(A2, A1)


def _diag_mv(xp: Any, A: Any, v: Any) -> Any:
    return A * v


def _diag_mm(xp: Any, A2: Any, A1: Any) -> Any:
    return A2 * A1


_Op = Callable[[Any, Any, Any], Any]


def _sequential(xp: Any, mv: _Op, A: Any, b: Any, x0: Any) -> Any:
    """The plain loop over rows, vectorized over the batch."""
    n = b.shape[1]
    if n == 0:
        return xp.zeros_like(b)
    x = x0
    out = []
    for k in range(n):
        x = mv(xp, A[:, k, ...], x) + b[:, k, ...]
        out.append(x)
    return xp.stack(out, axis=1)


def _doubling(xp: Any, mv: _Op, mm: _Op, A: Any, b: Any, x0: Any) -> Any:
    """Hillis–Steele scan of the affine maps ``v -> A[k] v + b[k]``: ceil(log2 n) levels.

    ``x0`` is folded into row 0 first (``x[0] = A[0] x0 + b[0]``), so no final
    application is needed. Before the level with stride ``s`` rows ``k < s`` hold their
    final ``x[k]`` and rows ``k >= s`` the map ``(A_k, x_k)`` of rows ``k-s+1 .. k``:
    ``x[k] = A_k x[k-s] + x_k``. A level composes each row with its ``s``-th predecessor
    (rows ``k < s`` unchanged, as if the predecessor were the identity map); only the
    maps of rows still incomplete after the level (``k >= 2s``) are composed, so the
    matrix work shrinks level by level and the map array never needs re-padding.
    """
    n = b.shape[1]
    if n == 0:
        return xp.zeros_like(b)
    x = xp.concat([(mv(xp, A[:, 0, ...], x0) + b[:, 0, ...])[:, None, ...], b[:, 1:, ...]], axis=1)
    maps = A[:, 1:, ...]  # maps of rows s .. n-1, here s = 1
    s = 1
    while s < n:
        tail = x[:, s:, ...] + mv(xp, maps, x[:, : n - s, ...])
        x = xp.concat([x[:, :s, ...], tail], axis=1)
        if 2 * s < n:
            maps = mm(xp, maps[:, s:, ...], maps[:, : n - 2 * s, ...])
        s *= 2
    return x


def _chunks(n: int, chunks: int | None) -> tuple[int, int]:
    """``(p, c)``: ``p`` chunks of ``c`` rows, ``p * c >= n``.

    Default ``c = bit_length(n)`` (about log2 n): O(n) work in the chunk sweeps and a
    carry scan over ``n / log2 n`` chunks. ``chunks`` forces ``p`` (clipped to 1..n).
    """
    if chunks is None:
        c = max(1, n.bit_length())
        return -(-n // c), c
    p = max(1, min(int(chunks), n))
    return p, -(-n // p)


def _hybrid(xp: Any, mv: _Op, mm: _Op, A: Any, b: Any, x0: Any, chunks: int | None) -> Any:
    """Three-phase chunked scan.

    ``n`` is padded to ``p * c`` (zero maps at the end, whose results are dropped) and
    reshaped to ``(B, p, c, ...)``. (1) Each chunk's rows are composed into one map, by a
    loop over the ``c`` rows vectorized over ``B x p`` (the last chunk is not needed);
    (2) the chunks' start states are the doubling scan of those ``p - 1`` maps from ``x0``;
    (3) every chunk is re-run from its start state, all chunks at once.
    """
    B, n = b.shape[0], b.shape[1]
    if n == 0:
        return xp.zeros_like(b)
    p, c = _chunks(n, chunks)
    if p == 1:
        return _sequential(xp, mv, A, b, x0)
    N = p * c
    block = tuple(A.shape[2:])
    A = xp.reshape(pad(xp, A, N, axis=1), (B, p, c, *block))
    b = xp.reshape(pad(xp, b, N, axis=1), (B, p, c, b.shape[-1]))
    # (1) maps of chunks 0 .. p-2
    Ac, bc = A[:, : p - 1, 0, ...], b[:, : p - 1, 0, ...]
    for i in range(1, c):
        Ai = A[:, : p - 1, i, ...]
        bc = mv(xp, Ai, bc) + b[:, : p - 1, i, ...]
        Ac = mm(xp, Ai, Ac)
    # (2) start state of every chunk
    starts = _doubling(xp, mv, mm, Ac, bc, x0)
    x = xp.concat([x0[:, None, ...], starts], axis=1)  # (B, p, m)
    # (3) every chunk from its start
    out = []
    for i in range(c):
        x = mv(xp, A[:, :, i, ...], x) + b[:, :, i, ...]
        out.append(x)
    return xp.reshape(xp.stack(out, axis=2), (B, N, b.shape[-1]))[:, :n, ...]


def dense_sequential(xp: Any, A: Any, b: Any, x0: Any) -> Any:
    """Forward substitution row by row; dense ``A: (B, n, m, m)``."""
    return _sequential(xp, _dense_mv, A, b, x0)


def dense_pcr(xp: Any, A: Any, b: Any, x0: Any) -> Any:
    """Doubling (Hillis–Steele) scan of the affine maps; dense ``A: (B, n, m, m)``."""
    return _doubling(xp, _dense_mv, _dense_mm, A, b, x0)


def dense_hybrid(xp: Any, A: Any, b: Any, x0: Any, *, chunks: int | None = None) -> Any:
    """Chunked three-phase scan; dense ``A: (B, n, m, m)``; ``chunks`` forces the count."""
    return _hybrid(xp, _dense_mv, _dense_mm, A, b, x0, chunks)


def diag_sequential(xp: Any, A: Any, b: Any, x0: Any) -> Any:
    """Forward substitution row by row; diagonal ``A: (B, n, m)``."""
    return _sequential(xp, _diag_mv, A, b, x0)


def diag_pcr(xp: Any, A: Any, b: Any, x0: Any) -> Any:
    """Doubling (Hillis–Steele) scan of the affine maps; diagonal ``A: (B, n, m)``."""
    return _doubling(xp, _diag_mv, _diag_mm, A, b, x0)


def diag_hybrid(xp: Any, A: Any, b: Any, x0: Any, *, chunks: int | None = None) -> Any:
    """Chunked three-phase scan; diagonal ``A: (B, n, m)``; ``chunks`` forces the count."""
    return _hybrid(xp, _diag_mv, _diag_mm, A, b, x0, chunks)
