"""Every error message of the linear layer: the argument, what was expected, the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pcrsolve as pcr
from conftest import unchanged

ONE = np.ones(1)
TWO = np.ones(2)


def raises(exc, pattern):
    return pytest.raises(exc, match=re.escape(pattern) if not pattern.startswith("^") else pattern[1:])


def test_off_diagonal_length():
    with raises(
        ValueError,
        "`dl` must have length n-1 = 9 (LAPACK layout) or n = 10 (padded) on axis -1 "
        "to match `d` of shape (10,); got shape (5,).",
    ):
        pcr.solve_tridiagonal(np.ones(5), np.ones(10), np.ones(9), np.ones(10))
    with raises(ValueError, "`du` must have length n-1"):
        pcr.solve_tridiagonal(np.ones(9), np.ones(10), np.ones(3), np.ones(10))


def test_rhs_length():
    with raises(
        ValueError,
        "`rhs` must have length n = 2 on its last axis to match `d` of shape (2,); got shape (3,).",
    ):
        pcr.solve_tridiagonal(ONE, TWO, ONE, np.ones(3))


def test_batch_not_broadcastable():
    with raises(ValueError, "the batch shapes (leading axes) do not broadcast: `dl` (3,), `d` (4,)"):
        pcr.solve_tridiagonal(np.ones((3, 1)), np.ones((4, 2)), ONE, TWO)


def test_zero_dimensional():
    with raises(ValueError, "`d` must have at least 1 axes, the sequence axis n last; got shape ()."):
        pcr.solve_tridiagonal(ONE, np.float64(2.0), ONE, TWO)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(bad):
    with raises(ValueError, "`rhs` contains NaN or inf; pass finite values, or check_finite=False"):
        pcr.solve_tridiagonal(ONE, 4 * TWO, ONE, np.array([1.0, bad]))


@pytest.mark.parametrize("method", ["auto", "sequential", "pcr", "hybrid", "pivoting"])
@pytest.mark.parametrize("check_finite", [True, False])
def test_non_finite_in_ignored_corner_is_fine(method, check_finite):
    dl, du = np.array([np.nan, 1.0]), np.array([1.0, np.inf])
    with unchanged(dl, du):
        x = pcr.solve_tridiagonal(dl, 4 * TWO, du, 5 * TWO, method=method, check_finite=check_finite)
    np.testing.assert_allclose(x, [1.0, 1.0])


def test_check_finite_false_skips_the_check():
    pcr.solve_tridiagonal(ONE, 4 * TWO, ONE, np.array([1.0, np.nan]), check_finite=False, method="pivoting")


@pytest.mark.parametrize("value", [np.array(["a", "b"]), np.array([object(), object()])])
def test_non_numeric(value):
    with raises(TypeError, "`rhs` must have a numeric dtype (float or complex; integers promote to float64)"):
        pcr.solve_tridiagonal(ONE, TWO, ONE, value)


def test_ragged_list():
    with raises(TypeError, "`d` must be a numeric array; could not convert it"):
        pcr.solve_tridiagonal(ONE, [[1.0], [1.0, 2.0]], ONE, TWO)


def test_unknown_method():
    with raises(
        ValueError,
        "`method` must be one of 'auto', 'sequential', 'pcr', 'hybrid', 'pivoting' for "
        "solve_tridiagonal; got 'lu'.",
    ):
        pcr.solve_tridiagonal(ONE, TWO, ONE, TWO, method="lu")


def test_unsupported_method():
    with raises(ValueError, "('pivoting' is not available for solve_block_tridiagonal)"):
        pcr.solve_block_tridiagonal(
            np.ones((1, 2, 2)), np.ones((2, 2, 2)), np.ones((1, 2, 2)), np.ones((2, 2)), method="pivoting"
        )
    with raises(ValueError, "bidiagonal systems (no pivoting is needed: they are triangular)"):
        pcr.solve_bidiagonal(TWO, ONE, TWO, method="pivoting")


def test_non_square_blocks():
    with raises(ValueError, "the blocks of `D` must be square (..., m, m); got shape (2, 2, 3)."):
        pcr.solve_block_tridiagonal(
            np.ones((1, 2, 2)), np.ones((2, 2, 3)), np.ones((1, 2, 2)), np.ones((2, 2))
        )


def test_block_size_mismatch():
    with raises(
        ValueError, "`U` must have block size m = 2 (from `D`), as (..., n, m, m); got shape (1, 3, 3)."
    ):
        pcr.solve_block_tridiagonal(
            np.ones((1, 2, 2)), np.eye(2)[None].repeat(2, 0), np.ones((1, 3, 3)), np.ones((2, 2))
        )
    with raises(
        ValueError, "`rhs` must have shape (..., n, m) = (..., 2, 2) to match `D` of shape (2, 2, 2)"
    ):
        pcr.solve_block_tridiagonal(
            np.ones((1, 2, 2)), np.eye(2)[None].repeat(2, 0), np.ones((1, 2, 2)), np.ones((3, 2))
        )


def test_block_bidiagonal_names_E():
    with raises(ValueError, "`E` must have length n-1 = 2"):
        pcr.solve_block_bidiagonal(np.eye(2)[None].repeat(3, 0), np.ones((5, 2, 2)), np.ones((3, 2)))


def test_bidiagonal_names_e_and_zero_diagonal():
    with raises(ValueError, "`e` must have length n-1 = 1"):
        pcr.solve_bidiagonal(TWO, np.ones(4), TWO)
    with raises(pcr.SingularMatrixError, "singular matrix: `d` of the bidiagonal system is zero at index 1."):
        pcr.solve_bidiagonal(np.array([1.0, 0.0]), ONE, TWO)
    with raises(
        pcr.SingularMatrixError,
        "singular matrix: `d` of bidiagonal system (1,) of the batch is zero at index 0.",
    ):
        pcr.solve_bidiagonal(np.array([[1.0, 1.0], [0.0, 1.0]]), ONE, TWO)


def test_block_bidiagonal_singular_block():
    D = np.eye(2)[None].repeat(3, 0)
    D[1] = 0
    with raises(pcr.SingularMatrixError, "singular matrix: a diagonal block of `D` is singular."):
        pcr.solve_block_bidiagonal(D, np.ones((2, 2, 2)), np.ones((3, 2)))


def test_recurrence_shapes():
    with raises(
        ValueError, "`A` must have b.ndim + 1 = 3 axes (dense blocks (..., n, m, m)) or b.ndim = 2 axes"
    ):
        pcr.linear_recurrence(np.ones(4), np.ones((4, 2)))
    with raises(
        ValueError, "`A` with 3 axes holds dense blocks and must have shape (..., n, m, m) = (..., 4, 2, 2)"
    ):
        pcr.linear_recurrence(np.ones((4, 3, 3)), np.ones((4, 2)))
    with raises(
        ValueError, "`A` with 2 axes holds diagonal blocks and must have shape (..., n, m) = (..., 4, 2)"
    ):
        pcr.linear_recurrence(np.ones((4, 3)), np.ones((4, 2)))
    with raises(ValueError, "`x0` must have shape (..., m) = (..., 2) with at most 0 batch axes"):
        pcr.linear_recurrence(np.ones((4, 2)), np.ones((4, 2)), np.ones(3))


def test_recurrence_overflow():
    with raises(FloatingPointError, "the linear recurrence overflowed"):
        pcr.linear_recurrence(np.full((2000, 1), 10.0), np.ones((2000, 1)))


def test_factorization_errors():
    f = pcr.factor_tridiagonal(ONE, 4 * TWO, ONE)
    with raises(ValueError, "`rhs` must have length n = 2 on its last axis to match the factored matrix"):
        f.solve(np.ones(3))
    with raises(
        ValueError,
        "`method` must be one of 'auto', 'sequential', 'pcr', 'hybrid', 'pivoting' for "
        "factor_tridiagonal; got 'cholesky'.",
    ):
        pcr.factor_tridiagonal(ONE, TWO, ONE, method="cholesky")
    with raises(
        ValueError,
        "`method` must be one of 'auto', 'sequential', 'pcr', 'hybrid' for factor_block_tridiagonal; "
        "got 'pivoting' ('pivoting' is not available for factor_block_tridiagonal).",
    ):
        pcr.factor_block_tridiagonal(
            np.ones((1, 1, 1)), np.ones((2, 1, 1)), np.ones((1, 1, 1)), method="pivoting"
        )
    with raises(pcr.SingularMatrixError, "singular matrix"):
        pcr.factor_tridiagonal(ONE, np.zeros(2), np.zeros(1), method="pivoting")
    g = pcr.factor_block_tridiagonal(np.ones((1, 2, 2)), 4 * np.eye(2)[None].repeat(2, 0), np.ones((1, 2, 2)))
    with raises(ValueError, "`rhs` must have shape (..., n, m) = (..., 2, 2) to match the factored matrix"):
        g.solve(np.ones((2, 3)))


def test_backend_errors():
    with raises(ValueError, "`backend` must be one of 'numba', 'numpy', 'cupy' or None; got 'torch'."):
        pcr.solve_tridiagonal(ONE, TWO, ONE, TWO, backend="torch")
    with raises(TypeError, "`backend` must be a string"):
        pcr.solve_tridiagonal(ONE, TWO, ONE, TWO, backend=np)
    with pytest.raises(ValueError, match="`backend` must be one of"):
        with pcr.use_backend("gpu"):
            pass


def test_mixed_libraries():
    import array_api_strict as xps

    with raises(
        TypeError,
        "the inputs come from different array libraries (numpy for `dl`, array_api_strict "
        'for `rhs`); pass backend="numba"',
    ):
        pcr.solve_tridiagonal(ONE, TWO, ONE, xps.asarray([1.0, 2.0]))


def test_cupy_missing_or_no_gpu():
    with raises(RuntimeError, "pip install 'pcrsolve[cuda12]'"):
        pcr.solve_tridiagonal(ONE, TWO, ONE, TWO, backend="cupy")
