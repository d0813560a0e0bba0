"""The linear layer on JAX arrays (the docs name JAX): every solver and factorization, every method.

JAX arrays are immutable and run the xp kernels in JAX itself. Double precision needs
``jax_enable_x64``, switched on here (the whole test process then has it on).
"""

from __future__ import annotations

import numpy as np
import pytest

import pcrsolve as pcr
import reference
import systems

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = pytest.importorskip("jax.numpy")

SCALAR_METHODS = ["auto", "sequential", "pcr", "hybrid", "pivoting"]
BLOCK_METHODS = ["auto", "sequential", "pcr", "hybrid"]


def _jax(*arrays):
    return [jnp.asarray(a) for a in arrays]


def _check(x, expected, rtol=1e-11):
    assert isinstance(x, jax.Array)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("method", SCALAR_METHODS)
def test_tridiagonal_solve_and_factorization(method, dtype, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), 40, dtype)
    args = _jax(dl[:, 1:], d, du[:, :-1])
    expected = reference.solve_tridiagonal(dl, d, du, rhs)
    _check(pcr.solve_tridiagonal(*args, jnp.asarray(rhs), method=method), expected)
    f = pcr.factor_tridiagonal(*args, method=method)
    _check(f.solve(jnp.asarray(rhs)), expected)
    more = rng.standard_normal((2, 3, 40))
    _check(f.solve(jnp.asarray(more)), reference.solve_tridiagonal(dl, d, du, more))


@pytest.mark.parametrize("method", BLOCK_METHODS)
def test_block_solve_and_factorization(method, rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), 17, 3, np.float64)
    args = _jax(L, D, U)
    expected = reference.solve_block_tridiagonal(L, D, U, rhs)
    _check(pcr.solve_block_tridiagonal(*args, jnp.asarray(rhs), method=method), expected)
    _check(pcr.factor_block_tridiagonal(*args, method=method).solve(jnp.asarray(rhs)), expected)


@pytest.mark.parametrize("method", BLOCK_METHODS)
@pytest.mark.parametrize("dense", [True, False])
def test_recurrences_and_bidiagonal(method, dense, rng):
    A, b, x0 = systems.recurrence(rng, (2,), 33, 3, np.float64, dense=dense)
    _check(
        pcr.linear_recurrence(*_jax(A, b, x0), method=method),
        reference.linear_recurrence(A, b, x0),
    )
    d, e, rhs = 3 + rng.random((2, 20)), rng.random((2, 19)), rng.random((2, 20))
    x = pcr.solve_bidiagonal(*_jax(d, e, rhs), method=method)
    _check(x, reference.solve_bidiagonal(d, e, rhs, lower=True))


def test_auto_pivots_and_singular_raises():
    k = np.arange(1, 10)
    dl = du = np.sqrt(k * (10 - k))  # Clement's matrix: every non-pivoting method breaks down
    rhs = np.ones(10)
    expected = reference.solve_tridiagonal(dl, np.zeros(10), du, rhs)
    _check(pcr.solve_tridiagonal(*_jax(dl, np.zeros(10), du, rhs)), expected, rtol=1e-9)
    f = pcr.factor_tridiagonal(*_jax(dl, np.zeros(10), du))
    assert f.method == "pivoting"
    _check(f.solve(jnp.asarray(rhs)), expected, rtol=1e-9)
    with pytest.raises(pcr.SingularMatrixError):
        pcr.solve_tridiagonal(*_jax(dl, np.zeros(10), du, rhs), method="pcr")
