"""Scalar and block tridiagonal systems on Dask arrays.

Batch axes chunked, sequence axis whole: each chunk is one call of the single-machine solver.
Sequence axis split into ``P`` chunks: the partition (SPIKE) method in three phases,

1. per chunk ``T_j`` (map_blocks): the first and last rows of ``y = T_j^-1 r``, of
   ``v = T_j^-1 (a e_1)`` and of ``w = T_j^-1 (c e_L)``, where ``a`` couples the chunk's first
   row to the row before it and ``c`` its last row to the row after it;
2. one task: the interface system over ``z_j = (x_first, x_last)`` of every chunk, block
   tridiagonal with ``2m x 2m`` blocks, ``z_j + [0 v] z_{j-1} + [w 0] z_{j+1} = y``, solved by
   :func:`pcrsolve.solve_block_tridiagonal`;
3. per chunk (map_blocks): ``T_j x = r - a x_{before} e_1 - c x_{after} e_L`` by the
   single-machine solver, and a check that its ends agree with the interface solution.

Phase 1 eliminates each chunk twice (forward and backward) without storing anything, phase 3
once, so the work is about twice one sequential solve, and the graph has about 3P tasks plus
the rechunks of the small interface arrays. No pivoting across chunks: a breakdown or element
growth raises :class:`~pcrsolve.SingularMatrixError` with the hint to rechunk.
"""

from __future__ import annotations

import dask.array as da
from dask.array.utils import meta_from_array

from .. import _backend, _validation
from .. import linear as _linear
from .._errors import SingularMatrixError
from ..linear._checks import GROWTH_EPS
from ..linear._methods import choose
from ..linear._tridiagonal import BLOCK_METHODS, SCALAR_METHODS
from . import _inputs
from ._blocks import breakdown, located, where
from ._threads import kernel_slot

__all__ = ["batch_graph", "refuse_pivoting", "solve_block_tridiagonal", "solve_chunk", "solve_tridiagonal"]


# ----------------------------------------------------------------------- chunk tasks


@located()
def solve_chunk(*blocks, solver, options, block_info=None):
    """Batch-chunked path: the single-machine solver on one chunk."""
    with kernel_slot():
        return solver(*blocks, **options)


def _system(kind: str, blocks, backend, check_finite: bool):
    """The chunk as the single-machine canonical system ``(B, L[, m, m])``, corners zeroed."""
    if kind == "scalar":
        dl, d, du, rhs = blocks
        be = _backend.resolve({"dl": dl, "d": d, "du": du, "rhs": rhs}, backend)
        sys = _validation.tridiagonal(be, dl, d, du, rhs, check_finite=check_finite)
        # The chunk's own first sub- and last super-diagonal entries couple it to its neighbours.
        xp = be.xp
        a = xp.reshape(xp.broadcast_to(sys.dl_in[:, :1], (sys.d.shape[0], 1)), (-1,))
        c = xp.reshape(xp.broadcast_to(sys.du_in[:, -1:], (sys.d.shape[0], 1)), (-1,))
        return be, sys, a, c
    L, D, U, rhs = blocks
    rhs = rhs[..., 0]
    be = _backend.resolve({"L": L, "D": D, "U": U, "rhs": rhs}, backend)
    xp = be.xp
    sys = _validation.block_tridiagonal(be, L, D, U, rhs, check_finite=check_finite)
    B, dtype = sys.D.shape[0], sys.D.dtype

    def rows(blk):  # (..., m, m) -> (B, m, m) in the system's dtype
        blk = xp.reshape(
            xp.broadcast_to(be.asarray(blk), (*sys.batch, *blk.shape[-2:])), (B, *blk.shape[-2:])
        )
        return xp.astype(blk, dtype) if blk.dtype != dtype else blk

    return be, sys, rows(L[..., 0, :, :]), rows(U[..., -1, :, :])


def _couplings(xp, a, c, w, axis_len: int):
    """Zero the couplings that are corners of the whole matrix (first and last chunk)."""
    if w.first(axis_len):
        a = xp.zeros_like(a)
    if w.last(axis_len):
        c = xp.zeros_like(c)
    return a, c


@located(3)
def _tips_task(*blocks, kind, backend, check_finite, seq_axis, block_info=None):
    """Phase 1: ``(*batch, 2, m, 2m+1)``, rows first/last of ``[y | v | w]``."""
    w = where(block_info, 3)
    with kernel_slot():
        be, sys, a, c = _system(kind, blocks, backend, check_finite)
        xp = be.xp
        a, c = _couplings(xp, a, c, w, seq_axis)
        if check_finite and not (bool(be.kernels.all_finite(a)) and bool(be.kernels.all_finite(c))):
            raise ValueError("an off-diagonal contains NaN or inf; pass finite values.")
        tips, info = _tips(be, kind, sys, a, c)
    P = w.blocks[seq_axis] if w.blocks else 1
    if bool(xp.any(info != 0)):
        i = int(xp.nonzero(info != 0)[0][0])
        row = abs(int(info[i])) - 1 + (w.start[seq_axis] if w.start else 0)
        what = "a zero or tiny pivot" if int(info[i]) > 0 else "element growth"
        raise breakdown(_what(kind), f"{what} at row {row} while eliminating a chunk", seq_axis, P)
    m = 1 if kind == "scalar" else sys.m
    return xp.reshape(tips, (*sys.batch, 2, m, 2 * m + 1))


def _what(kind: str) -> str:
    return "tridiagonal system" if kind == "scalar" else "block tridiagonal system"


def _tips(be, kind: str, sys, a, c):
    """``(tips (B, 2, m, 2m+1), info (B,))``: the Numba kernel, else factor once and solve."""
    xp = be.xp
    if kind == "scalar" and be.is_numba:
        from ._kernels import tridiagonal_tips

        out, info = tridiagonal_tips(sys.dl, sys.d, sys.du, sys.rhs, be.contiguous(a), be.contiguous(c))
        return xp.reshape(out, (out.shape[0], 2, 1, 3)), info
    if kind == "scalar":
        factor, solve = be.kernels.tridiagonal_factor["sequential"]
        factors, info = factor(sys.dl, sys.d, sys.du)
        B, L = sys.d.shape
        cols = [solve(factors, sys.rhs)]
        for coef, row in ((a, 0), (c, L - 1)):
            e = xp.zeros((B, L), dtype=sys.d.dtype)
            e[:, row] = coef
            cols.append(solve(factors, e))
        ends = [xp.stack([x[:, 0], x[:, L - 1]], axis=1) for x in cols]  # (B, 2) each
        return xp.reshape(xp.stack(ends, axis=-1), (B, 2, 1, 3)), info
    factor, solve = be.kernels.block_tridiagonal_factor["sequential"]
    factors, info = factor(sys.L, sys.D, sys.U)
    B, L, m = sys.rhs.shape
    cols = [solve(factors, sys.rhs)[..., None]]
    for coef, row in ((a, 0), (c, L - 1)):
        parts = []
        for q in range(m):
            e = xp.zeros((B, L, m), dtype=sys.D.dtype)
            e[:, row, :] = coef[:, :, q]
            parts.append(solve(factors, e)[..., None])
        cols.append(xp.concat(parts, axis=-1))
    full = xp.concat(cols, axis=-1)  # (B, L, m, 2m+1)
    return xp.stack([full[:, 0], full[:, L - 1]], axis=1), info


@located()
def _interface_task(tips, *, m, backend, seq_axis, block_info=None):
    """Phase 2: ``(*batch, 4P, m)``: per chunk ``x_before, x_after, x_first, x_last``."""
    xp = _backend.resolve({"tips": tips}, backend).xp
    batch = tuple(tips.shape[:-3])
    P = tips.shape[-3] // 2
    t = xp.reshape(tips, (*batch, P, 2, m, 2 * m + 1))
    Y, V, W = t[..., 0], t[..., 1 : m + 1], t[..., m + 1 :]  # (.., P, 2, m[, m])
    zero = xp.zeros((*batch, P, m, m), dtype=tips.dtype)
    Lb = xp.concat(
        [xp.concat([zero, V[..., 0, :, :]], axis=-1), xp.concat([zero, V[..., 1, :, :]], axis=-1)], axis=-2
    )
    Ub = xp.concat(
        [xp.concat([W[..., 0, :, :], zero], axis=-1), xp.concat([W[..., 1, :, :], zero], axis=-1)], axis=-2
    )
    eye = xp.eye(2 * m, dtype=tips.dtype)
    Db = xp.broadcast_to(eye, (*batch, P, 2 * m, 2 * m))
    rhs = xp.reshape(Y, (*batch, P, 2 * m))
    try:
        with kernel_slot():
            z = _linear.solve_block_tridiagonal(
                Lb, Db, Ub, rhs, method="sequential", check_finite=False, backend=backend
            )
    except SingularMatrixError:
        raise breakdown(
            "system", "the interface system of the chunks' first and last rows is singular", seq_axis, P
        ) from None
    z = xp.reshape(z, (*batch, P, 2, m))
    first, last = z[..., 0, :], z[..., 1, :]
    zrow = xp.zeros((*batch, 1, m), dtype=tips.dtype)
    before = xp.concat([zrow, last[..., :-1, :]], axis=-2)
    after = xp.concat([first[..., 1:, :], zrow], axis=-2)
    out = xp.stack([before, after, first, last], axis=-2)  # (.., P, 4, m)
    return xp.reshape(out, (*batch, 4 * P, m))


@located(3)
def _complete_task(*blocks, kind, method, backend, seq_axis, block_info=None):
    """Phase 3: the chunk's solution from its neighbours' interface values."""
    w = where(block_info, 3)
    *mats, iface = blocks
    P = w.blocks[seq_axis] if w.blocks else 1
    with kernel_slot():
        be, sys, a, c = _system(kind, mats, backend, check_finite=False)
        xp, k = be.xp, be.kernels
        a, c = _couplings(xp, a, c, w, seq_axis)
        B = sys.rhs.shape[0]
        if kind == "scalar":
            f = xp.reshape(xp.broadcast_to(iface, (*sys.batch, 4)), (B, 4))
            r = xp.asarray(sys.rhs, copy=True)
            r[:, 0] = r[:, 0] - a * f[:, 0]
            r[:, -1] = r[:, -1] - c * f[:, 1]
            name = choose("tridiagonal", _local(method), be, B, sys.n)
            kernel = k.tridiagonal[name]
            x, info = kernel(sys.dl, sys.d, sys.du, be.contiguous(r))
            err = None
            if not getattr(kernel, "certifies_accuracy", False):
                err = k.tridiagonal_backward_error(sys.dl, sys.d, sys.du, r, x)
            ends = xp.stack([x[:, 0], x[:, -1]], axis=1)
            target = f[:, 2:]
        else:
            f = xp.reshape(xp.broadcast_to(iface[..., 0], (*sys.batch, 4, sys.m)), (B, 4, sys.m))
            r = xp.asarray(sys.rhs, copy=True)
            r[:, 0, :] = r[:, 0, :] - (a @ f[:, 0, :, None])[..., 0]
            r[:, -1, :] = r[:, -1, :] - (c @ f[:, 1, :, None])[..., 0]
            name = choose("block_tridiagonal", _local(method), be, B, sys.n)
            x, info = k.block_tridiagonal[name](sys.L, sys.D, sys.U, be.contiguous(r))
            err = k.block_backward_error(sys.L, sys.D, sys.U, r, x)
            ends = xp.stack([x[:, 0, :], x[:, -1, :]], axis=1)
            target = f[:, 2:, :]
    eps = float(xp.finfo(sys.rhs.dtype).eps)
    _check(xp, kind, info, err, ends, target, x, eps, w, seq_axis, P)
    shape = (*sys.batch, sys.n) if kind == "scalar" else (*sys.batch, sys.n, sys.m, 1)
    return xp.reshape(x, shape)


def _local(method: str) -> str:
    """The method of a chunk's own solve: never a pivoting fallback (it is checked instead)."""
    return "sequential" if method == "auto" else method


def _check(xp, kind, info, err, ends, target, x, eps, w, seq_axis, P) -> None:
    """Raise unless the chunk solve went through and its ends match the interface solution."""
    start = w.start[seq_axis] if w.start else 0
    if bool(xp.any(info > 0)):
        i = int(xp.nonzero(info > 0)[0][0])
        raise breakdown(_what(kind), f"a zero or tiny pivot at row {start + int(info[i]) - 1}", seq_axis, P)
    if bool(xp.any(info < 0)) or (err is not None and bool(xp.any(err > GROWTH_EPS * eps))):
        raise breakdown(_what(kind), f"element growth in the chunk starting at row {start}", seq_axis, P)
    scale = xp.max(xp.abs(x)) if x.size else 0.0
    if not bool(xp.all(xp.isfinite(x))):
        raise breakdown(
            _what(kind), f"the solution overflows in the chunk starting at row {start}", seq_axis, P
        )
    gap = xp.max(xp.abs(ends - target)) if ends.size else 0.0
    if bool(gap > GROWTH_EPS * eps * (1 + scale)):
        raise breakdown(
            _what(kind),
            f"the chunk starting at row {start} does not match the interface solution (growth across chunks)",
            seq_axis,
            P,
        )


# ----------------------------------------------------------------------- graphs


def batch_graph(args, solver, options, out_chunks, dtype, meta):
    """One single-machine solve per chunk (the sequence axis is one chunk)."""
    return da.map_blocks(
        solve_chunk,
        *args,
        solver=solver,
        options=options,
        chunks=out_chunks,
        dtype=dtype,
        meta=meta,
    )


def _partition_graph(al, names, kind, m, method, check_finite, backend, dtype, like):
    """The three phases over aligned inputs; returns ``(*batch, n)`` or ``(*batch, n, m, 1)``."""
    nb = len(al.batch)
    P = len(al.seq_chunks)
    bc = al.batch_chunks
    args = [al.arrays[k] for k in names]
    meta3 = meta_from_array(like, ndim=nb + 3, dtype=dtype)
    meta2 = meta_from_array(like, ndim=nb + 2, dtype=dtype)
    # the sequence axis of `rhs` (input 3), counted from the end: (.., n) or (.., n, m, 1)
    common = {"backend": backend, "seq_axis": -1 if kind == "scalar" else -3}
    tips = da.map_blocks(
        _tips_task,
        *args,
        kind=kind,
        check_finite=check_finite,
        chunks=(*bc, (2,) * P, (m,), (2 * m + 1,)),
        new_axis=[nb + 1, nb + 2] if kind == "scalar" else None,
        dtype=dtype,
        meta=meta3,
        **common,
    )
    iface = tips.rechunk({nb: -1}).map_blocks(
        _interface_task,
        m=m,
        chunks=(*bc, (4 * P,), (m,)),
        drop_axis=[nb + 2],
        dtype=dtype,
        meta=meta2,
        **common,
    )
    iface = iface.rechunk({nb: 4})
    if kind == "scalar":
        iface = iface[..., 0]
        out_chunks = (*bc, al.seq_chunks)
        meta = meta_from_array(like, ndim=nb + 1, dtype=dtype)
    else:
        iface = iface[..., None]
        out_chunks = (*bc, al.seq_chunks, (m,), (1,))
        meta = meta_from_array(like, ndim=nb + 3, dtype=dtype)
    return da.map_blocks(
        _complete_task,
        *args,
        iface,
        kind=kind,
        method=method,
        chunks=out_chunks,
        dtype=dtype,
        meta=meta,
        **common,
    )


def refuse_pivoting(method: str, P: int, axis: int) -> None:
    if method == "pivoting":
        raise ValueError(
            f"method='pivoting' needs the whole sequence axis in one chunk; it is split into {P} chunks. "
            f"Rechunk it (x.rechunk({{{axis}: -1}}) for every input), or use method='auto' or "
            "'sequential' (no pivoting across chunks)."
        )


# ----------------------------------------------------------------------- public


def solve_tridiagonal(dl, d, du, rhs, *, method="auto", check_finite=True, backend=None):
    """Solve batched tridiagonal systems ``A x = rhs`` held in Dask arrays, lazily.

    Arguments and semantics are those of :func:`pcrsolve.solve_tridiagonal`; any argument
    may be a Dask array (NumPy or CuPy chunks) or a plain array.

    Parameters
    ----------
    dl : (..., n-1) or (..., n) array_like
        Sub-diagonal (LAPACK or padded layout, chunked like ``d`` or not: the layouts and
        chunks are aligned here).
    d : (..., n) array_like
        Main diagonal.
    du : (..., n-1) or (..., n) array_like
        Super-diagonal.
    rhs : (..., n) array_like
        Right-hand sides; its chunks are the result's.
    method : {"auto", "sequential", "pcr", "hybrid", "pivoting"}, optional
        With the sequence axis in one chunk: the single-machine method of each chunk's
        solve. With it split: the method of each chunk's own solve in the partition method,
        which joins the chunks without pivoting (``"pivoting"`` is refused; ``"auto"`` means
        ``"sequential"``).
    check_finite : bool, optional
        Check every chunk for NaN or inf when it is computed.
    backend : {"numba", "numpy", "cupy"}, optional
        How chunks are solved; by default their array type decides (NumPy chunks: Numba
        kernels, CuPy chunks: the array-namespace kernels on the GPU).

    Returns
    -------
    x : (..., n) dask.array.Array
        Lazy, with the chunks of ``rhs`` (batch axes broadcast).

    Raises
    ------
    ValueError
        At once for bad shapes, options or chunking (a chunked axis that cannot be aligned);
        when computed, for NaN or inf in a chunk.
    SingularMatrixError
        When computed, if a chunk's system is singular, or the join of sequence chunks broke
        down (the message says to rechunk the sequence axis into one chunk).

    See Also
    --------
    pcrsolve.solve_tridiagonal : The single-machine solver each chunk runs.

    Examples
    --------
    >>> import dask.array as da, numpy as np, pcrsolve as pcr
    >>> d = da.full(8, 4.0, chunks=4); off = da.ones(7, chunks=4)
    >>> x = pcr.dask.solve_tridiagonal(off, d, off, da.ones(8, chunks=4))
    >>> x.chunks
    ((4, 4),)
    >>> ref = pcr.solve_tridiagonal(np.ones(7), np.full(8, 4.0), np.ones(7), np.ones(8))
    >>> bool(np.allclose(x.compute(), ref))
    True
    """
    method = _validation.method(method, SCALAR_METHODS, "solve_tridiagonal")
    arrays = _inputs.lift({"dl": dl, "d": d, "du": du, "rhs": rhs})
    bk = _inputs.namespace_backend(arrays, backend)
    dtype = _inputs.result_dtype(arrays)
    st = {k: _inputs.standin(a.shape, dtype) for k, a in arrays.items()}
    sys = _validation.tridiagonal(_inputs._CHECK_BACKEND, *st.values(), check_finite=False)
    al = _inputs.align(arrays, dict.fromkeys(arrays, 1), "rhs", sys.n, pad={"dl": "lower", "du": "upper"})
    nb = len(al.batch)
    like = _inputs.result_meta(arrays, bk, nb + 1, dtype)
    names = ("dl", "d", "du", "rhs")
    if not al.split:
        options = {"method": method, "check_finite": check_finite, "backend": bk}
        args = [al.arrays[k] for k in names]
        return batch_graph(
            args, _linear.solve_tridiagonal, options, (*al.batch_chunks, al.seq_chunks), dtype, like
        )
    refuse_pivoting(method, len(al.seq_chunks), -1)
    return _partition_graph(al, names, "scalar", 1, method, check_finite, bk, dtype, like)


def solve_block_tridiagonal(L, D, U, rhs, *, method="auto", check_finite=True, backend=None):
    """Solve batched block tridiagonal systems held in Dask arrays, lazily.

    Arguments and semantics are those of :func:`pcrsolve.solve_block_tridiagonal`.

    Parameters
    ----------
    L : (..., n-1, m, m) or (..., n, m, m) array_like
        Sub-diagonal blocks (LAPACK or padded layout); the block axes must be one chunk.
    D : (..., n, m, m) array_like
        Diagonal blocks.
    U : (..., n-1, m, m) or (..., n, m, m) array_like
        Super-diagonal blocks.
    rhs : (..., n, m) array_like
        Right-hand sides; its chunks are the result's.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        As for :func:`solve_tridiagonal`: each chunk's own solve; the sequence chunks are
        joined without pivoting.
    check_finite : bool, optional
        Check every chunk for NaN or inf when it is computed.
    backend : {"numba", "numpy", "cupy"}, optional
        How chunks are solved; by default their array type decides.

    Returns
    -------
    x : (..., n, m) dask.array.Array
        Lazy, with the chunks of ``rhs``.

    Raises
    ------
    ValueError
        For bad shapes or options, or block axes split over chunks.
    SingularMatrixError
        When computed, if a system is singular or the join of sequence chunks broke down.

    See Also
    --------
    pcrsolve.solve_block_tridiagonal : The single-machine solver each chunk runs.

    Examples
    --------
    >>> import dask.array as da, numpy as np, pcrsolve as pcr
    >>> D = np.tile(4 * np.eye(2), (6, 1, 1)); L = U = np.tile(np.eye(2), (5, 1, 1))
    >>> x = pcr.dask.solve_block_tridiagonal(L, D, U, da.ones((6, 2), chunks=(3, 2)))
    >>> bool(np.allclose(x.compute(), pcr.solve_block_tridiagonal(L, D, U, np.ones((6, 2)))))
    True
    """
    method = _validation.method(method, BLOCK_METHODS, "solve_block_tridiagonal")
    arrays = _inputs.lift({"L": L, "D": D, "U": U, "rhs": rhs})
    bk = _inputs.namespace_backend(arrays, backend)
    dtype = _inputs.result_dtype(arrays)
    n, m = _check_block_shapes(arrays)
    tails = {"L": 3, "D": 3, "U": 3, "rhs": 2}
    al = _inputs.align(arrays, tails, "rhs", n, pad={"L": "lower", "U": "upper"})
    nb = len(al.batch)
    al.arrays["rhs"] = al.arrays["rhs"][..., None]  # (.., n, m, 1): the ranks of the blocks
    like = _inputs.result_meta(arrays, bk, nb + 3, dtype)
    names = ("L", "D", "U", "rhs")
    if not al.split:
        options = {"method": method, "check_finite": check_finite, "backend": bk}
        out = batch_graph(
            [al.arrays[k] for k in names],
            _solve_block_unsqueezed,
            options,
            (*al.batch_chunks, al.seq_chunks, (m,), (1,)),
            dtype,
            like,
        )
    else:
        out = _partition_graph(al, names, "block", m, method, check_finite, bk, dtype, like)
    return out[..., 0]


def _solve_block_unsqueezed(L, D, U, rhs, **options):
    return _linear.solve_block_tridiagonal(L, D, U, rhs[..., 0], **options)[..., None]


def _check_block_shapes(arrays) -> tuple[int, int]:
    """The single-machine shape checks of a block system, on shapes only: ``(n, m)``."""
    present = {k: a for k, a in arrays.items() if a is not None}
    _validation._blocks(None, present)
    Dshape = present["D"].shape
    n, m = Dshape[-3], Dshape[-1]
    _validation._same_blocks(present, "D", m)
    for name in ("L", "U"):
        _validation._check_off_diagonal(present[name], n, name, "D", Dshape, axis=-3)
    if present["rhs"].shape[-2] != n:
        raise ValueError(
            f"`rhs` must have shape (..., n, m) = (..., {n}, {m}) to match `D` of shape "
            f"{tuple(Dshape)}; got shape {tuple(present['rhs'].shape)}."
        )
    return n, m
