"""The Numba scalar tridiagonal kernels against the dense reference.

Sizes stay small: these tests also run under ``NUMBA_DISABLE_JIT=1`` (pure Python).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import lapack

import reference
import systems
from conftest import unchanged
from pcrsolve.kernels.numba import _threads, check, pivoting, tridiagonal, tridiagonal_factor

pytestmark = pytest.mark.kernels

NS = (0, 1, 2, 3, 7, 8, 9, 16, 33, 64)
BATCHES = (1, 4)


def _factored(factor, solve):
    def run(dl, d, du, rhs):
        factors, info = factor(dl, d, du)
        with unchanged(*factors):
            return solve(factors, rhs), info

    return run


SOLVERS = {
    "thomas": tridiagonal.thomas,
    "thomas_factor": _factored(tridiagonal.thomas_factor, tridiagonal.thomas_factor_solve),
    "pcr_batch": functools.partial(tridiagonal.pcr, over="batch"),
    "pcr_rows": functools.partial(tridiagonal.pcr, over="rows"),
    "hybrid": tridiagonal.hybrid,
    "hybrid_3": functools.partial(tridiagonal.hybrid, chunks=3),
    "pcr_factor": _factored(tridiagonal_factor.pcr_factor, tridiagonal_factor.pcr_factor_solve),
    "hybrid_factor_3": _factored(
        functools.partial(tridiagonal_factor.hybrid_factor, chunks=3), tridiagonal_factor.hybrid_factor_solve
    ),
    "gtsv": pivoting.gtsv,
    "gttrf": _factored(pivoting.gttrf, pivoting.gttrs),
}
NON_PIVOTING = (
    "thomas",
    "thomas_factor",
    "pcr_batch",
    "pcr_rows",
    "hybrid",
    "hybrid_3",
    "pcr_factor",
    "hybrid_factor_3",
)
PIVOTING = ("gtsv", "gttrf")


def _high(dtype):
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


def _cond(dl, d, du):
    """Largest 2-norm condition number over the batch (1 for empty systems)."""
    if d.size == 0:
        return 1.0
    return max(1.0, float(np.max(np.linalg.cond(reference.dense_tridiagonal(dl, d, du)))))


def assert_solves(x, dl, d, du, rhs, factor=1.0):
    """``x`` is the dense reference solution to ``tolerance(dtype, n) * cond * factor``."""
    dtype, n = d.dtype, d.shape[-1]
    assert x.shape == rhs.shape
    assert x.dtype == dtype
    if x.size == 0:
        return
    high = [a.astype(_high(dtype)) for a in (dl, d, du, rhs)]
    ref = reference.solve_tridiagonal(*high)
    err = np.max(np.abs(x - ref), axis=-1) / np.max(np.abs(ref), axis=-1)
    tol = systems.tolerance(dtype, n) * _cond(*high[:3]) * factor
    assert np.all(err <= tol), f"relative errors {err} > {tol}"


def _readonly(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


# --------------------------------------------------------------------------------------
# all kernels, all dtypes, all small sizes


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("name", SOLVERS)
def test_matches_reference(name, dtype, n, batch, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, dtype)
    with unchanged(dl, d, du, rhs):
        x, info = SOLVERS[name](dl, d, du, rhs)
    assert info.shape == (batch,)
    assert info.dtype == np.int64
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


@pytest.mark.parametrize("batch", (1, 4, 7))
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("name", ["thomas", "hybrid", "hybrid_3"])
def test_any_layout_kernels_read_either_layout(name, dtype, n, batch, rng):
    """``any_layout``: LAPACK-layout off-diagonals ``(B, n-1)`` give the padded result bit
    for bit, and the corners of padded ones are never read (NaN there changes nothing)."""
    solver = SOLVERS[name]
    assert getattr(solver, "func", solver).any_layout
    dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, dtype)
    x, info = solver(dl, d, du, rhs)
    err = check.tridiagonal_backward_error(dl, d, du, rhs, x)
    lapack_dl, lapack_du = np.ascontiguousarray(dl[:, 1:]), np.ascontiguousarray(du[:, :-1])
    with unchanged(lapack_dl, lapack_du):
        x2, info2 = solver(lapack_dl, d, lapack_du, rhs)
        err2 = check.tridiagonal_backward_error(lapack_dl, d, lapack_du, rhs, x2)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(info2, info)
    np.testing.assert_array_equal(err2, err)
    assert_solves(x2, dl, d, du, rhs)
    assert np.all(err <= 8 * np.finfo(dtype).eps * max(n, 1))
    if n:
        dl[:, 0], du[:, -1] = np.nan, np.inf
    x3, info3 = solver(dl, d, du, rhs)
    np.testing.assert_array_equal(x3, x)
    np.testing.assert_array_equal(info3, info)
    np.testing.assert_array_equal(check.tridiagonal_backward_error(dl, d, du, rhs, x3), err)


@pytest.mark.parametrize("batch", (4, 9, 13))
def test_thomas_on_threads_matches_one_thread(batch, monkeypatch, rng):
    """Ranges of systems on several threads (groups of four, leftovers) give the same bits."""
    dl, d, du, rhs = systems.tridiagonal(rng, (batch,), 17, np.float64)
    x, info = tridiagonal.thomas(dl, d, du, rhs)
    monkeypatch.setattr(_threads, "MIN_WORK", 0)
    x2, info2 = tridiagonal.thomas(dl, d, du, rhs)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(info2, info)
    assert_solves(x2, dl, d, du, rhs)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threads_work_in_a_forked_child(monkeypatch, rng):
    import multiprocessing

    monkeypatch.setattr(_threads, "MIN_WORK", 0)
    dl, d, du, rhs = systems.tridiagonal(rng, (8,), 9, np.float64)
    x, _ = tridiagonal.thomas(dl, d, du, rhs)  # the parent's pool is running
    with multiprocessing.get_context("fork").Pool(1) as pool:  # without a new pool it hangs
        y, _ = pool.apply_async(tridiagonal.thomas, (dl, d, du, rhs)).get(timeout=120)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name", SOLVERS)
def test_empty_batch(name, dtype):
    dl, d, du, rhs = (np.zeros((0, 5), dtype=dtype) for _ in range(4))
    x, info = SOLVERS[name](dl, d, du, rhs)
    assert x.shape == (0, 5)
    assert x.dtype == dtype
    assert info.shape == (0,)


@pytest.mark.parametrize("name", SOLVERS)
def test_readonly_inputs(name, rng):
    dl, d, du, rhs = _readonly(*systems.tridiagonal(rng, (3,), 20, np.float64))
    with unchanged(dl, d, du, rhs):
        x, info = SOLVERS[name](dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


@pytest.mark.parametrize("n", (8, 33, 64))
@pytest.mark.parametrize("name", SOLVERS)
def test_poisson(name, dtype, n):
    d = np.full((2, n), 2, dtype=dtype)
    dl = np.full((2, n), -1, dtype=dtype)
    du = dl.copy()
    dl[:, 0] = du[:, -1] = 0
    rhs = np.ones((2, n), dtype=dtype)
    rhs[1] = np.arange(n)
    x, info = SOLVERS[name](dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


# --------------------------------------------------------------------------------------
# hybrid: chunk counts


@pytest.mark.parametrize("n", (3, 7, 9, 33, 64, 70))
@pytest.mark.parametrize("chunks", (1, 2, 3, 5, 8, 23))
def test_hybrid_chunk_counts(chunks, n, dtype, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), n, dtype)
    with unchanged(dl, d, du, rhs):
        x, info = tridiagonal.hybrid(dl, d, du, rhs, chunks=chunks)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


def test_hybrid_chunk_choice():
    assert tridiagonal.hybrid_chunks(1, 2) == 1
    assert tridiagonal.hybrid_chunks(5, 100, chunks=50) == 33  # at least 3 rows a chunk
    assert tridiagonal.hybrid_chunks(1, 20) == 1  # default: chunks of >= MIN_CHUNK_ROWS rows
    assert tridiagonal.hybrid_chunks(1, 2**20) > 1
    assert tridiagonal.hybrid_chunks(10**6, 2**20) == 1  # a large batch is enough


def test_hybrid_default_chunks_on_one_system(rng):
    n = 40 * tridiagonal.MIN_CHUNK_ROWS
    assert tridiagonal.hybrid_chunks(1, n) > 1
    dl, d, du, rhs = systems.tridiagonal(rng, (1,), n, np.float64)
    x, info = tridiagonal.hybrid(dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


# --------------------------------------------------------------------------------------
# factorizations: several right-hand sides


@pytest.mark.parametrize("kind", ("thomas", "gttrf"))
def test_factor_reused_for_several_rhs(kind, dtype, rng):
    factor, solve, direct = {
        "thomas": (tridiagonal.thomas_factor, tridiagonal.thomas_factor_solve, tridiagonal.thomas),
        "gttrf": (pivoting.gttrf, pivoting.gttrs, pivoting.gtsv),
    }[kind]
    dl, d, du, _ = systems.tridiagonal(rng, (3,), 17, dtype, dominance=None if kind == "gttrf" else 3.0)
    factors, info = factor(dl, d, du)
    np.testing.assert_array_equal(info, 0)
    for _ in range(3):
        rhs = systems.tridiagonal(rng, (3,), 17, dtype)[3]
        with unchanged(*factors, rhs):
            x = solve(factors, rhs)
        assert_solves(x, dl, d, du, rhs)
        if kind == "thomas":  # the same arithmetic as the one-shot solver
            np.testing.assert_array_equal(x, direct(dl, d, du, rhs)[0])
        else:
            np.testing.assert_allclose(
                x, direct(dl, d, du, rhs)[0], rtol=systems.tolerance(dtype, 17) * _cond(dl, d, du)
            )


@pytest.mark.parametrize("kind", ("thomas", "gttrf"))
def test_factor_of_one_system_shared_by_a_batch_of_rhs(kind, dtype, rng):
    factor, solve = {
        "thomas": (tridiagonal.thomas_factor, tridiagonal.thomas_factor_solve),
        "gttrf": (pivoting.gttrf, pivoting.gttrs),
    }[kind]
    dl, d, du, _ = systems.tridiagonal(rng, (1,), 12, dtype)
    rhs = systems.tridiagonal(rng, (5,), 12, dtype)[3]
    factors, info = factor(dl, d, du)
    np.testing.assert_array_equal(info, 0)
    x = solve(factors, rhs)
    assert x.shape == (5, 12)
    assert_solves(x, *(np.broadcast_to(a, (5, 12)) for a in (dl, d, du)), rhs)


FACTORED = {  # factorization -> the one-shot solver it replays
    "pcr": (tridiagonal_factor.pcr_factor, tridiagonal_factor.pcr_factor_solve, tridiagonal.pcr),
    "hybrid": (tridiagonal_factor.hybrid_factor, tridiagonal_factor.hybrid_factor_solve, tridiagonal.hybrid),
    "hybrid_3": (
        functools.partial(tridiagonal_factor.hybrid_factor, chunks=3),
        tridiagonal_factor.hybrid_factor_solve,
        functools.partial(tridiagonal.hybrid, chunks=3),
    ),
}


@pytest.mark.parametrize("threads", ["one", "several"])
@pytest.mark.parametrize("n", (1, 2, 9, 100, 257))
@pytest.mark.parametrize("kind", FACTORED)
def test_pcr_and_hybrid_factors_replay_the_solver(kind, n, dtype, threads, monkeypatch, rng):
    """The same bits as the one-shot solver, for several right-hand sides; factors of one
    system serve a batch of right-hand sides."""
    if threads == "several":
        monkeypatch.setattr(_threads, "MIN_WORK", 0)
    factor, solve, direct = FACTORED[kind]
    dl, d, du, _ = systems.tridiagonal(rng, (2,), n, dtype)
    with unchanged(dl, d, du):
        factors, info = factor(dl, d, du)
    np.testing.assert_array_equal(info, 0)
    for _ in range(2):
        rhs = systems.tridiagonal(rng, (2,), n, dtype)[3]
        with unchanged(*factors, rhs):
            x = solve(factors, rhs)
        np.testing.assert_array_equal(x, direct(dl, d, du, rhs)[0])
    one, info = factor(dl[:1], d[:1], du[:1])
    rhs = systems.tridiagonal(rng, (3,), n, dtype)[3]
    assert_solves(
        solve(one, rhs), np.repeat(dl[:1], 3, 0), np.repeat(d[:1], 3, 0), np.repeat(du[:1], 3, 0), rhs
    )


def test_thomas_factor_does_not_alias_inputs(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (2,), 9, np.float64)
    factors, _ = tridiagonal.thomas_factor(dl, d, du)
    expected = tridiagonal.thomas_factor_solve(factors, rhs)
    dl[:] = 7.0
    np.testing.assert_array_equal(tridiagonal.thomas_factor_solve(factors, rhs), expected)


# --------------------------------------------------------------------------------------
# pivoting: LAPACK examples and agreement


NAG = {  # NAG f07cdf (dgttrf) / f07caf example
    "du": [2.1, -1.0, 1.9, 8.0],
    "d": [3.0, 2.3, -5.0, -0.9, 7.1],
    "dl": [3.4, 3.6, 7.0, -6.0],
    "b": [2.7, -0.5, 2.6, 0.6, 2.7],
    "x": [-4.0, 7.0, 3.0, -4.0, -3.0],
}


def _nag(dtype):
    dl = np.array([[0.0, *NAG["dl"]]], dtype=dtype)
    du = np.array([[*NAG["du"], 0.0]], dtype=dtype)
    d = np.array([NAG["d"]], dtype=dtype)
    b = np.array([NAG["b"]], dtype=dtype)
    return dl, d, du, b


@pytest.mark.parametrize("name", PIVOTING)
def test_nag_example(name, dtype):
    dl, d, du, b = _nag(dtype)
    x, info = SOLVERS[name](dl, d, du, b)
    np.testing.assert_array_equal(info, 0)
    tol = systems.tolerance(dtype, 5) * _cond(dl, d, du)
    np.testing.assert_allclose(x[0], NAG["x"], rtol=tol, atol=tol * 7)


def test_nag_example_factors():
    factors, info = pivoting.gttrf(*_nag(np.float64)[:3])
    L, D, U, U2, ipiv = (f[0] for f in factors)
    assert info[0] == 0
    # the factors LAPACK dgttrf computes (as f07cdf prints them, 4 decimals)
    np.testing.assert_allclose(D, [3.4, 3.6, 7.0, -6.0, -1.0154], atol=1e-4)
    np.testing.assert_allclose(U, [2.3, -5.0, -0.9, 7.1], atol=1e-4)
    np.testing.assert_allclose(U2, [-1.0, 1.9, 8.0], atol=1e-4)
    np.testing.assert_allclose(L, [0.8824, 0.0196, 0.1401, -0.0148], atol=1e-4)
    np.testing.assert_array_equal(ipiv, [2, 3, 4, 5, 5])


_LAPACK = {np.float32: "s", np.float64: "d", np.complex64: "c", np.complex128: "z"}


@pytest.mark.parametrize("n", (3, 8, 33))  # scipy's ?gttrf wrapper rejects n < 3
def test_pivoting_agrees_with_lapack(dtype, n, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (4,), n, dtype, dominance=None)
    gttrf = getattr(lapack, _LAPACK[dtype] + "gttrf")
    gtsv = getattr(lapack, _LAPACK[dtype] + "gtsv")
    factors, info = pivoting.gttrf(dl, d, du)
    x, info_sv = pivoting.gtsv(dl, d, du, rhs)
    tol = systems.tolerance(dtype, n) * _cond(dl, d, du)
    for k in range(4):
        *expected, ipiv, info_k = gttrf(dl[k, 1:], d[k], du[k, :-1])
        assert info[k] == info_k == 0
        np.testing.assert_array_equal(factors[4][k], ipiv)
        for got, want in zip(factors[:4], expected):
            np.testing.assert_allclose(got[k], want, rtol=tol, atol=tol * np.max(np.abs(d[k])))
        x_k = gtsv(dl[k, 1:], d[k], du[k, :-1], rhs[k])[3]
        np.testing.assert_allclose(x[k], x_k, rtol=tol, atol=tol * np.max(np.abs(x_k)))
    np.testing.assert_array_equal(info_sv, 0)


@pytest.mark.parametrize("n", (2, 9, 33, 64))
@pytest.mark.parametrize("name", PIVOTING)
def test_pivoting_on_random_non_dominant_systems(name, dtype, n, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (5,), n, dtype, dominance=None)
    with unchanged(dl, d, du, rhs):
        x, info = SOLVERS[name](dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


def _clement(n, dtype):
    """Zero diagonal, unit off-diagonals: nonsingular for even ``n``, singular for odd."""
    d = np.zeros((1, n), dtype=dtype)
    dl = np.ones((1, n), dtype=dtype)
    du = np.ones((1, n), dtype=dtype)
    dl[:, 0] = du[:, -1] = 0
    rhs = np.arange(1, n + 1, dtype=dtype)[None]
    return dl, d, du, rhs


@pytest.mark.parametrize("n", (2, 4, 8, 16, 64))
@pytest.mark.parametrize("name", PIVOTING)
def test_clement_even_is_solved_with_pivoting(name, dtype, n):
    dl, d, du, rhs = _clement(n, dtype)
    x, info = SOLVERS[name](dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    assert_solves(x, dl, d, du, rhs)


@pytest.mark.parametrize("n", (1, 3, 5, 9, 33))
@pytest.mark.parametrize("name", PIVOTING)
def test_clement_odd_is_singular(name, dtype, n):
    dl, d, du, rhs = _clement(n, dtype)
    x, info = SOLVERS[name](dl, d, du, rhs)
    assert info[0] > 0
    if n > 1:  # the same row as LAPACK (whose scipy wrapper rejects n = 1)
        real = [a[0].real for a in (dl[:, 1:], d, du[:, :-1], rhs)]
        assert info[0] == lapack.dgtsv(*real)[4]
    if name == "gtsv":
        assert np.all(np.isnan(x))


def test_singular_systems_do_not_affect_the_others(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), 5, np.float64, dominance=None)
    cdl, cd, cdu, _ = _clement(5, np.float64)
    dl[1], d[1], du[1] = cdl[0], cd[0], cdu[0]
    x, info = pivoting.gtsv(dl, d, du, rhs)
    assert info[1] > 0
    assert info[0] == info[2] == 0
    assert_solves(x[::2], dl[::2], d[::2], du[::2], rhs[::2])


# --------------------------------------------------------------------------------------
# breakdown of the non-pivoting kernels is reported, never silent

# Under NUMBA_DISABLE_JIT the NaN arithmetic after a breakdown warns (NumPy scalars).
quiet_nan = pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")


@quiet_nan
@pytest.mark.parametrize("n", (1, 2, 7, 64))
@pytest.mark.parametrize("name", NON_PIVOTING)
def test_zero_leading_pivot_is_reported(name, dtype, n, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (3,), n, dtype)
    d[1, 0] = 0
    x, info = SOLVERS[name](dl, d, du, rhs)
    assert info[1] > 0
    assert info[0] == info[2] == 0
    if name.startswith("thomas"):
        assert info[1] == 1
    assert_solves(x[::2], dl[::2], d[::2], du[::2], rhs[::2])


@quiet_nan
@pytest.mark.parametrize("n", (2, 8, 64))
@pytest.mark.parametrize("name", NON_PIVOTING)
def test_clement_breaks_non_pivoting_kernels(name, dtype, n):
    _, info = SOLVERS[name](*_clement(n, dtype))
    assert info[0] > 0


@pytest.mark.parametrize("name", NON_PIVOTING)
def test_tiny_pivot_is_reported(name, dtype, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (2,), 9, dtype)
    d[0, 0] = systems.eps(dtype) / 4 * abs(du[0, 0])
    _, info = SOLVERS[name](dl, d, du, rhs)
    assert info[0] > 0
    assert info[1] == 0


@pytest.mark.parametrize("name", NON_PIVOTING)
def test_cancelled_pivot_is_reported(name, rng):
    # rows 0 and 1 are equal in their first two columns: the 2x2 leading block is singular
    dl, d, du, rhs = systems.tridiagonal(rng, (1,), 2, np.float64)
    d[:] = 1
    du[0, 0] = dl[0, 1] = 1
    _, info = SOLVERS[name](dl, d, du, rhs)
    assert info[0] > 0


@quiet_nan
@pytest.mark.parametrize("name", NON_PIVOTING)
def test_non_finite_pivot_is_reported(name, dtype, rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (2,), 16, dtype)
    d[0, 5] = np.nan
    _, info = SOLVERS[name](dl, d, du, rhs)
    assert 0 < info[0] <= 6
    assert info[1] == 0


def test_thomas_reports_the_first_bad_row(rng):
    dl, d, du, rhs = systems.tridiagonal(rng, (1,), 10, np.float64)
    d[0, 6] = np.inf
    d[0, 8] = 0
    _, info = tridiagonal.thomas(dl, d, du, rhs)
    assert info[0] == 7


# --------------------------------------------------------------------------------------
# property: pcr and hybrid agree with thomas on diagonally dominant systems


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 70),
    batch=st.integers(0, 4),
    dtype=st.sampled_from(systems.DTYPES),
    chunks=st.integers(1, 30),
    dominance=st.floats(0.5, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_pcr_and_hybrid_agree_with_thomas(n, batch, dtype, chunks, dominance, seed):
    rng = np.random.default_rng(seed)
    dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, dtype, dominance=dominance)
    expected, info = tridiagonal.thomas(dl, d, du, rhs)
    np.testing.assert_array_equal(info, 0)
    tol = 2 * systems.tolerance(dtype, n) * _cond(dl, d, du)
    scale = np.max(np.abs(expected), axis=-1, keepdims=True) if expected.size else 1.0
    for over in ("batch", "rows"):
        x, info = tridiagonal.pcr(dl, d, du, rhs, over=over)
        np.testing.assert_array_equal(info, 0)
        np.testing.assert_array_less(np.abs(x - expected), tol * scale + 0 * x.real + 1e-300)
    x, info = tridiagonal.hybrid(dl, d, du, rhs, chunks=chunks)
    np.testing.assert_array_equal(info, 0)
    np.testing.assert_array_less(np.abs(x - expected), tol * scale + 0 * x.real + 1e-300)


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_thomas_four_lanes_match_one_system_at_a_time(dtype):
    # Systems 0-7 run in groups of four, 8-10 one at a time; breakdowns and growth are
    # injected into different lanes and must be reported exactly as for a lone system.
    rng = np.random.default_rng(7)
    dl, d, du, rhs = systems.tridiagonal(rng, (11,), 9, dtype)
    d[1, 0] = 0  # zero pivot in lane 1
    dl[6, 3] = d[6, 3] = du[6, 3] = 0  # a zero row further down: lane 2 of group 2
    d[3, 0] = 1e-4  # small first pivot: element growth in lane 3 (info < 0)
    d[9, 0] = 1e-4  # the same in a leftover system
    x, info = tridiagonal.thomas(dl, d, du, rhs)
    for k in range(11):
        xk, ik = tridiagonal.thomas(dl[k : k + 1], d[k : k + 1], du[k : k + 1], rhs[k : k + 1])
        assert info[k] == ik[0], k
        if ik[0] <= 0:
            np.testing.assert_array_equal(x[k], xk[0])
    assert info[1] == 1 and info[6] == 4 and info[3] < 0 and info[9] < 0 and info[0] == 0
