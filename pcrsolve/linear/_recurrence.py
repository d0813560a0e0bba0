"""Linear recurrences ``x[k] = A[k] @ x[k-1] + b[k]`` and the bidiagonal solvers built on them."""

from __future__ import annotations

import numpy as np

from .. import _backend, _validation
from .._errors import SingularMatrixError
from ._checks import first, where
from ._methods import choose
from ._tridiagonal import BLOCK_METHODS

__all__ = ["linear_recurrence", "recurrence_kernel", "solve_bidiagonal", "solve_block_bidiagonal"]


# ----------------------------------------------------------------------- recurrences


def recurrence_kernel(be, A, b, x0, *, dense: bool, method: str, reverse: bool = False):
    """Run a recurrence kernel on canonical ``(B, n, ...)`` arrays; reverse by flipping.

    ``A`` may have a sequence axis of length 1 (time-invariant): kernels marked
    ``invariant_A`` read it as is, the others get it repeated along the sequence.
    """
    xp = be.xp
    B, n = b.shape[0], b.shape[1]
    name = choose("recurrence", method, be, B, n)
    kernel = (be.kernels.recurrence_dense if dense else be.kernels.recurrence_diag)[name]
    if A.shape[1] != n and not getattr(kernel, "invariant_A", False):  # time-invariant A, repeated
        A = be.contiguous(xp.broadcast_to(A, (B, n, *A.shape[2:])))
    if not reverse:
        return kernel(A, b, x0)
    flip = lambda a: be.contiguous(xp.flip(a, axis=1))  # noqa: E731
    return xp.flip(kernel(flip(A), flip(b), x0), axis=1)


def _check_overflow(xp, x, what: str):
    if not bool(xp.all(xp.isfinite(x))):
        raise FloatingPointError(
            f"the {what} overflowed: its solution is not finite although the inputs are; the "
            "recurrence grows too fast for the dtype (use float64, or rescale)."
        )


def linear_recurrence(A, b, x0=None, *, reverse=False, method="auto", check_finite=True, backend=None):
    """Solve the linear recurrence ``x[k] = A[k] @ x[k-1] + b[k]`` for all ``k`` at once.

    Parameters
    ----------
    A : (..., n, m, m) or (..., n, m) array_like
        Dense blocks when ``A.ndim == b.ndim + 1``, else (``A.ndim == b.ndim``) the
        diagonals of diagonal blocks, applied elementwise. ``A`` carries the same batch
        axes as ``b`` (size-1 axes broadcast, the sequence axis too); it is never guessed
        from sizes. A time-invariant ``A`` (sequence axis of length 1) is read in place by
        the CPU's sequential kernels, not repeated along the sequence.
    b : (..., n, m) array_like
        Inhomogeneous terms.
    x0 : (..., m) array_like, optional
        The state before the first step (after the last when ``reverse``); zeros when
        omitted.
    reverse : bool, optional
        Run backwards: ``x[k] = A[k] @ x[k+1] + b[k]`` with ``x[n] = x0``.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        ``"sequential"``: the loop, O(n m^2) work. ``"pcr"``: doubling of the affine
        maps, ceil(log2 n) levels, O(n m^3 log n) work (dense) or O(n m log n)
        (diagonal). ``"hybrid"``: chunked three-phase scan, O(n m^3) work.
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs decide.

    Returns
    -------
    x : (..., n, m) array

    Raises
    ------
    FloatingPointError
        If the solution overflows although the inputs are finite.
    ValueError
        If shapes do not match or an input holds NaN/inf.

    See Also
    --------
    scipy.signal.lfilter : A time-invariant scalar recurrence, one signal at a time.

    Examples
    --------
    A first-order filter ``y[k] = 0.5 y[k-1] + u[k]``:

    >>> import numpy as np, pcrsolve as pcr
    >>> pcr.linear_recurrence(np.full((4, 1), 0.5), np.ones((4, 1)))[:, 0]
    array([1.   , 1.5  , 1.75 , 1.875])
    """
    if _backend.is_dask(A, b, x0):
        from ..dask import linear_recurrence as on_dask

        return on_dask(A, b, x0, reverse=reverse, method=method, check_finite=check_finite, backend=backend)
    be = _backend.resolve({"A": A, "b": b, "x0": x0}, backend)
    method = _validation.method(method, BLOCK_METHODS, "linear_recurrence")
    rec = _validation.recurrence(be, A, b, x0, check_finite=check_finite)
    x = recurrence_kernel(be, rec.A, rec.b, rec.x0, dense=rec.dense, method=method, reverse=reverse)
    if check_finite:
        _check_overflow(be.xp, x, "linear recurrence")
    return be.xp.reshape(x, (*rec.batch, rec.n, rec.m))


# ----------------------------------------------------------------------- bidiagonal


def _bidiagonal_method(method: str) -> str:
    return _validation.method(
        method, BLOCK_METHODS, "bidiagonal systems (no pivoting is needed: they are triangular)"
    )


def solve_bidiagonal(d, e, rhs, *, lower=True, method="auto", check_finite=True, backend=None):
    """Solve batched bidiagonal (triangular, banded) systems.

    Lower: ``d[k] x[k] + e[k] x[k-1] = rhs[k]``; upper: ``d[k] x[k] + e[k] x[k+1] = rhs[k]``.

    Parameters
    ----------
    d : (..., n) array_like
        Main diagonal; a zero entry makes the system singular.
    e : (..., n-1) or (..., n) array_like
        Off-diagonal. LAPACK layout (length ``n-1``): row ``k`` uses ``e[k-1]`` when lower
        and ``e[k]`` when upper. Padded layout (length ``n``): row ``k`` uses ``e[k]``;
        ``e[..., 0]`` is ignored when lower, ``e[..., n-1]`` when upper.
    rhs : (..., n) array_like
        Right-hand sides.
    lower : bool, optional
        Lower (default) or upper bidiagonal.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        As for :func:`linear_recurrence`, which solves the system after scaling each row
        by ``1/d[k]``.
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs decide.

    Returns
    -------
    x : (..., n) array

    Raises
    ------
    SingularMatrixError
        If ``d`` has a zero entry, or the solution overflows.

    Examples
    --------
    >>> import pcrsolve as pcr
    >>> pcr.solve_bidiagonal([2.0, 2.0, 2.0], [1.0, 1.0], [2.0, 3.0, 3.5])
    array([1.  , 1.  , 1.25])
    """
    if _backend.is_dask(d, e, rhs):
        from ..dask import solve_bidiagonal as on_dask

        return on_dask(d, e, rhs, lower=lower, method=method, check_finite=check_finite, backend=backend)
    be = _backend.resolve({"d": d, "e": e, "rhs": rhs}, backend)
    method = _bidiagonal_method(method)
    sys = _validation.bidiagonal(be, d, e, rhs, lower=lower, check_finite=check_finite)
    xp = be.xp
    zero = sys.d == 0
    if bool(xp.any(zero)):
        i = first(xp, xp.any(zero, axis=1))
        k = first(xp, zero[i, :])
        raise SingularMatrixError(
            f"singular matrix: `d` of {where(sys.batch, i, 'bidiagonal system')} is zero at index {k}."
        )
    off = sys.dl if lower else sys.du
    A = be.contiguous((-off / sys.d)[..., None])
    b = be.contiguous((sys.rhs / sys.d)[..., None])
    x0 = xp.zeros((sys.d.shape[0], 1), dtype=sys.d.dtype)
    x = recurrence_kernel(be, A, b, x0, dense=False, method=method, reverse=not lower)
    if not bool(xp.all(xp.isfinite(x))):
        raise SingularMatrixError(
            "the bidiagonal system is numerically singular: its solution overflows although the "
            "inputs are finite."
        )
    return xp.reshape(x, (*sys.batch, sys.n))


def solve_block_bidiagonal(D, E, rhs, *, lower=True, method="auto", check_finite=True, backend=None):
    """Solve batched block bidiagonal systems.

    Lower: ``D[k] @ x[k] + E[k] @ x[k-1] = rhs[k]``; upper: ``D[k] @ x[k] + E[k] @ x[k+1] = rhs[k]``.

    Parameters
    ----------
    D : (..., n, m, m) array_like
        Diagonal blocks; each must be nonsingular.
    E : (..., n-1, m, m) or (..., n, m, m) array_like
        Off-diagonal blocks, laid out as ``e`` in :func:`solve_bidiagonal`.
    rhs : (..., n, m) array_like
        Right-hand sides.
    lower : bool, optional
        Lower (default) or upper block bidiagonal.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        As for :func:`linear_recurrence`, which solves the system once every block row
        is multiplied by ``D[k]^{-1}`` (LU with partial pivoting, all blocks at once).
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs decide.

    Returns
    -------
    x : (..., n, m) array

    Raises
    ------
    SingularMatrixError
        If a diagonal block is singular, or the solution overflows.

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> D = np.tile(2 * np.eye(2), (3, 1, 1)); E = np.tile(np.eye(2), (2, 1, 1))
    >>> pcr.solve_block_bidiagonal(D, E, np.ones((3, 2)))
    array([[0.5  , 0.5  ],
           [0.25 , 0.25 ],
           [0.375, 0.375]])
    """
    if _backend.is_dask(D, E, rhs):
        from ..dask import solve_block_bidiagonal as on_dask

        return on_dask(D, E, rhs, lower=lower, method=method, check_finite=check_finite, backend=backend)
    be = _backend.resolve({"D": D, "E": E, "rhs": rhs}, backend)
    method = _bidiagonal_method(method)
    sys = _validation.block_bidiagonal(be, D, E, rhs, lower=lower, check_finite=check_finite)
    xp = be.xp
    off = sys.L if lower else sys.U
    stacked = xp.concat([off, sys.rhs[..., None]], axis=-1)  # one solve for D^-1 [E | rhs]
    try:
        M = xp.linalg.solve(sys.D, stacked)
    except np.linalg.LinAlgError:
        M = None
    if M is None or not bool(xp.all(xp.isfinite(M))):
        raise SingularMatrixError("singular matrix: a diagonal block of `D` is singular.")
    A = be.contiguous(-M[..., :-1])
    b = be.contiguous(M[..., -1])
    x0 = xp.zeros((sys.D.shape[0], sys.m), dtype=sys.D.dtype)
    x = recurrence_kernel(be, A, b, x0, dense=True, method=method, reverse=not lower)
    if not bool(xp.all(xp.isfinite(x))):
        raise SingularMatrixError(
            "the block bidiagonal system is numerically singular: its solution overflows "
            "although the inputs are finite."
        )
    return xp.reshape(x, (*sys.batch, sys.n, sys.m))
