"""Backward errors of computed solutions: the guard behind ``method="auto"``.

A non-pivoting elimination can lose accuracy without meeting a tiny pivot (element
growth). The normwise backward error ``||A x - rhs|| / (||A|| ||x|| + ||rhs||)`` of every
system costs one pass over the data and tells whether the answer is as good as a
backward-stable (pivoting) solver's; systems that fail are solved again with pivoting.
"""

from __future__ import annotations

from typing import Any

__all__ = ["all_finite", "block_backward_error", "tridiagonal_backward_error"]


def all_finite(xp, a: Any) -> Any:
    """Whether every entry of ``a`` is finite, as a 0-d boolean array (no host sync)."""
    return xp.all(xp.isfinite(a))


def _shift_down(xp, a):
    """``a[:, k-1]`` along axis 1, zero at ``k = 0``."""
    zero = xp.zeros_like(a[:, :1, ...])
    return xp.concat([zero, a[:, :-1, ...]], axis=1)


def _shift_up(xp, a):
    """``a[:, k+1]`` along axis 1, zero at ``k = n-1``."""
    zero = xp.zeros_like(a[:, :1, ...])
    return xp.concat([a[:, 1:, ...], zero], axis=1)


def _ratio(xp, r, anorm_x, rhs_norm):
    denom = anorm_x + rhs_norm
    tiny = xp.finfo(r.dtype).smallest_normal
    return xp.where(denom > tiny, r / xp.where(denom > tiny, denom, 1.0), r)


def tridiagonal_backward_error(xp, dl: Any, d: Any, du: Any, rhs: Any, x: Any) -> Any:
    """Per-system normwise backward error, ``(B,)`` real; ``inf`` where ``x`` is not finite.

    All inputs ``(B, n)`` in the padded layout with zero corners.
    """
    if x.shape[1] == 0:
        return xp.zeros(x.shape[:1], dtype=xp.abs(x).dtype)
    xm, xp1 = _shift_down(xp, x), _shift_up(xp, x)
    r = xp.max(xp.abs(dl * xm + d * x + du * xp1 - rhs), axis=1)
    anorm = xp.max(xp.abs(dl) + xp.abs(d) + xp.abs(du), axis=1)
    err = _ratio(xp, r, anorm * xp.max(xp.abs(x), axis=1), xp.max(xp.abs(rhs), axis=1))
    return xp.where(xp.all(xp.isfinite(x), axis=1), err, xp.inf)


def block_backward_error(xp, L: Any, D: Any, U: Any, rhs: Any, x: Any) -> Any:
    """Per-system normwise backward error of a block tridiagonal solve, ``(B,)`` real."""
    if x.shape[1] == 0:
        return xp.zeros(x.shape[:1], dtype=xp.abs(x).dtype)

    def mv(blocks, v):
        return xp.matmul(blocks, v[..., None])[..., 0]

    r = mv(L, _shift_down(xp, x)) + mv(D, x) + mv(U, _shift_up(xp, x)) - rhs
    rnorm = xp.max(xp.max(xp.abs(r), axis=2), axis=1)
    rows = xp.sum(xp.abs(L), axis=3) + xp.sum(xp.abs(D), axis=3) + xp.sum(xp.abs(U), axis=3)
    anorm = xp.max(xp.max(rows, axis=2), axis=1)
    xnorm = xp.max(xp.max(xp.abs(x), axis=2), axis=1)
    bnorm = xp.max(xp.max(xp.abs(rhs), axis=2), axis=1)
    err = _ratio(xp, rnorm, anorm * xnorm, bnorm)
    finite = xp.all(xp.all(xp.isfinite(x), axis=2), axis=1)
    return xp.where(finite, err, xp.inf)
