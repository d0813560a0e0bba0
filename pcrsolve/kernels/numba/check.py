"""Finiteness and backward-error checks in one pass over the data (no temporaries).

The same quantities as :mod:`pcrsolve.kernels.xp.check`; see there for why they exist.
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit, prange

__all__ = ["all_finite", "block_backward_error", "tridiagonal_backward_error"]


# Below this many entries one thread is faster than waking the others.
_PARALLEL_MIN = 1 << 18


@jit
def _all_finite_flat(a):
    for i in range(a.size):
        if not np.isfinite(a[i]):
            return False
    return True


@jit(parallel=True)
def _count_nonfinite_flat(a):
    count = 0
    for i in prange(a.size):
        if not np.isfinite(a[i]):
            count += 1
    return count


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is finite."""
    if not a.flags.c_contiguous:
        return bool(np.isfinite(a).all())
    flat = a.reshape(-1)
    if flat.size >= _PARALLEL_MIN:
        return _count_nonfinite_flat(flat) == 0
    return bool(_all_finite_flat(flat))


@jit
def _normwise(r, anorm, xnorm, bnorm, finite):
    """``r / (|A| |x| + |b|)``, ``inf`` for a non-finite solution."""
    if not finite:
        return np.inf
    denom = anorm * xnorm + bnorm
    return r / denom if denom > 0.0 else r


@jit(parallel=True)
def _tridiagonal_backward_error(dl, d, du, rhs, x, out):
    B, n = d.shape
    lo = n - dl.shape[1]  # 1: LAPACK layout (n-1 entries), 0: padded (corners never read)
    for b in prange(B):
        r = 0.0
        anorm = 0.0
        xnorm = 0.0
        bnorm = 0.0
        finite = True
        for k in range(n):
            s = d[b, k] * x[b, k] - rhs[b, k]
            row = abs(d[b, k])
            if k > 0:
                s += dl[b, k - lo] * x[b, k - 1]
                row += abs(dl[b, k - lo])
            if k < n - 1:
                s += du[b, k] * x[b, k + 1]
                row += abs(du[b, k])
            r = max(r, abs(s))
            anorm = max(anorm, row)
            xnorm = max(xnorm, abs(x[b, k]))
            bnorm = max(bnorm, abs(rhs[b, k]))
            if not np.isfinite(x[b, k]):
                finite = False
        out[b] = _normwise(r, anorm, xnorm, bnorm, finite)


def tridiagonal_backward_error(dl, d, du, rhs, x) -> np.ndarray:
    """Per-system normwise backward error, ``(B,)`` float64; ``inf`` where ``x`` is not finite.

    The off-diagonals may be padded (corners ignored) or in LAPACK layout, ``(B, n-1)``.
    """
    out = np.empty(d.shape[0], dtype=np.float64)
    _tridiagonal_backward_error(dl, d, du, rhs, x, out)
    return out


tridiagonal_backward_error.any_layout = True


@jit(parallel=True)
def _block_backward_error(L, D, U, rhs, x, out):
    B, n, m = rhs.shape
    for b in prange(B):
        r = 0.0
        anorm = 0.0
        xnorm = 0.0
        bnorm = 0.0
        finite = True
        for k in range(n):
            for i in range(m):
                s = -rhs[b, k, i]
                row = 0.0
                for j in range(m):
                    s += D[b, k, i, j] * x[b, k, j]
                    row += abs(L[b, k, i, j]) + abs(D[b, k, i, j]) + abs(U[b, k, i, j])
                    if k > 0:
                        s += L[b, k, i, j] * x[b, k - 1, j]
                    if k < n - 1:
                        s += U[b, k, i, j] * x[b, k + 1, j]
                r = max(r, abs(s))
                anorm = max(anorm, row)
                xnorm = max(xnorm, abs(x[b, k, i]))
                bnorm = max(bnorm, abs(rhs[b, k, i]))
                if not np.isfinite(x[b, k, i]):
                    finite = False
        out[b] = _normwise(r, anorm, xnorm, bnorm, finite)


def block_backward_error(L, D, U, rhs, x) -> np.ndarray:
    """Per-system normwise backward error of a block tridiagonal solve, ``(B,)`` float64."""
    out = np.empty(rhs.shape[0], dtype=np.float64)
    _block_backward_error(L, D, U, rhs, x, out)
    return out
