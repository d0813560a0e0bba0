"""Linear recurrences and bidiagonal systems on Dask arrays.

Sequence axis split into ``P`` chunks (forward case; reverse mirrors it):

1. per chunk (map_blocks): the recurrence from zero, keeping its last state ``y_j``, and the
   chunk's transfer ``Phi_j = A_{e-1} ... A_s`` (a product tree, or a power for a
   time-invariant ``A``);
2. one task: the chunk carries ``c_j = Phi_j c_{j-1} + y_j`` from ``c_{-1} = x0``, itself a
   short recurrence solved by :func:`pcrsolve.linear_recurrence`;
3. per chunk (map_blocks): the recurrence again, from ``c_{j-1}``.

Bidiagonal systems become recurrences chunk by chunk (rows scaled by ``1/d``, or block rows by
``D^-1``), as on one machine.
"""

from __future__ import annotations

import dask.array as da
from dask.array.utils import meta_from_array

from .. import _backend, _validation
from .. import linear as _linear
from .._errors import SingularMatrixError
from ..linear._tridiagonal import BLOCK_METHODS
from . import _inputs
from ._blocks import RECHUNK_HINT, located, where
from ._threads import kernel_slot
from ._tridiagonal import batch_graph

__all__ = ["linear_recurrence", "solve_bidiagonal", "solve_block_bidiagonal"]


# ----------------------------------------------------------------------- chunk tasks


def _recurrence(A, b, x0, *, dense, **options):
    """The single-machine recurrence on blocks laid out for map_blocks (see :func:`_graph`)."""
    if dense:
        b = b[..., 0]
        x0 = None if x0 is None else x0[..., 0, :, 0]
    elif x0 is not None:
        x0 = x0[..., 0, :]
    x = _linear.linear_recurrence(A, b, x0, **options)
    return x[..., None] if dense else x


def _product(xp, A, dense: bool, reverse: bool, length: int):
    """``Phi = A_{L-1} ... A_0`` (``A_0 ... A_{L-1}`` when ``reverse``) over axis -3 (-2 diagonal).

    A time-invariant ``A`` (sequence axis of length 1) is raised to the power ``length``.
    """
    if not dense:
        if A.shape[-2] == 1:
            return A[..., 0, :] ** length
        return xp.prod(A, axis=-2)
    if A.shape[-3] == 1:
        base, out = A[..., 0, :, :], None
        k = length
        while k:
            if k & 1:
                out = base if out is None else out @ base
            k >>= 1
            if k:
                base = base @ base
        return (
            out
            if out is not None
            else xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.dtype), A[..., 0, :, :].shape)
        )
    # A product tree: pairs of neighbours in one batched matmul per level.
    while A.shape[-3] > 1:
        odd = A.shape[-3] % 2
        left, right = A[..., 1 : A.shape[-3] - odd : 2, :, :], A[..., 0 : A.shape[-3] - odd : 2, :, :]
        pairs = right @ left if reverse else left @ right
        A = xp.concat([pairs, A[..., -1:, :, :]], axis=-3) if odd else pairs
    return A[..., 0, :, :]


@located(1)
def _rec_tips_task(A, b, *, dense, reverse, method, backend, check_finite, seq_axis, block_info=None):
    """Phase 1: ``(*batch, 1, m, m+1)`` dense ``[Phi | y]`` or ``(*batch, 1, m, 2)`` diagonal."""
    with kernel_slot():
        y = _recurrence(A, b, None, dense=dense, reverse=reverse, method=method, check_finite=check_finite)
        xp = _backend.resolve({"y": y}, backend).xp
        L = b.shape[-3] if dense else b.shape[-2]
        if dense:
            end = y[..., 0, :, :] if reverse else y[..., -1, :, :]  # (.., m, 1)
        else:
            end = y[..., 0, :] if reverse else y[..., -1, :]
        phi = _product(xp, xp.astype(xp.asarray(A), y.dtype), dense, reverse, L)
        batch = tuple(end.shape[:-2] if dense else end.shape[:-1])
        if dense:
            tips = xp.concat([xp.broadcast_to(phi, (*batch, *phi.shape[-2:])), end], axis=-1)
        else:
            tips = xp.stack([xp.broadcast_to(phi, end.shape), end], axis=-1)
    return tips[..., None, :, :]


@located()
def _carry_task(tips, x0=None, *, dense, reverse, backend, seq_axis, block_info=None):
    """Phase 2: the state each chunk starts from, ``(*batch, P, m[, 1])``."""
    xp = _backend.resolve({"tips": tips}, backend).xp
    phi, y = (tips[..., :-1], tips[..., -1]) if dense else (tips[..., 0], tips[..., 1])
    start = None if x0 is None else x0[..., 0, :, 0]
    P = y.shape[-2]
    if not bool(xp.all(xp.isfinite(tips))):
        raise FloatingPointError(
            f"the linear recurrence, split into {P} chunks along its sequence axis, overflowed: the "
            "product of the A's over a chunk is not finite (the recurrence grows too fast over a chunk). "
            + RECHUNK_HINT.format(axis=seq_axis)
        )
    with kernel_slot():
        out = _linear.linear_recurrence(
            phi, y, start, reverse=reverse, method="sequential", check_finite=False
        )
    m = y.shape[-1]
    first = xp.zeros((*out.shape[:-2], 1, m), dtype=out.dtype) if start is None else start[..., None, :]
    first = xp.broadcast_to(first, (*out.shape[:-2], 1, m))
    if reverse:  # chunk j starts from the state after it: out[j + 1], x0 for the last
        carries = xp.concat([out[..., 1:, :], first], axis=-2)
    else:
        carries = xp.concat([first, out[..., :-1, :]], axis=-2)
    return carries[..., None] if dense else carries


@located(1)
def _rec_complete_task(A, b, carry, *, dense, reverse, method, backend, seq_axis, block_info=None):
    """Phase 3: the chunk's states from the state it starts from."""
    with kernel_slot():
        return _recurrence(A, b, carry, dense=dense, reverse=reverse, method=method, check_finite=False)


# ----------------------------------------------------------------------- graph


def _graph(arrays, *, reverse, method, check_finite, backend, dtype):
    """The recurrence graph over lifted inputs ``A``, ``b``, ``x0``; returns ``(*batch, n, m)``."""
    st = {k: None if a is None else _inputs.standin(a.shape, dtype) for k, a in arrays.items()}
    rec = _validation.recurrence(_inputs._CHECK_BACKEND, st["A"], st["b"], st["x0"], check_finite=False)
    A, b, x0 = arrays["A"], arrays["b"], arrays["x0"]
    if x0 is not None:
        x0 = x0[..., None, :]  # (..., 1, m): a length-1 sequence axis, one chunk
    tails = {"A": 3 if rec.dense else 2, "b": 2, "x0": 2}
    al = _inputs.align({"A": A, "b": b, "x0": x0}, tails, "b", rec.n)
    A, b, x0 = al.arrays["A"], al.arrays["b"], al.arrays["x0"]
    if rec.dense:  # the ranks of A's blocks: (.., n, m, 1) and (.., 1, m, 1)
        b = b[..., None]
        x0 = None if x0 is None else x0[..., None]
    nb = len(al.batch)
    bc, P, m = al.batch_chunks, len(al.seq_chunks), rec.m
    extra = (1,) if rec.dense else ()
    ndim = nb + 2 + len(extra)
    like = _inputs.result_meta(arrays, backend, ndim, dtype)
    out_chunks = (*bc, al.seq_chunks, (m,), *[(1,)] * len(extra))
    common = {"dense": rec.dense, "reverse": reverse, "backend": backend}
    if P == 1:
        options = {**common, "method": method, "check_finite": check_finite}
        args = [A, b] + ([x0] if x0 is not None else [])
        out = batch_graph(args, _recurrence_opt_x0, options, out_chunks, dtype, like)
        return out[..., 0] if rec.dense else out
    local = "sequential" if method == "auto" else method
    width = m + 1 if rec.dense else 2
    tips = da.map_blocks(
        _rec_tips_task,
        A,
        b,
        method=local,
        check_finite=check_finite,
        seq_axis=-2,
        chunks=(*bc, (1,) * P, (m,), (width,)),
        new_axis=None if rec.dense else [nb + 2],
        dtype=dtype,
        meta=meta_from_array(like, ndim=nb + 3, dtype=dtype),
        **common,
    )
    carry_args = [tips.rechunk({nb: -1})]
    if x0 is not None:  # (.., 1, m, 1), the rank of the tips
        carry_args.append(x0 if rec.dense else x0[..., None])
    carry_chunks = (*bc, (P,), (m,), *[(1,)] * len(extra))
    carries = da.map_blocks(
        _carry_task,
        *carry_args,
        seq_axis=-2,
        chunks=carry_chunks,
        drop_axis=None if rec.dense else [nb + 2],
        dtype=dtype,
        meta=meta_from_array(like, ndim=ndim, dtype=dtype),
        **common,
    ).rechunk({nb: 1})
    out = da.map_blocks(
        _rec_complete_task,
        A,
        b,
        carries,
        method=local,
        seq_axis=-2,
        chunks=out_chunks,
        dtype=dtype,
        meta=like,
        **common,
    )
    return out[..., 0] if rec.dense else out


def _recurrence_opt_x0(A, b, x0=None, **options):
    return _recurrence(A, b, x0, **options)


# ----------------------------------------------------------------------- public


def linear_recurrence(A, b, x0=None, *, reverse=False, method="auto", check_finite=True, backend=None):
    """Solve ``x[k] = A[k] @ x[k-1] + b[k]`` on Dask arrays, lazily.

    Arguments and semantics are those of :func:`pcrsolve.linear_recurrence` (dense or
    diagonal ``A``, a time-invariant ``A`` with a sequence axis of length 1, ``reverse``).

    Parameters
    ----------
    A : (..., n, m, m) or (..., n, m) array_like
        Dense blocks (``A.ndim == b.ndim + 1``) or diagonals; the block axes must be one chunk.
    b : (..., n, m) array_like
        Inhomogeneous terms; its chunks are the result's.
    x0 : (..., m) array_like, optional
        The state before the first step (after the last when ``reverse``); zeros when omitted.
    reverse : bool, optional
        Run backwards: ``x[k] = A[k] @ x[k+1] + b[k]`` with ``x[n] = x0``.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        The single-machine method of each chunk.
    check_finite : bool, optional
        Check every chunk for NaN or inf when it is computed.
    backend : {"numba", "numpy", "cupy"}, optional
        How chunks are computed; by default their array type decides.

    Returns
    -------
    x : (..., n, m) dask.array.Array
        Lazy, with the chunks of ``b``.

    Raises
    ------
    ValueError
        For bad shapes or options, or a chunked state axis.
    FloatingPointError
        When computed, if the solution (or the product of the ``A``'s over a chunk) overflows.

    See Also
    --------
    pcrsolve.linear_recurrence : The single-machine solver each chunk runs.

    Examples
    --------
    An exponential moving average along a chunked time axis:

    >>> import dask.array as da, numpy as np, pcrsolve as pcr
    >>> u = da.ones((8, 1), chunks=(3, 1))
    >>> y = pcr.dask.linear_recurrence(np.full((1, 1), 0.5), 0.5 * u)
    >>> y.chunks
    ((3, 3, 2), (1,))
    >>> y[:, 0].compute()
    array([0.5       , 0.75      , 0.875     , 0.9375    , 0.96875   ,
           0.984375  , 0.9921875 , 0.99609375])
    """
    method = _validation.method(method, BLOCK_METHODS, "linear_recurrence")
    arrays = _inputs.lift({"A": A, "b": b, "x0": x0})
    bk = _inputs.namespace_backend(arrays, backend)
    dtype = _inputs.result_dtype(arrays)
    return _graph(arrays, reverse=reverse, method=method, check_finite=check_finite, backend=bk, dtype=dtype)


@located(2)
def _bidiagonal_coefficients(d, e, rhs, *, lower, check_finite, backend, seq_axis, block_info=None):
    """``(.., L, 2)``: ``[-e/d, rhs/d]`` per row; the ignored corner of ``e`` reads as zero."""
    w = where(block_info, 2)
    be = _backend.resolve({"d": d, "e": e, "rhs": rhs}, backend)
    xp = be.xp
    corner = w.first(seq_axis) if lower else w.last(seq_axis)
    sys = _validation.tridiagonal(be, e, d, e, rhs, check_finite=False)
    if check_finite:
        _validation._check_finite(be, {"d": sys.d, "e": _interior(sys.dl_in, lower, corner), "rhs": sys.rhs})
    zero = sys.d == 0
    if bool(xp.any(zero)):
        k = int(xp.nonzero(xp.any(zero, axis=0))[0][0]) + (w.start[seq_axis] if w.start else 0)
        raise SingularMatrixError(f"singular matrix: `d` is zero at index {k} of the sequence axis.")
    off = xp.asarray(sys.dl_in, copy=True)
    if corner:
        off[:, 0 if lower else -1] = 0
    out = xp.stack([-off / sys.d, sys.rhs / sys.d], axis=-1)
    return xp.reshape(out, (*sys.batch, sys.n, 2))


def _interior(e, lower: bool, corner: bool):
    if not corner:
        return e
    return e[:, 1:] if lower else e[:, :-1]


@located(2)
def _block_bidiagonal_coefficients(D, E, rhs, *, lower, check_finite, backend, seq_axis, block_info=None):
    """``(.., L, m, m+1)``: ``D^-1 [-E | rhs]`` per block row; the ignored corner reads as zero."""
    w = where(block_info, 2)
    be = _backend.resolve({"D": D, "E": E, "rhs": rhs}, backend)
    xp = be.xp
    rhs = rhs[..., 0]
    corner = w.first(seq_axis) if lower else w.last(seq_axis)
    sys = _validation.block_tridiagonal(be, E, D, E, rhs, check_finite=False)
    if check_finite:
        _validation._check_finite(be, {"D": sys.D, "rhs": sys.rhs})
        E_in = xp.reshape(xp.broadcast_to(be.asarray(E), (*sys.batch, *E.shape[-3:])), (-1, *E.shape[-3:]))
        _validation._check_finite(be, {"E": _interior(E_in, lower, corner)})
    off = xp.asarray(
        xp.reshape(xp.broadcast_to(be.asarray(E), (*sys.batch, *E.shape[-3:])), sys.D.shape), copy=True
    )
    off = xp.astype(off, sys.D.dtype) if off.dtype != sys.D.dtype else off
    if corner:
        off[:, 0 if lower else -1] = 0
    stacked = xp.concat([-off, sys.rhs[..., None]], axis=-1)
    try:
        M = xp.linalg.solve(sys.D, stacked)
    except Exception:  # LinAlgError on NumPy, other types elsewhere
        M = None
    if M is None or not bool(xp.all(xp.isfinite(M))):
        raise SingularMatrixError("singular matrix: a diagonal block of `D` is singular.")
    return xp.reshape(M, (*sys.batch, sys.n, sys.m, sys.m + 1))


def solve_bidiagonal(d, e, rhs, *, lower=True, method="auto", check_finite=True, backend=None):
    """Solve batched bidiagonal systems on Dask arrays, lazily.

    Arguments and semantics are those of :func:`pcrsolve.solve_bidiagonal`.

    Parameters
    ----------
    d : (..., n) array_like
        Main diagonal.
    e : (..., n-1) or (..., n) array_like
        Off-diagonal, LAPACK or padded layout.
    rhs : (..., n) array_like
        Right-hand sides; its chunks are the result's.
    lower : bool, optional
        Lower (default) or upper bidiagonal.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        The single-machine method of each chunk.
    check_finite : bool, optional
        Check every chunk for NaN or inf when it is computed.
    backend : {"numba", "numpy", "cupy"}, optional
        How chunks are computed; by default their array type decides.

    Returns
    -------
    x : (..., n) dask.array.Array
        Lazy, with the chunks of ``rhs``.

    Raises
    ------
    SingularMatrixError
        When computed, if ``d`` has a zero entry or the solution overflows.

    See Also
    --------
    pcrsolve.solve_bidiagonal : The single-machine solver.

    Examples
    --------
    >>> import dask.array as da, numpy as np, pcrsolve as pcr
    >>> x = pcr.dask.solve_bidiagonal(np.full(6, 2.0), np.ones(5), da.ones(6, chunks=2))
    >>> bool(np.allclose(x.compute(), pcr.solve_bidiagonal(np.full(6, 2.0), np.ones(5), np.ones(6))))
    True
    """
    method = _validation.method(
        method, BLOCK_METHODS, "bidiagonal systems (no pivoting is needed: they are triangular)"
    )
    arrays = _inputs.lift({"d": d, "e": e, "rhs": rhs})
    bk = _inputs.namespace_backend(arrays, backend)
    dtype = _inputs.result_dtype(arrays)
    st = {k: _inputs.standin(a.shape, dtype) for k, a in arrays.items()}
    sys = _validation.bidiagonal(
        _inputs._CHECK_BACKEND, st["d"], st["e"], st["rhs"], lower=lower, check_finite=False
    )
    al = _inputs.align(
        arrays, dict.fromkeys(arrays, 1), "rhs", sys.n, pad={"e": "lower" if lower else "upper"}
    )
    nb = len(al.batch)
    like = _inputs.result_meta(arrays, bk, nb + 1, dtype)
    args = [al.arrays[k] for k in ("d", "e", "rhs")]
    if not al.split:
        options = {"lower": lower, "method": method, "check_finite": check_finite, "backend": bk}
        return batch_graph(
            args, _linear.solve_bidiagonal, options, (*al.batch_chunks, al.seq_chunks), dtype, like
        )
    coef = da.map_blocks(
        _bidiagonal_coefficients,
        *args,
        lower=lower,
        check_finite=check_finite,
        backend=bk,
        seq_axis=-1,
        chunks=(*al.batch_chunks, al.seq_chunks, (2,)),
        new_axis=[nb + 1],
        dtype=dtype,
        meta=meta_from_array(like, ndim=nb + 2, dtype=dtype),
    )
    rec = {"A": coef[..., 0:1], "b": coef[..., 1:2], "x0": None}
    x = _graph(rec, reverse=not lower, method=method, check_finite=False, backend=bk, dtype=dtype)
    return x[..., 0]


def solve_block_bidiagonal(D, E, rhs, *, lower=True, method="auto", check_finite=True, backend=None):
    """Solve batched block bidiagonal systems on Dask arrays, lazily.

    Arguments and semantics are those of :func:`pcrsolve.solve_block_bidiagonal`.

    Parameters
    ----------
    D : (..., n, m, m) array_like
        Diagonal blocks; the block axes must be one chunk.
    E : (..., n-1, m, m) or (..., n, m, m) array_like
        Off-diagonal blocks, LAPACK or padded layout.
    rhs : (..., n, m) array_like
        Right-hand sides; its chunks are the result's.
    lower : bool, optional
        Lower (default) or upper block bidiagonal.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        The single-machine method of each chunk.
    check_finite : bool, optional
        Check every chunk for NaN or inf when it is computed.
    backend : {"numba", "numpy", "cupy"}, optional
        How chunks are computed; by default their array type decides.

    Returns
    -------
    x : (..., n, m) dask.array.Array
        Lazy, with the chunks of ``rhs``.

    Raises
    ------
    SingularMatrixError
        When computed, if a diagonal block is singular or the solution overflows.

    See Also
    --------
    pcrsolve.solve_block_bidiagonal : The single-machine solver.

    Examples
    --------
    >>> import dask.array as da, numpy as np, pcrsolve as pcr
    >>> D = np.tile(2 * np.eye(2), (6, 1, 1)); E = np.tile(np.eye(2), (5, 1, 1))
    >>> x = pcr.dask.solve_block_bidiagonal(D, E, da.ones((6, 2), chunks=(2, 2)))
    >>> bool(np.allclose(x.compute(), pcr.solve_block_bidiagonal(D, E, np.ones((6, 2)))))
    True
    """
    from ._tridiagonal import _check_block_shapes

    method = _validation.method(
        method, BLOCK_METHODS, "bidiagonal systems (no pivoting is needed: they are triangular)"
    )
    arrays = _inputs.lift({"D": D, "E": E, "rhs": rhs})
    bk = _inputs.namespace_backend(arrays, backend)
    dtype = _inputs.result_dtype(arrays)
    try:
        n, m = _check_block_shapes(
            {"L": arrays["E"], "D": arrays["D"], "U": arrays["E"], "rhs": arrays["rhs"]}
        )
    except ValueError as exc:
        raise ValueError(str(exc).replace("`L`", "`E`").replace("`U`", "`E`")) from None
    tails = {"D": 3, "E": 3, "rhs": 2}
    al = _inputs.align(arrays, tails, "rhs", n, pad={"E": "lower" if lower else "upper"})
    nb = len(al.batch)
    args = [al.arrays["D"], al.arrays["E"], al.arrays["rhs"][..., None]]
    like = _inputs.result_meta(arrays, bk, nb + 3, dtype)
    if not al.split:
        options = {"lower": lower, "method": method, "check_finite": check_finite, "backend": bk}
        out = batch_graph(
            args,
            _block_bidiagonal_unsqueezed,
            options,
            (*al.batch_chunks, al.seq_chunks, (m,), (1,)),
            dtype,
            like,
        )
        return out[..., 0]
    M = da.map_blocks(
        _block_bidiagonal_coefficients,
        *args,
        lower=lower,
        check_finite=check_finite,
        backend=bk,
        seq_axis=-3,
        chunks=(*al.batch_chunks, al.seq_chunks, (m,), (m + 1,)),
        dtype=dtype,
        meta=like,
    )
    rec = {"A": M[..., :m], "b": M[..., m], "x0": None}
    return _graph(rec, reverse=not lower, method=method, check_finite=False, backend=bk, dtype=dtype)


def _block_bidiagonal_unsqueezed(D, E, rhs, **options):
    return _linear.solve_block_bidiagonal(D, E, rhs[..., 0], **options)[..., None]
