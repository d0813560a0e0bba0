"""Finiteness and backward-error checks in one pass over the data (no temporaries).

The same quantities as :mod:`pcrsolve.kernels.xp.check`; see there for why they exist.
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit
from ._threads import split

__all__ = ["all_finite", "block_backward_error", "tridiagonal_backward_error"]


@jit
def _count_nonfinite(a, lo, hi):
    # The loop runs over a slice from index 0: an index that may be negative (lo + i) costs a
    # wraparound check per element, which keeps LLVM from vectorizing the loop (10x slower).
    b = a[lo:hi]
    count = 0
    for i in range(b.size):
        if not np.isfinite(b[i]):
            count += 1
    return count


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is finite."""
    if not a.flags.c_contiguous:
        return bool(np.isfinite(a).all())
    flat = a.reshape(-1)
    # A vectorized pass: one thread scans 2^20 entries in about 0.1 ms, as long as it takes to
    # wake a second one; threads from 2^22 entries on.
    return sum(split(_count_nonfinite, flat.size, flat, work=flat.size / 64)) == 0


@jit(inline=True)
def _normwise(r, anorm, xnorm, bnorm, finite):
    """``r / (|A| |x| + |b|)``, ``inf`` for a non-finite solution."""
    if not finite:
        return np.inf
    denom = anorm * xnorm + bnorm
    return r / denom if denom > 0.0 else r


# Each check is a serial kernel over a range of systems ``[b0, b1)`` (see ``_threads``).


@jit
def _tridiagonal_backward_error(dl, d, du, rhs, x, out, b0, b1):
    n = d.shape[1]
    lo = n - dl.shape[1]  # 1: LAPACK layout (n-1 entries), 0: padded (corners never read)
    for b in range(b0, b1):
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
    B = d.shape[0]
    out = np.empty(B, dtype=np.float64)
    split(_tridiagonal_backward_error, B, dl, d, du, rhs, x, out, work=8 * d.size)
    return out


tridiagonal_backward_error.any_layout = True


@jit
def _block_backward_error(L, D, U, rhs, x, out, b0, b1):
    n, m = rhs.shape[1], rhs.shape[2]
    for b in range(b0, b1):
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
                    for j in range(m):
                        s += L[b, k, i, j] * x[b, k - 1, j]
                if k < n - 1:
                    for j in range(m):
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
    B = rhs.shape[0]
    out = np.empty(B, dtype=np.float64)
    split(_block_backward_error, B, L, D, U, rhs, x, out, work=4 * D.size)
    return out
