"""Numba kernels for block tridiagonal systems ``L_i x_{i-1} + D_i x_i + U_i x_{i+1} = rhs_i``.

See :mod:`pcrsolve.kernels` for the contract. ``L, D, U: (B, n, m, m)``, ``rhs, x: (B, n, m)``;
the corners ``L[:, 0]`` and ``U[:, n-1]`` are zero.

Every method applies the inverse of a (modified) diagonal block through a small dense LU
factorization with partial pivoting, written as plain loops over ``m`` (``m`` is small, 1..32).

Breakdown test (``info``)
    A block row breaks down when its LU meets a pivot ``u`` with
    ``abs1(u) <= eps * scale`` or ``abs1(u)`` not finite, where ``abs1(z) = |Re z| + |Im z|``
    (the LAPACK ``izamax`` magnitude; ``|z|`` for real dtypes), ``eps`` is the machine epsilon
    of the (real) dtype and ``scale`` is the largest ``abs1`` entry of the block row
    ``(L_r, D_r, U_r)`` being eliminated: the original row for block Thomas and for the
    chunk rows of the hybrid, the current (reduced) row for PCR levels and for the hybrid's
    interface system. ``info[b] = r + 1`` names the block row ``r`` of the original system
    (for PCR, the lowest row at the earliest failing level); a system with ``info > 0`` has
    its ``x`` filled with NaN. The kernels never divide by a rejected pivot.
"""

from __future__ import annotations

import types

import numpy as np

from ..._jit import jit, prange
from ._threads import split

__all__ = [
    "block_hybrid",
    "block_pcr",
    "block_thomas",
    "block_thomas_factor",
    "block_thomas_factor_solve",
]


# Work (a rough flop count) below which a kernel runs on the calling thread: starting a
# parallel region costs tens of microseconds, much more on a loaded machine. Tests set it
# to 0 to exercise the parallel code on small inputs.
PARALLEL_MIN_WORK = 1 << 16


def _twins(func):
    """Compile ``func`` twice: with its ``prange`` loops run in parallel, and serially.

    The serial copy is a separately named function, so the two never share a cache entry.
    """
    serial = types.FunctionType(
        func.__code__, func.__globals__, func.__name__ + "_serial", func.__defaults__, func.__closure__
    )
    serial.__qualname__ = func.__qualname__ + "_serial"
    return jit(func, parallel=True), jit(serial)


def _pick(twins, tasks, work):
    """The parallel twin when there are several tasks and enough work to share, else the serial."""
    return twins[0] if tasks > 1 and work >= PARALLEL_MIN_WORK else twins[1]


# Layout inside the kernels: the batch and sequence axes are flattened, so a block operand
# is a pair (array of shape (rows, m, m), row index) and a vector operand a pair (array of
# shape (rows, m), row index); system ``b`` owns rows ``b*n .. b*n + n-1``. Passing whole
# arrays and indices instead of slicing views keeps the hot loops free of reference counting.

# --------------------------------------------------------------------------------------------
# Small dense helpers on one m x m block (plain loops over m; LLVM inlines them)
# --------------------------------------------------------------------------------------------


@jit(inline=True)
def _abs1(z):
    return abs(z.real) + abs(z.imag)


@jit
def _row_tol(L, D, U, i, eps):
    """``eps`` times the largest ``abs1`` entry of block row ``(L[i], D[i], U[i])``."""
    m = D.shape[1]
    big = 0.0
    for p in range(m):
        for q in range(m):
            big = max(big, _abs1(L[i, p, q]), _abs1(D[i, p, q]), _abs1(U[i, p, q]))
    return eps * big


@jit
def _lu(W, w, piv, pv, tol):
    """LU with partial pivoting of ``W[w]`` in place (LAPACK ``getrf`` layout, swaps in ``piv[pv]``).

    Returns 0, or ``k + 1`` for the first pivot ``u_kk`` with ``abs1(u_kk) <= tol`` or not
    finite; nothing is ever divided by such a pivot.
    """
    m = W.shape[1]
    for k in range(m):
        p = k
        big = _abs1(W[w, k, k])
        for i in range(k + 1, m):
            v = _abs1(W[w, i, k])
            if v > big:
                big = v
                p = i
        piv[pv, k] = p
        if not (big > tol and big < np.inf):
            return k + 1
        if p != k:
            for j in range(m):
                t = W[w, k, j]
                W[w, k, j] = W[w, p, j]
                W[w, p, j] = t
        inv = 1.0 / W[w, k, k]
        for i in range(k + 1, m):
            l = W[w, i, k] * inv
            W[w, i, k] = l
            for j in range(k + 1, m):
                W[w, i, j] -= l * W[w, k, j]
    return 0


@jit
def _lu_solve_vec(LU, f, piv, pv, v, iv):
    """``v[iv] <- A^{-1} v[iv]`` from the factors ``LU[f], piv[pv]`` of :func:`_lu`."""
    m = LU.shape[1]
    for k in range(m):
        p = piv[pv, k]
        if p != k:
            t = v[iv, k]
            v[iv, k] = v[iv, p]
            v[iv, p] = t
    for i in range(1, m):
        acc = v[iv, i]
        for k in range(i):
            acc -= LU[f, i, k] * v[iv, k]
        v[iv, i] = acc
    for i in range(m - 1, -1, -1):
        acc = v[iv, i]
        for k in range(i + 1, m):
            acc -= LU[f, i, k] * v[iv, k]
        v[iv, i] = acc / LU[f, i, i]


@jit
def _lu_solve_mat(LU, f, piv, pv, M, im):
    """``M[im] <- A^{-1} M[im]`` from the factors ``LU[f], piv[pv]`` of :func:`_lu`."""
    m = LU.shape[1]
    for k in range(m):
        p = piv[pv, k]
        if p != k:
            for j in range(m):
                t = M[im, k, j]
                M[im, k, j] = M[im, p, j]
                M[im, p, j] = t
    for i in range(1, m):
        for k in range(i):
            l = LU[f, i, k]
            for j in range(m):
                M[im, i, j] -= l * M[im, k, j]
    for i in range(m - 1, -1, -1):
        for k in range(i + 1, m):
            u = LU[f, i, k]
            for j in range(m):
                M[im, i, j] -= u * M[im, k, j]
        inv = 1.0 / LU[f, i, i]
        for j in range(m):
            M[im, i, j] *= inv


@jit
def _copy_blk(dst, i, src, j):
    m = src.shape[1]
    for p in range(m):
        for q in range(m):
            dst[i, p, q] = src[j, p, q]


@jit
def _copy_vec(dst, i, src, j):
    for p in range(src.shape[1]):
        dst[i, p] = src[j, p]


@jit
def _zero_blk(dst, i):
    m = dst.shape[1]
    for p in range(m):
        for q in range(m):
            dst[i, p, q] = 0


@jit
def _zero_vec(dst, i):
    for p in range(dst.shape[1]):
        dst[i, p] = 0


@jit
def _nan_vec(dst, i):
    for p in range(dst.shape[1]):
        dst[i, p] = np.nan


@jit
def _eye_blk(dst, i):
    _zero_blk(dst, i)
    for p in range(dst.shape[1]):
        dst[i, p, p] = 1


@jit
def _gemm_sub(C, ic, A, ia, Bm, ib):
    """``C[ic] -= A[ia] @ Bm[ib]``."""
    m = C.shape[1]
    for i in range(m):
        for k in range(m):
            a = A[ia, i, k]
            for j in range(m):
                C[ic, i, j] -= a * Bm[ib, k, j]


@jit
def _gemm_neg(C, ic, A, ia, Bm, ib):
    """``C[ic] = -(A[ia] @ Bm[ib])``."""
    _zero_blk(C, ic)
    _gemm_sub(C, ic, A, ia, Bm, ib)


@jit
def _gemv_sub(c, ic, A, ia, v, iv):
    """``c[ic] -= A[ia] @ v[iv]``."""
    m = c.shape[1]
    for i in range(m):
        acc = c[ic, i]
        for k in range(m):
            acc -= A[ia, i, k] * v[iv, k]
        c[ic, i] = acc


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _flat(a):
    """``(B, n, ...)`` -> ``(B*n, ...)`` view (inputs are C-contiguous)."""
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


# --------------------------------------------------------------------------------------------
# Block Thomas
# --------------------------------------------------------------------------------------------


@jit(inline=True)
def _schur_row(L, D, U, rhs, i, first, G, x, W, eps):
    """Block Thomas forward step, part 1: ``W[0] = D_i - L_i G_{i-1}`` and
    ``x_i = rhs_i - L_i x_{i-1}`` (no products when ``first``); returns the row's pivot
    tolerance ``eps * max abs1(L_i, D_i, U_i)``. One call instead of five small ones."""
    m = D.shape[1]
    big = 0.0
    for p in range(m):
        for q in range(m):
            big = max(big, _abs1(L[i, p, q]), _abs1(D[i, p, q]), _abs1(U[i, p, q]))
    if first:
        for p in range(m):
            x[i, p] = rhs[i, p]
            for q in range(m):
                W[0, p, q] = D[i, p, q]
    else:
        for p in range(m):
            acc = rhs[i, p]
            for k in range(m):
                acc -= L[i, p, k] * x[i - 1, k]
            x[i, p] = acc
            for q in range(m):
                w = D[i, p, q]
                for k in range(m):
                    w -= L[i, p, k] * G[i - 1, k, q]
                W[0, p, q] = w
    return eps * big


@jit
def _thomas_systems(L, D, U, rhs, n, eps, x, G, info, b0, b1):
    """Block Thomas on the systems ``b0 .. b1-1`` (system ``b`` in rows ``b*n .. b*n+n-1``).

    Forward: ``W = D_i - L_i G_{i-1}``, ``G_i = W^{-1} U_i``, ``y_i = W^{-1}(rhs_i - L_i y_{i-1})``
    (``y`` kept in ``x``); back: ``x_i = y_i - G_i x_{i+1}``. ``info[b]`` is 0 or ``r + 1`` for
    the block row ``r`` that broke down; ``x`` of that system is then NaN.
    """
    m = D.shape[1]
    W = np.empty((1, m, m), dtype=D.dtype)
    piv = np.empty((1, m), dtype=np.int64)
    for b in range(b0, b1):
        o = b * n
        info[b] = 0
        for r in range(n):
            i = o + r
            tol = _schur_row(L, D, U, rhs, i, r == 0, G, x, W, eps)
            if r < n - 1:
                for p in range(m):
                    for q in range(m):
                        G[i, p, q] = U[i, p, q]
            if _lu(W, 0, piv, 0, tol) != 0:
                for k in range(o, o + n):
                    _nan_vec(x, k)
                info[b] = r + 1
                break
            if r < n - 1:
                _lu_solve_mat(W, 0, piv, 0, G, i)
            _lu_solve_vec(W, 0, piv, 0, x, i)
        if info[b] != 0:
            continue
        for i in range(o + n - 2, o - 1, -1):
            for p in range(m):
                acc = x[i, p]
                for k in range(m):
                    acc -= G[i, p, k] * x[i + 1, k]
                x[i, p] = acc


def block_thomas(L, D, U, rhs):
    """Block Thomas elimination, one system per thread. Returns ``(x, info)``."""
    nb, n, m = rhs.shape
    x = np.empty(rhs.shape, dtype=rhs.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb * n * m == 0:
        return x, info
    G = np.empty(D.shape, dtype=D.dtype)
    args = (_flat(L), _flat(D), _flat(U), _flat(rhs), n, _eps(D.dtype), _flat(x), _flat(G), info)
    split(_thomas_systems, nb, *args, work=8 * nb * n * m**3)
    return x, info


def _block_thomas_factor_kernel(L, D, U, n, eps, LU, piv, G, info):
    nb = info.shape[0]
    for b in prange(nb):
        for r in range(n):
            i = b * n + r
            _copy_blk(LU, i, D, i)
            if r > 0:
                _gemm_sub(LU, i, L, i, G, i - 1)
            if _lu(LU, i, piv, i, _row_tol(L, D, U, i, eps)) != 0:
                info[b] = r + 1
                break
            if r < n - 1:
                _copy_blk(G, i, U, i)
                _lu_solve_mat(LU, i, piv, i, G, i)


_BLOCK_THOMAS_FACTOR = _twins(_block_thomas_factor_kernel)


def block_thomas_factor(L, D, U):
    """Block LU factorization for reuse over right-hand sides.

    Returns ``(factors, info)`` with ``factors = (L, LU, piv, G)``: a copy of ``L``, the
    pivoted LU factors of the modified diagonal blocks ``W_i = D_i - L_i G_{i-1}``, their
    row interchanges, and ``G_i = W_i^{-1} U_i`` (all ``(B, n, ...)``).
    """
    nb, n, m = D.shape[0], D.shape[1], D.shape[2]
    info = np.zeros(nb, dtype=np.int64)
    Lc = np.array(L, dtype=D.dtype, copy=True)
    LU = np.zeros(D.shape, dtype=D.dtype)
    piv = np.zeros((nb, n, m), dtype=np.int64)
    G = np.zeros(D.shape, dtype=D.dtype)
    if nb * n * m:
        kernel = _pick(_BLOCK_THOMAS_FACTOR, nb, 8 * nb * n * m**3)
        kernel(_flat(L), _flat(D), _flat(U), n, _eps(D.dtype), _flat(LU), _flat(piv), _flat(G), info)
    return (Lc, LU, piv, G), info


def _block_thomas_solve_kernel(L, LU, piv, G, nf, rhs, n, x):
    nb = rhs.shape[0] // n
    for b in prange(nb):
        o = b * n
        f = o if nf > 1 else 0  # the factors' first row
        for r in range(n):
            _copy_vec(x, o + r, rhs, o + r)
            if r > 0:
                _gemv_sub(x, o + r, L, f + r, x, o + r - 1)
            _lu_solve_vec(LU, f + r, piv, f + r, x, o + r)
        for r in range(n - 2, -1, -1):
            _gemv_sub(x, o + r, G, f + r, x, o + r + 1)


_BLOCK_THOMAS_SOLVE = _twins(_block_thomas_solve_kernel)


def block_thomas_factor_solve(factors, rhs):
    """Solve with the factors of :func:`block_thomas_factor`; ``rhs, x: (B, n, m)``.

    The factors' batch is ``B`` or 1 (one factorization shared by every right-hand side).
    A factorization whose ``info`` was nonzero gives meaningless ``x``; the shell raises first.
    """
    L, LU, piv, G = factors
    x = np.empty(rhs.shape, dtype=LU.dtype)
    if x.size:
        rhs = np.ascontiguousarray(rhs, dtype=LU.dtype)
        nb, n, m = rhs.shape
        kernel = _pick(_BLOCK_THOMAS_SOLVE, nb, 4 * nb * n * m**2)
        kernel(_flat(L), _flat(LU), _flat(piv), _flat(G), LU.shape[0], _flat(rhs), n, _flat(x))
    return x


# --------------------------------------------------------------------------------------------
# Block PCR
# --------------------------------------------------------------------------------------------


@jit
def _pcr_invert(L, D, U, r, i, j, n, s, eps, W, piv, P, Q, v):
    """Row ``i`` (row ``j`` of its system) at stride ``s``: ``W = LU(D_i)``,
    ``P_i = D_i^{-1} L_i``, ``Q_i = D_i^{-1} U_i``, ``v_i = D_i^{-1} r_i``.

    Returns False on breakdown (then ``P, Q, v`` are zero).
    """
    _copy_blk(W, i, D, i)
    if _lu(W, i, piv, i, _row_tol(L, D, U, i, eps)) != 0:
        _zero_blk(P, i)
        _zero_blk(Q, i)
        _zero_vec(v, i)
        return False
    if j >= s:  # otherwise L_i == 0 at this level
        _copy_blk(P, i, L, i)
        _lu_solve_mat(W, i, piv, i, P, i)
    else:
        _zero_blk(P, i)
    if j + s < n:  # otherwise U_i == 0
        _copy_blk(Q, i, U, i)
        _lu_solve_mat(W, i, piv, i, Q, i)
    else:
        _zero_blk(Q, i)
    _copy_vec(v, i, r, i)
    _lu_solve_vec(W, i, piv, i, v, i)
    return True


@jit
def _pcr_combine(L, D, U, r, P, Q, v, i, j, n, s, Ln, Dn, Un, rn):
    """Row ``i`` (row ``j`` of its system) of the next level."""
    _copy_blk(Dn, i, D, i)
    _copy_vec(rn, i, r, i)
    if j - s >= 0:
        _gemm_sub(Dn, i, L, i, Q, i - s)
        _gemv_sub(rn, i, L, i, v, i - s)
    if j - 2 * s >= 0:
        _gemm_neg(Ln, i, L, i, P, i - s)
    else:
        _zero_blk(Ln, i)
    if j + s < n:
        _gemm_sub(Dn, i, U, i, P, i + s)
        _gemv_sub(rn, i, U, i, v, i + s)
    if j + 2 * s < n:
        _gemm_neg(Un, i, U, i, Q, i + s)
    else:
        _zero_blk(Un, i)


def _block_pcr_kernel(L1, D1, U1, r1, L2, D2, U2, r2, n, W, piv, P, Q, v, fail, eps, x, info):
    rows = D1.shape[0]
    nb = info.shape[0]
    s = 1
    level = 1
    while s < n:
        for i in prange(rows):
            j = i % n
            if not _pcr_invert(L1, D1, U1, r1, i, j, n, s, eps, W, piv, P, Q, v):
                if fail[i] == 0:
                    fail[i] = level
        for i in prange(rows):
            _pcr_combine(L1, D1, U1, r1, P, Q, v, i, i % n, n, s, L2, D2, U2, r2)
        L1, L2 = L2, L1
        D1, D2 = D2, D1
        U1, U2 = U2, U1
        r1, r2 = r2, r1
        s *= 2
        level += 1
    # Every row is decoupled now: x_i = D_i^{-1} r_i.
    for i in prange(rows):
        _copy_blk(W, i, D1, i)
        if _lu(W, i, piv, i, _row_tol(L1, D1, U1, i, eps)) != 0:
            if fail[i] == 0:
                fail[i] = level
        else:
            _copy_vec(x, i, r1, i)
            _lu_solve_vec(W, i, piv, i, x, i)
    for b in prange(nb):
        best = 0
        row = 0
        for j in range(n):
            f = fail[b * n + j]
            if f != 0 and (best == 0 or f < best):
                best = f
                row = j
        if best != 0:
            info[b] = row + 1
            for i in range(b * n, b * n + n):
                _nan_vec(x, i)


_BLOCK_PCR = _twins(_block_pcr_kernel)


def block_pcr(L, D, U, rhs):
    """Block Parallel Cyclic Reduction: ceil(log2 n) levels, double-buffered, parallel over
    all rows of all systems within a level. Returns ``(x, info)``."""
    nb, n, m = rhs.shape
    x = np.empty(rhs.shape, dtype=rhs.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb * n * m == 0:
        return x, info
    dt = D.dtype
    L1, D1, U1, r1 = (np.array(_flat(a), dtype=dt, copy=True) for a in (L, D, U, rhs))
    L2, D2, U2, r2 = (np.empty_like(a) for a in (L1, D1, U1, r1))
    W, P, Q = (np.empty_like(D1) for _ in range(3))
    v = np.empty_like(r1)
    piv = np.empty((nb * n, m), dtype=np.int64)
    fail = np.zeros(nb * n, dtype=np.int64)
    levels = max(1, (n - 1).bit_length())
    kernel = _pick(_BLOCK_PCR, nb * n, 14 * nb * n * levels * m**3)
    kernel(L1, D1, U1, r1, L2, D2, U2, r2, n, W, piv, P, Q, v, fail, _eps(dt), _flat(x), info)
    return x, info


# --------------------------------------------------------------------------------------------
# Block hybrid (partitioned): chunk elimination, interface system, chunk completion
# --------------------------------------------------------------------------------------------


@jit
def _chunk_bounds(c, n, p):
    """Rows ``[start, stop)`` (system-local) of chunk ``c`` of ``p`` nearly equal chunks."""
    base = n // p
    rem = n - base * p
    start = c * base + min(c, rem)
    return start, start + base + (1 if c < rem else 0)


@jit
def _hybrid_chunk(L, D, U, rhs, eps, s, e, a, cc, d, W, piv, T, Lr, Dr, Ur, rr, k):
    """Eliminate the chunk in rows ``s .. e-1`` (at least two rows, flat indices).

    Afterwards every interior row ``i`` reads ``x_i = d_i - a_i x_s - c_i x_{e-1}`` and the two
    interface rows ``s`` and ``e-1`` are rows ``k`` and ``k+1`` of ``Lr, Dr, Ur, rr``, in the
    interface system's order ``[..., x_{s_c}, x_{e_c - 1}, x_{s_{c+1}}, ...]``.
    Returns 0 or ``i - s + 1`` for the first chunk row ``i`` that broke down.
    """
    last = e - 1
    for i in range(s, e):
        _copy_blk(W, 0, D, i)
        _copy_vec(d, i, rhs, i)
        if i >= s + 2:
            # row i-1 reads a_{i-1} x_s + x_{i-1} + c_{i-1} x_i = d_{i-1}
            _gemm_sub(W, 0, L, i, cc, i - 1)
            _gemv_sub(d, i, L, i, d, i - 1)
            _gemm_neg(a, i, L, i, a, i - 1)
        else:
            _copy_blk(a, i, L, i)
        if _lu(W, 0, piv, 0, _row_tol(L, D, U, i, eps)) != 0:
            return i - s + 1
        _lu_solve_mat(W, 0, piv, 0, a, i)
        _copy_blk(cc, i, U, i)
        _lu_solve_mat(W, 0, piv, 0, cc, i)
        _lu_solve_vec(W, 0, piv, 0, d, i)
    # Backward: rows last-2 .. s+1 end up coupled to x_s and x_last only.
    for i in range(last - 2, s, -1):
        _gemm_sub(a, i, cc, i, a, i + 1)
        _gemv_sub(d, i, cc, i, d, i + 1)
        _gemm_neg(T, 0, cc, i, cc, i + 1)
        _copy_blk(cc, i, T, 0)
    # Row s: a_s x_{s-1} + (I - c_s a_{s+1}) x_s - c_s c_{s+1} x_last = d_s - c_s d_{s+1}
    _copy_blk(Lr, k, a, s)
    _eye_blk(Dr, k)
    _copy_vec(rr, k, d, s)
    if last - s >= 2:
        _gemm_sub(Dr, k, cc, s, a, s + 1)
        _gemm_neg(Ur, k, cc, s, cc, s + 1)
        _gemv_sub(rr, k, cc, s, d, s + 1)
    else:
        _copy_blk(Ur, k, cc, s)
    # Row last: a_last x_s + x_last + c_last x_e = d_last
    _copy_blk(Lr, k + 1, a, last)
    _eye_blk(Dr, k + 1)
    _copy_blk(Ur, k + 1, cc, last)
    _copy_vec(rr, k + 1, d, last)
    return 0


def _block_hybrid_kernel(L, D, U, rhs, n, p, eps, a, cc, d, Lr, Dr, Ur, rr, Gr, xr, cfail, x, info):
    nb = info.shape[0]
    m = D.shape[1]
    # 1. Chunks eliminated in parallel.
    for t in prange(nb * p):
        b = t // p
        c = t - b * p
        s, e = _chunk_bounds(c, n, p)
        W = np.empty((1, m, m), dtype=D.dtype)
        T = np.empty((1, m, m), dtype=D.dtype)
        piv = np.empty((1, m), dtype=np.int64)
        k = _hybrid_chunk(L, D, U, rhs, eps, b * n + s, b * n + e, a, cc, d, W, piv, T, Lr, Dr, Ur, rr, 2 * t)
        cfail[t] = 0 if k == 0 else s + k
    # 2. The interface system (2p block rows per system) by block Thomas.
    for b in prange(nb):
        first = 0
        for c in range(p):
            if cfail[b * p + c] != 0:
                first = cfail[b * p + c]
                break
        if first != 0:
            info[b] = first
        else:
            _thomas_systems(Lr, Dr, Ur, rr, 2 * p, eps, xr, Gr, info, b, b + 1)
            k = info[b]
            if k != 0:
                s, e = _chunk_bounds((k - 1) // 2, n, p)
                info[b] = (s if (k - 1) % 2 == 0 else e - 1) + 1
    # 3. Chunks completed in parallel.
    for t in prange(nb * p):
        b = t // p
        s, e = _chunk_bounds(t - b * p, n, p)
        s += b * n
        e += b * n
        if info[b] != 0:
            for i in range(s, e):
                _nan_vec(x, i)
        else:
            _copy_vec(x, s, xr, 2 * t)
            _copy_vec(x, e - 1, xr, 2 * t + 1)
            for i in range(s + 1, e - 1):
                _copy_vec(x, i, d, i)
                _gemv_sub(x, i, a, i, xr, 2 * t)
                _gemv_sub(x, i, cc, i, xr, 2 * t + 1)


_BLOCK_HYBRID = _twins(_block_hybrid_kernel)


def _default_chunks(nb: int, n: int, min_rows: int) -> int:
    """About four tasks per thread over the whole batch, chunks of at least ``min_rows``."""
    import numba

    threads = max(1, int(numba.get_num_threads()))
    want = -(-4 * threads // max(nb, 1))
    return max(1, min(want, n // min_rows))


def block_hybrid(L, D, U, rhs, *, chunks=None):
    """Partitioned block solver. Returns ``(x, info)``.

    The rows of each system are cut into ``chunks`` nearly equal chunks of at least two
    rows (default: about four tasks per thread over the batch, at least 32 rows per chunk;
    when that is a single chunk, block Thomas runs instead).
    Each chunk is eliminated on its own so that its rows depend only on its first and last
    unknowns; the ``2 * chunks`` interface rows form a block tridiagonal system solved by
    block Thomas; the chunks are then completed in parallel.
    """
    nb, n, m = rhs.shape
    p = _default_chunks(nb, n, 32) if chunks is None else int(chunks)
    p = max(1, min(p, n // 2))
    if n <= 1 or nb * m == 0 or (chunks is None and p == 1):
        return block_thomas(L, D, U, rhs)  # one chunk would only double block Thomas's work
    dt = D.dtype
    x = np.empty(rhs.shape, dtype=dt)
    info = np.zeros(nb, dtype=np.int64)
    a, cc = np.empty(D.shape, dtype=dt), np.empty(D.shape, dtype=dt)
    d = np.empty(rhs.shape, dtype=dt)
    Lr, Dr, Ur, Gr = (np.empty((nb * 2 * p, m, m), dtype=dt) for _ in range(4))
    rr, xr = np.empty((nb * 2 * p, m), dtype=dt), np.empty((nb * 2 * p, m), dtype=dt)
    cfail = np.zeros(nb * p, dtype=np.int64)
    kernel = _pick(_BLOCK_HYBRID, nb * p, 16 * nb * n * m**3)
    kernel(
        _flat(L),
        _flat(D),
        _flat(U),
        _flat(rhs),
        n,
        p,
        _eps(dt),
        _flat(a),
        _flat(cc),
        _flat(d),
        Lr,
        Dr,
        Ur,
        rr,
        Gr,
        xr,
        cfail,
        _flat(x),
        info,
    )
    return x, info
