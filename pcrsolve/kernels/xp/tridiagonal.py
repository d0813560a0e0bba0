"""Scalar tridiagonal kernels written against an array namespace ``xp``.

Every kernel follows :mod:`pcrsolve.kernels`: inputs ``dl, d, du, rhs`` of shape ``(B, n)``
in the padded layout with zero corners (``dl[:, 0] == 0``, ``du[:, n-1] == 0``), one dtype,
never modified; the result is ``(x, info)`` with ``info`` an ``int64`` array of shape
``(B,)``. Row ``k`` of the system reads::

    dl[:, k] * x[:, k-1] + d[:, k] * x[:, k] + du[:, k] * x[:, k+1] == rhs[:, k]

Methods:

- :func:`thomas` -- Thomas elimination, a loop over rows, each step one vectorized operation
  over the batch (:func:`thomas_factor` / :func:`thomas_factor_solve` split it in two).
- :func:`pcr` -- Parallel Cyclic Reduction: ``ceil(log2 n)`` levels of whole-array operations.
- :func:`hybrid` -- the partition method: chunks eliminated sequentially all at once, the
  reduced system of chunk interfaces solved by :func:`pcr`, chunks completed in one pass.
- :func:`gtsv` -- LAPACK ``?gtsv`` partial pivoting, row interchanges decided per batch
  element with ``xp.where`` (:func:`gttrf` / :func:`gttrs` split it in two).

For the non-pivoting methods ``info`` is ``r + 1`` for the first row ``r`` whose pivot is zero,
not finite, or tiny (``|p| <= eps * (|dl[r]| + |d[r]| + |du[r]|)``, the row's own scale at the
time of the division); for the pivoting methods ``info`` is ``r + 1`` for the first row with
``U[r, r] == 0`` exactly, as in LAPACK. Either way ``x`` is then garbage, but computed without
raising and without dividing by zero (bad pivots are replaced by one).

Only Array API standard functions of ``xp`` are used, with no host synchronisation, so the
kernels run unchanged on CuPy, NumPy and ``array_api_strict``. Python loops run over rows,
PCR levels or chunk rows, never over batch elements.
"""

from __future__ import annotations

import math
from typing import Any

from ._common import (
    bad_pivot,
    device,
    eps,
    first_bad_row,
    info_zeros,
    pad,
    safe_divisor,
    shift,
    update_info,
)

__all__ = [
    "gtsv",
    "gttrf",
    "gttrs",
    "hybrid",
    "hybrid_factor",
    "hybrid_factor_solve",
    "pcr",
    "pcr_factor",
    "pcr_factor_solve",
    "thomas",
    "thomas_factor",
    "thomas_factor_solve",
]


# ---------------------------------------------------------------------------- helpers


def _columns(a: Any) -> list[Any]:
    """The columns ``a[:, k]`` of a ``(B, n)`` array, as a list of ``(B,)`` arrays."""
    return [a[:, k] for k in range(a.shape[1])]


def _stack(xp: Any, cols: list[Any], like: Any, dtype: Any = None) -> Any:
    """Stack ``(B,)`` columns into ``(B, n)``; an empty list gives ``(B, 0)`` shaped ``like``."""
    if cols:
        return xp.stack(cols, axis=1)
    dtype = like.dtype if dtype is None else dtype
    return xp.zeros(like.shape, dtype=dtype, device=device(like))


def _scale(xp: Any, dl: Any, d: Any, du: Any) -> Any:
    """Row scale ``|dl| + |d| + |du|`` (real dtype) for the tiny-pivot test."""
    return xp.abs(dl) + xp.abs(d) + xp.abs(du)


def _no_rows(xp: Any, d: Any, rhs: Any) -> tuple[Any, Any]:
    """The result for ``n == 0``: an empty ``x`` and a zero ``info``."""
    return xp.zeros_like(rhs), info_zeros(xp, d)


# ---------------------------------------------------------------------------- Thomas


def _thomas_eliminate(xp: Any, dl: Any, d: Any, du: Any) -> tuple[list, list, Any]:
    """Forward elimination of the matrix: pivots ``p`` and ``du / p`` per row, and ``info``.

    ``p[k] = d[k] - dl[k] * cp[k-1]``, ``cp[k] = du[k] / p[k]``; bad pivots are flagged in
    ``info`` and replaced by one.
    """
    n = d.shape[1]
    tiny = eps(xp, d.dtype)
    scale = _scale(xp, dl, d, du)
    info = info_zeros(xp, d)
    piv: list[Any] = []
    cp: list[Any] = []
    for k in range(n):
        p = d[:, k] if k == 0 else d[:, k] - dl[:, k] * cp[k - 1]
        bad = bad_pivot(xp, p, scale[:, k], tiny)
        info = update_info(xp, info, bad, k)
        p = safe_divisor(xp, p, bad)
        piv.append(p)
        cp.append(du[:, k] / p)
    return piv, cp, info


def _thomas_substitute(xp: Any, dl: list, piv: list, cp: list, rhs: Any) -> Any:
    """Forward elimination of ``rhs`` then back substitution, from column lists."""
    n = len(piv)
    z: list[Any] = []
    for k in range(n):
        zk = rhs[:, k] if k == 0 else rhs[:, k] - dl[k] * z[k - 1]
        z.append(zk / piv[k])
    x = z[:]
    for k in range(n - 2, -1, -1):
        x[k] = z[k] - cp[k] * x[k + 1]
    return xp.stack(x, axis=1)


def thomas(xp: Any, dl: Any, d: Any, du: Any, rhs: Any) -> tuple[Any, Any]:
    """Solve ``(B, n)`` tridiagonal systems by Thomas elimination (no pivoting).

    A loop over the ``n`` rows, each step one vectorized operation over the batch; O(n)
    work and depth ``2n``. Stable for diagonally dominant, SPD and M-matrix systems.

    Returns ``(x, info)``: ``x`` of shape ``(B, n)``, ``info`` ``(B,)`` int64 -- ``r + 1`` for
    the first row with a zero, non-finite or tiny pivot, else 0.
    """
    if d.shape[1] == 0:
        return _no_rows(xp, d, rhs)
    piv, cp, info = _thomas_eliminate(xp, dl, d, du)
    return _thomas_substitute(xp, _columns(dl), piv, cp, rhs), info


def thomas_factor(xp: Any, dl: Any, d: Any, du: Any) -> tuple[tuple[Any, Any, Any], Any]:
    """Factor ``(B, n)`` tridiagonal matrices once for :func:`thomas_factor_solve`.

    Returns ``(factors, info)`` with ``factors = (dl, p, cp)``, three new ``(B, n)`` arrays:
    a copy of the sub-diagonal, the pivots (bad ones replaced by one) and ``du / p``;
    ``info`` as in :func:`thomas`.
    """
    piv, cp, info = _thomas_eliminate(xp, dl, d, du)
    factors = (xp.asarray(dl, copy=True), _stack(xp, piv, d), _stack(xp, cp, d))
    return factors, info


def thomas_factor_solve(xp: Any, factors: tuple[Any, Any, Any], rhs: Any) -> Any:
    """Solve with the factors of :func:`thomas_factor` for ``rhs`` of shape ``(B, n)``."""
    dl, piv, cp = factors
    if rhs.shape[1] == 0:
        return xp.zeros_like(rhs)
    return _thomas_substitute(xp, _columns(dl), _columns(piv), _columns(cp), rhs)


# ---------------------------------------------------------------------------- PCR


def _pcr_eliminate(xp: Any, a: Any, b: Any, c: Any, scale: Any, on_level) -> tuple[Any, Any]:
    """The matrix part of Parallel Cyclic Reduction along the last axis (any leading shape).

    At the level of stride ``s`` row ``k`` eliminates ``x[k-s]`` and ``x[k+s]`` with the
    multipliers ``alpha = -a / b[k-s]`` and ``gamma = -c / b[k+s]``; ``on_level(s, alpha,
    gamma)`` is called with them, so that a solve applies them to its right-hand side right
    away (``y + alpha * y[k-s] + gamma * y[k+s]``) and a factorization stores them. Returns
    the final diagonal (bad entries replaced by one) and a boolean mask of the rows whose
    pivot was bad at some level or at the end: zero, not finite, or ``|b| <= eps * scale``.
    Neighbours outside ``[0, n)`` act as identity rows (``a = c = 0``, ``b = 1``, ``y = 0``):
    the shifted pivots are filled with one, and the zero corners (``a[..., :s] == 0``,
    ``c[..., n-s:] == 0`` at stride ``s``, kept by every level) make the filled values of
    ``a``, ``c`` and ``y`` irrelevant.
    """
    n = b.shape[-1]
    tiny = eps(xp, b.dtype)
    bad = xp.zeros(b.shape, dtype=xp.bool, device=device(b))
    s = 1
    while s < n:
        bad_b = bad_pivot(xp, b, scale, tiny)
        bad = xp.logical_or(bad, bad_b)
        bs = safe_divisor(xp, b, bad_b)
        alpha = -a / shift(xp, bs, s, fill=1)  # eliminates x[k-s] with row k-s
        gamma = -c / shift(xp, bs, -s, fill=1)  # eliminates x[k+s] with row k+s
        on_level(s, alpha, gamma)
        b = b + alpha * shift(xp, c, s) + gamma * shift(xp, a, -s)
        a = alpha * shift(xp, a, s)
        c = gamma * shift(xp, c, -s)
        s *= 2
    bad_b = bad_pivot(xp, b, scale, tiny)
    return safe_divisor(xp, b, bad_b), xp.logical_or(bad, bad_b)


def _pcr_level(xp: Any, y: Any, s: int, alpha: Any, gamma: Any) -> Any:
    """One PCR level applied to the right-hand side ``y``."""
    return y + alpha * shift(xp, y, s) + gamma * shift(xp, y, -s)


def _pcr(xp: Any, a: Any, b: Any, c: Any, y: Any, scale: Any = None) -> tuple[Any, Any]:
    """Solve by Parallel Cyclic Reduction along the last axis: ``(x, bad)``.

    See :func:`_pcr_eliminate`; ``scale`` defaults to the rows' ``|a| + |b| + |c|``. The
    right-hand side is carried along level by level, nothing is stored.
    """
    if scale is None:
        scale = _scale(xp, a, b, c)
    ys = [y]

    def on_level(s, alpha, gamma):
        ys[0] = _pcr_level(xp, ys[0], s, alpha, gamma)

    b, bad = _pcr_eliminate(xp, a, b, c, scale, on_level)
    return ys[0] / b, bad


def _pcr_factor(xp: Any, a: Any, b: Any, c: Any, scale: Any = None) -> tuple[tuple[Any, ...], Any]:
    """:func:`_pcr` without a right-hand side: ``((alphas, gammas, b), bad)``.

    ``alphas`` and ``gammas`` stack the levels' multipliers on a new axis before the last
    (``(..., levels, n)``); :func:`_pcr_replay` applies them.
    """
    if scale is None:
        scale = _scale(xp, a, b, c)
    alphas, gammas = [], []

    def on_level(s, alpha, gamma):
        alphas.append(alpha)
        gammas.append(gamma)

    b, bad = _pcr_eliminate(xp, a, b, c, scale, on_level)
    if not alphas:  # n <= 1: no level
        none = xp.zeros((*b.shape[:-1], 0, b.shape[-1]), dtype=b.dtype, device=device(b))
        return (none, none, b), bad
    return (xp.stack(alphas, axis=-2), xp.stack(gammas, axis=-2), b), bad


def _pcr_replay(xp: Any, factors: tuple[Any, ...], y: Any) -> Any:
    """Solve with the factors of :func:`_pcr_factor`: the same arithmetic as :func:`_pcr`."""
    alphas, gammas, b = factors
    for level in range(alphas.shape[-2]):
        y = _pcr_level(xp, y, 2**level, alphas[..., level, :], gammas[..., level, :])
    return y / b


def pcr(xp: Any, dl: Any, d: Any, du: Any, rhs: Any) -> tuple[Any, Any]:
    """Solve ``(B, n)`` tridiagonal systems by Parallel Cyclic Reduction (no pivoting).

    ``ceil(log2 n)`` levels, each a handful of whole-array operations on the arrays shifted
    by the level's stride; O(n log n) work. Stable for diagonally dominant, SPD and
    M-matrix systems.

    Returns ``(x, info)``: ``info`` is ``r + 1`` for the first row ``r`` whose pivot was
    zero, non-finite or tiny (against the row's own scale in the input) at some level, else 0.
    """
    if d.shape[1] == 0:
        return _no_rows(xp, d, rhs)
    x, bad = _pcr(xp, dl, d, du, rhs)
    return x, first_bad_row(xp, bad)


def pcr_factor(xp: Any, dl: Any, d: Any, du: Any) -> tuple[tuple[Any, ...], Any]:
    """Factor ``(B, n)`` matrices for :func:`pcr_factor_solve`: every level's multipliers.

    Returns ``(factors, info)``: ``factors = (alphas, gammas, b)``, ``alphas`` and ``gammas``
    ``(B, ceil(log2 n), n)`` and the final diagonal ``b`` ``(B, n)``; ``info`` as :func:`pcr`.
    A solve then costs ``ceil(log2 n)`` levels of a few whole-array operations on the
    right-hand side alone: O(n log n) work, O(log n) depth.
    """
    factors, bad = _pcr_factor(xp, dl, d, du)
    return factors, first_bad_row(xp, bad)


def pcr_factor_solve(xp: Any, factors: tuple[Any, ...], rhs: Any) -> Any:
    """Solve with the factors of :func:`pcr_factor`; ``rhs, x: (B, n)`` (or factors of batch 1).

    The same arithmetic as :func:`pcr`, so the same bits.
    """
    if rhs.shape[1] == 0:
        return xp.zeros_like(rhs)
    return _pcr_replay(xp, factors, rhs)


# ---------------------------------------------------------------------------- hybrid


def _chunking(n: int, chunks: int | None) -> tuple[int, int]:
    """``(p, c)``: ``p`` chunks of ``c`` rows, ``p * c >= n`` with less than one chunk spare."""
    p = math.isqrt(n - 1) + 1 if chunks is None else chunks  # default ceil(sqrt(n))
    p = max(1, min(p, n))
    c = -(-n // p)
    return -(-n // c), c


def hybrid_factor(xp: Any, dl: Any, d: Any, du: Any, *, chunks: int | None = None) -> tuple[tuple, Any]:
    """Factor ``(B, n)`` matrices for :func:`hybrid_factor_solve` (the partition method).

    The rows are padded with identity rows to ``p * c`` and split into ``p`` chunks of
    ``c`` rows (``p = ceil(sqrt(n))`` unless ``chunks`` says otherwise). In chunk ``i`` the
    first ``c - 1`` rows are eliminated sequentially, all chunks at once, which expresses
    every row through the chunk's interface unknowns -- the last rows ``L[i-1]`` and ``L[i]``
    of the previous and of this chunk::

        x[i, j] = g[i, j] + v[i, j] * L[i-1] + w[i, j] * L[i]

    where ``v`` and ``w`` depend on the matrix only and ``g`` on the right-hand side.
    Substituting that into the last row of every chunk gives a tridiagonal system in
    ``L[0..p-1]``, factored by PCR (:func:`_pcr_factor`).

    Returns ``(factors, info)``: ``factors`` a tuple of arrays with the batch axis first (the
    sweeps' multipliers, pivots and ``du / p`` ``(B, p, c-1)``, ``v`` and ``w`` ``(B, p, c)``,
    the reduced system's off-diagonals ``(B, p)`` and its PCR factors); every pivot, of the
    chunk sweeps and of the reduced system (whose row ``i`` is the last row of chunk ``i``),
    is checked against the scale of its row in the input, and ``info`` is as in :func:`pcr`.
    """
    B, n = d.shape
    p, c = _chunking(max(n, 1), chunks)
    N = p * c

    def chunked(a, fill):
        return xp.reshape(pad(xp, a, N, fill=fill), (B, p, c))

    A, D, U = chunked(dl, 0), chunked(d, 1), chunked(du, 0)
    tiny = eps(xp, d.dtype)
    scale = _scale(xp, A, D, U)

    # Forward sweep over the interior rows j < c-1 of every chunk, with x[i, -1] = L[i-1]
    # known: x[i, j] = g1[j+1] + v1[j+1] * L[i-1] - cp[j+1] * x[i, j+1] (the lists are
    # shifted by one: their entry 0 stands for row -1).
    zero = xp.zeros_like(D[:, :, 0])
    one = xp.ones_like(zero)
    v1, cp, piv, bads = [one], [zero], [], []
    for j in range(c - 1):
        a_j = A[:, :, j]
        pj = D[:, :, j] - a_j * cp[-1]
        bad = bad_pivot(xp, pj, scale[:, :, j], tiny)
        pj = safe_divisor(xp, pj, bad)
        bads.append(bad)
        piv.append(pj)
        cp.append(U[:, :, j] / pj)
        v1.append(-(a_j * v1[-1]) / pj)

    # Back sweep from x[i, c-1] = L[i]: the matrix parts v, w of x[i, j].
    v, w = [zero] * c, [zero] * c
    w[c - 1] = one
    for j in range(c - 2, -1, -1):
        v[j] = v1[j + 1] - cp[j + 1] * v[j + 1]
        w[j] = -(cp[j + 1] * w[j + 1])

    # The last row of chunk i couples x[i, c-2] (row -1 when c == 1, i.e. L[i-1]) and
    # x[i+1, 0] (x[i+1, c-1] = L[i+1] when c == 1) to L[i].
    vm, wm = (v[c - 2], w[c - 2]) if c >= 2 else (one, zero)
    vn, wn = (shift(xp, t, -1) for t in (v[0], w[0]))  # chunk i+1, zero past the end
    aL, dL, uL = A[:, :, c - 1], D[:, :, c - 1], U[:, :, c - 1]
    reduced, bad_reduced = _pcr_factor(xp, aL * vm, dL + aL * wm + uL * vn, uL * wn, scale[:, :, c - 1])

    bad = xp.stack([*bads, bad_reduced], axis=2)  # (B, p, c) in row order
    info = first_bad_row(xp, xp.reshape(bad, (B, N))[:, :n])

    def stacked(cols):
        return xp.stack(cols, axis=2) if cols else xp.zeros((B, p, 0), dtype=d.dtype, device=device(d))

    sweep = (xp.asarray(A[:, :, : c - 1], copy=True), stacked(piv), stacked(cp[1:]))
    return (*sweep, stacked(v), stacked(w), aL, uL, *reduced), info


def hybrid_factor_solve(xp: Any, factors: tuple, rhs: Any) -> Any:
    """Solve with the factors of :func:`hybrid_factor`; ``rhs, x: (B, n)`` (or factors of batch 1).

    The chunk sweeps of the right-hand side (``c`` steps, each one operation on all chunks
    of all systems), the reduced system by the stored PCR levels, and one pass completing
    every chunk.
    """
    A, piv, cp, V, W, aL, uL, *reduced = factors
    B, n = rhs.shape
    p, c = V.shape[1], V.shape[2]
    if n == 0:
        return xp.zeros_like(rhs)
    Y = xp.reshape(pad(xp, rhs, p * c), (B, p, c))
    zero = xp.zeros_like(Y[:, :, 0])
    g1 = [zero]
    for j in range(c - 1):
        g1.append((Y[:, :, j] - A[:, :, j] * g1[-1]) / piv[:, :, j])
    g = [zero] * c
    for j in range(c - 2, -1, -1):
        g[j] = g1[j + 1] - cp[:, :, j] * g[j + 1]
    gm = g[c - 2] if c >= 2 else zero
    gn = shift(xp, g[0], -1)
    L = _pcr_replay(xp, reduced, Y[:, :, c - 1] - aL * gm - uL * gn)
    X = xp.stack(g, axis=2) + V * shift(xp, L, 1)[:, :, None] + W * L[:, :, None]
    return xp.reshape(X, (B, p * c))[:, :n]


def hybrid(xp: Any, dl: Any, d: Any, du: Any, rhs: Any, *, chunks: int | None = None) -> tuple[Any, Any]:
    """Solve ``(B, n)`` tridiagonal systems by the partition method (no pivoting).

    :func:`hybrid_factor` then :func:`hybrid_factor_solve`: chunk sweeps all at once, the
    reduced system of the chunks' last rows by PCR, all chunks completed in one pass. O(n)
    work, depth O(c + log p) with ``p = ceil(sqrt(n))`` chunks of ``c`` rows.

    Returns ``(x, info)`` as :func:`pcr`.
    """
    if d.shape[1] == 0:
        return _no_rows(xp, d, rhs)
    factors, info = hybrid_factor(xp, dl, d, du, chunks=chunks)
    return hybrid_factor_solve(xp, factors, rhs), info


# ---------------------------------------------------------------------------- pivoting


def _gt_factor(xp: Any, dl: Any, d: Any, du: Any) -> tuple[tuple[list, ...], Any]:
    """LAPACK ``?gttrf`` elimination as column lists ``(u0, u1, u2, f, swap)`` and ``info``.

    ``U`` has the diagonal ``u0``, the super-diagonals ``u1`` and ``u2`` (fill-in from
    interchanges); step ``r`` interchanges rows ``r`` and ``r+1`` where ``swap[r]`` and then
    subtracts ``f[r]`` times row ``r`` from row ``r+1``. Rows are interchanged when
    ``|d| < |dl|`` (modulus for complex dtypes), as in ``?gtsv``. ``f`` and ``swap`` have
    a last entry (0, False) so that every list has ``n`` entries.
    """
    n = d.shape[1]
    info = info_zeros(xp, d)
    u0: list[Any] = []
    u1: list[Any] = []
    u2: list[Any] = []
    f: list[Any] = []
    swap: list[Any] = []
    cur_d, cur_du = d[:, 0], du[:, 0]  # row r as modified by the previous steps
    for r in range(n - 1):
        l, d_next, du_next = dl[:, r + 1], d[:, r + 1], du[:, r + 1]
        s = xp.abs(cur_d) < xp.abs(l)
        piv = xp.where(s, l, cur_d)
        zero = piv == 0
        info = update_info(xp, info, zero, r)
        fr = xp.where(s, cur_d, l) / safe_divisor(xp, piv, zero)
        u0.append(piv)
        u1.append(xp.where(s, d_next, cur_du))
        u2.append(xp.where(s, du_next, xp.zeros_like(du_next)))
        f.append(fr)
        swap.append(s)
        cur_d = xp.where(s, cur_du - fr * d_next, d_next - fr * cur_du)
        cur_du = xp.where(s, -(fr * du_next), du_next)
    info = update_info(xp, info, cur_d == 0, n - 1)
    u0.append(cur_d)
    u1.append(cur_du)  # du[:, n-1] == 0, or -f * 0
    u2.append(xp.zeros_like(cur_d))
    f.append(xp.zeros_like(cur_d))
    swap.append(xp.zeros(cur_d.shape, dtype=xp.bool, device=device(cur_d)))
    return (u0, u1, u2, f, swap), info


def _gt_solve(xp: Any, factors: tuple[list, ...], rhs: Any) -> Any:
    """LAPACK ``?gttrs`` (one right-hand side per system) from column lists."""
    u0, u1, u2, f, swap = factors
    n = len(u0)
    z: list[Any] = []
    cur = rhs[:, 0]
    for r in range(n - 1):
        nxt = rhs[:, r + 1]
        z.append(xp.where(swap[r], nxt, cur))
        cur = xp.where(swap[r], cur - f[r] * nxt, nxt - f[r] * cur)
    z.append(cur)
    x = z[:]
    for r in range(n - 1, -1, -1):
        t = z[r]
        if r + 1 < n:
            t = t - u1[r] * x[r + 1]
        if r + 2 < n:
            t = t - u2[r] * x[r + 2]
        x[r] = t / safe_divisor(xp, u0[r], u0[r] == 0)
    return xp.stack(x, axis=1)


def gtsv(xp: Any, dl: Any, d: Any, du: Any, rhs: Any) -> tuple[Any, Any]:
    """Solve ``(B, n)`` tridiagonal systems with partial pivoting, as LAPACK ``?gtsv``.

    A loop over rows, vectorized over the batch; whether rows ``r`` and ``r+1`` are
    interchanged is decided per batch element with ``xp.where``. Stable for any regular
    matrix.

    Returns ``(x, info)``: ``info`` is ``r + 1`` for the first ``r`` with ``U[r, r] == 0``
    exactly (the matrix is singular), else 0.
    """
    if d.shape[1] == 0:
        return _no_rows(xp, d, rhs)
    factors, info = _gt_factor(xp, dl, d, du)
    return _gt_solve(xp, factors, rhs), info


def gttrf(xp: Any, dl: Any, d: Any, du: Any) -> tuple[tuple[Any, ...], Any]:
    """LU factorization with partial pivoting of ``(B, n)`` tridiagonal matrices (``?gttrf``).

    Returns ``(factors, info)`` with ``factors = (u0, u1, u2, f, swap)``, ``(B, n)`` arrays:
    the diagonal and two super-diagonals of ``U``, the multipliers, and the boolean row
    interchanges; ``info`` as in :func:`gtsv`.
    """
    cols, info = _gt_factor(xp, dl, d, du) if d.shape[1] else (([],) * 5, info_zeros(xp, d))
    u0, u1, u2, f, swap = cols
    factors = (
        _stack(xp, u0, d),
        _stack(xp, u1, d),
        _stack(xp, u2, d),
        _stack(xp, f, d),
        _stack(xp, swap, d, dtype=xp.bool),
    )
    return factors, info


def gttrs(xp: Any, factors: tuple[Any, ...], rhs: Any) -> Any:
    """Solve with the factors of :func:`gttrf` for ``rhs`` of shape ``(B, n)`` (``?gttrs``)."""
    if rhs.shape[1] == 0:
        return xp.zeros_like(rhs)
    return _gt_solve(xp, tuple(_columns(a) for a in factors), rhs)
