"""pcrsolve.dask linear solvers against the single-machine solvers and the dense references.

Synchronous scheduler unless a test says otherwise; ``assert_eq`` also checks that the declared
chunks and meta match the computed blocks.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
from dask.array.utils import assert_eq  # noqa: E402

import pcrsolve as pcr  # noqa: E402
import reference  # noqa: E402
import systems  # noqa: E402
from pcrsolve.dask import _threads  # noqa: E402

pytestmark = pytest.mark.timeout(120)

N = 13
# (batch chunks, sequence chunks) of a (4, N) right-hand side: one chunk, batch only, sequence
# only (even, uneven, length-1 chunks), both.
CHUNKINGS = {
    "one": (4, N),
    "batch": (1, N),
    "seq": (4, 5),
    "uneven": (4, (6, 1, 2, 4)),
    "ones": (4, 1),
    "both": (2, (3, 10)),
}


def rtol(dtype):
    return 2e-4 if np.finfo(dtype).bits <= 32 else 1e-11


def _chunked(a, batch_chunks, seq_chunks, tail=()):
    return da.from_array(a, chunks=(batch_chunks, seq_chunks, *tail))


def _close(x, ref, dtype):
    np.testing.assert_allclose(np.asarray(x), ref, rtol=rtol(dtype), atol=rtol(dtype) * np.abs(ref).max())


# ----------------------------------------------------------------------- tridiagonal


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("layout", ["padded", "lapack"])
@pytest.mark.parametrize("backend", [None, "numpy"])
def test_tridiagonal(rng, chunking, dtype, layout, backend):
    dl, d, du, rhs = systems.tridiagonal(rng, (4,), N, dtype)
    if layout == "lapack":
        dl, du = dl[..., 1:], du[..., :-1]
    bc, sc = CHUNKINGS[chunking]
    r = _chunked(rhs, bc, sc)
    # d chunked differently from rhs, dl a dask array in its own layout, du a plain array
    x = pcr.dask.solve_tridiagonal(
        da.from_array(dl, chunks=(3, 4)), _chunked(d, 4, 7), du, r, backend=backend
    )
    assert isinstance(x, da.Array) and x.chunks == r.chunks
    assert_eq(x, pcr.solve_tridiagonal(dl, d, du, rhs), rtol=rtol(dtype), atol=rtol(dtype))
    _close(x.compute(scheduler="sync"), reference.solve_tridiagonal(dl, d, du, rhs), dtype)


def test_tridiagonal_broadcasts_batch_axes(rng):
    dl, d, du, _ = systems.tridiagonal(rng, (1, 3), N, np.float64)  # one matrix per column
    rhs = rng.standard_normal((2, 3, N))
    x = pcr.dask.solve_tridiagonal(dl, d, du, da.from_array(rhs, chunks=(1, 2, 4)))
    assert x.shape == (2, 3, N) and x.chunks == ((1, 1), (2, 1), (4, 4, 4, 1))
    assert_eq(x, reference.solve_tridiagonal(dl, d, du, rhs), rtol=1e-12)


@pytest.mark.parametrize("chunking", ["one", "seq", "ones", "both"])
@pytest.mark.parametrize("layout", ["padded", "lapack"])
@pytest.mark.parametrize("backend", [None, "numpy"])
def test_block_tridiagonal(rng, chunking, layout, backend):
    L, D, U, rhs = systems.block_tridiagonal(rng, (4,), N, 3, np.float64)
    if layout == "lapack":
        L, U = L[..., 1:, :, :], U[..., :-1, :, :]
    bc, sc = CHUNKINGS[chunking]
    r = _chunked(rhs, bc, sc, (3,))
    x = pcr.dask.solve_block_tridiagonal(L, da.from_array(D, chunks=(1, 6, 3, 3)), U, r, backend=backend)
    assert x.chunks == r.chunks
    assert_eq(x, pcr.solve_block_tridiagonal(L, D, U, rhs), rtol=1e-11)
    _close(x.compute(scheduler="sync"), reference.solve_block_tridiagonal(L, D, U, rhs), np.float64)


# ----------------------------------------------------------------------- recurrences, bidiagonal


@pytest.mark.parametrize("chunking", ["one", "batch", "seq", "uneven", "ones", "both"])
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "diag"])
@pytest.mark.parametrize("invariant", [False, True], ids=["varying", "invariant"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_recurrence(rng, chunking, dense, invariant, reverse):
    A, b, x0 = systems.recurrence(rng, (4,), N, 3, np.float64, dense=dense)
    if invariant:
        A = A[:, :1]
    bc, sc = CHUNKINGS[chunking]
    bb = _chunked(b, bc, sc, (3,))
    x = pcr.dask.linear_recurrence(A, bb, da.from_array(x0, chunks=(1, 3)), reverse=reverse)
    assert x.chunks == bb.chunks
    full = np.broadcast_to(A, (4, N, *A.shape[2:]))
    assert_eq(x, pcr.linear_recurrence(A, b, x0, reverse=reverse), rtol=1e-11)
    _close(x.compute(scheduler="sync"), reference.linear_recurrence(full, b, x0, reverse=reverse), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_recurrence_dtypes_without_x0(rng, dtype):
    A, b, _ = systems.recurrence(rng, (2,), N, 2, dtype, dense=True)
    x = pcr.dask.linear_recurrence(da.from_array(A, chunks=(1, 4, 2, 2)), da.from_array(b, chunks=(1, 4, 2)))
    assert x.dtype == np.dtype(dtype)
    _close(x.compute(scheduler="sync"), reference.linear_recurrence(A, b), dtype)


@pytest.mark.parametrize("chunking", ["one", "seq", "uneven", "ones", "both"])
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("layout", ["padded", "lapack"])
def test_bidiagonal(rng, chunking, lower, layout):
    dl, d, du, rhs = systems.tridiagonal(rng, (4,), N, np.float64)
    e = dl if lower else du
    if layout == "lapack":
        e = e[..., 1:] if lower else e[..., :-1]
    elif lower:
        e[..., 0] = np.inf  # the ignored corner is never read
    bc, sc = CHUNKINGS[chunking]
    r = _chunked(rhs, bc, sc)
    x = pcr.dask.solve_bidiagonal(d, e, r, lower=lower)
    assert x.chunks == r.chunks
    ref = reference.solve_bidiagonal(d, np.where(np.isfinite(e), e, 0), rhs, lower=lower)
    _close(x.compute(scheduler="sync"), ref, np.float64)


@pytest.mark.parametrize("chunking", ["one", "seq", "ones", "both"])
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
def test_block_bidiagonal(rng, chunking, lower):
    L, D, U, rhs = systems.block_tridiagonal(rng, (4,), N, 2, np.float64)
    E = L[..., 1:, :, :] if lower else U
    bc, sc = CHUNKINGS[chunking]
    r = _chunked(rhs, bc, sc, (2,))
    x = pcr.dask.solve_block_bidiagonal(D, E, r, lower=lower)
    assert x.chunks == r.chunks
    assert_eq(x, pcr.solve_block_bidiagonal(D, E, rhs, lower=lower), rtol=1e-11)
    _close(x.compute(scheduler="sync"), reference.solve_block_bidiagonal(D, E, rhs, lower=lower), np.float64)


@pytest.mark.kernels
@pytest.mark.parametrize("L", [1, 2, 5, 17])
def test_tips_kernel_matches_the_dense_inverse(rng, L):
    from pcrsolve.dask._kernels import tridiagonal_tips

    dl, d, du, r = systems.tridiagonal(rng, (3,), L, np.float64)
    a, c = rng.standard_normal(3), rng.standard_normal(3)
    out, info = tridiagonal_tips(dl, d, du, r, a, c)
    inv = np.linalg.inv(reference.dense_tridiagonal(dl, d, du))
    y = np.einsum("bij,bj->bi", inv, r)
    v, w = inv[:, :, 0] * a[:, None], inv[:, :, -1] * c[:, None]
    ends = [np.stack([y[:, i], v[:, i], w[:, i]], axis=-1) for i in (0, -1)]
    np.testing.assert_allclose(out, np.stack(ends, axis=1), rtol=1e-12, atol=1e-14)
    assert not info.any()
    d[1, min(L - 1, 1)] = 0.0  # a zero pivot (and no off-diagonals to save it when L is 1)
    if L == 1:
        assert tridiagonal_tips(dl, d, du, r, a, c)[1][1] == 1
    else:
        dl[1], du[1] = 0.0, 0.0
        assert tridiagonal_tips(dl, d, du, r, a, c)[1][1] > 0


# ----------------------------------------------------------------------- graphs


def _tasks(x) -> int:
    return len(dict(x.__dask_graph__()))


@pytest.mark.parametrize("P", [4, 16, 64])
def test_graph_size_grows_with_chunks(P):
    n = 64 * P
    d = da.full(n, 4.0, chunks=64)
    off = da.ones(n - 1, chunks=64)
    x = pcr.dask.solve_tridiagonal(off, d, off, da.ones(n, chunks=64))
    # inputs ~4P, three phases of P tasks, the small interface rechunks: O(P), never O(n)
    assert _tasks(x) <= 20 * P + 20
    y = pcr.dask.linear_recurrence(np.full((1, 1), 0.5), da.ones((n, 1), chunks=(64, 1)))
    assert _tasks(y) <= 12 * P + 20


def _exploding(shape, chunks):
    def boom(block):
        raise AssertionError("a chunk was computed while building the graph")

    return da.zeros(shape, chunks=chunks).map_blocks(boom, dtype=float, meta=np.empty((0,) * len(shape)))


def test_building_a_graph_computes_nothing():
    n = 40
    d, rhs = _exploding((2, n), (1, 10)), _exploding((2, n), (2, 7))
    pcr.dask.solve_tridiagonal(d, d, d, rhs)
    pcr.dask.solve_bidiagonal(d, d[:, 1:], rhs, lower=False)
    pcr.dask.linear_recurrence(d[..., None], rhs[..., None])
    B = _exploding((2, n, 2, 2), (1, 10, 2, 2))
    pcr.dask.solve_block_tridiagonal(B, B, B, _exploding((2, n, 2), (1, 10, 2)))


# ----------------------------------------------------------------------- threads


def test_threaded_scheduler_matches(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (64,), 257, np.float64)
    x = pcr.dask.solve_tridiagonal(dl, d, du, da.from_array(rhs, chunks=(8, 64)))
    ref = pcr.solve_tridiagonal(dl, d, du, rhs)
    for _ in range(3):
        np.testing.assert_allclose(x.compute(scheduler="threads", num_workers=4), ref, rtol=1e-12)
    y = pcr.dask.solve_tridiagonal(dl, d, du, da.from_array(rhs, chunks=(16, 257)))
    np.testing.assert_allclose(y.compute(scheduler="threads", num_workers=4), ref, rtol=1e-12)


def test_kernel_slot_one_thread_off_the_main_thread(monkeypatch):
    import numba

    seen = {}

    def worker():
        with _threads.kernel_slot():
            seen["inside"] = numba.get_num_threads()
        seen["after"] = numba.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"inside": 1, "after": numba.get_num_threads()}
    with _threads.kernel_slot():  # the main thread keeps every thread
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_workqueue_layer_serialises_kernel_calls(monkeypatch):
    import numba

    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    assert _threads.needs_lock()
    inside, overlap = [], []

    def worker():
        with _threads.kernel_slot():
            overlap.append(len(inside))
            inside.append(1)
            threading.Event().wait(0.02)
            inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == [0, 0, 0, 0]
    monkeypatch.setattr(numba, "threading_layer", lambda: "omp")
    assert not _threads.needs_lock()


# ----------------------------------------------------------------------- errors


def test_non_dominant_split_raises_rechunk_hint(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (), 40, np.float64, dominance=None)
    d[20] = 1e-17  # a tiny pivot in the middle of a chunk
    x = pcr.dask.solve_tridiagonal(dl, d, du, da.from_array(rhs, chunks=10))
    with pytest.raises(
        pcr.SingularMatrixError, match=r"split into 4 chunks.*rechunk the sequence axis into one chunk"
    ):
        x.compute(scheduler="sync")
    one = pcr.dask.solve_tridiagonal(dl, d, du, da.from_array(rhs, chunks=40))  # auto pivots
    _close(one.compute(scheduler="sync"), reference.solve_tridiagonal(dl, d, du, rhs), np.float64)


def test_pivoting_with_split_sequence_is_refused():
    with pytest.raises(ValueError, match=r"method='pivoting' needs the whole sequence axis in one chunk"):
        pcr.dask.solve_tridiagonal(
            np.ones(7), np.full(8, 4.0), np.ones(7), da.ones(8, chunks=4), method="pivoting"
        )


def test_chunked_block_axis_is_refused():
    D = da.from_array(np.tile(4 * np.eye(2), (6, 1, 1)), chunks=(3, 1, 2))
    with pytest.raises(ValueError, match=r"`D` is chunked along its block axes.*rechunk them into one chunk"):
        pcr.dask.solve_block_tridiagonal(np.zeros((5, 2, 2)), D, np.zeros((5, 2, 2)), np.ones((6, 2)))
    with pytest.raises(ValueError, match=r"`b` is chunked along its block axes"):
        pcr.dask.linear_recurrence(np.ones((6, 2)), da.ones((6, 2), chunks=(3, 1)))


def test_shape_errors_are_the_single_machine_ones():
    with pytest.raises(ValueError, match=r"`dl` must have length n-1 = 7 \(LAPACK layout\) or n = 8"):
        pcr.dask.solve_tridiagonal(da.ones(5), da.ones(8), da.ones(7), da.ones(8))
    with pytest.raises(ValueError, match=r"batch shapes \(leading axes\) do not broadcast"):
        pcr.dask.solve_tridiagonal(np.ones(7), da.ones((2, 8)), np.ones(7), da.ones((3, 8)))
    with pytest.raises(ValueError, match=r"`A` with 3 axes holds dense blocks"):
        pcr.dask.linear_recurrence(np.ones((4, 3, 3)), da.ones((4, 2)))
    with pytest.raises(TypeError, match=r"`rhs` must have a numeric dtype"):
        pcr.dask.solve_tridiagonal(np.ones(1), np.ones(2), np.ones(1), da.from_array(np.array(["a", "b"])))
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        pcr.dask.linear_recurrence(np.ones((4, 1)), da.ones((4, 1)), method="pivoting")


def test_nan_in_a_chunk_raises_when_computed():
    d = np.full(8, 4.0)
    d[5] = np.nan
    x = pcr.dask.solve_tridiagonal(np.ones(7), da.from_array(d, chunks=4), np.ones(7), da.ones(8, chunks=4))
    with pytest.raises(ValueError, match=r"`d` contains NaN or inf.*in the chunk starting at index \(4,\)"):
        x.compute(scheduler="sync")


def test_zero_diagonal_of_a_split_bidiagonal_system():
    d = np.full(8, 2.0)
    d[6] = 0
    x = pcr.dask.solve_bidiagonal(d, np.ones(7), da.ones(8, chunks=3))
    with pytest.raises(pcr.SingularMatrixError, match=r"`d` is zero at index 6"):
        x.compute(scheduler="sync")


def test_expanding_recurrence_overflow_is_reported():
    x = pcr.dask.linear_recurrence(np.full((1, 1), 1e300), da.ones((8, 1), chunks=(4, 1)))
    with pytest.raises(FloatingPointError, match=r"overflow.*not finite"):
        x.compute(scheduler="sync")


# ----------------------------------------------------------------------- integration


def test_core_functions_forward_dask_inputs(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), N, np.float64)
    r = da.from_array(rhs, chunks=(1, 5))
    x = pcr.solve_tridiagonal(dl, d, du, r)
    assert isinstance(x, da.Array) and x.chunks == r.chunks
    assert_eq(x, pcr.solve_tridiagonal(dl, d, du, rhs), rtol=1e-12)
    y = pcr.linear_recurrence(np.full((1, 1), 0.5), da.ones((N, 1), chunks=(4, 1)), reverse=True)
    assert_eq(y, pcr.linear_recurrence(np.full((1, 1), 0.5), np.ones((N, 1)), reverse=True))
    assert isinstance(pcr.solve_bidiagonal(d, dl, r), da.Array)
    A, b, _ = systems.recurrence(rng, (), N, 2, np.float64)
    assert isinstance(pcr.solve_block_bidiagonal(np.eye(2) + A, A, da.from_array(b, chunks=(4, 2))), da.Array)
    L, D, U, rb = systems.block_tridiagonal(rng, (), N, 2, np.float64)
    assert isinstance(pcr.solve_block_tridiagonal(L, D, U, da.from_array(rb, chunks=(4, 2))), da.Array)


def test_xarray_apply_ufunc_along_a_chunked_core_dimension():
    xr = pytest.importorskip("xarray")
    t = np.arange(50.0)
    u = xr.DataArray(np.sin(t)[None, :] * np.ones((3, 1)), dims=("x", "time")).chunk({"time": 20})

    def ema(v, alpha):  # y[k] = (1 - alpha) y[k-1] + alpha v[k] along the last axis
        a = np.full((1,) * v.ndim + (1,), 1 - alpha)  # time-invariant, shared by the batch
        return pcr.linear_recurrence(a, alpha * v[..., None])[..., 0]

    y = xr.apply_ufunc(
        ema, u, 0.2, input_core_dims=[["time"], []], output_core_dims=[["time"]], dask="allowed"
    )
    assert y.chunks == u.chunks
    ref = reference.linear_recurrence(np.full((50, 1), 0.8), 0.2 * np.sin(t)[:, None])[:, 0]
    np.testing.assert_allclose(y.compute().values, np.broadcast_to(ref, (3, 50)), rtol=1e-12)


def test_demo_case_solves_a_chunked_system():
    import io

    from pcrsolve import _demo
    from pcrsolve._demo import _linear

    row = _linear.dask_chunked(n=1000, chunks=4, rounds=1)
    assert row.error < 1e-12 and row.extra["chunks"] == (250,) * 4
    assert 10 <= row.extra["tasks"] <= 80
    out = io.StringIO()
    assert (
        _demo.main(
            file=out,
            cases=[("Dask, sequence chunked", _linear.dask_chunked, {"n": 999, "chunks": 3, "rounds": 1})],
        )
        == 0
    )
    assert "3 chunks of 333 rows" in out.getvalue()
