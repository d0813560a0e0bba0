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
    "block_pcr",
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


def block_pcr(xp: Any, L: Any, D: Any, U: Any, rhs: Any) -> tuple[Any, Any]:
    """Block Parallel Cyclic Reduction: ceil(log2 n) levels, then one block solve per row.

    At the level with stride ``s`` row ``i`` eliminates ``x[i-s]`` and ``x[i+s]`` with
    ``S[j] = D[j]^-1 [L[j] | U[j] | r[j]]`` of its neighbours (zero-filled shifts: an
    out-of-range neighbour is an identity block with zero coupling):
    ``L' = -L S[i-s]_L``, ``U' = -U S[i+s]_U``,
    ``D' = D - L S[i-s]_U - U S[i+s]_L``, ``r' = r - L S[i-s]_r - U S[i+s]_r``.
    """
    n, m = D.shape[1], D.shape[-1]
    if n == 0:
        return _empty(xp, rhs)
    bad = None
    LUr = xp.concat([L, U, rhs[..., None]], axis=-1)  # (B, n, m, 2m+1)
    s = 1
    while s < n:
        Dinv, flag = _inverse(xp, D, _rowsum(xp, LUr[..., : 2 * m]))
        bad = flag if bad is None else xp.logical_or(bad, flag)
        S = xp.matmul(Dinv, LUr)
        lo = xp.matmul(LUr[..., :m], shift(xp, S, s, axis=1))  # L[i] S[i-s]
        up = xp.matmul(LUr[..., m : 2 * m], shift(xp, S, -s, axis=1))  # U[i] S[i+s]
        D = D - lo[..., m : 2 * m] - up[..., :m]
        LUr = xp.concat(
            [-lo[..., :m], -up[..., m : 2 * m], LUr[..., 2 * m :] - lo[..., 2 * m :] - up[..., 2 * m :]],
            axis=-1,
        )
        s *= 2
    Dinv, flag = _inverse(xp, D, _rowsum(xp, LUr[..., : 2 * m]))
    bad = flag if bad is None else xp.logical_or(bad, flag)
    x = xp.matmul(Dinv, LUr[..., 2 * m :])[..., 0]
    return x, first_bad_row(xp, bad, axis=1)


# --------------------------------------------------------------------------- hybrid


def _chunk_count(n: int, chunks: int | None) -> tuple[int, int]:
    """``(p, c)``: ``p`` chunks of ``c`` rows, ``p * c >= n``.

    Default: ``c = max(3, bit_length(n))`` rows per chunk — short sequential sweeps (few
    array operations) and a reduced system of ``2p`` rows. ``chunks`` forces ``p``.
    """
    if chunks is None:
        c = max(3, n.bit_length())
        return -(-n // c), c
    p = max(1, min(int(chunks), n))
    return p, -(-n // p)


def block_hybrid(xp: Any, L: Any, D: Any, U: Any, rhs: Any, *, chunks: int | None = None) -> tuple[Any, Any]:
    """Partitioned block solver: chunk sweeps, a reduced system by PCR, chunk completion.

    ``n`` is padded to ``p * c`` with identity block rows and reshaped to ``(B, p, c, ...)``.
    Every chunk (all at once) is swept with a modified block Thomas so that each of its
    rows reads ``a[i] x[first] + x[i] + c[i] x[last] = d[i]``, its first row
    ``a x[last of previous chunk] + x[first] + c x[last] = d`` and its last row
    ``a x[first] + x[last] + c x[first of next chunk] = d``. The ``2p`` first/last rows form
    a block tridiagonal system (identity diagonal) solved by :func:`block_pcr`; then every
    interior row is completed in one vectorized pass. ``chunks`` (``p``) defaults to
    :func:`_chunk_count`; chunks shorter than 3 rows fall back to :func:`block_pcr`.
    """
    n, m = D.shape[1], D.shape[-1]
    if n == 0:
        return _empty(xp, rhs)
    p, c = _chunk_count(n, chunks)
    if c < 3:
        return block_pcr(xp, L, D, U, rhs)
    B, N = D.shape[0], p * c
    eye = _eye(xp, D)
    LUr = xp.concat([L, U, rhs[..., None]], axis=-1)
    if N > n:
        LUr = pad(xp, LUr, N, axis=1)
        D = xp.concat([D, xp.broadcast_to(eye, (B, N - n, m, m))], axis=1)
    LUr = xp.reshape(LUr, (B, p, c, m, 2 * m + 1))
    D = xp.reshape(D, (B, p, c, m, m))
    off = _rowsum(xp, LUr[..., : 2 * m])  # (B, p, c, m)
    # Column masks of an [a | c | d] (or [L | U | r]) block: keep the a/L and d/r parts,
    # or the c/U and d/r parts.
    ones = xp.ones((m,), dtype=D.dtype, device=device(D))
    zeros = xp.zeros((m,), dtype=D.dtype, device=device(D))
    one = xp.ones((1,), dtype=D.dtype, device=device(D))
    keep_ad = xp.concat([ones, zeros, one])
    keep_cd = xp.concat([zeros, ones, one])

    # Forward sweep of every chunk. Rows 0 and 1 only normalize: row 0 couples to the
    # previous chunk's last row, row i >= 1 to this chunk's first row x[0] via
    # a[i] = -M^-1 L[i] a[i-1], c[i] = M^-1 U[i], d[i] = M^-1 (r[i] - L[i] d[i-1]),
    # M = D[i] - L[i] c[i-1].
    acd, bads = [], []
    for i in range(c):
        Li = LUr[:, :, i, ...]
        if i < 2:
            M, R = D[:, :, i, ...], Li
        else:
            t = xp.matmul(Li[..., :m], acd[-1])  # L[i] [a | c | d][i-1]
            M = D[:, :, i, ...] - t[..., m : 2 * m]
            R = Li * keep_cd - t * keep_ad  # [-L a | U | r - L d]
        Minv, bad = _inverse(xp, M, off[:, :, i, ...])
        acd.append(xp.matmul(Minv, R))
        bads.append(bad)

    # Backward sweep, rows c-3 .. 1: couple each row to x[last] instead of x[i+1]:
    # a'[i] = a[i] - c[i] a'[i+1], c'[i] = -c[i] c'[i+1], d'[i] = d[i] - c[i] d'[i+1].
    for i in range(c - 3, 0, -1):
        u = xp.matmul(acd[i][..., m : 2 * m], acd[i + 1])
        acd[i] = acd[i] * keep_ad - u
    # Row 0: a x[-1] + (I - c a'[1]) x[0] - c c'[1] x[last] = d - c d'[1], then normalize.
    u = xp.matmul(acd[0][..., m : 2 * m], acd[1])
    N0 = eye - u[..., :m]
    R0 = acd[0] * keep_ad - u * keep_cd  # [a | -c c' | d - c d']
    N0inv, bad = _inverse(xp, N0, _rowsum(xp, R0[..., : 2 * m]))
    first = xp.matmul(N0inv, R0)
    bads[0] = xp.logical_or(bads[0], bad)

    # Reduced system: rows (first_0, last_0, first_1, last_1, ...), identity diagonal.
    red = xp.reshape(xp.stack([first, acd[c - 1]], axis=2), (B, 2 * p, m, 2 * m + 1))
    Dred = xp.broadcast_to(eye, (B, 2 * p, m, m))
    xr, info_red = block_pcr(xp, red[..., :m], Dred, red[..., m : 2 * m], red[..., 2 * m])
    xr = xp.reshape(xr, (B, p, 2, m))
    ends = xp.reshape(xr, (B, p, 1, 2 * m, 1))  # [x[first] ; x[last]] per chunk

    # Completion of the interior rows 1 .. c-2 of every chunk in one pass.
    inner = xp.stack(acd[1 : c - 1], axis=2)  # (B, p, c-2, m, 2m+1)
    x_in = inner[..., 2 * m] - xp.matmul(inner[..., : 2 * m], ends)[..., 0]
    x = xp.concat([xr[:, :, :1, ...], x_in, xr[:, :, 1:, ...]], axis=2)
    x = xp.reshape(x, (B, N, m))[:, :n, ...]

    # info: first bad pivot of the sweeps, or the reduced system's (mapped to global rows).
    bad_rows = xp.reshape(xp.stack(bads, axis=2), (B, N))[:, :n, ...]
    info = first_bad_row(xp, bad_rows, axis=1)
    r = info_red - 1
    g = (r // 2) * c + (r % 2) * (c - 1) + 1
    info_red = xp.where(info_red > 0, g, xp.zeros_like(g))
    return x, merge_info(xp, info, info_red)
