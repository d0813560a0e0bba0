"""Numba factorizations of block tridiagonal matrices by block PCR and by the hybrid method.

The block Thomas factorization lives with its solver (:mod:`.block`). Here the matrix part
of :func:`.block.block_pcr` and :func:`.block.block_hybrid` is done once and stored; a solve
replays only what the right-hand side needs, with the same helpers in the same order as the
one-shot solvers (the same bits for the same batch). Layout and breakdown rule as in
:mod:`.block`; arrays are flattened to rows ``(B*n, ...)`` inside the kernels, and the
factors' batch is ``B`` or 1 (shared by every right-hand side). Both run one system (the
hybrid: one chunk) per task on the threads of :mod:`._threads`.

- :func:`block_pcr_factor` / :func:`block_pcr_factor_solve` -- every level's LU of the
  diagonal blocks and its off-diagonal blocks: a solve is an LU solve and two block
  matrix-vector products per row and level, O(n m^2 log n).
- :func:`block_hybrid_factor` / :func:`block_hybrid_factor_solve` -- the chunks' LU factors
  and couplings and the block Thomas factors of the interface system: O(n m^2) per solve.
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit
from ._threads import split
from .block import (
    _chunk_bounds,
    _copy_blk,
    _copy_vec,
    _default_chunks,
    _eps,
    _eye_blk,
    _flat,
    _gemm_neg,
    _gemm_sub,
    _gemv_sub,
    _lu,
    _lu_solve_mat,
    _lu_solve_vec,
    _pcr_combine,
    _pcr_invert,
    _row_tol,
    block_thomas_factor,
    block_thomas_factor_solve,
)

__all__ = ["block_hybrid_factor", "block_hybrid_factor_solve", "block_pcr_factor", "block_pcr_factor_solve"]


# --------------------------------------------------------------------------------------------
# Block PCR
# --------------------------------------------------------------------------------------------


@jit
def _pcr_factor_range(
    L1, D1, U1, L2, D2, U2, P, Q, r, v, rn, n, eps, LUs, pivs, Ls, Us, LUf, pivf, info, b0, b1
):
    """Block PCR's matrix part on the systems ``b0 .. b1-1``.

    ``L1 .. U2``, ``P``, ``Q`` are level buffers (``L1, D1, U1`` hold the input rows), ``r``
    a zero right-hand side and ``v``, ``rn`` scratch for the helpers shared with the solver.
    Level ``l`` stores the LU factors of every row's diagonal block in ``LUs[:, l], pivs[:, l]``
    and its off-diagonal blocks in ``Ls[:, l], Us[:, l]``; the last level's diagonal goes to ``LUf,
    pivf``. ``info`` as :func:`.block.block_pcr`.
    """
    for b in range(b0, b1):
        o = b * n
        La, Da, Ua, Lb, Db, Ub = L1, D1, U1, L2, D2, U2
        first = 0  # the earliest failing level, and its lowest row
        row = 0
        s = 1
        level = 0
        while s < n:
            W, piv = LUs[:, level], pivs[:, level]
            for i in range(o, o + n):
                if not _pcr_invert(La, Da, Ua, r, i, i - o, n, s, eps, W, piv, P, Q, v) and first == 0:
                    first = level + 1
                    row = i - o
                _copy_blk(Ls[:, level], i, La, i)
                _copy_blk(Us[:, level], i, Ua, i)
            for i in range(o, o + n):
                _pcr_combine(La, Da, Ua, r, P, Q, v, i, i - o, n, s, Lb, Db, Ub, rn)
            La, Da, Ua, Lb, Db, Ub = Lb, Db, Ub, La, Da, Ua
            s *= 2
            level += 1
        for i in range(o, o + n):
            _copy_blk(LUf, i, Da, i)
            if _lu(LUf, i, pivf, i, _row_tol(La, Da, Ua, i, eps)) != 0 and first == 0:
                first = level + 1
                row = i - o
        info[b] = row + 1 if first else 0


@jit
def _pcr_solve_range(LUs, pivs, Ls, Us, LUf, pivf, n, rhs, r1, r2, v, x, b0, b1):
    """Replay the levels of :func:`_pcr_factor_range` on the systems ``b0 .. b1-1``."""
    nf = LUf.shape[0] // n
    for b in range(b0, b1):
        o = b * n
        f = o if nf > 1 else 0  # the factors' first row
        ra, rb = r1, r2
        for j in range(n):
            _copy_vec(ra, o + j, rhs, o + j)
        s = 1
        level = 0
        while s < n:
            for j in range(n):
                _copy_vec(v, o + j, ra, o + j)
                _lu_solve_vec(LUs[:, level], f + j, pivs[:, level], f + j, v, o + j)
            for j in range(n):
                _copy_vec(rb, o + j, ra, o + j)
                if j - s >= 0:
                    _gemv_sub(rb, o + j, Ls[:, level], f + j, v, o + j - s)
                if j + s < n:
                    _gemv_sub(rb, o + j, Us[:, level], f + j, v, o + j + s)
            ra, rb = rb, ra
            s *= 2
            level += 1
        for j in range(n):
            _copy_vec(x, o + j, ra, o + j)
            _lu_solve_vec(LUf, f + j, pivf, f + j, x, o + j)


def block_pcr_factor(L, D, U):
    """Factor for :func:`block_pcr_factor_solve`. Returns ``(factors, info)``.

    ``factors = (LUs, pivs, Ls, Us, LU, piv)``: per row and level ``(B*n, levels, m, m)`` the
    LU factors (and ``(B*n, levels, m)`` row interchanges) of the diagonal blocks and the
    off-diagonal blocks, then the last level's LU. O(n m^2 log n) memory.
    """
    nb, n, m = D.shape[0], D.shape[1], D.shape[2]
    dt = D.dtype
    levels = max(0, (n - 1).bit_length())
    rows = nb * n
    LUs, Ls, Us = (np.zeros((rows, levels, m, m), dtype=dt) for _ in range(3))
    pivs = np.zeros((rows, levels, m), dtype=np.int64)
    LUf = np.zeros((rows, m, m), dtype=dt)
    pivf = np.zeros((rows, m), dtype=np.int64)
    info = np.zeros(nb, dtype=np.int64)
    if rows * m:
        L1, D1, U1 = (np.array(_flat(a), dtype=dt, copy=True) for a in (L, D, U))
        L2, D2, U2, P, Q = (np.empty_like(D1) for _ in range(5))
        r, v, rn = np.zeros((rows, m), dtype=dt), np.empty((rows, m), dtype=dt), np.empty((rows, m), dtype=dt)
        args = (L1, D1, U1, L2, D2, U2, P, Q, r, v, rn, n, _eps(dt), LUs, pivs, Ls, Us, LUf, pivf, info)
        split(_pcr_factor_range, nb, *args, work=14 * rows * max(levels, 1) * m**3)
    return (LUs, pivs, Ls, Us, LUf, pivf), info


def block_pcr_factor_solve(factors, rhs):
    """Solve with the factors of :func:`block_pcr_factor`; ``rhs, x: (B, n, m)``."""
    LUs, pivs, Ls, Us, LUf, pivf = factors
    x = np.empty(rhs.shape, dtype=LUf.dtype)
    if x.size:
        nb, n, m = rhs.shape
        r = np.ascontiguousarray(rhs, dtype=LUf.dtype).reshape(nb * n, m)
        r1, r2, v = (np.empty_like(r) for _ in range(3))
        args = (LUs, pivs, Ls, Us, LUf, pivf, n, r, r1, r2, v, _flat(x))
        split(_pcr_solve_range, nb, *args, work=4 * nb * n * max(LUs.shape[1], 1) * m**2)
    return x


# --------------------------------------------------------------------------------------------
# Block hybrid
# --------------------------------------------------------------------------------------------
# Chunk c of system b holds the rows [s, e) of _chunk_bounds (at least two). Factors, one per
# row: W, piv the LU of the row's modified diagonal block in the forward sweep, L a copy of
# the sub-diagonal blocks, a and cc the row's final couplings to the chunk's first and last
# unknowns, cco its coupling to the next row before the backward sweep; then the block
# Thomas factors of the interface system (2p block rows per system).


@jit
def _chunk_factor(L, D, U, eps, s, e, W, piv, a, cc, cco, T, Lr, Dr, Ur, k):
    """The matrix part of :func:`.block._hybrid_chunk`; returns 0 or ``i - s + 1``."""
    last = e - 1
    for i in range(s, e):
        _copy_blk(W, i, D, i)
        if i >= s + 2:
            _gemm_sub(W, i, L, i, cc, i - 1)
            _gemm_neg(a, i, L, i, a, i - 1)
        else:
            _copy_blk(a, i, L, i)
        if _lu(W, i, piv, i, _row_tol(L, D, U, i, eps)) != 0:
            return i - s + 1
        _lu_solve_mat(W, i, piv, i, a, i)
        _copy_blk(cc, i, U, i)
        _lu_solve_mat(W, i, piv, i, cc, i)
        _copy_blk(cco, i, cc, i)
    for i in range(last - 2, s, -1):
        _gemm_sub(a, i, cc, i, a, i + 1)
        _gemm_neg(T, 0, cc, i, cc, i + 1)
        _copy_blk(cc, i, T, 0)
    _copy_blk(Lr, k, a, s)
    _eye_blk(Dr, k)
    if last - s >= 2:
        _gemm_sub(Dr, k, cc, s, a, s + 1)
        _gemm_neg(Ur, k, cc, s, cc, s + 1)
    else:
        _copy_blk(Ur, k, cc, s)
    _copy_blk(Lr, k + 1, a, last)
    _eye_blk(Dr, k + 1)
    _copy_blk(Ur, k + 1, cc, last)
    return 0


@jit
def _factor_chunks(L, D, U, n, p, eps, W, piv, a, cc, cco, Lr, Dr, Ur, cfail, t0, t1):
    m = D.shape[1]
    T = np.empty((1, m, m), dtype=D.dtype)
    for t in range(t0, t1):
        b = t // p
        s, e = _chunk_bounds(t - b * p, n, p)
        k = _chunk_factor(L, D, U, eps, b * n + s, b * n + e, W, piv, a, cc, cco, T, Lr, Dr, Ur, 2 * t)
        cfail[t] = 0 if k == 0 else s + k


@jit
def _solve_chunks(L, W, piv, cco, n, p, rhs, d, rr, t0, t1):
    """The right-hand side's sweeps in the chunks ``t0 .. t1-1``: ``d`` and the interface ``rr``."""
    nf = W.shape[0] // n
    for t in range(t0, t1):
        b = t // p
        s, e = _chunk_bounds(t - b * p, n, p)
        o = b * n
        f = o if nf > 1 else 0
        for i in range(s, e):
            _copy_vec(d, o + i, rhs, o + i)
            if i >= s + 2:
                _gemv_sub(d, o + i, L, f + i, d, o + i - 1)
            _lu_solve_vec(W, f + i, piv, f + i, d, o + i)
        for i in range(e - 3, s, -1):
            _gemv_sub(d, o + i, cco, f + i, d, o + i + 1)
        _copy_vec(rr, 2 * t, d, o + s)
        if e - 1 - s >= 2:
            _gemv_sub(rr, 2 * t, cco, f + s, d, o + s + 1)
        _copy_vec(rr, 2 * t + 1, d, o + e - 1)


@jit
def _complete_chunks(a, cc, n, p, d, xr, x, t0, t1):
    nf = a.shape[0] // n
    for t in range(t0, t1):
        b = t // p
        s, e = _chunk_bounds(t - b * p, n, p)
        o = b * n
        f = o if nf > 1 else 0
        _copy_vec(x, o + s, xr, 2 * t)
        _copy_vec(x, o + e - 1, xr, 2 * t + 1)
        for i in range(s + 1, e - 1):
            _copy_vec(x, o + i, d, o + i)
            _gemv_sub(x, o + i, a, f + i, xr, 2 * t)
            _gemv_sub(x, o + i, cc, f + i, xr, 2 * t + 1)


def block_hybrid_factor(L, D, U, *, chunks=None):
    """Factor for :func:`block_hybrid_factor_solve`, with the chunks :func:`.block.block_hybrid`
    chooses for this batch (with one chunk per system, :func:`.block.block_thomas_factor`'s
    factors). Returns ``(factors, info)``, ``info`` as :func:`.block.block_hybrid`."""
    nb, n, m = D.shape[0], D.shape[1], D.shape[2]
    p = _default_chunks(nb, n, 32) if chunks is None else int(chunks)
    p = max(1, min(p, n // 2))
    if n <= 1 or nb * m == 0 or (chunks is None and p == 1):
        return block_thomas_factor(L, D, U)
    dt = D.dtype
    W, a, cc, cco = (np.zeros((nb * n, m, m), dtype=dt) for _ in range(4))
    piv = np.zeros((nb * n, m), dtype=np.int64)
    Lr, Dr, Ur = (np.zeros((nb, 2 * p, m, m), dtype=dt) for _ in range(3))
    cfail = np.zeros(nb * p, dtype=np.int64)
    args = (_flat(L), _flat(D), _flat(U), n, p, _eps(dt), W, piv, a, cc, cco, _flat(Lr), _flat(Dr), _flat(Ur))
    split(_factor_chunks, nb * p, *args, cfail, work=16 * nb * n * m**3)
    interface, info_if = block_thomas_factor(Lr, Dr, Ur)
    # info: the first failing chunk's row, else the interface system's row (its row 2c is the
    # first row of chunk c, row 2c+1 the last)
    cfail = cfail.reshape(nb, p)
    chunk_info = cfail[np.arange(nb), np.argmax(cfail != 0, axis=1)]
    k = np.maximum(info_if - 1, 0)
    base, rem = n // p, n % p
    c = k // 2
    start = c * base + np.minimum(c, rem)
    stop = start + base + (c < rem)
    row = np.where(k % 2 == 0, start, stop - 1) + 1
    info = np.where(chunk_info != 0, chunk_info, np.where(info_if != 0, row, 0)).astype(np.int64)
    Lc = np.array(_flat(L), dtype=dt, copy=True)
    return (W, piv, Lc, a, cc, cco, *interface), info


def block_hybrid_factor_solve(factors, rhs):
    """Solve with the factors of :func:`block_hybrid_factor`; ``rhs, x: (B, n, m)``."""
    if len(factors) == 4:  # one chunk per system: block Thomas's factors
        return block_thomas_factor_solve(factors, rhs)
    W, piv, Lc, a, cc, cco, *interface = factors
    x = np.empty(rhs.shape, dtype=W.dtype)
    if not x.size:
        return x
    nb, n, m = rhs.shape
    p = interface[1].shape[1] // 2
    r = np.ascontiguousarray(rhs, dtype=W.dtype).reshape(nb * n, m)
    d = np.empty_like(r)
    rr = np.empty((nb, 2 * p, m), dtype=W.dtype)
    work = 4 * nb * n * m**2
    split(_solve_chunks, nb * p, Lc, W, piv, cco, n, p, r, d, _flat(rr), work=work)
    xr = block_thomas_factor_solve(tuple(interface), rr)
    split(_complete_chunks, nb * p, a, cc, n, p, d, _flat(xr), _flat(x), work=work)
    return x
