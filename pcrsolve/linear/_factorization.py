"""Factorizations: eliminate once, solve for many right-hand sides."""

from __future__ import annotations

from typing import Any

from .. import _backend, _validation
from .._errors import SingularMatrixError
from ._checks import GROWTH_EPS, breakdown, eps, singular

__all__ = [
    "BlockTridiagonalFactorization",
    "TridiagonalFactorization",
    "factor_block_tridiagonal",
    "factor_tridiagonal",
]

_FACTOR_METHODS = ("auto", "sequential", "pivoting")
_BLOCK_FACTOR_METHODS = ("auto", "sequential")


def _broadcast_factors(be, factors: tuple[Any, ...], batch, full, tails) -> tuple[Any, ...]:
    """Broadcast flattened ``(B, ...)`` factors from ``batch`` to a wider ``full`` batch."""
    if tuple(full) == tuple(batch):
        return factors
    xp = be.xp
    out = []
    for f, tail in zip(factors, tails):
        g = xp.broadcast_to(xp.reshape(f, (*batch, *tail)), (*full, *tail))
        out.append(be.contiguous(xp.reshape(g, (-1, *tail))))
    return tuple(out)


def _cast_all(be, arrays: tuple[Any, ...], dtype) -> tuple[Any, ...]:
    xp = be.xp
    return tuple(
        a
        if (a.dtype == dtype or not xp.isdtype(a.dtype, ("real floating", "complex floating")))
        else xp.astype(a, dtype)
        for a in arrays
    )


class TridiagonalFactorization:
    """A factored batch of scalar tridiagonal matrices; see :func:`factor_tridiagonal`.

    Attributes
    ----------
    method : str
        ``"sequential"`` (Thomas elimination, no pivoting) or ``"pivoting"`` (LAPACK
        ``?gttrf``) — the one in use.
    shape : tuple of int
        ``(*batch, n)``, the shape of a right-hand side without extra batch axes.
    dtype : dtype
        The matrix dtype.
    """

    def __init__(self, be, sys, method: str, *, auto: bool):
        self._be, self._sys, self._auto = be, sys, auto
        self.shape = (*sys.batch, sys.n)
        self.dtype = sys.d.dtype
        self._factor(method)

    def _factor(self, method: str) -> None:
        xp, sys = self._be.xp, self._sys
        factor, self._solve = self._be.kernels.tridiagonal_factor[method]
        self._factors, info = factor(sys.dl, sys.d, sys.du)
        self.method = method
        if method == "pivoting":
            if bool(xp.any(info != 0)):
                singular(xp, info, sys.batch, "tridiagonal matrix")
        elif self._auto and bool(xp.any(info != 0)):
            self._factor("pivoting")
        elif bool(xp.any(info != 0)):
            x = xp.zeros(sys.d.shape, dtype=sys.d.dtype)
            breakdown(self._be.kernels, xp, info, x, sys.batch, method, "tridiagonal matrix")

    def solve(self, rhs, *, check_finite: bool = True):
        """Solve ``A x = rhs`` with the stored factorization.

        Parameters
        ----------
        rhs : (..., n) array_like
            Right-hand sides; batch axes broadcast against the matrices' batch.
        check_finite : bool, optional
            Check that ``rhs`` holds no NaN or inf.

        Returns
        -------
        x : (..., n) array
        """
        be, sys = self._be, self._sys
        xp = be.xp
        r, full, dtype = _validation.factored_rhs(
            be, rhs, sys.batch, (sys.n,), self.dtype, check_finite=check_finite
        )
        tails = [tuple(f.shape[1:]) for f in self._factors]
        factors = _broadcast_factors(be, _cast_all(be, self._factors, dtype), sys.batch, full, tails)
        x = self._solve(factors, r)
        if self._auto and self.method == "sequential":
            mats = _broadcast_factors(
                be, _cast_all(be, (sys.dl, sys.d, sys.du), dtype), sys.batch, full, [(sys.n,)] * 3
            )
            err = be.kernels.tridiagonal_backward_error(*mats, r, x)
            if bool(xp.any(err > GROWTH_EPS * eps(xp, dtype))):
                self._factor("pivoting")  # element growth: switch to pivoting for good
                return self.solve(rhs, check_finite=False)
        if not bool(xp.all(xp.isfinite(x))):
            raise SingularMatrixError("the solution overflowed: the matrix is numerically singular.")
        return xp.reshape(x, (*full, sys.n))


class BlockTridiagonalFactorization:
    """A factored batch of block tridiagonal matrices; see :func:`factor_block_tridiagonal`.

    Attributes
    ----------
    method : str
        ``"sequential"``: block LU without pivoting across blocks.
    shape : tuple of int
        ``(*batch, n, m)``.
    dtype : dtype
    """

    def __init__(self, be, sys):
        self._be, self._sys = be, sys
        self.method = "sequential"
        self.shape = (*sys.batch, sys.n, sys.m)
        self.dtype = sys.D.dtype
        factor, self._solve = be.kernels.block_tridiagonal_factor["sequential"]
        self._factors, info = factor(sys.L, sys.D, sys.U)
        xp = be.xp
        if bool(xp.any(info != 0)):
            x = xp.zeros(sys.D.shape[:-1], dtype=sys.D.dtype)
            breakdown(
                self._be.kernels,
                xp,
                info,
                x,
                sys.batch,
                "sequential",
                "block tridiagonal matrix (use solve_block_tridiagonal(method='auto'), which pivots)",
                "block row",
            )

    def solve(self, rhs, *, check_finite: bool = True):
        """Solve ``A x = rhs`` with the stored factorization.

        Parameters
        ----------
        rhs : (..., n, m) array_like
        check_finite : bool, optional

        Returns
        -------
        x : (..., n, m) array
        """
        be, sys = self._be, self._sys
        xp = be.xp
        r, full, dtype = _validation.factored_rhs(
            be, rhs, sys.batch, (sys.n, sys.m), self.dtype, check_finite=check_finite
        )
        tails = [tuple(f.shape[1:]) for f in self._factors]
        factors = _broadcast_factors(be, _cast_all(be, self._factors, dtype), sys.batch, full, tails)
        x = self._solve(factors, r)
        if not bool(xp.all(xp.isfinite(x))):
            raise SingularMatrixError("the solution overflowed: the matrix is numerically singular.")
        return xp.reshape(x, (*full, sys.n, sys.m))


def factor_tridiagonal(dl, d, du, *, method="auto", check_finite=True, backend=None):
    """Factor batched tridiagonal matrices for repeated solves.

    Parameters
    ----------
    dl, d, du : array_like
        As in :func:`solve_tridiagonal`: ``d`` is ``(..., n)``, ``dl`` and ``du`` are
        ``(..., n-1)`` (LAPACK layout) or ``(..., n)`` (padded).
    method : {"auto", "sequential", "pivoting"}, optional
        ``"sequential"``: Thomas elimination without pivoting (raises
        :class:`SingularMatrixError` on a tiny pivot). ``"pivoting"``: LAPACK ``?gttrf``.
        ``"auto"``: Thomas, switching to pivoting on a tiny pivot or when a solve's
        backward error shows element growth.
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs decide.

    Returns
    -------
    TridiagonalFactorization
        Call ``.solve(rhs)`` with ``rhs`` of shape ``(..., n)``.

    Examples
    --------
    >>> import pcrsolve as pcr
    >>> f = pcr.factor_tridiagonal([1.0], [4.0, 4.0], [1.0])
    >>> f.solve([5.0, 5.0]), f.solve([[4.0, 1.0], [1.0, 4.0]])
    (array([1., 1.]), array([[1., 0.],
           [0., 1.]]))
    """
    be = _backend.resolve({"dl": dl, "d": d, "du": du}, backend)
    method = _validation.method(method, _FACTOR_METHODS, "factor_tridiagonal")
    sys = _validation.tridiagonal(be, dl, d, du, None, check_finite=check_finite)
    return TridiagonalFactorization(
        be, sys, "sequential" if method == "auto" else method, auto=method == "auto"
    )


def factor_block_tridiagonal(L, D, U, *, method="auto", check_finite=True, backend=None):
    """Factor batched block tridiagonal matrices for repeated solves (block LU).

    Parameters
    ----------
    L, D, U : array_like
        As in :func:`solve_block_tridiagonal`.
    method : {"auto", "sequential"}, optional
        Block Thomas LU (partial pivoting inside each diagonal block, none across them).
    check_finite : bool, optional
        Check that the inputs hold no NaN or inf.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default the inputs decide.

    Returns
    -------
    BlockTridiagonalFactorization
        Call ``.solve(rhs)`` with ``rhs`` of shape ``(..., n, m)``.

    Raises
    ------
    SingularMatrixError
        If the elimination meets a singular or nearly singular block; use
        :func:`solve_block_tridiagonal` with ``method="auto"``, which pivots.

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> D = np.tile(4 * np.eye(2), (3, 1, 1)); L = U = np.tile(np.eye(2), (2, 1, 1))
    >>> f = pcr.factor_block_tridiagonal(L, D, U)
    >>> f.solve(np.ones((3, 2))).shape
    (3, 2)
    """
    be = _backend.resolve({"L": L, "D": D, "U": U}, backend)
    _validation.method(method, _BLOCK_FACTOR_METHODS, "factor_block_tridiagonal")
    sys = _validation.block_tridiagonal(be, L, D, U, None, check_finite=check_finite)
    return BlockTridiagonalFactorization(be, sys)
