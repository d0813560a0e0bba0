"""Breakdown and accuracy checks shared by the linear shells and factorizations.

Messages name the system (and its batch index), what went wrong and the fix.
"""

from __future__ import annotations

import numpy as np

from .._errors import SingularMatrixError

__all__ = ["GROWTH_EPS", "breakdown", "eps", "first", "overflow", "singular", "where"]

# A solution whose normwise backward error exceeds this many eps is redone with pivoting
# by method="auto": a backward-stable solver stays far below it; element growth does not.
GROWTH_EPS = 1000


# ----------------------------------------------------------------------- breakdowns


def first(xp, mask) -> int:
    """Index of the first True in a 1-D mask (one host sync, on the error path only)."""
    return int(xp.nonzero(mask)[0][0])


def where(batch: tuple[int, ...], flat: int, what: str) -> str:
    """``"the <what>"``, or ``"<what> (i, j) of the batch"`` for batched input."""
    if not batch:
        return f"the {what}"
    return f"{what} {tuple(int(i) for i in np.unravel_index(flat, batch))} of the batch"


_PIVOT = "use method='auto', which falls back to pivoting."


def breakdown(k, xp, info, x, batch, method: str, what: str, sequence: str = "row", fix: str = _PIVOT):
    """Raise SingularMatrixError if a non-pivoting kernel broke down on any system."""
    if not bool(xp.any(info > 0)) and bool(k.all_finite(x)):
        return  # the common case, in one pass without temporaries
    finite = xp.all(xp.reshape(xp.isfinite(x), (x.shape[0], -1)), axis=1)
    bad = (info > 0) | ~finite  # info < 0 only warns of growth: the caller chose this method
    if not bool(xp.any(bad)):
        return
    i = first(xp, bad)
    row = int(info[i]) - 1
    at = f" at {sequence} {row}" if row >= 0 else ""
    raise SingularMatrixError(
        f"method {method!r} broke down on {where(batch, i, what)}: a zero or tiny "
        f"pivot{at}. The matrix is singular, or not diagonally dominant / SPD / an M-matrix, "
        f"which non-pivoting elimination needs; {fix}"
    )


def eps(xp, dtype) -> float:
    return float(xp.finfo(dtype).eps)


def singular(xp, info, batch, what: str, sequence: str = "row"):
    i = first(xp, info != 0)
    raise SingularMatrixError(
        f"singular matrix: {where(batch, i, what)} has an exactly zero pivot at "
        f"{sequence} {int(info[i]) - 1} even with partial pivoting."
    )


def overflow(k, x, what: str) -> None:
    """Raise if a solution from finite input is not finite (it overflowed)."""
    if not bool(k.all_finite(x)):
        raise SingularMatrixError(
            f"the {what} is numerically singular: its solution overflows although the inputs are finite."
        )
