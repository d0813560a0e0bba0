"""Tridiagonal and block tridiagonal solvers: validate, resolve the backend once, run a kernel,
check, fall back, wrap."""

from __future__ import annotations

import numpy as np

from .. import _backend, _validation
from .._errors import SingularMatrixError
from ._checks import GROWTH_EPS, breakdown, eps, overflow, singular, where
from ._fallback import block_banded_solve
from ._methods import choose

__all__ = ["block_kernel", "solve_block_tridiagonal", "solve_tridiagonal", "tridiagonal_kernel"]

SCALAR_METHODS = ("auto", "sequential", "pcr", "hybrid", "pivoting")
BLOCK_METHODS = ("auto", "sequential", "pcr", "hybrid")


# ----------------------------------------------------------------------- scalar tridiagonal


def tridiagonal_kernel(be, sys, method: str, check_finite: bool = True):
    """Solve a validated scalar system by ``method``; the "auto" fallback included. -> (B, n).

    With ``check_finite`` (the inputs are known to be finite) a non-finite result raises.
    """
    xp, k = be.xp, be.kernels
    B = sys.d.shape[0]
    name = choose("tridiagonal", method, be, B, sys.n)
    kernel = k.tridiagonal[name]
    dl, du = _off_diagonals(sys, kernel)
    x, info = kernel(dl, sys.d, du, sys.rhs)
    if name == "pivoting":
        if bool(xp.any(info != 0)):
            singular(xp, info, sys.batch, "tridiagonal system")
    elif method != "auto":
        breakdown(k, xp, info, x, sys.batch, name, "tridiagonal system")
        return x
    else:
        bad = info != 0
        if not getattr(kernel, "certifies_accuracy", False):
            check = k.tridiagonal_backward_error
            dl, du = _off_diagonals(sys, check)
            err = check(dl, sys.d, du, sys.rhs, x)
            bad = bad | (err > GROWTH_EPS * eps(xp, sys.d.dtype))
        x = _pivot_where(k, xp, sys, bad, x)
    if check_finite:
        overflow(k, x, "tridiagonal system")
    return x


def _off_diagonals(sys, kernel):
    """``(dl, du)`` for ``kernel``: as given if it reads any layout, else zero-padded copies."""
    if getattr(kernel, "any_layout", False):
        return sys.dl_in, sys.du_in
    return sys.dl, sys.du


def _pivot_where(k, xp, sys, bad, x):
    """Redo the systems flagged ``bad`` with partial pivoting."""
    if bool(xp.any(bad)):
        xpiv, pinfo = k.tridiagonal["pivoting"](sys.dl, sys.d, sys.du, sys.rhs)
        if bool(xp.any(bad & (pinfo != 0))):
            singular(xp, xp.where(bad, pinfo, 0), sys.batch, "tridiagonal system")
        x = xp.where(bad[:, None], xpiv, x)
    return x


def solve_tridiagonal(dl, d, du, rhs, *, method="auto", check_finite=True, backend=None):
    """Solve batched tridiagonal systems ``A x = rhs``.

    Row ``k`` of each system reads ``dl[k] x[k-1] + d[k] x[k] + du[k] x[k+1] = rhs[k]``.

    Parameters
    ----------
    dl : (..., n-1) or (..., n) array_like
        Sub-diagonal. In the LAPACK layout (length ``n-1``) row ``k`` uses ``dl[k-1]``;
        in the padded layout (length ``n``) row ``k`` uses ``dl[k]`` and ``dl[..., 0]`` is
        ignored.
    d : (..., n) array_like
        Main diagonal.
    du : (..., n-1) or (..., n) array_like
        Super-diagonal; row ``k`` uses ``du[k]``. In the padded layout ``du[..., n-1]``
        is ignored.
    rhs : (..., n) array_like
        Right-hand sides. Batch axes (all but the last) broadcast against the diagonals'.
    method : {"auto", "sequential", "pcr", "hybrid", "pivoting"}, optional
        ``"sequential"``: Thomas elimination, O(n) work, depth n. ``"pcr"``: Parallel
        Cyclic Reduction, ceil(log2 n) levels, O(n log n) work. ``"hybrid"``: chunks by
        Thomas, their interfaces by PCR, O(n) work. These three need no pivoting when the
        matrix is diagonally dominant, symmetric positive definite or an M-matrix, and
        raise :class:`SingularMatrixError` when they break down. ``"pivoting"``: partial
        pivoting as LAPACK ``?gtsv``, stable for any nonsingular matrix. ``"auto"``
        (default): the fastest for the backend and shape; systems it cannot solve to a
        backward error of about ``1000 eps`` are solved again with pivoting.
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf (default ``True``).
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs' array library decides (NumPy → Numba).

    Returns
    -------
    x : (..., n) array
        In the inputs' array library (or the backend's), with their promoted dtype.

    Raises
    ------
    SingularMatrixError
        If a system is singular, or a non-pivoting method broke down on it.
    ValueError
        If shapes do not match or broadcast, or an input holds NaN/inf.
    TypeError
        If an input is not numeric, or inputs come from different array libraries.

    See Also
    --------
    factor_tridiagonal : Factor once, solve for many right-hand sides.
    scipy.linalg.solve_banded : The LAPACK route, one system at a time.

    Examples
    --------
    >>> import pcrsolve as pcr
    >>> pcr.solve_tridiagonal([1.0], [4.0, 4.0], [1.0], [5.0, 5.0])
    array([1., 1.])
    """
    if _backend.is_dask(dl, d, du, rhs):
        from ..dask import solve_tridiagonal as on_dask

        return on_dask(dl, d, du, rhs, method=method, check_finite=check_finite, backend=backend)
    be = _backend.resolve({"dl": dl, "d": d, "du": du, "rhs": rhs}, backend)
    method = _validation.method(method, SCALAR_METHODS, "solve_tridiagonal")
    sys = _validation.tridiagonal(be, dl, d, du, rhs, check_finite=check_finite)
    x = tridiagonal_kernel(be, sys, method, check_finite)
    return be.xp.reshape(x, (*sys.batch, sys.n))


# ----------------------------------------------------------------------- block tridiagonal


def block_kernel(be, sys, method: str, check_finite: bool = True):
    """Solve a validated block system by ``method``; the "auto" fallback included. -> (B, n, m).

    With ``check_finite`` (the inputs are known to be finite) a non-finite result raises.
    """
    xp, k = be.xp, be.kernels
    name = choose("block_tridiagonal", method, be, sys.D.shape[0], sys.n)
    x, info = k.block_tridiagonal[name](sys.L, sys.D, sys.U, sys.rhs)
    if method != "auto":
        breakdown(k, xp, info, x, sys.batch, name, "block tridiagonal system", "block row")
        return x
    err = k.block_backward_error(sys.L, sys.D, sys.U, sys.rhs, x)
    bad = (info != 0) | (err > GROWTH_EPS * eps(xp, sys.D.dtype))
    if bool(xp.any(bad)):
        x = _banded_where(be, sys, bad, info, x, name)
    if check_finite:
        overflow(k, x, "block tridiagonal system")
    return x


def _banded_where(be, sys, bad, info, x, name: str):
    """Redo the systems flagged ``bad`` by banded LU with partial pivoting (NumPy only)."""
    xp, k = be.xp, be.kernels
    if not be.is_cpu_numpy:
        breakdown(
            k,
            xp,
            xp.where(bad, xp.maximum(info, 1), 0),
            x,
            sys.batch,
            name,
            "block tridiagonal system (no pivoting block solver on this backend; solve it with NumPy inputs)",
            "block row",
        )
    x = np.array(x, copy=True)
    for i in np.flatnonzero(bad):
        try:
            x[i] = block_banded_solve(sys.L[i], sys.D[i], sys.U[i], sys.rhs[i])
        except SingularMatrixError:
            raise SingularMatrixError(
                f"singular matrix: {where(sys.batch, int(i), 'block tridiagonal system')} is "
                "singular (banded LU with partial pivoting found a zero pivot)."
            ) from None
    return x


def solve_block_tridiagonal(L, D, U, rhs, *, method="auto", check_finite=True, backend=None):
    """Solve batched block tridiagonal systems.

    Block row ``k`` reads ``L[k] @ x[k-1] + D[k] @ x[k] + U[k] @ x[k+1] = rhs[k]``.

    Parameters
    ----------
    L : (..., n-1, m, m) or (..., n, m, m) array_like
        Sub-diagonal blocks; in the padded layout ``L[..., 0, :, :]`` is ignored.
    D : (..., n, m, m) array_like
        Diagonal blocks.
    U : (..., n-1, m, m) or (..., n, m, m) array_like
        Super-diagonal blocks; in the padded layout ``U[..., n-1, :, :]`` is ignored.
    rhs : (..., n, m) array_like
        Right-hand sides, one length-``m`` vector per block row.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        Block Thomas (O(n m^3) work), block PCR (ceil(log2 n) levels, O(n m^3 log n)
        work) or the partitioned hybrid. All are non-pivoting across blocks (LU with
        partial pivoting inside each block) and stable for block diagonally dominant or
        SPD matrices. ``"auto"`` on the CPU solves systems with a broken-down or
        inaccurate result again by banded LU with partial pivoting (LAPACK ``?gbsv``).
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
        If a system is singular, or a non-pivoting method broke down on it.
    ValueError
        If shapes do not match, blocks are not square, or an input holds NaN/inf.

    See Also
    --------
    factor_block_tridiagonal : Factor once, solve for many right-hand sides.

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> D = np.tile(4 * np.eye(2), (3, 1, 1)); L = U = np.tile(np.eye(2), (2, 1, 1))
    >>> pcr.solve_block_tridiagonal(L, D, U, np.ones((3, 2)))
    array([[0.21428571, 0.21428571],
           [0.14285714, 0.14285714],
           [0.21428571, 0.21428571]])
    """
    if _backend.is_dask(L, D, U, rhs):
        from ..dask import solve_block_tridiagonal as on_dask

        return on_dask(L, D, U, rhs, method=method, check_finite=check_finite, backend=backend)
    be = _backend.resolve({"L": L, "D": D, "U": U, "rhs": rhs}, backend)
    method = _validation.method(method, BLOCK_METHODS, "solve_block_tridiagonal")
    sys = _validation.block_tridiagonal(be, L, D, U, rhs, check_finite=check_finite)
    x = block_kernel(be, sys, method, check_finite)
    return be.xp.reshape(x, (*sys.batch, sys.n, sys.m))
