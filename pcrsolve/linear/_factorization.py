"""Factorizations: eliminate once, solve for many right-hand sides.

Every method of the matching solver is available, on every backend; the matrix part of the
elimination is done once and a solve replays only the right-hand side's part (for PCR every
level's multipliers are kept: ``ceil(log2 n)`` passes over the right-hand side, O(n log n)
work and O(log n) depth, no loop over rows). ``method="auto"`` chooses as the solvers do
(:mod:`._methods`) and, for scalar systems, falls back to pivoting where they would.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .. import _backend, _validation
from ._checks import GROWTH_EPS, breakdown, eps, overflow, singular
from ._methods import choose
from ._tridiagonal import BLOCK_METHODS, SCALAR_METHODS

__all__ = [
    "BlockTridiagonalFactorization",
    "TridiagonalFactorization",
    "factor_block_tridiagonal",
    "factor_tridiagonal",
]


def _expand(be, a, batch, full):
    """``(B, ...)`` -> ``(F, ...)``: the systems of ``a`` repeated as ``batch`` broadcasts to ``full``."""
    xp = be.xp
    tail = tuple(a.shape[1:])
    g = xp.broadcast_to(xp.reshape(a, (*batch, *tail)), (*full, *tail))
    return be.contiguous(xp.reshape(g, (math.prod(full), *tail)))


def _broadcast_factors(be, factors: tuple[Any, ...], batch, full) -> tuple[Any, ...]:
    """Factors of the systems of ``batch`` for the (wider) right-hand-side batch ``full``.

    Kernels take factors of batch ``B`` or 1 (shared by every right-hand side); otherwise each
    factor array, whose leading axis holds the systems in order (``B`` or ``B*n`` entries), is
    repeated as the batch broadcasts.
    """
    B, F = math.prod(batch), math.prod(full)
    if F == B or B == 1:
        return factors
    xp = be.xp
    out = []
    for f in factors:
        per, rest = f.shape[0] // B, tuple(f.shape[1:])
        g = _expand(be, xp.reshape(f, (B, per * math.prod(rest))), batch, full)
        out.append(xp.reshape(g, (F * per, *rest)))
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
        The method in use: ``"sequential"``, ``"pcr"``, ``"hybrid"`` or ``"pivoting"`` (what
        ``"auto"`` chose, or fell back to).
    shape : tuple of int
        ``(*batch, n)``, the shape of a right-hand side without extra batch axes.
    dtype : dtype
        The matrix dtype.
    """

    def __init__(self, be, sys, method: str):
        if method == "auto":
            # Its solves read the matrix again (the backward-error check, the switch to
            # pivoting): keep a copy, so that changing the caller's arrays cannot reach them.
            xp = be.xp
            sys = dataclasses.replace(
                sys, **{k: xp.asarray(getattr(sys, k), copy=True) for k in ("dl_in", "d", "du_in")}
            )
        self._be, self._sys, self._auto = be, sys, method == "auto"
        self.shape = (*sys.batch, sys.n)
        self.dtype = sys.d.dtype
        self._factor(choose("tridiagonal", method, be, sys.d.shape[0], sys.n))

    def _factor(self, method: str) -> None:
        xp, sys, k = self._be.xp, self._sys, self._be.kernels
        factor, self._solve = k.tridiagonal_factor[method]
        self._factors, info = factor(sys.dl, sys.d, sys.du)
        self.method = method
        certified = getattr(factor, "certifies_accuracy", False)
        # "auto" checks the backward error of each solve unless the factorization certified
        # its accuracy (info < 0 flags element growth), as solve_tridiagonal does.
        self._check = self._auto and method != "pivoting" and not certified
        if method == "pivoting":
            if bool(xp.any(info != 0)):
                singular(xp, info, sys.batch, "tridiagonal matrix")
        elif self._auto and bool(xp.any((info > 0) | (info < 0) if certified else info > 0)):
            self._factor("pivoting")
        elif bool(xp.any(info > 0)):
            x = xp.zeros(sys.d.shape, dtype=sys.d.dtype)
            breakdown(k, xp, info, x, sys.batch, method, "tridiagonal matrix")

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
        factors = _broadcast_factors(be, _cast_all(be, self._factors, dtype), sys.batch, full)
        x = self._solve(factors, r)
        if self._check:
            mats = _cast_all(be, (sys.dl, sys.d, sys.du), dtype)
            if tuple(full) != tuple(sys.batch):  # the matrix of every right-hand side
                mats = tuple(_expand(be, a, sys.batch, full) for a in mats)
            err = be.kernels.tridiagonal_backward_error(*mats, r, x)
            if bool(xp.any(err > GROWTH_EPS * eps(xp, dtype))):
                self._factor("pivoting")  # element growth: switch to pivoting for good
                return self.solve(rhs, check_finite=False)
        overflow(be.kernels, x, "tridiagonal matrix")
        return xp.reshape(x, (*full, sys.n))


class BlockTridiagonalFactorization:
    """A factored batch of block tridiagonal matrices; see :func:`factor_block_tridiagonal`.

    Attributes
    ----------
    method : str
        ``"sequential"`` (block LU), ``"pcr"`` or ``"hybrid"``: no pivoting across blocks.
    shape : tuple of int
        ``(*batch, n, m)``.
    dtype : dtype
    """

    def __init__(self, be, sys, method: str):
        self._be, self._sys = be, sys
        self.method = choose("block_tridiagonal", method, be, sys.D.shape[0], sys.n)
        self.shape = (*sys.batch, sys.n, sys.m)
        self.dtype = sys.D.dtype
        factor, self._solve = be.kernels.block_tridiagonal_factor[self.method]
        self._factors, info = factor(sys.L, sys.D, sys.U)
        xp = be.xp
        if bool(xp.any(info != 0)):
            x = xp.zeros(sys.D.shape[:-1], dtype=sys.D.dtype)
            breakdown(
                be.kernels,
                xp,
                info,
                x,
                sys.batch,
                self.method,
                "block tridiagonal matrix",
                "block row",
                fix="a factorization does not pivot across blocks; solve_block_tridiagonal(method='auto') "
                "does, on the CPU.",
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
        factors = _broadcast_factors(be, _cast_all(be, self._factors, dtype), sys.batch, full)
        x = self._solve(factors, r)
        overflow(be.kernels, x, "block tridiagonal matrix")
        return xp.reshape(x, (*full, sys.n, sys.m))


def factor_tridiagonal(dl, d, du, *, method="auto", check_finite=True, backend=None):
    """Factor batched tridiagonal matrices for repeated solves.

    Parameters
    ----------
    dl, d, du : array_like
        As in :func:`solve_tridiagonal`: ``d`` is ``(..., n)``, ``dl`` and ``du`` are
        ``(..., n-1)`` (LAPACK layout) or ``(..., n)`` (padded).
    method : {"auto", "sequential", "pcr", "hybrid", "pivoting"}, optional
        Every method of :func:`solve_tridiagonal`, with the same results. ``"sequential"``:
        Thomas elimination (a solve: two passes over the rows). ``"pcr"``: every PCR level's
        multipliers are stored, O(n log n) memory; a solve is ``ceil(log2 n)`` whole-array
        passes over the right-hand side, no loop over rows. ``"hybrid"``: the chunks' pivots
        and couplings and the reduced system's factors; a solve is O(n). ``"pivoting"``:
        LAPACK ``?gttrf``. The non-pivoting methods raise :class:`SingularMatrixError` on a
        tiny pivot. ``"auto"``: the method :func:`solve_tridiagonal` would use for this
        backend and shape (PCR or hybrid on the xp backends), switching to pivoting for good
        on a tiny pivot or on element growth, as the solver would.
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
    method = _validation.method(method, SCALAR_METHODS, "factor_tridiagonal")
    sys = _validation.tridiagonal(be, dl, d, du, None, check_finite=check_finite)
    return TridiagonalFactorization(be, sys, method)


def factor_block_tridiagonal(L, D, U, *, method="auto", check_finite=True, backend=None):
    """Factor batched block tridiagonal matrices for repeated solves.

    Parameters
    ----------
    L, D, U : array_like
        As in :func:`solve_block_tridiagonal`.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        Every method of :func:`solve_block_tridiagonal` (partial pivoting inside each diagonal
        block, none across them). ``"sequential"``: block LU. ``"pcr"``: every level's
        diagonal-block inverses (or LU factors) and off-diagonal blocks, O(n m^2 log n) memory;
        a solve is ``ceil(log2 n)`` batched passes over the right-hand side. ``"hybrid"``: the
        chunks' factors and the interface system's. ``"auto"``: the method
        :func:`solve_block_tridiagonal` would use for this backend and shape.
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
    method = _validation.method(method, BLOCK_METHODS, "factor_block_tridiagonal")
    sys = _validation.block_tridiagonal(be, L, D, U, None, check_finite=check_finite)
    return BlockTridiagonalFactorization(be, sys, method)
