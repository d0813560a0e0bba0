"""Slow, obviously-correct references: dense assembly, numpy.linalg.solve and plain loops.

Nothing here calls pcrsolve. Every input is a NumPy array (or array_like); batch axes
lead and broadcast; off-diagonals are accepted in LAPACK layout (length n-1) or padded
(length n, ignored corners).
"""

from __future__ import annotations

import numpy as np


def _pad_lower(a, n):
    """Padded copy (length n on axis ``axis``) of a sub-diagonal-like array."""
    a = np.asarray(a)
    zero = np.zeros((*a.shape[:-1], 1), dtype=a.dtype)
    return a if a.shape[-1] == n else np.concatenate([zero, a], axis=-1)


def _pad_upper(a, n):
    a = np.asarray(a)
    zero = np.zeros((*a.shape[:-1], 1), dtype=a.dtype)
    return a if a.shape[-1] == n else np.concatenate([a, zero], axis=-1)


def _pad_lower_blocks(a, n):
    a = np.asarray(a)
    zero = np.zeros((*a.shape[:-3], 1, *a.shape[-2:]), dtype=a.dtype)
    return a if a.shape[-3] == n else np.concatenate([zero, a], axis=-3)


def _pad_upper_blocks(a, n):
    a = np.asarray(a)
    zero = np.zeros((*a.shape[:-3], 1, *a.shape[-2:]), dtype=a.dtype)
    return a if a.shape[-3] == n else np.concatenate([a, zero], axis=-3)


def dense_tridiagonal(dl, d, du):
    """Dense ``(..., n, n)`` matrix of a tridiagonal system."""
    d = np.asarray(d)
    n = d.shape[-1]
    dl, du = _pad_lower(dl, n), _pad_upper(du, n)
    dl, d, du = np.broadcast_arrays(dl, d, du)
    a = np.zeros((*d.shape, n), dtype=np.result_type(dl, d, du))
    for k in range(n):
        a[..., k, k] = d[..., k]
        if k > 0:
            a[..., k, k - 1] = dl[..., k]
        if k < n - 1:
            a[..., k, k + 1] = du[..., k]
    return a


def dense_block_tridiagonal(L, D, U):
    """Dense ``(..., n*m, n*m)`` matrix of a block tridiagonal system."""
    D = np.asarray(D)
    n, m = D.shape[-3], D.shape[-1]
    L, U = _pad_lower_blocks(L, n), _pad_upper_blocks(U, n)
    L, D, U = np.broadcast_arrays(L, D, U)
    a = np.zeros((*D.shape[:-3], n * m, n * m), dtype=np.result_type(L, D, U))
    for k in range(n):
        s = slice(k * m, (k + 1) * m)
        a[..., s, s] = D[..., k, :, :]
        if k > 0:
            a[..., s, (k - 1) * m : k * m] = L[..., k, :, :]
        if k < n - 1:
            a[..., s, (k + 1) * m : (k + 2) * m] = U[..., k, :, :]
    return a


def dense_solve(a, rhs):
    """``numpy.linalg.solve`` over broadcast batches, with ``rhs`` a stack of vectors."""
    a, rhs = np.asarray(a), np.asarray(rhs)
    batch = np.broadcast_shapes(a.shape[:-2], rhs.shape[:-1])
    a = np.broadcast_to(a, (*batch, *a.shape[-2:]))
    rhs = np.broadcast_to(rhs, (*batch, rhs.shape[-1]))
    if a.shape[-1] == 0:
        return np.zeros(rhs.shape, dtype=np.result_type(a, rhs))
    return np.linalg.solve(a, rhs[..., None])[..., 0]


def solve_tridiagonal(dl, d, du, rhs):
    """Reference solution of a (batched) tridiagonal system."""
    return dense_solve(dense_tridiagonal(dl, d, du), rhs)


def solve_block_tridiagonal(L, D, U, rhs):
    """Reference solution of a (batched) block tridiagonal system; ``rhs``: (..., n, m)."""
    rhs = np.asarray(rhs)
    x = dense_solve(dense_block_tridiagonal(L, D, U), rhs.reshape(*rhs.shape[:-2], -1))
    return x.reshape(*x.shape[:-1], -1, rhs.shape[-1])


def solve_bidiagonal(d, e, rhs, lower=True):
    """Reference solution of a (batched) scalar bidiagonal system."""
    d = np.asarray(d)
    n = d.shape[-1]
    if lower:
        return solve_tridiagonal(_pad_lower(e, n), d, np.zeros_like(d), rhs)
    return solve_tridiagonal(np.zeros_like(d), d, _pad_upper(e, n), rhs)


def solve_block_bidiagonal(D, E, rhs, lower=True):
    """Reference solution of a (batched) block bidiagonal system."""
    D = np.asarray(D)
    n = D.shape[-3]
    if lower:
        return solve_block_tridiagonal(_pad_lower_blocks(E, n), D, np.zeros_like(D), rhs)
    return solve_block_tridiagonal(np.zeros_like(D), D, _pad_upper_blocks(E, n), rhs)


def linear_recurrence(A, b, x0=None, reverse=False):
    """Plain loop: ``x[k] = A[k] @ x[k-1] + b[k]`` (dense when ``A.ndim == b.ndim + 1``)."""
    A, b = np.asarray(A), np.asarray(b)
    dense = A.ndim == b.ndim + 1
    n, m = b.shape[-2], b.shape[-1]
    batch = np.broadcast_shapes(
        A.shape[: -3 if dense else -2], b.shape[:-2], () if x0 is None else np.shape(x0)[:-1]
    )
    dtype = np.result_type(A, b, np.float64 if x0 is None else np.asarray(x0))
    x = np.zeros((*batch, n, m), dtype=dtype)
    prev = np.zeros((*batch, m), dtype=dtype) if x0 is None else np.broadcast_to(x0, (*batch, m))
    order = range(n - 1, -1, -1) if reverse else range(n)
    for k in order:
        a_k = A[..., k, :, :] if dense else A[..., k, :]
        prev = (np.einsum("...ij,...j->...i", a_k, prev) if dense else a_k * prev) + b[..., k, :]
        x[..., k, :] = prev
    return x


def dense_from_blocks(blocks):
    """``(..., m/b, b, b)`` blocks in the strided layout of ``Chain.jac_blocks`` -> ``(..., m, m)``.

    Block ``i`` couples the entries ``i, i + m/b, ...``: ``J[p m/b + i, q m/b + i] = blocks[..., i, p, q]``.
    """
    blocks = np.asarray(blocks)
    *lead, nb, b, _ = blocks.shape
    J = np.zeros((*lead, nb * b, nb * b), dtype=blocks.dtype)
    for i in range(nb):
        for p in range(b):
            for q in range(b):
                J[..., p * nb + i, q * nb + i] = blocks[..., i, p, q]
    return J
