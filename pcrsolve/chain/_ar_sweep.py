"""One sweep of each method of :func:`pcrsolve.solve_autoregressive`, and the Gauss-Seidel loop.

The iterate ``X`` is canonical, ``(*batch, n)``; positions ``[0, p)`` are frozen (exact, or
converged within ``tol``) and a sweep updates positions ``[p, e)``. Position ``p`` reads only
frozen positions, so a sweep makes it exact; :class:`Swept` reports how many positions a sweep
makes exact whatever the data (``exact``: 1, or the rest of the first block for
``jacobi_gs``), which is how far the frozen prefix advances in fixed-iteration mode. Every
function here works on device arrays and synchronises with the host only where a caller asks
for a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..linear._recurrence import recurrence_kernel
from ._ar_eval import Problem
from ._order import companion
from ._policy import Options, threshold
from ._sequential import first_true

__all__ = ["Swept", "gauss_seidel", "jacobi", "jacobi_gs", "newton", "nonfinite"]

# Gauss-Seidel checks finiteness once per this many positions (one host synchronisation each).
_GS_BLOCK = 64


@dataclass
class Swept:
    """What one sweep reports: device arrays, and one host number known without the data."""

    err: Any  # (s,): per position, the largest scaled update over the batch (inf: held back)
    max_err: Any  # its maximum
    bad: Any  # (*batch, exact) bool: non-finite values at positions the sweep made exact
    exact: int  # positions from p exact after this sweep, whatever the data

    def converged(self, be, opts: Options, prev: Any) -> int:
        """Positions from ``p`` that converged (host int, ``>= exact``; synchronises).

        A position counts when its update is within the threshold predicted from the last two
        sweeps (:func:`pcrsolve.chain._policy.threshold`); the first ``exact`` always do.
        """
        xp = be.xp
        over = self.err[self.exact :] > threshold(xp, opts, self.max_err, prev)
        if be.is_cpu_numpy:  # NumPy arrays: the host path, without the namespace's wrappers
            hit = np.flatnonzero(over)
            return self.exact + (int(hit[0]) if hit.size else over.shape[0])
        return self.exact + int(first_true(xp, over))


def nonfinite(pb: Problem, position: int, flat_batch: int) -> FloatingPointError:
    return FloatingPointError(
        f"`func` produced NaN or inf at position {position}{pb.where_batch(flat_batch)} although every "
        "earlier position is final and finite: position-by-position sampling itself is not finite "
        f"there, so no method can return finite values. Check func at position {position}."
    )


def _per_position(xp, a: Any, nb: int) -> Any:
    """Reduce ``(*batch, s)`` over the batch axes with max: ``(s,)``."""
    return xp.max(a, axis=tuple(range(nb))) if nb else a


def _swept(xp, old: Any, new: Any, keep: Any, bad: Any, exact: int, nb: int) -> Swept:
    """The report of a sweep that moved ``old`` to ``new`` on ``[p, e)`` (``keep``: held back).

    The scaled update ``|dx| / (1 + |x|)`` per element, then its maximum over the batch per
    position (the worst batch element decides).
    """
    step = xp.abs(new - old) / (1 + xp.abs(new))
    err = _per_position(xp, xp.where(keep, xp.asarray(math.inf, dtype=step.dtype), step), nb)
    return Swept(err, xp.max(err), bad, exact)


def jacobi(pb: Problem, X: Any, p: int, e: int) -> Swept:
    """``x <- func(x)`` on ``[p, e)``; non-finite values are held back where they appear."""
    xp = pb.xp
    F = pb.f(X)
    old, new = X[..., p:e], F[..., p:e]
    keep = ~xp.isfinite(new)
    out = _swept(xp, old, new, keep, keep[..., :1], 1, len(pb.batch))
    X[..., p:e] = xp.where(keep, old, new)
    return out


def jacobi_gs(pb: Problem, X: Any, p: int, e: int, b: int) -> Swept:
    """Blocks of ``b`` positions (aligned at 0): Gauss-Seidel inside, Jacobi across.

    Sub-step ``j`` sets offset ``j`` of every block from one call of ``func`` on the
    current iterate, so a sweep costs ``min(b, e - p)`` calls and leaves the block holding
    ``p`` exact up to its end.
    """
    xp = pb.xp
    old = xp.asarray(X[..., p:e], copy=True)
    keep = xp.zeros(old.shape, dtype=xp.bool)
    for j in range(b):
        start = p + (j - p) % b  # the first active position of offset j
        if start >= e:
            continue
        F = pb.f(X)
        cur, new = X[..., start:e:b], F[..., start:e:b]
        bad = ~xp.isfinite(new)
        X[..., start:e:b] = xp.where(bad, cur, new)
        keep[..., start - p : e - p : b] = bad
    exact = min(e, (p // b + 1) * b) - p
    return _swept(xp, old, X[..., p:e], keep, keep[..., :exact], exact, len(pb.batch))


def newton(be, pb: Problem, X: Any, p: int, e: int, bandwidth: int | None) -> Swept:
    """Newton's step ``(I - L) d = func(x) - x`` on ``[p, e)``, ``L`` the Jacobian's strict lower part.

    Dense: a unit lower triangular solve (SciPy on the CPU, ``linalg.solve`` elsewhere).
    ``bandwidth=r``: the order-``r`` recurrence ``d_t = sum_l L[t, t-l] d_{t-l} + r_t`` on the
    recurrence kernels, through its companion form. Non-finite values (from ``func`` or the
    Jacobian at a poor iterate) are held back from the first one on, per batch element.
    """
    xp, s = pb.xp, e - p
    F = pb.f(X)
    old = X[..., p:e]
    R = F[..., p:e] - old
    if s == 1:
        d = R
    elif bandwidth is None:
        d = _triangular(be, xp, pb.jacobian(X, p, e), R)
    else:
        d = _banded(be, xp, pb.bands(X, p, e, min(bandwidth, s - 1)), R)
    # Position p reads only frozen positions: its value is func's, bit for bit.
    new = xp.concat([F[..., p : p + 1], (old + d)[..., 1:]], axis=-1)
    bad = ~xp.isfinite(new)
    keep = xp.cumulative_sum(xp.astype(bad, xp.int32), axis=-1) > 0  # NaN spreads along the solve
    out = _swept(xp, old, new, keep, bad[..., :1], 1, len(pb.batch))
    X[..., p:e] = xp.where(keep, old, new)
    return out


def _triangular(be, xp, J: Any, R: Any) -> Any:
    """Solve ``(I - tril(J, -1)) d = R`` for ``J (*batch, s, s)``, ``R (*batch, s)``."""
    finite = xp.isfinite(J)
    J = xp.where(finite, J, xp.zeros((), dtype=J.dtype))
    # A row with a non-finite entry gives NaN from that row on (held back by the caller).
    rowbad = xp.any(~finite, axis=-1)
    R = xp.where(rowbad, xp.asarray(math.nan, dtype=R.dtype), R)
    if be.is_numba:
        from scipy.linalg import solve_triangular

        # Only the strict lower part of -J is read (unit diagonal).
        return solve_triangular(-J, R[..., None], lower=True, unit_diagonal=True, check_finite=False)[..., 0]
    s = J.shape[-1]
    M = xp.eye(s, dtype=J.dtype) - xp.tril(J, k=-1)
    return xp.linalg.solve(M, R[..., None])[..., 0]


def _banded(be, xp, bands: Any, R: Any) -> Any:
    """Solve ``d_t = sum_l bands[l-1, t] d_{t-l} + R_t`` for ``bands (*batch, r, s)``, ``R (*batch, s)``."""
    batch, (r, s) = tuple(R.shape[:-1]), bands.shape[-2:]
    B = math.prod(batch)
    lags = xp.permute_dims(xp.reshape(bands, (B, r, s)), (0, 2, 1))  # (B, s, r)
    A = companion(xp, [xp.reshape(lags[..., j], (B, s, 1, 1)) for j in range(r)])  # (B, s, r, r)
    b = xp.concat([xp.reshape(R, (B, s, 1)), xp.zeros((B, s, r - 1), dtype=R.dtype)], axis=-1)
    z = xp.zeros((B, r), dtype=R.dtype)
    d = recurrence_kernel(be, be.contiguous(A), be.contiguous(b), z, dense=True, method="auto")
    return xp.reshape(d[..., 0], (*batch, s))


def gauss_seidel(pb: Problem, X: Any, start: int, stop: int) -> None:
    """Position by position: ``x_i <- func(x)_i`` for ``i`` in ``[start, stop)``, in place.

    Raises :class:`FloatingPointError` naming the first non-finite position.
    """
    xp, nb = pb.xp, len(pb.batch)
    for c0 in range(start, stop, _GS_BLOCK):
        c1 = min(stop, c0 + _GS_BLOCK)
        for i in range(c0, c1):
            X[..., i] = pb.f(X)[..., i]
        ok = xp.isfinite(X[..., c0:c1])
        if not bool(xp.all(ok)):
            bad = ~ok
            i = int(first_true(xp, xp.any(bad, axis=tuple(range(nb))) if nb else bad))
            raise nonfinite(pb, c0 + i, int(first_true(xp, xp.reshape(bad[..., i], (-1,)))))
