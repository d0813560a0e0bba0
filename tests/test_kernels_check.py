"""The finiteness and backward-error checks: Numba kernels against the xp versions."""

from __future__ import annotations

import array_api_compat.numpy as xnp
import numpy as np
import pytest

import systems
from pcrsolve.kernels.numba import _threads
from pcrsolve.kernels.numba import check as nb
from pcrsolve.kernels.xp import check as xc

pytestmark = pytest.mark.kernels


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite(dtype, bad, rng):
    a = systems.tridiagonal(rng, (3,), 5, dtype)[1]
    if bad is not None:
        a[1, 2] = bad
    assert nb.all_finite(a) == (bad is None) == bool(xc.all_finite(xnp, a))
    assert nb.all_finite(np.asfortranarray(a)) == (bad is None)


@pytest.mark.parametrize("n", [0, 1, 2, 9])
def test_tridiagonal_backward_error(dtype, n, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (4,), n, dtype)
    x = (rhs / np.where(d == 0, 1, d)).astype(dtype)  # an inexact solution
    if n:
        x[3, 0] = np.nan
    got = nb.tridiagonal_backward_error(dl, d, du, rhs, x)
    np.testing.assert_allclose(
        got, xc.tridiagonal_backward_error(xnp, dl, d, du, rhs, x), rtol=1e-4, atol=1e-6
    )
    if n:
        assert np.isinf(got[3]) and np.all(np.isfinite(got[:3]))


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_block_backward_error(dtype, n, rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (3,), n, 2, dtype)
    x = (rhs * 0.1).astype(dtype)
    got = nb.block_backward_error(L, D, U, rhs, x)
    np.testing.assert_allclose(got, xc.block_backward_error(xnp, L, D, U, rhs, x), rtol=1e-4, atol=1e-6)


def test_exact_solution_has_tiny_backward_error(rng):
    import reference

    dl, d, du, rhs = systems.tridiagonal(rng, (2,), 20, np.float64)
    x = reference.solve_tridiagonal(dl, d, du, rhs)
    assert np.all(nb.tridiagonal_backward_error(dl, d, du, rhs, x) < 10 * np.finfo(float).eps)


@pytest.mark.parametrize("where", [0, 50_001, -1])
def test_all_finite_on_threads(where, monkeypatch):
    monkeypatch.setattr(_threads, "MIN_WORK", 0)  # split even a small array between threads
    a = np.ones(100_003)
    assert nb.all_finite(a)
    a[where] = np.nan
    assert not nb.all_finite(a)


def test_backward_errors_on_threads_match_one_thread(monkeypatch, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (7,), 9, np.float64)
    L, D, U, brhs = systems.block_tridiagonal(rng, (7,), 5, 2, np.float64)
    x, bx = rhs * 0.3, brhs * 0.1
    one = nb.tridiagonal_backward_error(dl, d, du, rhs, x), nb.block_backward_error(L, D, U, brhs, bx)
    monkeypatch.setattr(_threads, "MIN_WORK", 0)
    np.testing.assert_array_equal(nb.tridiagonal_backward_error(dl, d, du, rhs, x), one[0])
    np.testing.assert_array_equal(nb.block_backward_error(L, D, U, brhs, bx), one[1])
