"""Public linear solvers: validate, resolve the backend once, run a kernel, check, wrap."""

from __future__ import annotations

import numpy as np

from . import _backend, _validation
from ._errors import SingularMatrixError
from ._fallback import block_banded_solve
from ._methods import choose

__all__ = [
    "linear_recurrence",
    "solve_bidiagonal",
    "solve_block_bidiagonal",
    "solve_block_tridiagonal",
    "solve_tridiagonal",
]

SCALAR_METHODS = ("auto", "sequential", "pcr", "hybrid", "pivoting")
BLOCK_METHODS = ("auto", "sequential", "pcr", "hybrid")

# A solution whose normwise backward error exceeds this many eps is redone with pivoting
# by method="auto": a backward-stable solver stays far below it; element growth does not.
_GROWTH_EPS = 1000


# ----------------------------------------------------------------------- breakdowns


def _first(xp, mask) -> int:
    """Index of the first True in a 1-D mask (one host sync, on the error path only)."""
    return int(xp.nonzero(mask)[0][0])


def _where(batch: tuple[int, ...], flat: int, what: str) -> str:
    """``"the <what>"``, or ``"<what> (i, j) of the batch"`` for batched input."""
    if not batch:
        return f"the {what}"
    return f"{what} {tuple(int(i) for i in np.unravel_index(flat, batch))} of the batch"


def _breakdown(k, xp, info, x, batch, method: str, what: str, sequence: str = "row"):
    """Raise SingularMatrixError if a non-pivoting kernel broke down on any system."""
    if not bool(xp.any(info > 0)) and bool(k.all_finite(x)):
        return  # the common case, in one pass without temporaries
    finite = xp.all(xp.reshape(xp.isfinite(x), (x.shape[0], -1)), axis=1)
    bad = (info > 0) | ~finite  # info < 0 only warns of growth: the caller chose this method
    if not bool(xp.any(bad)):
        return
    i = _first(xp, bad)
    row = int(info[i]) - 1
    at = f" at {sequence} {row}" if row >= 0 else ""
    raise SingularMatrixError(
        f"method {method!r} broke down on {_where(batch, i, what)}: a zero or tiny "
        f"pivot{at}. The matrix is singular, or not diagonally dominant / SPD / an M-matrix, "
        "which non-pivoting elimination needs; use method='auto', which falls back to pivoting."
    )


def _eps(xp, dtype) -> float:
    return float(xp.finfo(dtype).eps)


def _singular(xp, info, batch, what: str, sequence: str = "row"):
    i = _first(xp, info != 0)
    raise SingularMatrixError(
        f"singular matrix: {_where(batch, i, what)} has an exactly zero pivot at "
        f"{sequence} {int(info[i]) - 1} even with partial pivoting."
    )


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
            _singular(xp, info, sys.batch, "tridiagonal system")
    elif method != "auto":
        _breakdown(k, xp, info, x, sys.batch, name, "tridiagonal system")
        return x
    else:
        bad = info != 0
        if not getattr(kernel, "certifies_accuracy", False):
            check = k.tridiagonal_backward_error
            dl, du = _off_diagonals(sys, check)
            err = check(dl, sys.d, du, sys.rhs, x)
            bad = bad | (err > _GROWTH_EPS * _eps(xp, sys.d.dtype))
        x = _pivot_where(k, xp, sys, bad, x)
    if check_finite:
        _overflow(k, x, "tridiagonal system")
    return x


def _off_diagonals(sys, kernel):
    """``(dl, du)`` for ``kernel``: as given if it reads any layout, else zero-padded copies."""
    if getattr(kernel, "any_layout", False):
        return sys.dl_in, sys.du_in
    return sys.dl, sys.du


def _overflow(k, x, what: str) -> None:
    """Raise if a solution from finite input is not finite (it overflowed)."""
    if not bool(k.all_finite(x)):
        raise SingularMatrixError(
            f"the {what} is numerically singular: its solution overflows although the inputs are finite."
        )


def _pivot_where(k, xp, sys, bad, x):
    """Redo the systems flagged ``bad`` with partial pivoting."""
    if bool(xp.any(bad)):
        xpiv, pinfo = k.tridiagonal["pivoting"](sys.dl, sys.d, sys.du, sys.rhs)
        if bool(xp.any(bad & (pinfo != 0))):
            _singular(xp, xp.where(bad, pinfo, 0), sys.batch, "tridiagonal system")
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
        _breakdown(k, xp, info, x, sys.batch, name, "block tridiagonal system", "block row")
        return x
    err = k.block_backward_error(sys.L, sys.D, sys.U, sys.rhs, x)
    bad = (info != 0) | (err > _GROWTH_EPS * _eps(xp, sys.D.dtype))
    if bool(xp.any(bad)):
        x = _banded_where(be, sys, bad, info, x, name)
    if check_finite:
        _overflow(k, x, "block tridiagonal system")
    return x


def _banded_where(be, sys, bad, info, x, name: str):
    """Redo the systems flagged ``bad`` by banded LU with partial pivoting (NumPy only)."""
    xp, k = be.xp, be.kernels
    if not be.is_cpu_numpy:
        _breakdown(
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
                f"singular matrix: {_where(sys.batch, int(i), 'block tridiagonal system')} is "
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
    be = _backend.resolve({"L": L, "D": D, "U": U, "rhs": rhs}, backend)
    method = _validation.method(method, BLOCK_METHODS, "solve_block_tridiagonal")
    sys = _validation.block_tridiagonal(be, L, D, U, rhs, check_finite=check_finite)
    x = block_kernel(be, sys, method, check_finite)
    return be.xp.reshape(x, (*sys.batch, sys.n, sys.m))


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
    be = _backend.resolve({"d": d, "e": e, "rhs": rhs}, backend)
    method = _bidiagonal_method(method)
    sys = _validation.bidiagonal(be, d, e, rhs, lower=lower, check_finite=check_finite)
    xp = be.xp
    zero = sys.d == 0
    if bool(xp.any(zero)):
        i = _first(xp, xp.any(zero, axis=1))
        k = _first(xp, zero[i, :])
        raise SingularMatrixError(
            f"singular matrix: `d` of {_where(sys.batch, i, 'bidiagonal system')} is zero at index {k}."
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
