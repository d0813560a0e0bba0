"""Factorizations of every method, on every backend: against the solvers and the dense reference."""

from __future__ import annotations

import numpy as np
import pytest

import pcrsolve as pcr
import reference
import systems
from conftest import unchanged

SCALAR_METHODS = ["auto", "sequential", "pcr", "hybrid", "pivoting"]
BLOCK_METHODS = ["auto", "sequential", "pcr", "hybrid"]
# 100 rows in 3 systems: the Numba hybrid cuts each system into chunks
NS = [1, 2, 7, 100]


def assert_close(actual, expected, dtype, n, scale=1.0):
    tol = systems.tolerance(dtype, n) * scale
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * np.max(np.abs(expected), initial=1))


def _auto(backend, structure, batch, n):
    """What "auto" resolves to for these sizes (the solvers' table)."""
    if backend.name != "numba":
        return "pcr" if n <= 1024 else "hybrid"
    return "sequential"


@pytest.mark.parametrize("layout", ["lapack", "padded"])
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("method", SCALAR_METHODS)
def test_tridiagonal_factorization_matches_solve_and_dense(backend, dtype, method, n, layout, rng):
    dl, d, du, _ = systems.tridiagonal(rng, (3,), n, dtype)
    given = (dl[..., 1:], d, du[..., :-1]) if layout == "lapack" else (dl, d, du)
    given = tuple(np.ascontiguousarray(a) for a in given)
    args = [backend.asarray(a) for a in given]
    with unchanged(*given):
        f = pcr.factor_tridiagonal(*args, method=method, backend=backend.name)
    assert f.method == (_auto(backend, "tridiagonal", 3, n) if method == "auto" else method)
    assert f.shape == (3, n)
    for _ in range(2):  # the factors are reused, not consumed
        rhs = systems.tridiagonal(rng, (3,), n, dtype)[3]
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.shape == (3, n) and x.dtype == dtype
        assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), dtype, n)
        y = backend.to_numpy(
            pcr.solve_tridiagonal(*args, backend.asarray(rhs), method=method, backend=backend.name)
        )
        if backend.name == "numba" and method in ("sequential", "pcr", "hybrid"):
            np.testing.assert_array_equal(x, y)  # the solver's arithmetic, replayed
        else:
            assert_close(x, y, dtype, n)


@pytest.mark.parametrize("layout", ["lapack", "padded"])
@pytest.mark.parametrize("n", [1, 2, 9, 70])
@pytest.mark.parametrize("method", BLOCK_METHODS)
def test_block_factorization_matches_solve_and_dense(backend, dtype, method, n, layout, rng):
    L, D, U, _ = systems.block_tridiagonal(rng, (3,), n, 2, dtype)
    given = (L[:, 1:], D, U[:, :-1]) if layout == "lapack" else (L, D, U)
    args = [backend.asarray(np.ascontiguousarray(a)) for a in given]
    f = pcr.factor_block_tridiagonal(*args, method=method, backend=backend.name)
    assert f.method == (_auto(backend, "block", 3, n) if method == "auto" else method)
    assert f.shape == (3, n, 2)
    for _ in range(2):
        rhs = systems.block_tridiagonal(rng, (3,), n, 2, dtype)[3]
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.shape == (3, n, 2) and x.dtype == dtype
        assert_close(x, reference.solve_block_tridiagonal(L, D, U, rhs), dtype, 2 * n, scale=4)
        y = backend.to_numpy(
            pcr.solve_block_tridiagonal(*args, backend.asarray(rhs), method=method, backend=backend.name)
        )
        if backend.name == "numba" and method != "auto":
            np.testing.assert_array_equal(x, y)
        else:
            assert_close(x, y, np.dtype(dtype), 2 * n, scale=4)


@pytest.mark.parametrize("method", SCALAR_METHODS)
def test_tridiagonal_factorization_broadcasts_rhs_batches(backend, method, rng):
    n = 20
    dl, d, du, _ = systems.tridiagonal(rng, (3, 1), n, np.float64)
    f = pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), method=method, backend=backend.name)
    for rhs_batch, full in (((3, 4), (3, 4)), ((2, 1, 4), (2, 3, 4)), ((), (3, 1))):
        rhs = rng.standard_normal((*rhs_batch, n))
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.shape == (*full, n)
        np.testing.assert_allclose(x, reference.solve_tridiagonal(dl, d, du, rhs), rtol=1e-12, atol=1e-12)
    one = pcr.factor_tridiagonal(*map(backend.asarray, (dl[0, 0], d[0, 0], du[0, 0])), backend=backend.name)
    rhs = rng.standard_normal((5, n))  # one matrix, a batch of right-hand sides
    np.testing.assert_allclose(
        backend.to_numpy(one.solve(backend.asarray(rhs))),
        reference.solve_tridiagonal(dl[0, 0], d[0, 0], du[0, 0], rhs),
        rtol=1e-12,
    )


@pytest.mark.parametrize("method", BLOCK_METHODS)
def test_block_factorization_broadcasts_rhs_batches(backend, method, rng):
    L, D, U, _ = systems.block_tridiagonal(rng, (3, 1), 9, 2, np.float64)
    f = pcr.factor_block_tridiagonal(*map(backend.asarray, (L, D, U)), method=method, backend=backend.name)
    for rhs_batch, full in (((3, 4), (3, 4)), ((2, 1, 4), (2, 3, 4)), ((), (3, 1))):
        rhs = rng.standard_normal((*rhs_batch, 9, 2))
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.shape == (*full, 9, 2)
        np.testing.assert_allclose(x, reference.solve_block_tridiagonal(L, D, U, rhs), rtol=1e-11, atol=1e-12)


def test_complex_rhs_for_a_real_factorization(backend, rng):
    dl, d, du, _ = systems.tridiagonal(rng, (2,), 9, np.float64)
    rhs = systems.tridiagonal(rng, (2,), 9, np.complex128)[3]
    for method in SCALAR_METHODS:
        f = pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), method=method, backend=backend.name)
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.dtype == np.complex128
        np.testing.assert_allclose(x, reference.solve_tridiagonal(dl, d, du, rhs), rtol=1e-12)


# ------------------------------------------------------------------ breakdown and pivoting


def clement(n):
    """Clement's matrix: zero diagonal, singular for odd n."""
    k = np.arange(1, n)
    return np.sqrt(k * (n - k)), np.zeros(n), np.sqrt(k * (n - k))


@pytest.mark.parametrize("method", ["sequential", "pcr", "hybrid"])
def test_non_pivoting_factorization_breakdown_raises(backend, method):
    dl, d, du = clement(6)
    with pytest.raises(pcr.SingularMatrixError, match=f"method '{method}' broke down.*pivot"):
        pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), method=method, backend=backend.name)


@pytest.mark.parametrize("method", ["auto", "sequential", "pcr", "hybrid"])
def test_block_factorization_breakdown_raises(backend, method, rng):
    L, D, U, _ = systems.block_tridiagonal(rng, (2,), 6, 2, np.float64)
    L[1, 2] = 0
    D[1, 2] = 0  # row 2 of system 1 decoupled from row 1, with a zero diagonal block
    with pytest.raises(
        pcr.SingularMatrixError,
        match=r"broke down on block tridiagonal matrix \(1,\) of the batch.*does not pivot across blocks",
    ):
        pcr.factor_block_tridiagonal(*map(backend.asarray, (L, D, U)), method=method, backend=backend.name)


@pytest.mark.parametrize("n", [5, 11])
def test_singular_matrix_raises_with_pivoting(backend, n):
    dl, d, du = clement(n)
    for method in ("auto", "pivoting"):
        with pytest.raises(pcr.SingularMatrixError, match="singular matrix"):
            pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), method=method, backend=backend.name)


def test_auto_falls_back_to_pivoting_on_a_zero_pivot(backend, rng):
    dl, d, du = clement(10)  # regular, but every non-pivoting method breaks down
    f = pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), backend=backend.name)
    assert f.method == "pivoting"
    rhs = rng.standard_normal((3, 10))
    np.testing.assert_allclose(
        backend.to_numpy(f.solve(backend.asarray(rhs))),
        reference.solve_tridiagonal(dl, d, du, rhs),
        rtol=1e-10,
        atol=1e-10,
    )


def test_auto_falls_back_to_pivoting_on_element_growth(backend):
    # A small but not tiny first pivot: no breakdown, yet Thomas loses ~8 digits to growth;
    # solve_tridiagonal(method="auto") pivots it away, and so does the factorization (at once
    # where the elimination certifies its accuracy, else at the first solve).
    dl, d, du, rhs, x_true = systems.element_growth()
    args = [backend.asarray(a) for a in (dl, d, du)]
    seq = pcr.factor_tridiagonal(*args, method="sequential", backend=backend.name)
    assert np.abs(backend.to_numpy(seq.solve(backend.asarray(rhs))) - x_true).max() > 1e-10
    f = pcr.factor_tridiagonal(*args, backend=backend.name)
    np.testing.assert_allclose(backend.to_numpy(f.solve(backend.asarray(rhs))), x_true, rtol=1e-13)
    assert f.method == "pivoting"
    np.testing.assert_allclose(backend.to_numpy(f.solve(backend.asarray(2 * rhs))), 2 * x_true, rtol=1e-13)


def test_factors_do_not_alias_the_inputs(backend, rng):
    # "auto" included: its solves read the matrix again (backward-error check, pivoting)
    dl, d, du, rhs = (backend.asarray(a) for a in systems.tridiagonal(rng, (2,), 100, np.float64))
    L, D, U, brhs = (backend.asarray(a) for a in systems.block_tridiagonal(rng, (2,), 40, 2, np.float64))
    cases = (
        (pcr.factor_tridiagonal, (dl, d, du), rhs, SCALAR_METHODS),
        (pcr.factor_block_tridiagonal, (L, D, U), brhs, BLOCK_METHODS),
    )
    for factor, matrix, b, methods in cases:
        for method in methods:
            a = [backend.xp.asarray(x, copy=True) for x in matrix]
            f = factor(*a, method=method, backend=backend.name)
            expected = backend.to_numpy(f.solve(b))
            for x in a:
                x[...] = 7.0
            np.testing.assert_array_equal(backend.to_numpy(f.solve(b)), expected, err_msg=method)
