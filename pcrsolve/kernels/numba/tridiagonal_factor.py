"""Numba factorizations of scalar tridiagonal matrices by PCR and by the hybrid method.

The Thomas and pivoting factorizations live with their solvers (:mod:`.tridiagonal`,
:mod:`.pivoting`). Here the matrix part of :func:`.tridiagonal.pcr` and
:func:`.tridiagonal.hybrid` is done once and stored, and a solve replays only what the
right-hand side needs, with the same arithmetic as the one-shot solvers (the same bits for
the same batch). Padded layout with zero corners (see :mod:`pcrsolve.kernels`). Both
factorizations run one system (the hybrid: one chunk) per task on the threads of
:mod:`._threads`.

- :func:`pcr_factor` / :func:`pcr_factor_solve` -- every level's two multipliers per row:
  a solve is ``ceil(log2 n)`` passes of two multiply-adds per row.
- :func:`hybrid_factor` / :func:`hybrid_factor_solve` -- the chunks' pivots and couplings
  and the reduced system's factors: a solve is a forward and a backward pass per chunk, the
  small reduced system, and the completion of every chunk, O(n).
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit
from ._threads import split
from .tridiagonal import (
    _bad,
    _consts,
    _div,
    _pcr_update,
    hybrid_chunks,
    thomas_factor,
    thomas_factor_solve,
)

__all__ = ["hybrid_factor", "hybrid_factor_solve", "pcr_factor", "pcr_factor_solve"]


# --------------------------------------------------------------------------------------
# PCR
# --------------------------------------------------------------------------------------


@jit
def _pcr_factor_range(dl, d, du, eps, one, nan, K1, K2, bfin, info, s0, s1):
    """PCR's matrix part on the systems ``s0 .. s1-1``: ``K1[k, l, i]``, ``K2[k, l, i]`` are
    the multipliers of row ``i``'s neighbours ``i - s`` and ``i + s`` at level ``l`` (stride
    ``s = 2**l``), ``bfin[k]`` the final diagonal; ``info`` as :func:`.tridiagonal.pcr`."""
    n = d.shape[1]
    zero = one - one
    work = np.empty((6, n), dtype=d.dtype)
    for k in range(s0, s1):
        bad = n
        for i in range(n):
            if _bad(d[k, i], abs(dl[k, i]) + abs(d[k, i]) + abs(du[k, i]), eps):
                bad = min(bad, i)
        sa, sb, sc = dl[k], d[k], du[k]
        s = 1
        level = 0
        while s < n:
            ta, tb, tc = work[3 * (level % 2)], work[3 * (level % 2) + 1], work[3 * (level % 2) + 2]
            for i in range(n):
                if i >= s:
                    am, bm, cm = sa[i - s], sb[i - s], sc[i - s]
                else:
                    am, bm, cm = zero, one, zero
                if i + s < n:
                    ap, bp, cp = sa[i + s], sb[i + s], sc[i + s]
                else:
                    ap, bp, cp = zero, one, zero
                na, nb, nc, k1, k2, flag = _pcr_update(am, bm, cm, sa[i], sb[i], sc[i], ap, bp, cp, eps, nan)
                ta[i] = na
                tb[i] = nb
                tc[i] = nc
                K1[k, level, i] = k1
                K2[k, level, i] = k2
                if flag and i < bad:
                    bad = i
            sa, sb, sc = ta, tb, tc
            s *= 2
            level += 1
        for i in range(n):
            bfin[k, i] = sb[i]
        info[k] = 0 if bad == n else bad + 1


@jit
def _pcr_solve_range(K1, K2, bfin, rhs, nan, x, s0, s1):
    """Replay the levels of :func:`_pcr_factor_range` on ``rhs[s0:s1]`` (factors of batch 1 shared)."""
    nf = bfin.shape[0]
    n = rhs.shape[1]
    work = np.empty((2, n), dtype=x.dtype)
    for k in range(s0, s1):
        f = k if nf > 1 else 0
        y = rhs[k]
        s = 1
        level = 0
        while s < n:
            t = work[level % 2]
            for i in range(n):
                v = y[i]
                if i >= s:
                    v = v - K1[f, level, i] * y[i - s]
                if i + s < n:
                    v = v - K2[f, level, i] * y[i + s]
                t[i] = v
            y = t
            s *= 2
            level += 1
        for i in range(n):
            x[k, i] = _div(y[i], bfin[f, i], nan)


def pcr_factor(dl, d, du):
    """Factor ``(B, n)`` matrices for :func:`pcr_factor_solve`.

    Returns ``(factors, info)``: ``factors = (K1, K2, b)`` with the levels' multipliers
    ``(B, ceil(log2 n), n)`` and the final diagonal ``(B, n)``; ``info`` as
    :func:`.tridiagonal.pcr`.
    """
    nb, n = d.shape
    levels = max(0, (n - 1).bit_length())
    K1 = np.zeros((nb, levels, n), dtype=d.dtype)
    K2 = np.zeros((nb, levels, n), dtype=d.dtype)
    bfin = np.ones((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb and n:
        args = (dl, d, du, *_consts(d.dtype), K1, K2, bfin, info)
        split(_pcr_factor_range, nb, *args, work=10 * nb * n * levels)
    return (K1, K2, bfin), info


def pcr_factor_solve(factors, rhs):
    """Solve with the factors of :func:`pcr_factor`; ``rhs``: (B, n) -> ``x``: (B, n).

    The same arithmetic as :func:`.tridiagonal.pcr`; factors of batch 1 serve every ``rhs``.
    """
    nb, n = rhs.shape
    dtype = np.result_type(factors[2], rhs)
    x = np.empty((nb, n), dtype=dtype)
    if nb and n:
        args = (*(np.asarray(f, dtype=dtype) for f in factors), np.ascontiguousarray(rhs, dtype=dtype))
        split(_pcr_solve_range, nb, *args, dtype.type(np.nan), x, work=4 * nb * n * factors[0].shape[1])
    return x


# --------------------------------------------------------------------------------------
# Hybrid (partitioned) method
# --------------------------------------------------------------------------------------
# Chunk j of system k holds the rows [s, e) = [j n / p, (j+1) n / p), at least three. The
# factors (one entry per row unless stated): ``dl`` (a copy), ``INV`` the reciprocal
# pivots of the forward sweep, ``A`` and ``C`` its couplings to the chunk's first row and
# to the next row (as :func:`.tridiagonal._chunk_reduce` leaves them), ``INV0`` (per chunk)
# the reciprocal pivot of the chunk's first row after the backward sweep, and ``RAQ``,
# ``CPQ``, ``INVQ`` (per row of the reduced system of 2p rows) its Thomas factors.


@jit
def _chunk_factor(a, b, c, s, e, eps, one, nan, INV, A, C):
    """The matrix part of :func:`.tridiagonal._chunk_reduce` (padded layout).

    Returns ``(info, inv0, ra, rc)``: the first row ``r + 1`` with a bad pivot (or 0), and
    the first row's reciprocal pivot and couplings after the backward sweep.
    """
    n = b.shape[0]
    zero = one - one
    bad = 0
    for i in range(s, s + 2):
        ai = a[i] if i > 0 else zero
        p = b[i]
        if bad == 0 and _bad(p, abs(ai) + abs(p) + abs(c[i]), eps):
            bad = i + 1
        inv = _div(one, p, nan)
        A[i] = ai * inv
        C[i] = c[i] * inv
        INV[i] = inv
    for i in range(s + 2, e):
        ai = a[i]
        ci = c[i] if i < n - 1 else zero
        p = b[i] - ai * C[i - 1]
        if bad == 0 and _bad(p, abs(ai) + abs(b[i]) + abs(ci), eps):
            bad = i + 1
        inv = _div(one, p, nan)
        INV[i] = inv
        A[i] = -(ai * inv) * A[i - 1]
        C[i] = ci * inv
    fa = A[e - 2]
    fc = C[e - 2]
    for i in range(e - 3, s, -1):
        ci = C[i]
        fa = A[i] - ci * fa
        fc = -ci * fc
    cs = C[s]
    t = cs * fa
    p = one - t
    if bad == 0 and _bad(p, 1 + abs(t) + abs(A[s]) + abs(cs * fc), eps):
        bad = s + 1
    inv = _div(one, p, nan)
    return bad, inv, A[s] * inv, -(cs * fc) * inv


@jit
def _hybrid_factor_chunks(dl, d, du, p, eps, one, nan, INV, A, C, INV0, RA0, RC0, flags, t0, t1):
    n = d.shape[1]
    for t in range(t0, t1):
        k = t // p
        j = t % p
        bad, inv0, ra, rc = _chunk_factor(
            dl[k], d[k], du[k], j * n // p, (j + 1) * n // p, eps, one, nan, INV[k], A[k], C[k]
        )
        flags[k, j] = bad
        INV0[k, j] = inv0
        RA0[k, j] = ra
        RC0[k, j] = rc


@jit
def _hybrid_factor_reduced(n, A, C, RA0, RC0, flags, eps, one, nan, RAQ, CPQ, INVQ, info, b0, b1):
    """Thomas factors of the reduced systems of ``b0 .. b1-1`` and their ``info``."""
    p = RA0.shape[1]
    zero = one - one
    for k in range(b0, b1):
        bad = 0
        for j in range(p):
            if flags[k, j] != 0 and (bad == 0 or flags[k, j] < bad):
                bad = flags[k, j]
        bad_red = 0
        prev_c = zero
        for q in range(2 * p):
            j = q // 2
            if q % 2 == 0:
                row = j * n // p
                ra = RA0[k, j]
                rc = RC0[k, j]
            else:
                row = (j + 1) * n // p - 1
                ra = A[k, row]
                rc = C[k, row]
            piv = one - ra * prev_c
            if bad_red == 0 and _bad(piv, 1 + abs(ra) + abs(rc), eps):
                bad_red = row + 1
            inv = _div(one, piv, nan)
            prev_c = rc * inv
            RAQ[k, q] = ra
            CPQ[k, q] = prev_c
            INVQ[k, q] = inv
        if bad_red != 0 and (bad == 0 or bad_red < bad):
            bad = bad_red
        info[k] = bad


@jit
def _hybrid_solve_chunks(a, INV, C, INV0, rhs, x, RD0, t0, t1):
    """Forward and backward sweeps of the right-hand side in the chunks ``t0 .. t1-1``."""
    nf, p = INV0.shape
    n = rhs.shape[1]
    for t in range(t0, t1):
        k = t // p
        j = t % p
        f = k if nf > 1 else 0
        s = j * n // p
        e = (j + 1) * n // p
        for i in range(s, s + 2):
            x[k, i] = rhs[k, i] * INV[f, i]
        for i in range(s + 2, e):
            x[k, i] = (rhs[k, i] - a[f, i] * x[k, i - 1]) * INV[f, i]
        fx = x[k, e - 2]
        for i in range(e - 3, s, -1):
            fx = x[k, i] - C[f, i] * fx
        RD0[k, j] = (x[k, s] - C[f, s] * fx) * INV0[f, j]


@jit
def _hybrid_solve_reduced(RAQ, CPQ, INVQ, RD0, zero, x, b0, b1):
    """Solve the reduced systems of ``b0 .. b1-1`` and write the chunks' first and last rows."""
    nf, m = RAQ.shape
    p = m // 2
    n = x.shape[1]
    z = np.empty(m, dtype=x.dtype)
    for k in range(b0, b1):
        f = k if nf > 1 else 0
        prev_z = zero
        for q in range(m):
            j = q // 2
            rd = RD0[k, j] if q % 2 == 0 else x[k, (j + 1) * n // p - 1]
            prev_z = (rd - RAQ[f, q] * prev_z) * INVQ[f, q]
            z[q] = prev_z
        for q in range(m - 2, -1, -1):
            z[q] -= CPQ[f, q] * z[q + 1]
        for j in range(p):
            x[k, j * n // p] = z[2 * j]
            x[k, (j + 1) * n // p - 1] = z[2 * j + 1]


@jit
def _hybrid_complete(A, C, p, x, t0, t1):
    """Complete the chunks ``t0 .. t1-1`` from their first and last rows."""
    nf = A.shape[0]
    n = x.shape[1]
    for t in range(t0, t1):
        k = t // p
        j = t % p
        f = k if nf > 1 else 0
        s = j * n // p
        e = (j + 1) * n // p
        x0 = x[k, s]
        for i in range(e - 2, s, -1):
            x[k, i] = x[k, i] - A[f, i] * x0 - C[f, i] * x[k, i + 1]


def hybrid_factor(dl, d, du, *, chunks=None):
    """Factor ``(B, n)`` matrices for :func:`hybrid_factor_solve` (padded layout).

    ``p`` chunks per system as :func:`.tridiagonal.hybrid` chooses for this batch; with one
    chunk the factors are :func:`.tridiagonal.thomas_factor`'s. Returns ``(factors, info)``
    with ``info`` as :func:`.tridiagonal.hybrid`.
    """
    nb, n = d.shape
    p = hybrid_chunks(nb, n, chunks)
    if p == 1 or not nb:
        return thomas_factor(dl, d, du)
    consts = _consts(d.dtype)
    INV, A, C = (np.empty((nb, n), dtype=d.dtype) for _ in range(3))
    INV0, RA0, RC0 = (np.empty((nb, p), dtype=d.dtype) for _ in range(3))
    RAQ, CPQ, INVQ = (np.empty((nb, 2 * p), dtype=d.dtype) for _ in range(3))
    flags = np.zeros((nb, p), dtype=np.int64)
    info = np.zeros(nb, dtype=np.int64)
    chunk_args = (dl, d, du, p, *consts, INV, A, C, INV0, RA0, RC0, flags)
    split(_hybrid_factor_chunks, nb * p, *chunk_args, work=8 * nb * n)
    reduced_args = (n, A, C, RA0, RC0, flags, *consts, RAQ, CPQ, INVQ, info)
    split(_hybrid_factor_reduced, nb, *reduced_args, work=16 * nb * p)
    return (np.array(dl, copy=True), INV, A, C, INV0, RAQ, CPQ, INVQ), info


def hybrid_factor_solve(factors, rhs):
    """Solve with the factors of :func:`hybrid_factor`; ``rhs``: (B, n) -> ``x``: (B, n).

    The same arithmetic as :func:`.tridiagonal.hybrid` with as many chunks; factors of batch 1
    serve every ``rhs``.
    """
    if len(factors) == 3:  # one chunk per system: Thomas's factors
        return thomas_factor_solve(factors, rhs)
    nb, n = rhs.shape
    dtype = np.result_type(factors[1], rhs)
    a, INV, A, C, INV0, RAQ, CPQ, INVQ = (np.asarray(f, dtype=dtype) for f in factors)
    rhs = np.ascontiguousarray(rhs, dtype=dtype)
    x = np.empty((nb, n), dtype=dtype)
    if not (nb and n):
        return x
    p = INV0.shape[1]
    RD0 = np.empty((nb, p), dtype=dtype)
    work = 4 * nb * n
    split(_hybrid_solve_chunks, nb * p, a, INV, C, INV0, rhs, x, RD0, work=work)
    split(_hybrid_solve_reduced, nb, RAQ, CPQ, INVQ, RD0, dtype.type(0), x, work=8 * nb * p)
    split(_hybrid_complete, nb * p, A, C, p, x, work=work)
    return x
