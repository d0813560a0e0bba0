"""Public linear solvers against the dense / loop references, on every backend."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pcrsolve as pcr
import reference
import systems
from conftest import unchanged

NS = [1, 2, 3, 8, 15, 16, 17, 64]
SCALAR_METHODS = ["auto", "sequential", "pcr", "hybrid", "pivoting"]
BLOCK_METHODS = ["auto", "sequential", "pcr", "hybrid"]


def lapack_layout(a, lower):
    """Drop the ignored corner: the length-(n-1) LAPACK layout."""
    return a[..., 1:] if lower else a[..., :-1]


def assert_close(actual, expected, dtype, n, scale=1.0):
    tol = systems.tolerance(dtype, n) * scale
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * np.max(np.abs(expected), initial=1))


@pytest.mark.parametrize("method", SCALAR_METHODS)
@pytest.mark.parametrize("n", NS)
def test_tridiagonal_matches_dense(backend, dtype, method, n, rng):
    batch = (2, 3) if n % 2 else (4,)
    dl, d, du, rhs = systems.tridiagonal(rng, batch, n, dtype)
    if n % 2:  # alternate between the two layouts
        dl, du = lapack_layout(dl, True), lapack_layout(du, False)
    expected = reference.solve_tridiagonal(dl, d, du, rhs)
    with unchanged(dl, d, du, rhs):
        x = pcr.solve_tridiagonal(
            *map(backend.asarray, (dl, d, du, rhs)), method=method, backend=backend.name
        )
    x = backend.to_numpy(x)
    assert x.shape == (*batch, n) and x.dtype == dtype
    assert_close(x, expected, dtype, n)


@pytest.mark.parametrize("method", ["auto", "sequential"])
def test_lapack_layout_is_read_in_place(method, rng):
    """On the CPU, Thomas reads length-(n-1) off-diagonals as given: besides the solution
    the call allocates no array of the systems' size (no zero-padded copies)."""
    dl, d, du, rhs = systems.tridiagonal(rng, (256,), 512, np.float64)
    dl, du = np.ascontiguousarray(lapack_layout(dl, True)), np.ascontiguousarray(lapack_layout(du, False))
    x = pcr.solve_tridiagonal(dl, d, du, rhs, method=method)  # compiled, cached
    assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), np.float64, 512)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        pcr.solve_tridiagonal(dl, d, du, rhs, method=method)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert rhs.nbytes <= peak < 1.25 * rhs.nbytes, peak / rhs.nbytes


@pytest.mark.parametrize("dense", [True, False])
def test_time_invariant_recurrence_is_not_repeated(dense, rng):
    """A time-invariant A (sequence axis of length 1) is read in place on the CPU: besides
    the solution the call allocates nothing of the sequence's size."""
    A, b, _ = systems.recurrence(rng, (64,), 1, 2, np.float64, dense=dense)
    b = rng.standard_normal((64, 2048, 2))
    expected = reference.linear_recurrence(np.broadcast_to(A, (64, 2048, *A.shape[2:])), b, np.zeros((64, 2)))
    x = pcr.linear_recurrence(A, b)  # compiled, cached
    assert_close(x, expected, np.float64, 2048)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        pcr.linear_recurrence(A, b)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert b.nbytes <= peak < 1.25 * b.nbytes, peak / b.nbytes


@pytest.mark.parametrize("method", BLOCK_METHODS)
@pytest.mark.parametrize("n", [1, 2, 3, 8, 17])
@pytest.mark.parametrize("m", [1, 3])
def test_block_tridiagonal_matches_dense(backend, dtype, method, n, m, rng):
    batch = (2,)
    L, D, U, rhs = systems.block_tridiagonal(rng, batch, n, m, dtype)
    if n % 2:
        L, U = L[:, 1:], U[:, :-1]
    expected = reference.solve_block_tridiagonal(L, D, U, rhs)
    with unchanged(L, D, U, rhs):
        x = pcr.solve_block_tridiagonal(
            *map(backend.asarray, (L, D, U, rhs)), method=method, backend=backend.name
        )
    x = backend.to_numpy(x)
    assert x.shape == (*batch, n, m) and x.dtype == dtype
    assert_close(x, expected, dtype, n * m, scale=4)


@pytest.mark.parametrize("method", BLOCK_METHODS)
@pytest.mark.parametrize("n", [1, 2, 9, 64])
@pytest.mark.parametrize("lower", [True, False])
def test_bidiagonal_matches_dense(backend, dtype, method, n, lower, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), n, dtype)
    e = dl if lower else du
    if n % 2:
        e = lapack_layout(e, lower)
    expected = reference.solve_bidiagonal(d, e, rhs, lower=lower)
    with unchanged(d, e, rhs):
        x = pcr.solve_bidiagonal(
            *map(backend.asarray, (d, e, rhs)), lower=lower, method=method, backend=backend.name
        )
    assert_close(backend.to_numpy(x), expected, dtype, n)


@pytest.mark.parametrize("method", BLOCK_METHODS)
@pytest.mark.parametrize("n", [1, 2, 9, 16])
@pytest.mark.parametrize("lower", [True, False])
def test_block_bidiagonal_matches_dense(backend, dtype, method, n, lower, rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), n, 2, dtype)
    E = L if lower else U
    expected = reference.solve_block_bidiagonal(D, E, rhs, lower=lower)
    with unchanged(D, E, rhs):
        x = pcr.solve_block_bidiagonal(
            *map(backend.asarray, (D, E, rhs)), lower=lower, method=method, backend=backend.name
        )
    assert_close(backend.to_numpy(x), expected, dtype, n, scale=4)


@pytest.mark.parametrize("method", BLOCK_METHODS)
@pytest.mark.parametrize("n", [1, 3, 16, 33])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrence_matches_loop(backend, dtype, method, n, dense, reverse, rng):
    A, b, x0 = systems.recurrence(rng, (2,), n, 3, dtype, dense=dense)
    expected = reference.linear_recurrence(A, b, x0, reverse=reverse)
    with unchanged(A, b, x0):
        x = pcr.linear_recurrence(
            *map(backend.asarray, (A, b, x0)), reverse=reverse, method=method, backend=backend.name
        )
    x = backend.to_numpy(x)
    assert x.dtype == dtype
    assert_close(x, expected, dtype, n)


def test_recurrence_broadcasts_shared_matrix_and_default_x0(rng):
    A, b, _ = systems.recurrence(rng, (1,), 10, 2, np.float64)
    b5 = np.repeat(b, 5, axis=0) + rng.standard_normal((5, 10, 2))
    x = pcr.linear_recurrence(A, b5)
    np.testing.assert_allclose(x, reference.linear_recurrence(np.repeat(A, 5, 0), b5), rtol=1e-12)
    # a time-invariant A given with a size-1 sequence axis
    x = pcr.linear_recurrence(A[:, :1], b5)
    np.testing.assert_allclose(
        x, reference.linear_recurrence(np.repeat(np.repeat(A[:, :1], 10, 1), 5, 0), b5), rtol=1e-12
    )


@pytest.mark.parametrize("method", ["sequential", "pivoting", "auto"])
def test_factorization_reused_for_many_rhs(backend, dtype, method, rng):
    dl, d, du, _ = systems.tridiagonal(rng, (3,), 12, dtype)
    f = pcr.factor_tridiagonal(*map(backend.asarray, (dl, d, du)), method=method, backend=backend.name)
    for _ in range(2):
        rhs = systems.tridiagonal(rng, (5, 3), 12, dtype)[3]
        x = backend.to_numpy(f.solve(backend.asarray(rhs)))
        assert x.shape == (5, 3, 12)
        assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), dtype, 12)


def test_block_factorization_reused_for_many_rhs(backend, dtype, rng):
    L, D, U, _ = systems.block_tridiagonal(rng, (), 9, 2, dtype)
    f = pcr.factor_block_tridiagonal(*map(backend.asarray, (L, D, U)), backend=backend.name)
    rhs = systems.block_tridiagonal(rng, (4,), 9, 2, dtype)[3]
    x = backend.to_numpy(f.solve(backend.asarray(rhs)))
    assert_close(x, reference.solve_block_tridiagonal(L, D, U, rhs), dtype, 18, scale=4)


# ------------------------------------------------------------------ systems that need pivoting

NAG = dict(
    dl=[3.4, 3.6, 7.0, -6.0],
    d=[3.0, 2.3, -5.0, -0.9, 7.1],
    du=[2.1, -1.0, 1.9, 8.0],
    rhs=[2.7, -0.5, 2.6, 0.6, 2.7],
)


@pytest.mark.parametrize("method", ["auto", "pivoting"])
def test_nag_f07cdf_example(backend, method):
    x = pcr.solve_tridiagonal(
        *(backend.asarray(np.array(NAG[k])) for k in ("dl", "d", "du", "rhs")),
        method=method,
        backend=backend.name,
    )
    np.testing.assert_allclose(backend.to_numpy(x), [-4.0, 7.0, 3.0, -4.0, -3.0], rtol=1e-12)


def clement(n):
    """Clement's matrix: zero diagonal, singular for odd n."""
    k = np.arange(1, n)
    return np.sqrt(k * (n - k)), np.zeros(n), np.sqrt(k * (n - k))


@pytest.mark.parametrize("n", [4, 10])
def test_clement_even_is_solved_by_auto(backend, n, rng):
    dl, d, du = clement(n)
    rhs = rng.standard_normal(n)
    x = pcr.solve_tridiagonal(*map(backend.asarray, (dl, d, du, rhs)), backend=backend.name)
    np.testing.assert_allclose(
        backend.to_numpy(x), reference.solve_tridiagonal(dl, d, du, rhs), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("n", [5, 11])
@pytest.mark.parametrize("method", ["auto", "pivoting"])
def test_clement_odd_is_singular(backend, n, method):
    dl, d, du = clement(n)
    with pytest.raises(pcr.SingularMatrixError, match="singular matrix"):
        pcr.solve_tridiagonal(
            *map(backend.asarray, (dl, d, du, np.ones(n))), method=method, backend=backend.name
        )


@pytest.mark.parametrize("method", ["sequential", "pcr", "hybrid"])
def test_non_pivoting_breakdown_raises(backend, method):
    dl, d, du = clement(6)
    with pytest.raises(pcr.SingularMatrixError, match=f"method '{method}' broke down.*pivot"):
        pcr.solve_tridiagonal(
            *map(backend.asarray, (dl, d, du, np.ones(6))), method=method, backend=backend.name
        )


def test_poisson_matrix(backend):
    n = 200
    x_true = np.sin(np.linspace(0, 3, n))
    dl, d, du = -np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)
    rhs = reference.dense_tridiagonal(dl, d, du) @ x_true
    for method in SCALAR_METHODS:
        x = pcr.solve_tridiagonal(
            *map(backend.asarray, (dl, d, du, rhs)), method=method, backend=backend.name
        )
        np.testing.assert_allclose(backend.to_numpy(x), x_true, atol=1e-9)


def test_random_non_dominant_systems_auto(backend, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (40,), 30, np.float64, dominance=None)
    x = backend.to_numpy(pcr.solve_tridiagonal(*map(backend.asarray, (dl, d, du, rhs)), backend=backend.name))
    a = reference.dense_tridiagonal(dl, d, du)
    # backward-stable answer: small residual relative to |A||x| + |b|
    r = np.abs(np.einsum("bij,bj->bi", a, x) - rhs).max(-1)
    scale = np.abs(a).sum(-1).max(-1) * np.abs(x).max(-1) + np.abs(rhs).max(-1)
    assert np.all(r <= 1e3 * np.finfo(float).eps * scale)


def test_block_auto_falls_back_to_banded_lu(rng):
    # A zero leading diagonal block: block Thomas breaks down, banded LU with pivoting does not.
    L, D, U, rhs = systems.block_tridiagonal(rng, (3,), 6, 2, np.float64)
    D[1, 0] = 0.0
    U[1, 0] = np.eye(2)
    L[1, 1] = np.eye(2)
    x = pcr.solve_block_tridiagonal(L, D, U, rhs)
    np.testing.assert_allclose(x, reference.solve_block_tridiagonal(L, D, U, rhs), rtol=1e-10, atol=1e-12)
    with pytest.raises(pcr.SingularMatrixError, match="broke down"):
        pcr.solve_block_tridiagonal(L, D, U, rhs, method="sequential")


def test_block_singular_raises(rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (), 4, 2, np.float64)
    L[:], D[:], U[:] = 0, 0, 0
    D[:, 0, 0] = 1.0
    with pytest.raises(pcr.SingularMatrixError, match="singular"):
        pcr.solve_block_tridiagonal(L, D, U, rhs)


# ------------------------------------------------------------------ shapes and layouts


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_sizes(backend, n):
    x = pcr.solve_tridiagonal(
        *(backend.asarray(np.full(k, 2.0)) for k in (max(n - 1, 0), n, max(n - 1, 0), n)),
        backend=backend.name,
    )
    np.testing.assert_allclose(backend.to_numpy(x), np.full(n, 1.0))


def test_empty_batch():
    x = pcr.solve_tridiagonal(np.zeros((0, 4)), np.ones((0, 4)), np.zeros((0, 4)), np.ones((0, 4)))
    assert x.shape == (0, 4)


def test_odd_memory_layouts_and_lists(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (4,), 9, np.float64)
    expected = reference.solve_tridiagonal(dl, d, du, rhs)
    fortran = np.asfortranarray(d)
    big_endian = rhs.astype(">f8")
    strided = np.repeat(du, 2, axis=-1)[..., ::2]
    readonly = dl.copy()
    readonly.flags.writeable = False
    x = pcr.solve_tridiagonal(readonly, fortran, strided, big_endian)
    np.testing.assert_allclose(x, expected, rtol=1e-12)
    # lists, and a stride-0 broadcast matrix shared by several right-hand sides
    x = pcr.solve_tridiagonal(dl[0].tolist(), np.broadcast_to(d[0], (4, 9)), du[0], rhs)
    np.testing.assert_allclose(x, reference.solve_tridiagonal(dl[0], d[0], du[0], rhs), rtol=1e-12)


def test_dtype_promotion():
    x = pcr.solve_tridiagonal([1], [4, 4], [1], [5, 5])
    assert x.dtype == np.float64
    x = pcr.solve_tridiagonal(
        np.ones(1, np.float16), 4 * np.ones(2, np.float16), np.ones(1, np.float32), np.ones(2, np.float32)
    )
    assert x.dtype == np.float32
    x = pcr.solve_tridiagonal(np.ones(1, np.float32), 4 * np.ones(2), np.ones(1), np.ones(2, np.complex64))
    assert x.dtype == np.complex128


def test_use_backend_context():
    with pcr.use_backend("numpy"):
        x = pcr.solve_tridiagonal([1.0], [4.0, 4.0], [1.0], [5.0, 5.0])
    np.testing.assert_allclose(x, [1.0, 1.0])


# ------------------------------------------------------------------ properties


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 70),
    batch=st.integers(1, 4),
    method=st.sampled_from(SCALAR_METHODS),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_dominant_tridiagonal(n, batch, method, seed):
    rng = np.random.default_rng(seed)
    dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, np.float64, dominance=0.5)
    x = pcr.solve_tridiagonal(dl, d, du, rhs, method=method)
    np.testing.assert_allclose(x, reference.solve_tridiagonal(dl, d, du, rhs), rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 4),
    method=st.sampled_from(BLOCK_METHODS),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_dominant_block(n, m, method, seed):
    rng = np.random.default_rng(seed)
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), n, m, np.float64, dominance=0.5)
    x = pcr.solve_block_tridiagonal(L, D, U, rhs, method=method)
    np.testing.assert_allclose(x, reference.solve_block_tridiagonal(L, D, U, rhs), rtol=1e-9, atol=1e-12)


def test_auto_pivots_on_element_growth_without_tiny_pivot(backend):
    # A small but not tiny first pivot: no breakdown, yet Thomas loses ~8 digits to growth.
    dl, d, du, rhs, x_true = systems.element_growth()
    args = [backend.asarray(a) for a in (dl, d, du, rhs)]
    x_seq = backend.to_numpy(pcr.solve_tridiagonal(*args, method="sequential", backend=backend.name))
    x_auto = backend.to_numpy(pcr.solve_tridiagonal(*args, backend=backend.name))
    assert np.abs(x_seq - x_true).max() > 1e-10  # the growth is real ...
    np.testing.assert_allclose(x_auto, x_true, rtol=1e-13)  # ... and "auto" pivots it away


def test_overflow_from_finite_input_raises():
    with pytest.raises(pcr.SingularMatrixError, match="numerically singular: its solution overflows"):
        pcr.solve_tridiagonal(np.zeros(1), np.array([1e-300, 1.0]), np.zeros(1), np.array([1e300, 1.0]))


def test_block_overflow_from_finite_input_raises():
    D = np.array([[[1e-300]], [[1.0]]])
    with pytest.raises(pcr.SingularMatrixError, match="block tridiagonal system is numerically singular"):
        pcr.solve_block_tridiagonal(np.zeros((1, 1, 1)), D, np.zeros((1, 1, 1)), np.array([[1e300], [1.0]]))
