"""Numba kernels for batched scalar tridiagonal systems without pivoting.

Entry points (see :mod:`pcrsolve.kernels` for the contract; ``B`` systems of ``n`` rows,
padded layout with zero corners ``dl[:, 0] == 0`` and ``du[:, n-1] == 0``):

- :func:`thomas` — sequential elimination, four systems at a time, ranges of systems on the
  threads of :mod:`._threads` (fewer than four systems: one plain loop).
- :func:`thomas_factor` / :func:`thomas_factor_solve` — the same elimination done once and
  reused for many right-hand sides.
- :func:`pcr` — Parallel Cyclic Reduction, ceil(log2 n) levels with two work buffers;
  parallel over the batch, or over the rows of each level when the batch is small.
- :func:`hybrid` — partitioned: chunks eliminated in parallel, the reduced system of the
  chunks' first and last rows solved sequentially (it is small), chunks completed in
  parallel.

The entry points are plain Python: they allocate the outputs and call the ``@jit`` kernels.
Kernels never raise and never write into their inputs. ``info[b]`` is ``r + 1`` for a row
``r`` whose pivot ``p`` is zero, not finite or tiny, ``|p| <= eps * scale`` with ``scale``
the sum of the magnitudes of that row's entries (the modified row's entries and the terms
that cancelled to form ``p`` when the row was transformed); 0 otherwise. After a
breakdown ``x`` holds whatever the arithmetic produced (possibly inf or NaN).
"""

from __future__ import annotations

import numba
import numpy as np

from ..._jit import jit, prange
from ._threads import split

__all__ = ["hybrid", "pcr", "thomas", "thomas_factor", "thomas_factor_solve"]

#: Element growth above which :func:`thomas` reports ``info < 0`` (see ``_thomas_system``).
GROWTH_LIMIT = 64.0
#: Rows per chunk below which :func:`hybrid` does not split a system further by default.
MIN_CHUNK_ROWS = 32
#: Chunks (summed over the batch) per thread that :func:`hybrid` aims for by default.
CHUNKS_PER_THREAD = 4
#: :func:`pcr` parallelizes over the rows of each level when the batch has fewer systems
#: than threads and the systems have at least this many rows.
PCR_ROWS_MIN_N = 4096


def _consts(dtype):
    """``(eps, one, nan)``: machine epsilon of ``dtype``'s real part, 1 and NaN of ``dtype``.

    NumPy scalars, so that the kernels compute in the dtype of the data (a Python ``1``
    would promote float32 arithmetic to float64).
    """
    dtype = np.dtype(dtype)
    return np.finfo(dtype).eps, dtype.type(1), dtype.type(np.nan)


@jit(inline=True)
def _bad(p, scale, eps):
    """True when the pivot ``p`` is zero, not finite, or ``|p| <= eps * scale``."""
    ap = abs(p)
    return not (ap > eps * scale and ap < np.inf)


@jit(inline=True)
def _div(a, b, nan):
    """``a / b``, or ``nan`` when ``b == 0`` (Numba raises on a complex division by zero)."""
    return a / b if b != 0 else nan


# --------------------------------------------------------------------------------------
# Thomas
# --------------------------------------------------------------------------------------


@jit
def _thomas_system(a, b, c, r, lo, eps, one, nan, cp, x):
    """Solve one system; ``cp`` is scratch for the modified super-diagonal. Returns info.

    ``a``, ``c`` in either layout: ``lo = n - len(a)`` is 1 for the LAPACK layout (``n-1``
    entries), 0 for the padded one, whose ignored corners are never read. Besides breakdowns
    (``info > 0``) it certifies accuracy: row ``i`` of ``|L||U|`` is
    ``|a_i|, |a_i cp_{i-1}| + |p_i|, |c_i|``, so the backward error is at most a few eps
    times ``1 + max_i |a_i cp_{i-1}| / (|a_i| + |b_i| + |c_i|)`` (Higham, ch. 9). When that
    growth exceeds ``GROWTH_LIMIT`` at row ``i`` the result may be inaccurate and
    ``info = -(i + 1)``. Diagonally dominant, SPD and M-matrices have growth at most 1.
    """
    n = b.shape[0]
    if n == 0:
        return 0
    zero = one - one
    bad = 0
    grown = 0
    c0 = c[0] if n > 1 else zero
    p = b[0]
    if _bad(p, abs(b[0]) + abs(c0), eps):
        bad = 1
    inv = _div(one, p, nan)
    cp[0] = c0 * inv
    x[0] = r[0] * inv
    for i in range(1, n):
        ai = a[i - lo]
        ci = c[i] if i < n - 1 else zero
        t = ai * cp[i - 1]
        p = b[i] - t
        scale = abs(ai) + abs(b[i]) + abs(ci)
        if bad == 0 and _bad(p, scale, eps):
            bad = i + 1
        if grown == 0 and abs(t) > GROWTH_LIMIT * scale:
            grown = i + 1
        inv = _div(one, p, nan)
        cp[i] = ci * inv
        x[i] = (r[i] - ai * x[i - 1]) * inv
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]
    return bad if bad else -grown


@jit
def _thomas_row(ai, b, ci, r, s, i, cp, x, last, y, bad, grown, eps, one, nan):
    """Forward elimination of row ``i`` of system ``s``, as in :func:`_thomas_system`.

    ``ai``, ``ci`` are the row's off-diagonal entries (zero for a corner); ``last`` and
    ``y`` the previous row's modified super-diagonal and right-hand side (zero before row
    0); returns them updated with the running ``bad`` and ``grown`` rows.
    """
    t = ai * last
    p = b[s, i] - t
    scale = abs(ai) + abs(b[s, i]) + abs(ci)
    if bad == 0 and _bad(p, scale, eps):
        bad = i + 1
    if grown == 0 and abs(t) > GROWTH_LIMIT * scale:
        grown = i + 1
    inv = _div(one, p, nan)
    last = ci * inv
    y = (r[s, i] - ai * y) * inv
    cp[i] = last
    x[s, i] = y
    return last, y, bad, grown


@jit
def _thomas4(dl, d, du, rhs, s0, eps, one, nan, cp, x, info):
    """Thomas on the four systems ``s0 .. s0+3`` at once, as :func:`_thomas_system` does each.

    A row's division waits on the previous row's, so one system at a time leaves the divider
    idle; four independent chains keep it busy (measured 1.6x on 4096 x 256). ``cp``:
    (4, n) scratch.
    """
    n = d.shape[1]
    lo = n - dl.shape[1]
    zero = one - one
    s1, s2, s3 = s0 + 1, s0 + 2, s0 + 3
    l0 = l1 = l2 = l3 = zero
    y0 = y1 = y2 = y3 = zero
    # int64 zeros, not literals: every call of _thomas_row then has one signature
    k0 = k1 = k2 = k3 = g0 = g1 = g2 = g3 = row0 = np.int64(0)
    # Row 0 (whose sub-diagonal is an ignored corner) and row e = n-1 (whose super-diagonal
    # is) are peeled off the loop, which then reads either layout without a branch.
    e = n - 1
    c = du[s0, 0] if e > 0 else zero
    l0, y0, k0, g0 = _thomas_row(zero, d, c, rhs, s0, row0, cp[0], x, l0, y0, k0, g0, eps, one, nan)
    c = du[s1, 0] if e > 0 else zero
    l1, y1, k1, g1 = _thomas_row(zero, d, c, rhs, s1, row0, cp[1], x, l1, y1, k1, g1, eps, one, nan)
    c = du[s2, 0] if e > 0 else zero
    l2, y2, k2, g2 = _thomas_row(zero, d, c, rhs, s2, row0, cp[2], x, l2, y2, k2, g2, eps, one, nan)
    c = du[s3, 0] if e > 0 else zero
    l3, y3, k3, g3 = _thomas_row(zero, d, c, rhs, s3, row0, cp[3], x, l3, y3, k3, g3, eps, one, nan)
    for i in range(1, e):
        l0, y0, k0, g0 = _thomas_row(
            dl[s0, i - lo], d, du[s0, i], rhs, s0, i, cp[0], x, l0, y0, k0, g0, eps, one, nan
        )
        l1, y1, k1, g1 = _thomas_row(
            dl[s1, i - lo], d, du[s1, i], rhs, s1, i, cp[1], x, l1, y1, k1, g1, eps, one, nan
        )
        l2, y2, k2, g2 = _thomas_row(
            dl[s2, i - lo], d, du[s2, i], rhs, s2, i, cp[2], x, l2, y2, k2, g2, eps, one, nan
        )
        l3, y3, k3, g3 = _thomas_row(
            dl[s3, i - lo], d, du[s3, i], rhs, s3, i, cp[3], x, l3, y3, k3, g3, eps, one, nan
        )
    if e > 0:
        l0, y0, k0, g0 = _thomas_row(
            dl[s0, e - lo], d, zero, rhs, s0, e, cp[0], x, l0, y0, k0, g0, eps, one, nan
        )
        l1, y1, k1, g1 = _thomas_row(
            dl[s1, e - lo], d, zero, rhs, s1, e, cp[1], x, l1, y1, k1, g1, eps, one, nan
        )
        l2, y2, k2, g2 = _thomas_row(
            dl[s2, e - lo], d, zero, rhs, s2, e, cp[2], x, l2, y2, k2, g2, eps, one, nan
        )
        l3, y3, k3, g3 = _thomas_row(
            dl[s3, e - lo], d, zero, rhs, s3, e, cp[3], x, l3, y3, k3, g3, eps, one, nan
        )
    for i in range(n - 2, -1, -1):
        y0 = x[s0, i] - cp[0, i] * y0
        y1 = x[s1, i] - cp[1, i] * y1
        y2 = x[s2, i] - cp[2, i] * y2
        y3 = x[s3, i] - cp[3, i] * y3
        x[s0, i] = y0
        x[s1, i] = y1
        x[s2, i] = y2
        x[s3, i] = y3
    info[s0] = k0 if k0 else -g0
    info[s1] = k1 if k1 else -g1
    info[s2] = k2 if k2 else -g2
    info[s3] = k3 if k3 else -g3


@jit
def _thomas_each(dl, d, du, rhs, eps, one, nan, x, info, s0, s1):
    """The systems ``s0 .. s1-1`` one after another."""
    n = d.shape[1]
    lo = n - dl.shape[1]
    cp = np.empty(n, dtype=d.dtype)
    for k in range(s0, s1):
        info[k] = _thomas_system(dl[k], d[k], du[k], rhs[k], lo, eps, one, nan, cp, x[k])


@jit
def _thomas_range(dl, d, du, rhs, eps, one, nan, x, info, s0, s1):
    """The systems ``s0 .. s1-1``: four at a time (:func:`_thomas4`), the rest one at a time."""
    cp = np.empty((4, d.shape[1]), dtype=d.dtype)
    s = s0
    while s + 4 <= s1:
        _thomas4(dl, d, du, rhs, s, eps, one, nan, cp, x, info)
        s += 4
    _thomas_each(dl, d, du, rhs, eps, one, nan, x, info, s, s1)


def thomas(dl, d, du, rhs):
    """Batched Thomas algorithm (LU without pivoting), one system per thread.

    Parameters
    ----------
    dl, d, du, rhs : (B, n) ndarray
        Sub-, main and super-diagonal and right-hand side. The off-diagonals may also come
        in LAPACK layout, ``(B, n-1)`` (``thomas.any_layout``); the corners of padded ones
        are ignored, whatever they hold.

    Returns
    -------
    x : (B, n) ndarray
    info : (B,) int64 ndarray
        ``r + 1`` for the first row ``r`` with a zero, non-finite or tiny pivot;
        ``-(r + 1)`` when the elimination went through but row ``r`` showed element
        growth above ``GROWTH_LIMIT`` (the result may be inaccurate); else 0.
    """
    nb, n = d.shape
    x = np.empty((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb and n:
        args = (dl, d, du, rhs, *_consts(d.dtype), x, info)
        if nb < 4:  # no lanes of _thomas4 to fill: a first call compiles only the plain loop
            _thomas_each(*args, 0, nb)
        else:
            split(_thomas_range, nb, *args, work=8 * nb * n, align=4)
    return x, info


@jit
def _factor_system(a, b, c, eps, one, nan, inv, cp):
    n = b.shape[0]
    if n == 0:
        return 0
    bad = 0
    grown = 0
    p = b[0]
    if _bad(p, abs(b[0]) + abs(c[0]), eps):
        bad = 1
    inv[0] = _div(one, p, nan)
    cp[0] = c[0] * inv[0]
    for i in range(1, n):
        ai = a[i]
        t = ai * cp[i - 1]
        p = b[i] - t
        scale = abs(ai) + abs(b[i]) + abs(c[i])
        if bad == 0 and _bad(p, scale, eps):
            bad = i + 1
        if grown == 0 and abs(t) > GROWTH_LIMIT * scale:
            grown = i + 1
        inv[i] = _div(one, p, nan)
        cp[i] = c[i] * inv[i]
    return bad if bad else -grown  # growth as in _thomas_system


@jit(parallel=True)
def _factor_kernel(dl, d, du, eps, one, nan, inv, cp, info):
    nb = d.shape[0]
    for k in prange(nb):
        info[k] = _factor_system(dl[k], d[k], du[k], eps, one, nan, inv[k], cp[k])


@jit
def _factor_solve_system(a, inv, cp, r, x):
    n = r.shape[0]
    if n == 0:
        return
    x[0] = r[0] * inv[0]
    for i in range(1, n):
        x[i] = (r[i] - a[i] * x[i - 1]) * inv[i]
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]


@jit(parallel=True)
def _factor_solve_kernel(a, inv, cp, rhs, x):
    nb = rhs.shape[0]
    step = 0 if a.shape[0] == 1 else 1  # factors of one system, shared
    for k in prange(nb):
        f = k * step
        _factor_solve_system(a[f], inv[f], cp[f], rhs[k], x[k])


thomas.certifies_accuracy = True  # info < 0 flags growth: no backward-error pass needed
thomas.any_layout = True  # reads LAPACK-layout off-diagonals in place: no padded copies


def thomas_factor(dl, d, du):
    """Factor batched tridiagonal matrices for :func:`thomas_factor_solve`.

    Returns
    -------
    factors : tuple of three (B, n) ndarrays
        ``(dl, 1 / pivots, modified super-diagonal)`` — ``dl`` is a copy, so later changes
        to the caller's array do not affect the factorization.
    info : (B,) int64 ndarray
        As for :func:`thomas`, growth (``info < 0``) included.
    """
    nb, n = d.shape
    inv = np.empty((nb, n), dtype=d.dtype)
    cp = np.empty((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb and n:
        _factor_kernel(dl, d, du, *_consts(d.dtype), inv, cp, info)
    return (np.array(dl, copy=True), inv, cp), info


thomas_factor.certifies_accuracy = True  # its info < 0 flags growth as thomas's does


def thomas_factor_solve(factors, rhs):
    """Solve with factors from :func:`thomas_factor`; ``rhs``: (B, n) -> ``x``: (B, n).

    The result is bit-for-bit the one :func:`thomas` gives. Factors of a single system
    (batch 1) are also accepted with a batch of right-hand sides.
    """
    a, inv, cp = factors
    nb, n = rhs.shape
    x = np.empty((nb, n), dtype=np.result_type(inv, rhs))
    if nb and n:
        _factor_solve_kernel(a, inv, cp, rhs, x)
    return x


# --------------------------------------------------------------------------------------
# Parallel Cyclic Reduction
# --------------------------------------------------------------------------------------


@jit
def _pcr_update(am, bm, cm, a, b, c, ap, bp, cp, eps, nan):
    """Row ``(a, b, c)`` eliminates its neighbours ``(am, bm, cm)`` above and ``(ap, bp, cp)``
    below; an absent neighbour is passed as ``(0, 1, 0)``.

    Returns the new row, the multipliers ``k1 = a / bm`` and ``k2 = c / bp`` (the right-hand
    side becomes ``d - k1 * dm - k2 * dp``) and whether the new diagonal entry is a bad pivot,
    against the new row's entries and the terms that were subtracted from ``b`` to form it.
    """
    k1 = _div(a, bm, nan)
    k2 = _div(c, bp, nan)
    t1 = k1 * cm
    t2 = k2 * ap
    na = -k1 * am
    nb = b - t1 - t2
    nc = -k2 * cp
    bad = _bad(nb, abs(b) + abs(t1) + abs(t2) + abs(na) + abs(nc), eps)
    return na, nb, nc, k1, k2, bad


@jit(inline=True)
def _pcr_row(sa, sb, sc, sd, ta, tb, tc, td, i, s, eps, one, nan):
    """Row ``i`` of a PCR level at stride ``s``: reads buffer ``s*``, writes ``t*``.

    Out-of-range neighbours act as identity rows. Returns whether the new pivot is bad.
    """
    zero = one - one
    n = sb.shape[0]
    if i >= s:
        am, bm, cm, dm = sa[i - s], sb[i - s], sc[i - s], sd[i - s]
    else:
        am, bm, cm, dm = zero, one, zero, zero
    if i + s < n:
        ap, bp, cp, dp = sa[i + s], sb[i + s], sc[i + s], sd[i + s]
    else:
        ap, bp, cp, dp = zero, one, zero, zero
    na, nb, nc, k1, k2, flag = _pcr_update(am, bm, cm, sa[i], sb[i], sc[i], ap, bp, cp, eps, nan)
    ta[i] = na
    tb[i] = nb
    tc[i] = nc
    td[i] = sd[i] - k1 * dm - k2 * dp
    return flag


@jit
def _pcr_level(sa, sb, sc, sd, ta, tb, tc, td, s, eps, one, nan):
    """One PCR level at stride ``s`` from buffer ``s*`` into ``t*``, serially.

    Returns the smallest row with a bad new pivot, or ``n``.
    """
    n = sb.shape[0]
    bad = n
    for i in range(n):
        if _pcr_row(sa, sb, sc, sd, ta, tb, tc, td, i, s, eps, one, nan) and i < bad:
            bad = i
    return bad


@jit
def _pcr_system(a, b, c, r, eps, one, nan, work, x):
    """PCR on one system, serially. ``work``: (8, n) scratch (two buffers). Returns info."""
    n = b.shape[0]
    bad = n
    for i in range(n):
        if _bad(b[i], abs(a[i]) + abs(b[i]) + abs(c[i]), eps):
            bad = min(bad, i)
    if n == 1:
        x[0] = _div(r[0], b[0], nan)
        return 0 if bad == n else bad + 1
    w0a, w0b, w0c, w0d = work[0], work[1], work[2], work[3]
    w1a, w1b, w1c, w1d = work[4], work[5], work[6], work[7]
    bad = min(bad, _pcr_level(a, b, c, r, w0a, w0b, w0c, w0d, 1, eps, one, nan))
    s = 2
    cur = 0
    while s < n:
        if cur == 0:
            bad = min(bad, _pcr_level(w0a, w0b, w0c, w0d, w1a, w1b, w1c, w1d, s, eps, one, nan))
        else:
            bad = min(bad, _pcr_level(w1a, w1b, w1c, w1d, w0a, w0b, w0c, w0d, s, eps, one, nan))
        cur = 1 - cur
        s *= 2
    fb = w0b if cur == 0 else w1b
    fd = w0d if cur == 0 else w1d
    for i in range(n):
        x[i] = _div(fd[i], fb[i], nan)
    return 0 if bad == n else bad + 1


@jit(parallel=True)
def _pcr_batch_kernel(dl, d, du, rhs, eps, one, nan, x, info):
    nb, n = d.shape
    for k in prange(nb):
        work = np.empty((8, n), dtype=d.dtype)
        info[k] = _pcr_system(dl[k], d[k], du[k], rhs[k], eps, one, nan, work, x[k])


@jit(parallel=True)
def _pcr_rows_level(sa, sb, sc, sd, ta, tb, tc, td, s, eps, one, nan):
    """:func:`_pcr_level` with the rows in parallel."""
    n = sb.shape[0]
    bad = n
    for i in prange(n):
        flag = _pcr_row(sa, sb, sc, sd, ta, tb, tc, td, i, s, eps, one, nan)
        bad = min(bad, i if flag else n)
    return bad


@jit(parallel=True)
def _pcr_rows_start(a, b, c, r, eps, ta, tb, tc, td):
    """Check the original pivots and copy the system into the first buffer, in parallel."""
    n = b.shape[0]
    bad = n
    for i in prange(n):
        bad = min(bad, i if _bad(b[i], abs(a[i]) + abs(b[i]) + abs(c[i]), eps) else n)
        ta[i] = a[i]
        tb[i] = b[i]
        tc[i] = c[i]
        td[i] = r[i]
    return bad


@jit(parallel=True)
def _pcr_rows_finish(b, r, nan, x):
    for i in prange(b.shape[0]):
        x[i] = _div(r[i], b[i], nan)


@jit
def _pcr_rows_kernel(dl, d, du, rhs, eps, one, nan, work, x, info):
    """PCR with the rows of every level in parallel, the systems one after another."""
    nb, n = d.shape
    w0a, w0b, w0c, w0d = work[0], work[1], work[2], work[3]
    w1a, w1b, w1c, w1d = work[4], work[5], work[6], work[7]
    for k in range(nb):
        bad = _pcr_rows_start(dl[k], d[k], du[k], rhs[k], eps, w0a, w0b, w0c, w0d)
        s = 1
        cur = 0
        while s < n:
            if cur == 0:
                bad = min(bad, _pcr_rows_level(w0a, w0b, w0c, w0d, w1a, w1b, w1c, w1d, s, eps, one, nan))
            else:
                bad = min(bad, _pcr_rows_level(w1a, w1b, w1c, w1d, w0a, w0b, w0c, w0d, s, eps, one, nan))
            cur = 1 - cur
            s *= 2
        if cur == 0:
            _pcr_rows_finish(w0b, w0d, nan, x[k])
        else:
            _pcr_rows_finish(w1b, w1d, nan, x[k])
        info[k] = 0 if bad == n else bad + 1


def pcr(dl, d, du, rhs, *, over=None):
    """Batched Parallel Cyclic Reduction: ceil(log2 n) levels, two work buffers.

    Parameters
    ----------
    dl, d, du, rhs : (B, n) ndarray
        As for :func:`thomas`.
    over : {None, "batch", "rows"}, optional
        What the threads share out: the systems (``"batch"``; each thread reduces whole
        systems, with O(n) scratch each) or the rows of every level (``"rows"``; the systems
        one after another, for a few large systems). ``None`` picks ``"rows"`` when there
        are fewer systems than threads and ``n >= PCR_ROWS_MIN_N``.

    Returns
    -------
    x : (B, n) ndarray
    info : (B,) int64 ndarray
        ``r + 1`` for the smallest row ``r`` whose diagonal entry, at any level, was a bad
        pivot (zero, non-finite, or tiny against the row's entries at that level), else 0.
    """
    nb, n = d.shape
    x = np.empty((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if not (nb and n):
        return x, info
    if over is None:
        over = "rows" if nb < numba.get_num_threads() and n >= PCR_ROWS_MIN_N else "batch"
    if over == "rows":
        work = np.empty((8, n), dtype=d.dtype)
        _pcr_rows_kernel(dl, d, du, rhs, *_consts(d.dtype), work, x, info)
    else:
        _pcr_batch_kernel(dl, d, du, rhs, *_consts(d.dtype), x, info)
    return x, info


# --------------------------------------------------------------------------------------
# Hybrid (partitioned) method
# --------------------------------------------------------------------------------------


@jit
def _chunk_reduce(a, b, c, r, lo, s, e, eps, one, nan, A, C, X, row0):
    """Eliminate the interior of chunk ``[s, e)`` (``e - s >= 3``); returns info (global row).

    ``a``, ``c`` in either layout (``lo`` as in :func:`_thomas_system`); the corners, row 0's
    ``a`` and row ``n-1``'s ``c``, are never read.

    Forward sweep (rows normalized to a unit diagonal): row ``i > s`` becomes
    ``A[i] x[s] + x[i] + C[i] x[i+1] = X[i]``; row ``s`` is ``A[s] x[s-1] + x[s] + C[s] x[s+1]
    = X[s]``. The last row ``e-1`` is then already in its final form, coupling only to
    ``x[s]`` and ``x[e]``. A backward sweep (scalars only, nothing stored) expresses row
    ``s+1`` through ``x[s]`` and ``x[e-1]`` and eliminates ``x[s+1]`` from row ``s``, whose
    final form ``row0 = (a, c, rhs)`` reads ``a x[s-1] + x[s] + c x[e-1] = rhs``.
    """
    n = b.shape[0]
    zero = one - one
    bad = 0
    for i in range(s, s + 2):  # i <= n - 2: the chunk has at least three rows
        ai = a[i - lo] if i > 0 else zero
        p = b[i]
        if bad == 0 and _bad(p, abs(ai) + abs(p) + abs(c[i]), eps):
            bad = i + 1
        inv = _div(one, p, nan)
        A[i] = ai * inv
        C[i] = c[i] * inv
        X[i] = r[i] * inv
    for i in range(s + 2, e):  # i >= 2
        ai = a[i - lo]
        ci = c[i] if i < n - 1 else zero
        p = b[i] - ai * C[i - 1]
        if bad == 0 and _bad(p, abs(ai) + abs(b[i]) + abs(ci), eps):
            bad = i + 1
        inv = _div(one, p, nan)
        X[i] = (r[i] - ai * X[i - 1]) * inv
        A[i] = -(ai * inv) * A[i - 1]
        C[i] = ci * inv
    # Row e-2 is final (couples x[s] and x[e-1]); walk up to row s+1.
    fa = A[e - 2]
    fc = C[e - 2]
    fx = X[e - 2]
    for i in range(e - 3, s, -1):
        ci = C[i]
        fx = X[i] - ci * fx
        fa = A[i] - ci * fa
        fc = -ci * fc
    cs = C[s]
    t = cs * fa
    p = one - t
    if bad == 0 and _bad(p, 1 + abs(t) + abs(A[s]) + abs(cs * fc), eps):
        bad = s + 1
    inv = _div(one, p, nan)
    row0[0] = A[s] * inv
    row0[1] = -(cs * fc) * inv
    row0[2] = (X[s] - cs * fx) * inv
    return bad


@jit(parallel=True)
def _hybrid_kernel(dl, d, du, rhs, p, eps, one, nan, A, C, x, rows0, flags, info):
    nb, n = d.shape
    lo = n - dl.shape[1]
    # 1. every chunk of every system, in parallel
    for t in prange(nb * p):
        k = t // p
        j = t % p
        s = j * n // p
        e = (j + 1) * n // p
        flags[k, j] = _chunk_reduce(
            dl[k], d[k], du[k], rhs[k], lo, s, e, eps, one, nan, A[k], C[k], x[k], rows0[k, j]
        )
    # 2. the reduced system of the 2p interface rows of each system (unit diagonal):
    #    row 2j   (first row of chunk j): rows0[k, j]            couples z[2j-1], z[2j+1]
    #    row 2j+1 (last row of chunk j):  A, C, x at row e_j - 1 couple z[2j], z[2j+2]
    m = 2 * p
    for k in prange(nb):
        cp = np.zeros(m, dtype=d.dtype)
        z = np.zeros(m, dtype=d.dtype)
        bad = 0
        for j in range(p):
            if flags[k, j] != 0 and (bad == 0 or flags[k, j] < bad):
                bad = flags[k, j]
        bad_red = 0
        prev_c = cp[0]
        prev_z = z[0]
        for q in range(m):
            j = q // 2
            if q % 2 == 0:
                row = j * n // p
                ra = rows0[k, j, 0]
                rc = rows0[k, j, 1]
                rd = rows0[k, j, 2]
            else:
                row = (j + 1) * n // p - 1
                ra = A[k, row]
                rc = C[k, row]
                rd = x[k, row]
            piv = one - ra * prev_c
            if bad_red == 0 and _bad(piv, 1 + abs(ra) + abs(rc), eps):
                bad_red = row + 1
            inv = _div(one, piv, nan)
            prev_c = rc * inv
            prev_z = (rd - ra * prev_z) * inv
            cp[q] = prev_c
            z[q] = prev_z
        for q in range(m - 2, -1, -1):
            z[q] -= cp[q] * z[q + 1]
        for j in range(p):
            x[k, j * n // p] = z[2 * j]
            x[k, (j + 1) * n // p - 1] = z[2 * j + 1]
        if bad_red != 0 and (bad == 0 or bad_red < bad):
            bad = bad_red
        info[k] = bad
    # 3. complete every chunk from its two interface values, in parallel
    for t in prange(nb * p):
        k = t // p
        j = t % p
        s = j * n // p
        e = (j + 1) * n // p
        xk = x[k]
        Ak = A[k]
        Ck = C[k]
        x0 = xk[s]
        for i in range(e - 2, s, -1):
            xk[i] = xk[i] - Ak[i] * x0 - Ck[i] * xk[i + 1]


def hybrid_chunks(nb, n, chunks=None):
    """The number of chunks per system :func:`hybrid` uses (1 means plain Thomas)."""
    if chunks is None:
        threads = numba.get_num_threads()
        chunks = -(-CHUNKS_PER_THREAD * threads // max(nb, 1))
        chunks = min(chunks, n // MIN_CHUNK_ROWS)
    return max(1, min(int(chunks), n // 3))


def hybrid(dl, d, du, rhs, *, chunks=None):
    """Partitioned solve: chunks by Thomas-like sweeps in parallel, interfaces by Thomas.

    Each system is split into ``p`` chunks of at least three rows. In parallel over all
    (system, chunk) pairs, each chunk's interior is eliminated so that every row depends
    only on the chunk's first and last unknowns; the reduced tridiagonal system of those
    ``2p`` unknowns is solved (sequentially: it is small); then all chunks are completed in
    parallel. Work O(n), depth O(n/p + p).

    Parameters
    ----------
    dl, d, du, rhs : (B, n) ndarray
        As for :func:`thomas` (either layout of the off-diagonals).
    chunks : int, optional
        Chunks per system. By default about ``CHUNKS_PER_THREAD`` chunks per thread over the
        whole batch, each of at least ``MIN_CHUNK_ROWS`` rows — so a large batch gets one
        chunk per system, which is :func:`thomas`. Always capped at ``n // 3``.

    Returns
    -------
    x : (B, n) ndarray
    info : (B,) int64 ndarray
        ``r + 1`` for the smallest row ``r`` that met a bad pivot (in its chunk's sweeps or
        in the reduced system), else 0.
    """
    nb, n = d.shape
    p = hybrid_chunks(nb, n, chunks)
    if p == 1 or not nb:
        return thomas(dl, d, du, rhs)
    x = np.empty((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    A = np.empty((nb, n), dtype=d.dtype)
    C = np.empty((nb, n), dtype=d.dtype)
    rows0 = np.empty((nb, p, 3), dtype=d.dtype)
    flags = np.zeros((nb, p), dtype=np.int64)
    _hybrid_kernel(dl, d, du, rhs, p, *_consts(d.dtype), A, C, x, rows0, flags, info)
    return x, info


hybrid.any_layout = True  # as thomas
