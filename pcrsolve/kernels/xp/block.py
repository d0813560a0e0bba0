"""Block tridiagonal kernels on an array namespace ``xp``: block Thomas, block PCR, hybrid.

The system of block row ``k`` is ``L[k] x[k-1] + D[k] x[k] + U[k] x[k+1] = rhs[k]`` with
``L, D, U: (B, n, m, m)`` and ``rhs, x: (B, n, m)``, padded layout with zero corners
(``L[:, 0] == 0``, ``U[:, n-1] == 0``). See :mod:`pcrsolve.kernels` for the contract.

Only Array API functions of ``xp`` are used (``matmul``, ``linalg.inv``, ``concat``,
``where``, ...); loops run over rows (Thomas), levels (PCR) or rows of a chunk (hybrid),
never over batch elements, and no array value is brought back to the host.

Breakdown criterion (all methods). Every diagonal block ``M`` that gets inverted (the
modified block of a Thomas row, a row's block at a PCR level, a chunk's pivot in the
hybrid) is *bad* when its inverse is not finite or when

    ``||M^-1||_inf * s >= 1 / eps``,   ``s = || [ L_k  M  U_k ] ||_inf``

(the max absolute row sum of the whole current block row). For ``m == 1`` this is the
scalar rule ``|p| <= eps * (|l| + |p| + |u|)``; for larger blocks it also catches an
ill-conditioned ``M`` (``cond_inf(M) >= 1/eps``). An exactly singular block, on which
NumPy-based libraries raise ``LinAlgError`` (CuPy returns inf/NaN instead), is detected by
``slogdet`` and inverted as the identity; a bad block's inverse is then replaced by zeros so
the arithmetic stays finite. ``info[b] = r + 1`` for the first block row ``r`` (lowest index;
for PCR over all levels) with a bad block, else 0; ``x`` is arbitrary where ``info > 0``.
"""

from __future__ import annotations

from typing import Any

from ._common import device, eps, first_bad_row, info_zeros, merge_info, pad, shift, update_info

__all__ = [
    "block_hybrid",
    "block_hybrid_factor",
    "block_hybrid_factor_solve",
    "block_pcr",
    "block_pcr_factor",
    "block_pcr_factor_solve",
    "block_thomas",
    "block_thomas_factor",
    "block_thomas_factor_solve",
]


def _rowsum(xp: Any, a: Any) -> Any:
    """Absolute row sums ``sum_j |a[..., i, j]|`` (real)."""
    return xp.sum(xp.abs(a), axis=-1)


def _mv(xp: Any, a: Any, v: Any) -> Any:
    """Batched matrix-vector product ``a @ v`` with ``v`` a stack of vectors."""
    return xp.matmul(a, v[..., None])[..., 0]


def _eye(xp: Any, like: Any) -> Any:
    """The ``m x m`` identity in the dtype and on the device of ``like`` (``(..., m, m)``)."""
    return xp.eye(like.shape[-1], dtype=like.dtype, device=device(like))


def _inverse(xp: Any, M: Any, off: Any = None) -> tuple[Any, Any]:
    """Inverse of the blocks ``M (..., m, m)`` and the mask ``(...)`` of bad blocks.

    ``off (..., m)`` holds the absolute row sums of the other blocks of the block row
    (``None``: none). Bad blocks (see the module docstring) get a zero inverse.
    """
    singular = None
    try:
        Minv = xp.linalg.inv(M)
    except Exception:
        # NumPy-based libraries raise when an LU pivot is exactly zero (or the LU breaks on
        # non-finite input). slogdet runs the same LU: invert identities in those places. A
        # second failure is a genuine error and propagates.
        singular = xp.logical_not(xp.isfinite(xp.linalg.slogdet(M).logabsdet))
        Minv = xp.linalg.inv(xp.where(singular[..., None, None], _eye(xp, M), M))
    rows = _rowsum(xp, M) if off is None else _rowsum(xp, M) + off
    scale = xp.max(rows, axis=-1)
    norm_inv = xp.max(_rowsum(xp, Minv), axis=-1)
    # NaN and inf compare False: a non-finite inverse or scale is bad too.
    bad = xp.logical_not(norm_inv * scale < 1.0 / eps(xp, M.dtype))
    if singular is not None:
        bad = xp.logical_or(bad, singular)
    return xp.where(bad[..., None, None], xp.zeros_like(Minv), Minv), bad


def _empty(xp: Any, rhs: Any) -> tuple[Any, Any]:
    return xp.zeros_like(rhs), info_zeros(xp, rhs)


# --------------------------------------------------------------------------- block Thomas


def block_thomas_factor(xp: Any, L: Any, D: Any, U: Any) -> tuple[tuple[Any, Any, Any], Any]:
    """Block LU without pivoting: ``factors = (Dinv, W, G)``, each ``(B, n, m, m)``.

    Row ``k``: ``Dmod[k] = D[k] - L[k] G[k-1]``, ``Dinv[k] = Dmod[k]^-1``,
    ``W[k] = Dinv[k] L[k]``, ``G[k] = Dinv[k] U[k]``. The factors hold no reference to the
    inputs. ``info`` as in the module docstring.
    """
    n, m = D.shape[1], D.shape[-1]
    info = info_zeros(xp, D)
    if n == 0:
        return (xp.zeros_like(D), xp.zeros_like(D), xp.zeros_like(D)), info
    LU = xp.concat([L, U], axis=-1)  # (B, n, m, 2m): one product per row gives W and G
    off = _rowsum(xp, LU)
    dinv, w, g = [], [], []
    G = None
    for k in range(n):
        Dmod = D[:, k, ...] if G is None else D[:, k, ...] - xp.matmul(L[:, k, ...], G)
        Dinv, bad = _inverse(xp, Dmod, off[:, k, ...])
        info = update_info(xp, info, bad, k)
        WG = xp.matmul(Dinv, LU[:, k, ...])
        G = WG[..., m:]
        dinv.append(Dinv)
        w.append(WG[..., :m])
        g.append(G)
    return (xp.stack(dinv, axis=1), xp.stack(w, axis=1), xp.stack(g, axis=1)), info


def block_thomas_factor_solve(xp: Any, factors: tuple[Any, Any, Any], rhs: Any) -> Any:
    """Solve with the factors of :func:`block_thomas_factor`; ``rhs, x: (B, n, m)``.

    Forward ``y[k] = Dinv[k] rhs[k] - W[k] y[k-1]``, back ``x[k] = y[k] - G[k] x[k+1]``.
    """
    Dinv, W, G = factors
    n = rhs.shape[1]
    if n == 0:
        return xp.zeros_like(rhs)
    z = _mv(xp, Dinv, rhs)  # all rows at once
    y = [z[:, 0, ...]]
    for k in range(1, n):
        y.append(z[:, k, ...] - _mv(xp, W[:, k, ...], y[-1]))
    x = [y[-1]]
    for k in range(n - 2, -1, -1):
        x.append(y[k] - _mv(xp, G[:, k, ...], x[-1]))
    return xp.stack(x[::-1], axis=1)


def block_thomas(xp: Any, L: Any, D: Any, U: Any, rhs: Any) -> tuple[Any, Any]:
    """Block Thomas: :func:`block_thomas_factor` then :func:`block_thomas_factor_solve`."""
    factors, info = block_thomas_factor(xp, L, D, U)
    return block_thomas_factor_solve(xp, factors, rhs), info


# --------------------------------------------------------------------------- block PCR


def _pcr_eliminate(xp: Any, L: Any, D: Any, U: Any, on_level) -> tuple[Any, Any]:
    """The matrix part of block PCR on ``(..., n, m, m)`` blocks (sequence axis ``-3``).

    At the level with stride ``s`` row ``i`` eliminates ``x[i-s]`` and ``x[i+s]`` with
    ``S[j] = D[j]^-1 [L[j] | U[j]]`` of its neighbours (zero-filled shifts: an out-of-range
    neighbour is an identity block with zero coupling): ``L' = -L S[i-s]_L``,
    ``U' = -U S[i+s]_U``, ``D' = D - L S[i-s]_U - U S[i+s]_L``; a right-hand side becomes
    ``r' = r - L v[i-s] - U v[i+s]`` with ``v = D^-1 r``. ``on_level(s, Dinv, L, U)`` receives
    each level's ``D^-1``, ``L`` and ``U`` (a solve applies them at once, a factorization
    stores them). Returns the final ``D^-1`` (zero for bad blocks) and the mask of rows with a
    bad block at some level (module docstring).
    """
    n, m = D.shape[-3], D.shape[-1]
    bad = None
    LU = xp.concat([L, U], axis=-1)  # (..., n, m, 2m)
    s = 1
    while s < n:
        Dinv, flag = _inverse(xp, D, _rowsum(xp, LU))
        bad = flag if bad is None else xp.logical_or(bad, flag)
        on_level(s, Dinv, LU[..., :m], LU[..., m:])
        S = xp.matmul(Dinv, LU)
        lo = xp.matmul(LU[..., :m], shift(xp, S, s, axis=-3))  # L[i] S[i-s]
        up = xp.matmul(LU[..., m:], shift(xp, S, -s, axis=-3))  # U[i] S[i+s]
        D = D - lo[..., m:] - up[..., :m]
        LU = xp.concat([-lo[..., :m], -up[..., m:]], axis=-1)
        s *= 2
    Dinv, flag = _inverse(xp, D, _rowsum(xp, LU))
    bad = flag if bad is None else xp.logical_or(bad, flag)
    return Dinv, bad


def _pcr_level(xp: Any, r: Any, s: int, Dinv: Any, L: Any, U: Any) -> Any:
    """One block PCR level applied to the right-hand side ``r (..., n, m)``."""
    v = _mv(xp, Dinv, r)
    return r - _mv(xp, L, shift(xp, v, s, axis=-2)) - _mv(xp, U, shift(xp, v, -s, axis=-2))


def _pcr_factor(xp: Any, L: Any, D: Any, U: Any) -> tuple[tuple[Any, ...], Any]:
    """Block PCR without a right-hand side: ``((Dinvs, Ls, Us, Dinv), bad)``.

    ``Dinvs``, ``Ls``, ``Us`` stack every level's blocks on a new axis before the sequence
    axis (``(..., levels, n, m, m)``); :func:`_pcr_replay` applies them.
    """
    levels: tuple[list, list, list] = ([], [], [])

    def on_level(s, Dinv, Lk, Uk):
        for store, a in zip(levels, (Dinv, Lk, Uk)):
            store.append(a)

    Dinv, bad = _pcr_eliminate(xp, L, D, U, on_level)
    if not levels[0]:  # n <= 1
        none = xp.zeros((*D.shape[:-3], 0, *D.shape[-3:]), dtype=D.dtype, device=device(D))
        return (none, none, none, Dinv), bad
    return (*(xp.stack(store, axis=-4) for store in levels), Dinv), bad


def _pcr_replay(xp: Any, factors: tuple[Any, ...], r: Any) -> Any:
    """Solve with the factors of :func:`_pcr_factor`; ``r (..., n, m)``."""
    Dinvs, Ls, Us, Dinv = factors
    for level in range(Dinvs.shape[-4]):
        k = (..., level, slice(None), slice(None), slice(None))
        r = _pcr_level(xp, r, 2**level, Dinvs[k], Ls[k], Us[k])
    return _mv(xp, Dinv, r)


def block_pcr(xp: Any, L: Any, D: Any, U: Any, rhs: Any) -> tuple[Any, Any]:
    """Block Parallel Cyclic Reduction: ceil(log2 n) levels, then one block solve per row.

    See :func:`_pcr_eliminate`; the right-hand side is carried along level by level.
    """
    if D.shape[1] == 0:
        return _empty(xp, rhs)
    rs = [rhs]

    def on_level(s, Dinv, Lk, Uk):
        rs[0] = _pcr_level(xp, rs[0], s, Dinv, Lk, Uk)

    Dinv, bad = _pcr_eliminate(xp, L, D, U, on_level)
    return _mv(xp, Dinv, rs[0]), first_bad_row(xp, bad, axis=1)


def block_pcr_factor(xp: Any, L: Any, D: Any, U: Any) -> tuple[tuple[Any, ...], Any]:
    """Factor for :func:`block_pcr_factor_solve`: every level's ``D^-1``, ``L`` and ``U``.

    Returns ``(factors, info)``; ``factors`` are ``(B, levels, n, m, m)`` three times and the
    final ``D^-1`` ``(B, n, m, m)``. A solve is then three batched matrix-vector products per
    level: O(n m^2 log n) work, O(log n) depth.
    """
    factors, bad = _pcr_factor(xp, L, D, U)
    return factors, first_bad_row(xp, bad, axis=1) if D.shape[1] else info_zeros(xp, D)


def block_pcr_factor_solve(xp: Any, factors: tuple[Any, ...], rhs: Any) -> Any:
    """Solve with the factors of :func:`block_pcr_factor`; ``rhs, x: (B, n, m)``."""
    if rhs.shape[1] == 0:
        return xp.zeros_like(rhs)
    return _pcr_replay(xp, factors, rhs)


# --------------------------------------------------------------------------- hybrid


def _chunk_count(n: int, chunks: int | None) -> tuple[int, int]:
    """``(p, c)``: ``p`` chunks of ``c`` rows, ``p * c >= n``.

    Default: ``c = max(3, bit_length(n))`` rows per chunk — short sequential sweeps (few
    array operations) and a reduced system of ``2p`` rows. ``chunks`` forces ``p``; a chunk
    has at least three rows (identity rows pad the system).
    """
    if chunks is None:
        c = max(3, n.bit_length())
        return -(-n // c), c
    p = max(1, min(int(chunks), n))
    return p, max(3, -(-n // p))


def block_hybrid_factor(
    xp: Any, L: Any, D: Any, U: Any, *, chunks: int | None = None
) -> tuple[tuple[Any, ...], Any]:
    """Factor for :func:`block_hybrid_factor_solve` (the partitioned block solver).

    ``n`` is padded to ``p * c`` with identity block rows and reshaped to ``(B, p, c, ...)``.
    Every chunk (all at once) is swept with a modified block Thomas so that each of its rows
    reads ``a[i] x[first] + x[i] + c[i] x[last] = d[i]``, its first row
    ``a x[last of previous chunk] + x[first] + c x[last] = d`` and its last row
    ``a x[first] + x[last] + c x[first of next chunk] = d``; ``a`` and ``c`` depend on the
    matrix only, ``d`` on the right-hand side too. The ``2p`` first/last rows form a block
    tridiagonal system (identity diagonal), factored by block PCR. ``chunks`` (``p``)
    defaults to :func:`_chunk_count`.

    Returns ``(factors, info)``: ``factors`` a tuple of arrays with the batch axis first,
    ``info`` the first bad block row of the sweeps or of the reduced system.
    """
    B, n, m = D.shape[0], D.shape[1], D.shape[-1]
    p, c = _chunk_count(max(n, 1), chunks)
    N = p * c
    eye = _eye(xp, D)
    LU = xp.concat([L, U], axis=-1)
    if N > n:
        LU = pad(xp, LU, N, axis=1)
        D = xp.concat([D, xp.broadcast_to(eye, (B, N - n, m, m))], axis=1)
    LU = xp.reshape(LU, (B, p, c, m, 2 * m))
    D = xp.reshape(D, (B, p, c, m, m))
    off = _rowsum(xp, LU)  # (B, p, c, m)

    # Forward sweep of every chunk. Rows 0 and 1 only normalize: row 0 couples to the
    # previous chunk's last row, row i >= 1 to this chunk's first row x[0] via
    # a[i] = -M^-1 L[i] a[i-1], c[i] = M^-1 U[i], M = D[i] - L[i] c[i-1]
    # (and d[i] = M^-1 (r[i] - L[i] d[i-1]) for a right-hand side).
    ac, minv, bads = [], [], []
    for i in range(c):
        LUi = LU[:, :, i, ...]
        if i < 2:
            M, R = D[:, :, i, ...], LUi
        else:
            t = xp.matmul(LUi[..., :m], ac[-1])  # L[i] [a | c][i-1]
            M = D[:, :, i, ...] - t[..., m:]
            R = xp.concat([-t[..., :m], LUi[..., m:]], axis=-1)  # [-L a | U]
        Minv, bad = _inverse(xp, M, off[:, :, i, ...])
        ac.append(xp.matmul(Minv, R))
        minv.append(Minv)
        bads.append(bad)
    c_sweep = [blk[..., m:] for blk in ac]  # c[i] before the backward sweep

    # Backward sweep, rows c-3 .. 1: couple each row to x[last] instead of x[i+1]:
    # a'[i] = a[i] - c[i] a'[i+1], c'[i] = -c[i] c'[i+1] (d'[i] = d[i] - c[i] d'[i+1]).
    for i in range(c - 3, 0, -1):
        u = xp.matmul(c_sweep[i], ac[i + 1])
        ac[i] = xp.concat([ac[i][..., :m] - u[..., :m], -u[..., m:]], axis=-1)
    # Row 0: a x[-1] + (I - c a'[1]) x[0] - c c'[1] x[last] = d - c d'[1], then normalize.
    u = xp.matmul(c_sweep[0], ac[1])
    R0 = xp.concat([ac[0][..., :m], -u[..., m:]], axis=-1)  # [a | -c c']
    N0inv, bad = _inverse(xp, eye - u[..., :m], _rowsum(xp, R0))
    first = xp.matmul(N0inv, R0)
    bads[0] = xp.logical_or(bads[0], bad)

    # Reduced system: rows (first_0, last_0, first_1, last_1, ...), identity diagonal.
    red = xp.reshape(xp.stack([first, ac[c - 1]], axis=2), (B, 2 * p, m, 2 * m))
    Dred = xp.broadcast_to(eye, (B, 2 * p, m, m))
    reduced, bad_red = _pcr_factor(xp, red[..., :m], Dred, red[..., m:])

    # info: first bad pivot of the sweeps, or the reduced system's (mapped to global rows).
    bad_rows = xp.reshape(xp.stack(bads, axis=2), (B, N))[:, :n, ...]
    info = first_bad_row(xp, bad_rows, axis=1)
    r = first_bad_row(xp, bad_red, axis=1) - 1
    g = (r // 2) * c + (r % 2) * (c - 1) + 1
    info = merge_info(xp, info, xp.where(r >= 0, g, xp.zeros_like(g)))

    factors = (
        xp.stack(minv, axis=2),  # (B, p, c, m, m)
        xp.asarray(LU[:, :, 2:, :, :m], copy=True),  # L[i] of the rows i >= 2
        xp.stack(c_sweep[: c - 2], axis=2),  # c[i] of the rows 0 .. c-3
        N0inv,
        xp.stack(ac[1 : c - 1], axis=2),  # final [a | c] of the interior rows
        *reduced,
    )
    return factors, info


def block_hybrid_factor_solve(xp: Any, factors: tuple[Any, ...], rhs: Any) -> Any:
    """Solve with the factors of :func:`block_hybrid_factor`; ``rhs, x: (B, n, m)``.

    The chunk sweeps of the right-hand side (``c`` steps, each one batched product over all
    chunks), the reduced system by the stored block PCR levels, then every interior row
    completed in one pass.
    """
    Minv, Lsw, Csw, N0inv, inner, *reduced = factors
    B, n, m = rhs.shape
    p, c = Minv.shape[1], Minv.shape[2]
    if n == 0:
        return xp.zeros_like(rhs)
    r = xp.reshape(pad(xp, rhs, p * c, axis=1), (B, p, c, m))
    d = []
    for i in range(c):
        ri = r[:, :, i, ...] if i < 2 else r[:, :, i, ...] - _mv(xp, Lsw[:, :, i - 2, ...], d[-1])
        d.append(_mv(xp, Minv[:, :, i, ...], ri))
    for i in range(c - 3, 0, -1):
        d[i] = d[i] - _mv(xp, Csw[:, :, i, ...], d[i + 1])
    d0 = _mv(xp, N0inv, d[0] - _mv(xp, Csw[:, :, 0, ...], d[1]))
    xr = _pcr_replay(xp, reduced, xp.reshape(xp.stack([d0, d[c - 1]], axis=2), (B, 2 * p, m)))
    xr = xp.reshape(xr, (B, p, 2, m))
    ends = xp.reshape(xr, (B, p, 1, 2 * m, 1))  # [x[first] ; x[last]] per chunk
    x_in = xp.stack(d[1 : c - 1], axis=2) - xp.matmul(inner, ends)[..., 0]
    x = xp.concat([xr[:, :, :1, ...], x_in, xr[:, :, 1:, ...]], axis=2)
    return xp.reshape(x, (B, p * c, m))[:, :n, ...]


def block_hybrid(xp: Any, L: Any, D: Any, U: Any, rhs: Any, *, chunks: int | None = None) -> tuple[Any, Any]:
    """Partitioned block solver: :func:`block_hybrid_factor` then :func:`block_hybrid_factor_solve`.

    Chunk sweeps all at once, a reduced system of ``2p`` block rows by block PCR, chunk
    completion in one pass: O(n m^3) work.
    """
    if D.shape[1] == 0:
        return _empty(xp, rhs)
    factors, info = block_hybrid_factor(xp, L, D, U, chunks=chunks)
    return block_hybrid_factor_solve(xp, factors, rhs), info
