"""The demo's linear cases: batched, block and chunked (Dask) tridiagonal solves, IIR filters."""

from __future__ import annotations

import numpy as np

from ._timing import Row, first_call, interleaved, relerr

__all__ = ["banded", "block_tridiagonal", "dask_chunked", "recurrence", "tridiagonal"]


def tridiagonal(batch: int = 4096, n: int = 256, rounds: int = 9, seed: int = 0) -> Row:
    """Batched diagonally dominant tridiagonal systems against a loop of LAPACK ``dgtsv``."""
    from scipy.linalg import lapack

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    dl, du = rng.uniform(-1, 1, (batch, n - 1)), rng.uniform(-1, 1, (batch, n - 1))
    d = 2.5 + rng.random((batch, n))
    rhs = rng.standard_normal((batch, n))

    def reference():
        x = np.empty_like(rhs)
        for i in range(batch):
            x[i] = lapack.dgtsv(dl[i], d[i], du[i], rhs[i])[3]
        return x

    def candidate():
        return pcr.solve_tridiagonal(dl, d, du, rhs)

    x, warm = first_call(candidate)
    err = relerr(x, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("batched tridiagonal", f"{batch} x {n}", "dgtsv loop", err, tr, tc, warm)


def banded(L, D, U):
    """LAPACK banded storage ``ab`` of each block tridiagonal matrix: (B, 4m-1, n m)."""
    B, n, m, _ = D.shape
    bw = 2 * m - 1
    ab = np.zeros((B, 2 * bw + 1, n * m))
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    for blocks, off in ((D, 0), (L, -1), (U, 1)):
        k = np.arange(blocks.shape[1]) + (1 if off < 0 else 0)  # block row of each block
        rows = k[:, None, None] * m + i
        cols = (k[:, None, None] + off) * m + j
        ab[:, bw + rows - cols, cols] = blocks
    return ab


def block_tridiagonal(batch: int = 32, n: int = 1024, m: int = 4, rounds: int = 7, seed: int = 1) -> Row:
    """Block diagonally dominant block tridiagonal systems against a ``solve_banded`` loop."""
    from scipy.linalg import solve_banded

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    L = rng.uniform(-1, 1, (batch, n - 1, m, m))
    U = rng.uniform(-1, 1, (batch, n - 1, m, m))
    D = rng.uniform(-1, 1, (batch, n, m, m)) + 3 * m * np.eye(m)
    rhs = rng.standard_normal((batch, n, m))
    ab = banded(L, D, U)
    bw = 2 * m - 1

    def reference():
        return np.stack([solve_banded((bw, bw), ab[i], rhs[i].reshape(-1)) for i in range(batch)]).reshape(
            rhs.shape
        )

    def candidate():
        return pcr.solve_block_tridiagonal(L, D, U, rhs)

    x, warm = first_call(candidate)
    err = relerr(x, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("block tridiagonal", f"{batch} x {n} x {m}x{m}", "solve_banded loop", err, tr, tc, warm)


def recurrence(filters: int = 64, length: int = 100_000, rounds: int = 5, seed: int = 2) -> Row:
    """First-order IIR filters ``y[k] = a y[k-1] + u[k]`` against a ``scipy.signal.lfilter`` loop."""
    from scipy.signal import lfilter

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.99, filters)
    u = rng.standard_normal((filters, length))
    A, b = a[:, None, None], u[:, :, None]  # diagonal A: (filters, 1, 1) broadcasts along the sequence

    def reference():
        return np.stack([lfilter([1.0], [1.0, -a[i]], u[i]) for i in range(filters)])

    def candidate():
        return pcr.linear_recurrence(A, b)

    x, warm = first_call(candidate)
    err = relerr(x[..., 0], reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("IIR filters (recurrence)", f"{filters} x {length}", "lfilter loop", err, tr, tc, warm)


def dask_chunked(n: int = 2**21, chunks: int = 8, rounds: int = 5, seed: int = 4) -> Row:
    """One long tridiagonal system as a Dask array split into ``chunks`` along its sequence axis.

    ``pcrsolve.dask`` joins the chunks by the partition method (threaded scheduler, no
    cluster); the reference is LAPACK ``dgtsv`` on the whole system, and the row also records
    the single-machine ``solve_tridiagonal``'s time, the chunks and the graph's task count.
    """
    import dask.array as da
    from scipy.linalg import lapack

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    dl, du = rng.uniform(-1, 1, n - 1), rng.uniform(-1, 1, n - 1)
    d = 2.5 + rng.random(n)
    rhs = rng.standard_normal(n)
    size = -(-n // chunks)
    x = pcr.solve_tridiagonal(dl, da.from_array(d, chunks=size), du, da.from_array(rhs, chunks=size))
    tasks = len(dict(x.__dask_graph__()))

    def reference():
        return lapack.dgtsv(dl, d, du, rhs)[3]

    def candidate():
        return x.compute(scheduler="threads")

    got, warm = first_call(candidate)
    err = relerr(got, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    single, _ = interleaved(lambda: pcr.solve_tridiagonal(dl, d, du, rhs), lambda: None, rounds)
    return Row(
        "Dask, sequence chunked",
        f"n = {n}, {len(x.chunks[0])} chunks",
        "dgtsv",
        err,
        tr,
        tc,
        warm,
        {"tasks": tasks, "chunks": x.chunks[0], "t_single": single},
    )
