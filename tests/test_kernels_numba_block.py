"""Numba block tridiagonal kernels against the dense reference (also run with NUMBA_DISABLE_JIT=1)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
import systems
from conftest import unchanged
from pcrsolve.kernels.numba import _threads, block, block_factor

pytestmark = pytest.mark.kernels

METHODS = {"sequential": block.block_thomas, "pcr": block.block_pcr, "hybrid": block.block_hybrid}
NS = (0, 1, 2, 3, 7, 8, 9, 16, 33)
MS = (1, 2, 3)
# Both compiled twins of every kernel; without the JIT they are the same Python code.
TWINS = ("serial",) if numba.config.DISABLE_JIT else ("serial", "parallel")


@pytest.fixture(params=TWINS)
def twin(request, monkeypatch):
    """Force the serial or the parallel compiled copy of the kernels."""
    limit = 0 if request.param == "parallel" else np.inf
    monkeypatch.setattr(block, "PARALLEL_MIN_WORK", limit)
    monkeypatch.setattr(_threads, "MIN_WORK", limit)
    return request.param


def assert_solves(x, L, D, U, rhs, dtype):
    n = rhs.shape[-2]
    expected = reference.solve_block_tridiagonal(L, D, U, rhs)
    tol = systems.tolerance(dtype, n)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(x, expected, rtol=tol, atol=tol * scale)


def batch_for(n, m):
    return (1, 2, 3)[(n + m) % 3]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n", NS)
def test_matches_dense_reference(method, n, m, dtype, rng, twin):
    nb = batch_for(n, m)
    L, D, U, rhs = systems.block_tridiagonal(rng, (nb,), n, m, dtype)
    x, info = METHODS[method](L, D, U, rhs)
    assert x.shape == (nb, n, m) and x.dtype == dtype
    assert info.shape == (nb,) and info.dtype == np.int64
    np.testing.assert_array_equal(info, 0)
    if n:
        assert_solves(x, L, D, U, rhs, dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("nb", "n", "m"), [(0, 5, 2), (2, 0, 2), (0, 0, 1)])
def test_empty(method, nb, n, m, dtype):
    shape = (nb, n, m, m)
    L, D, U = (np.zeros(shape, dtype) for _ in range(3))
    x, info = METHODS[method](L, D, U, np.zeros((nb, n, m), dtype))
    assert x.shape == (nb, n, m) and x.dtype == dtype
    assert info.shape == (nb,)
    np.testing.assert_array_equal(info, 0)


@pytest.mark.parametrize("chunks", [1, 2, 3, 5, 8, 16, 100])
@pytest.mark.parametrize("n", [2, 5, 16, 33])
def test_hybrid_forced_chunks(n, chunks, dtype, rng, twin):
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), n, 2, dtype)
    x, info = block.block_hybrid(L, D, U, rhs, chunks=chunks)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, L, D, U, rhs, dtype)


@pytest.mark.parametrize("n", [1, 2, 9, 33])
@pytest.mark.parametrize("m", [1, 3])
def test_factor_reused_over_rhs(n, m, dtype, rng, twin):
    L, D, U, _ = systems.block_tridiagonal(rng, (2,), n, m, dtype)
    factors, info = block.block_thomas_factor(L, D, U)
    np.testing.assert_array_equal(info, 0)
    for _ in range(3):
        rhs = systems.block_tridiagonal(rng, (2,), n, m, dtype)[3]
        x = block.block_thomas_factor_solve(factors, rhs)
        assert x.shape == rhs.shape and x.dtype == dtype
        assert_solves(x, L, D, U, rhs, dtype)
    # One factorization shared by a batch of right-hand sides.
    shared, info = block.block_thomas_factor(L[:1], D[:1], U[:1])
    rhs = systems.block_tridiagonal(rng, (3,), n, m, dtype)[3]
    x = block.block_thomas_factor_solve(shared, rhs)
    assert_solves(x, L[:1], D[:1], U[:1], rhs, dtype)


FACTORED = {  # factorization -> the one-shot solver it replays
    "pcr": (block_factor.block_pcr_factor, block_factor.block_pcr_factor_solve, block.block_pcr),
    "hybrid": (block_factor.block_hybrid_factor, block_factor.block_hybrid_factor_solve, block.block_hybrid),
    "hybrid_3": (
        lambda L, D, U: block_factor.block_hybrid_factor(L, D, U, chunks=3),
        block_factor.block_hybrid_factor_solve,
        lambda L, D, U, rhs: block.block_hybrid(L, D, U, rhs, chunks=3),
    ),
}


@pytest.mark.parametrize("n", [1, 2, 9, 70])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("kind", FACTORED)
def test_pcr_and_hybrid_factors_replay_the_solver(kind, n, m, dtype, rng, twin):
    factor, solve, direct = FACTORED[kind]
    L, D, U, _ = systems.block_tridiagonal(rng, (2,), n, m, dtype)
    with unchanged(L, D, U):
        factors, info = factor(L, D, U)
    np.testing.assert_array_equal(info, 0)
    for _ in range(2):
        rhs = systems.block_tridiagonal(rng, (2,), n, m, dtype)[3]
        with unchanged(*factors, rhs):
            x = solve(factors, rhs)
        np.testing.assert_array_equal(x, direct(L, D, U, rhs)[0])
    shared, info = factor(L[:1], D[:1], U[:1])
    rhs = systems.block_tridiagonal(rng, (3,), n, m, dtype)[3]
    assert_solves(solve(shared, rhs), *(np.repeat(a[:1], 3, 0) for a in (L, D, U)), rhs, dtype)


@pytest.mark.parametrize("kind", FACTORED)
def test_pcr_and_hybrid_factors_report_breakdown(kind, dtype):
    L, D, U, rhs = systems.block_tridiagonal(np.random.default_rng(5), (2,), 9, 2, dtype)
    D[1, 4] = 0
    L[1, 4] = 0
    _, info = FACTORED[kind][0](L, D, U)
    np.testing.assert_array_equal(info, FACTORED[kind][2](L, D, U, rhs)[1])
    assert info[0] == 0 and info[1] > 0


def test_factor_empty(dtype):
    z = np.zeros((2, 0, 3, 3), dtype)
    factors, info = block.block_thomas_factor(z, z, z)
    np.testing.assert_array_equal(info, 0)
    assert block.block_thomas_factor_solve(factors, np.zeros((2, 0, 3), dtype)).shape == (2, 0, 3)


def _leading_singular(dtype):
    """Batch of two: the first has a singular D_0 in a regular matrix, the second is fine."""
    rng = np.random.default_rng(7)
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), 6, 2, dtype)
    D[0, 0] = [[1, 2], [2, 4]]
    U[0, 0] = np.eye(2)
    L[0, 1] = np.eye(2)
    assert np.linalg.cond(reference.dense_block_tridiagonal(L[0], D[0], U[0])) < 1e4
    return L, D, U, rhs


@pytest.mark.parametrize("method", METHODS)
def test_breakdown_on_singular_leading_block(method, dtype, twin):
    L, D, U, rhs = _leading_singular(dtype)
    x, info = METHODS[method](L, D, U, rhs)
    assert info[0] == 1 and info[1] == 0
    assert np.isnan(x[0]).all()
    assert_solves(x[1], L[1], D[1], U[1], rhs[1], dtype)
    _, info = block.block_thomas_factor(L, D, U)
    assert info[0] == 1 and info[1] == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row", [0, 3, 8])
def test_breakdown_on_zero_row(method, row, dtype, rng, twin):
    """A zero row of the full matrix: exactly singular, reported at its block row."""
    L, D, U, rhs = systems.block_tridiagonal(rng, (1,), 9, 3, dtype)
    L[0, row, 1], D[0, row, 1], U[0, row, 1] = 0, 0, 0
    x, info = METHODS[method](L, D, U, rhs)
    assert info[0] == row + 1
    assert np.isnan(x).all()


@pytest.mark.parametrize("method", METHODS)
def test_breakdown_on_singular_matrix(method, dtype):
    """[[1, 1], [1, 1]]: exactly singular with regular diagonal blocks."""
    one = np.ones((1, 2, 1, 1), dtype)
    L, U = one.copy(), one.copy()
    L[0, 0] = 0
    U[0, 1] = 0
    x, info = METHODS[method](L, one, U, np.ones((1, 2, 1), dtype))
    assert info[0] > 0
    assert np.isnan(x).all()


def test_breakdown_on_non_finite_pivot(dtype):
    L, D, U, rhs = systems.block_tridiagonal(np.random.default_rng(3), (1,), 4, 2, dtype)
    D[0, 2, 0, 0] = np.inf
    for method in METHODS.values():
        assert method(L, D, U, rhs)[1][0] > 0


@pytest.mark.parametrize("method", [*METHODS, "factor"])
def test_inputs_unchanged_and_read_only(method, rng, twin):
    L, D, U, rhs = systems.block_tridiagonal(rng, (3,), 17, 3, np.float64)
    for a in (L, D, U, rhs):
        a.flags.writeable = False
    with unchanged(L, D, U, rhs):
        if method == "factor":
            factors, info = block.block_thomas_factor(L, D, U)
            for f in factors:
                f.flags.writeable = False
            with unchanged(*factors):
                x = block.block_thomas_factor_solve(factors, rhs)
        else:
            x, info = METHODS[method](L, D, U, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, L, D, U, rhs, np.float64)


@settings(max_examples=25 if numba.config.DISABLE_JIT else 60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    nb=st.integers(1, 3),
    n=st.integers(1, 40),
    m=st.integers(1, 4),
    dtype=st.sampled_from(systems.DTYPES),
    chunks=st.integers(1, 20),
    dominance=st.floats(0.5, 4.0),
)
def test_property_pcr_and_hybrid_match_thomas(seed, nb, n, m, dtype, chunks, dominance):
    rng = np.random.default_rng(seed)
    L, D, U, rhs = systems.block_tridiagonal(rng, (nb,), n, m, dtype, dominance=dominance)
    x, info = block.block_thomas(L, D, U, rhs)
    np.testing.assert_array_equal(info, 0)
    tol = systems.tolerance(dtype, n) * 4
    scale = max(1.0, float(np.abs(x).max()))
    for y, yinfo in (block.block_pcr(L, D, U, rhs), block.block_hybrid(L, D, U, rhs, chunks=chunks)):
        np.testing.assert_array_equal(yinfo, 0)
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * scale)
