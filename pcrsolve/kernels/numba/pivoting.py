"""Numba kernels for batched tridiagonal systems with partial pivoting, as LAPACK does.

- :func:`gtsv` — LAPACK ``?gtsv``: Gaussian elimination with row interchanges, one system
  per thread (``prange`` over the batch).
- :func:`gttrf` / :func:`gttrs` — LAPACK ``?gttrf`` (LU with row interchanges, with the
  second super-diagonal ``du2`` of fill-in and the pivot indices ``ipiv``) and ``?gttrs``
  (solve with those factors).

The pivot choice compares ``|re| + |im|`` for complex numbers, as LAPACK's ``cabs1``
does, so the interchanges are the ones the reference LAPACK makes. ``info[b] = r + 1`` when
the upper factor's diagonal entry ``U[r, r]`` is exactly zero (the matrix is singular),
else 0; ``gtsv`` then stops, as LAPACK does, and its ``x`` is set to NaN for that system.
Inputs are never modified (the kernels work on copies). See :mod:`pcrsolve.kernels`.
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit, prange

__all__ = ["gtsv", "gttrf", "gttrs"]


@jit
def _cabs1(z):
    return abs(z.real) + abs(z.imag)


@jit
def _div(a, b, nan):
    """``a / b``, or ``nan`` when ``b == 0`` (Numba raises on a complex division by zero)."""
    return a / b if b != 0 else nan


@jit
def _gtsv_system(dl, d, du, rhs, L, D, U, x):
    """LAPACK ``zgtsv`` on one system (``L`` = LAPACK DL, length n-1). Returns info."""
    n = d.shape[0]
    for i in range(n - 1):
        L[i] = dl[i + 1]
        U[i] = du[i]
    for i in range(n):
        D[i] = d[i]
        x[i] = rhs[i]
    for k in range(n - 1):
        if L[k] == 0:
            # Sub-diagonal already zero: nothing to eliminate.
            if D[k] == 0:
                return k + 1
        elif _cabs1(D[k]) >= _cabs1(L[k]):
            # No row interchange.
            mult = L[k] / D[k]
            D[k + 1] = D[k + 1] - mult * U[k]
            x[k + 1] = x[k + 1] - mult * x[k]
            if k < n - 2:
                L[k] = 0
        else:
            # Interchange rows k and k+1; L[k] then holds the second super-diagonal.
            mult = D[k] / L[k]
            D[k] = L[k]
            temp = D[k + 1]
            D[k + 1] = U[k] - mult * temp
            if k < n - 2:
                L[k] = U[k + 1]
                U[k + 1] = -mult * L[k]
            U[k] = temp
            temp = x[k]
            x[k] = x[k + 1]
            x[k + 1] = temp - mult * x[k + 1]
    if D[n - 1] == 0:
        return n
    x[n - 1] = x[n - 1] / D[n - 1]
    if n > 1:
        x[n - 2] = (x[n - 2] - U[n - 2] * x[n - 1]) / D[n - 2]
    for i in range(n - 3, -1, -1):
        x[i] = (x[i] - U[i] * x[i + 1] - L[i] * x[i + 2]) / D[i]
    return 0


@jit(parallel=True)
def _gtsv_kernel(dl, d, du, rhs, x, info):
    nb, n = d.shape
    for k in prange(nb):
        L = np.empty(n, dtype=d.dtype)
        D = np.empty(n, dtype=d.dtype)
        U = np.empty(n, dtype=d.dtype)
        xk = x[k]
        bad = _gtsv_system(dl[k], d[k], du[k], rhs[k], L, D, U, xk)
        info[k] = bad
        if bad:
            for i in range(n):
                xk[i] = np.nan


def gtsv(dl, d, du, rhs):
    """Solve batched tridiagonal systems by LU with partial pivoting (LAPACK ``?gtsv``).

    Parameters
    ----------
    dl, d, du, rhs : (B, n) ndarray
        Sub-, main and super-diagonal (padded, zero corners) and right-hand side.

    Returns
    -------
    x : (B, n) ndarray
        NaN for the systems with ``info > 0``.
    info : (B,) int64 ndarray
        ``r + 1`` if ``U[r, r]`` is exactly zero (singular matrix), else 0.
    """
    nb, n = d.shape
    x = np.empty((nb, n), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb and n:
        _gtsv_kernel(dl, d, du, rhs, x, info)
    return x, info


@jit
def _gttrf_system(dl, d, du, L, D, U, U2, ipiv):
    """LAPACK ``zgttrf`` on one system, into ``L`` (n-1), ``D``, ``U`` (n-1), ``U2`` (n-2)."""
    n = d.shape[0]
    for i in range(n - 1):
        L[i] = dl[i + 1]
        U[i] = du[i]
    for i in range(n):
        D[i] = d[i]
        ipiv[i] = i + 1
    for i in range(n - 2):
        U2[i] = 0
    for i in range(n - 1):
        if _cabs1(D[i]) >= _cabs1(L[i]):
            # No row interchange required, eliminate L[i].
            if D[i] != 0:
                fact = L[i] / D[i]
                L[i] = fact
                D[i + 1] = D[i + 1] - fact * U[i]
        else:
            # Interchange rows i and i+1, eliminate L[i].
            fact = D[i] / L[i]
            D[i] = L[i]
            L[i] = fact
            temp = U[i]
            U[i] = D[i + 1]
            D[i + 1] = temp - fact * D[i + 1]
            if i < n - 2:
                U2[i] = U[i + 1]
                U[i + 1] = -fact * U[i + 1]
            ipiv[i] = i + 2
    for i in range(n):
        if D[i] == 0:
            return i + 1
    return 0


@jit(parallel=True)
def _gttrf_kernel(dl, d, du, L, D, U, U2, ipiv, info):
    nb = d.shape[0]
    for k in prange(nb):
        info[k] = _gttrf_system(dl[k], d[k], du[k], L[k], D[k], U[k], U2[k], ipiv[k])


def gttrf(dl, d, du):
    """LU factorization with partial pivoting of batched tridiagonal matrices (``?gttrf``).

    Returns
    -------
    factors : tuple ``(dl, d, du, du2, ipiv)``
        Exactly LAPACK's outputs, batched: ``dl`` (B, n-1) multipliers, ``d`` (B, n) and
        ``du`` (B, n-1) the diagonal and first super-diagonal of ``U``, ``du2`` (B, n-2) its
        second super-diagonal, ``ipiv`` (B, n) int32, 1-based (row ``i`` was interchanged
        with row ``ipiv[i] - 1``). Lengths below zero are zero.
    info : (B,) int64 ndarray
        ``r + 1`` for the first exactly-zero ``U[r, r]``, else 0.
    """
    nb, n = d.shape
    L = np.empty((nb, max(n - 1, 0)), dtype=d.dtype)
    D = np.empty((nb, n), dtype=d.dtype)
    U = np.empty((nb, max(n - 1, 0)), dtype=d.dtype)
    U2 = np.empty((nb, max(n - 2, 0)), dtype=d.dtype)
    ipiv = np.empty((nb, n), dtype=np.int32)
    info = np.zeros(nb, dtype=np.int64)
    if nb and n:
        _gttrf_kernel(dl, d, du, L, D, U, U2, ipiv, info)
    return (L, D, U, U2, ipiv), info


@jit
def _gttrs_system(L, D, U, U2, ipiv, rhs, nan, x):
    """LAPACK ``zgtts2`` (no transpose) on one right-hand side."""
    n = D.shape[0]
    for i in range(n):
        x[i] = rhs[i]
    # Solve L y = P b.
    for i in range(n - 1):
        if ipiv[i] == i + 1:
            x[i + 1] = x[i + 1] - L[i] * x[i]
        else:
            temp = x[i] - L[i] * x[i + 1]
            x[i] = x[i + 1]
            x[i + 1] = temp
    # Solve U x = y.
    x[n - 1] = _div(x[n - 1], D[n - 1], nan)
    if n > 1:
        x[n - 2] = _div(x[n - 2] - U[n - 2] * x[n - 1], D[n - 2], nan)
    for i in range(n - 3, -1, -1):
        x[i] = _div(x[i] - U[i] * x[i + 1] - U2[i] * x[i + 2], D[i], nan)


@jit(parallel=True)
def _gttrs_kernel(L, D, U, U2, ipiv, rhs, nan, x):
    nb = rhs.shape[0]
    step = 0 if D.shape[0] == 1 else 1  # factors of one system, shared
    for k in prange(nb):
        f = k * step
        _gttrs_system(L[f], D[f], U[f], U2[f], ipiv[f], rhs[k], nan, x[k])


def gttrs(factors, rhs):
    """Solve with factors from :func:`gttrf` (LAPACK ``?gttrs``); ``rhs``: (B, n) -> ``x``.

    Factors of a single system (batch 1) are also accepted with a batch of right-hand sides.
    A singular factorization (``info > 0``) gives NaN, never an exception.
    """
    L, D, U, U2, ipiv = factors
    nb, n = rhs.shape
    x = np.empty((nb, n), dtype=np.result_type(D, rhs))
    if nb and n:
        _gttrs_kernel(L, D, U, U2, ipiv, rhs, x.dtype.type(np.nan), x)
    return x
