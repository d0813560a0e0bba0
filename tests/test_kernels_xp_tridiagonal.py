"""The xp scalar tridiagonal kernels against the dense reference, on NumPy and array_api_strict.

The kernels are called directly (clean padded input, as the contract promises); on
``array_api_strict`` any conversion to NumPy during the call raises, as it would on CuPy.
"""

from __future__ import annotations

import array_api_compat.numpy as compat_numpy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
import systems
from conftest import BackendCase as Namespace
from conftest import _strict_backend
from pcrsolve.kernels.xp import tridiagonal as tri

pytestmark = pytest.mark.kernels

SIZES = (0, 1, 2, 3, 7, 8, 9, 16, 33, 64)
BATCHES = (0, 1, 4)
NAMESPACES = ("numpy", "array_api_strict")


def _factor_solve(factor, solve):
    def kernel(xp, dl, d, du, rhs):
        factors, info = factor(xp, dl, d, du)
        return solve(xp, factors, rhs), info

    return kernel


def _hybrid(chunks):
    def kernel(xp, dl, d, du, rhs):
        return tri.hybrid(xp, dl, d, du, rhs, chunks=chunks)

    return kernel


NON_PIVOTING = {
    "thomas": tri.thomas,
    "thomas_factor": _factor_solve(tri.thomas_factor, tri.thomas_factor_solve),
    "pcr": tri.pcr,
    "pcr_factor": _factor_solve(tri.pcr_factor, tri.pcr_factor_solve),
    "hybrid": tri.hybrid,
    "hybrid_factor": _factor_solve(tri.hybrid_factor, tri.hybrid_factor_solve),
    **{f"hybrid-{p}": _hybrid(p) for p in (1, 3, 100)},
}
PIVOTING = {
    "gtsv": tri.gtsv,
    "gttrf": _factor_solve(tri.gttrf, tri.gttrs),
}
KERNELS = {**NON_PIVOTING, **PIVOTING}


@pytest.fixture(params=NAMESPACES)
def ns(request, monkeypatch) -> Namespace:
    """The namespace under test; array_api_strict forbids conversion to NumPy, as CuPy does."""
    if request.param == "array_api_strict":
        return _strict_backend(monkeypatch)

    def readonly(a):
        a = np.array(a, copy=True)
        a.setflags(write=False)  # a write into an input raises
        return a

    return Namespace(None, readonly, np.asarray, compat_numpy)


def run(ns, kernel, dl, d, du, rhs):
    """Call ``kernel`` on ``ns`` arrays; check the result types; return NumPy ``(x, info)``."""
    args = [ns.asarray(a) for a in (dl, d, du, rhs)]
    before = [np.array(ns.to_numpy(a), copy=True) for a in args]
    x, info = kernel(ns.xp, *args)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(ns.to_numpy(a), b, err_msg="an input was modified")
    assert type(x) is type(args[0]) and type(info) is type(args[0])
    x, info = ns.to_numpy(x), ns.to_numpy(info)
    assert x.shape == np.shape(rhs) and x.dtype == np.asarray(rhs).dtype
    assert info.shape == np.shape(d)[:1] and info.dtype == np.int64
    return x, info


def assert_close(x, ref, tol):
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    np.testing.assert_allclose(x, ref, rtol=tol, atol=tol * scale)


def backward_error(dl, d, du, rhs, x):
    """Normwise backward error ``|b - A x| / (|A| |x| + |b|)`` (infinity norms), per system."""
    a = reference.dense_tridiagonal(dl, d, du).astype(np.complex128)
    x, rhs = x.astype(np.complex128), np.asarray(rhs, dtype=np.complex128)
    r = np.abs(rhs - np.einsum("...ij,...j->...i", a, x)).max(-1, initial=0.0)
    norm_a = np.abs(a).sum(-1).max(-1, initial=0.0)
    den = norm_a * np.abs(x).max(-1, initial=0.0) + np.abs(rhs).max(-1, initial=0.0)
    return r / np.maximum(den, np.finfo(np.float64).tiny)


def clement(batch, n, dtype):
    """Clement-like matrices: zero diagonal, off-diagonals sqrt(k (n - k)); singular for odd n."""
    k = np.arange(1, n, dtype=np.float64)
    off = np.sqrt(k * (n - k))
    dl = np.broadcast_to(np.concatenate([[0.0], off]), (batch, n)).astype(dtype)
    du = np.broadcast_to(np.concatenate([off, [0.0]]), (batch, n)).astype(dtype)
    d = np.zeros((batch, n), dtype=dtype)
    rhs = np.broadcast_to(np.arange(1.0, n + 1), (batch, n)).astype(dtype)
    return dl, d, du, rhs


# ---------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("name", list(KERNELS))
def test_matches_reference(ns, dtype, name, rng):
    kernel = KERNELS[name]
    for n in SIZES:
        for batch in BATCHES:
            dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, dtype)
            x, info = run(ns, kernel, dl, d, du, rhs)
            np.testing.assert_array_equal(info, 0)
            assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), systems.tolerance(dtype, n))


@pytest.mark.parametrize("name", ["thomas_factor", "gttrf"])
def test_factors_reused_for_several_rhs(ns, dtype, name, rng):
    factor, solve = {
        "thomas_factor": (tri.thomas_factor, tri.thomas_factor_solve),
        "gttrf": (tri.gttrf, tri.gttrs),
    }[name]
    for n in (0, 1, 5, 16):
        dl, d, du, _ = systems.tridiagonal(rng, (3,), n, dtype)
        factors, info = factor(ns.xp, *(ns.asarray(a) for a in (dl, d, du)))
        assert isinstance(factors, tuple)
        np.testing.assert_array_equal(ns.to_numpy(info), 0)
        for _ in range(3):
            rhs = systems.tridiagonal(rng, (3,), n, dtype)[3]
            x = ns.to_numpy(solve(ns.xp, factors, ns.asarray(rhs)))
            assert x.shape == (3, n) and x.dtype == dtype
            assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), systems.tolerance(dtype, n))


@pytest.mark.parametrize("name", list(KERNELS))
def test_poisson(ns, dtype, name):
    # (-1, 2, -1): SPD and weakly diagonally dominant; condition number ~ 0.4 n^2.
    for n in (1, 2, 9, 64):
        d = np.full((2, n), 2.0, dtype=dtype)
        dl = np.full((2, n), -1.0, dtype=dtype)
        du = np.full((2, n), -1.0, dtype=dtype)
        dl[:, 0] = du[:, -1] = 0
        rhs = np.stack([np.ones(n), np.linspace(-1.0, 1.0, n)]).astype(dtype)
        x, info = run(ns, KERNELS[name], dl, d, du, rhs)
        np.testing.assert_array_equal(info, 0)
        tol = systems.tolerance(dtype, n)
        assert np.all(backward_error(dl, d, du, rhs, x) <= tol)
        assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), tol * max(1, n * n // 2))


@pytest.mark.parametrize("name", list(PIVOTING))
def test_nag_f07cdf_example(ns, name):
    # The NAG f07cdf / f07caf example: pivoting is needed at several rows.
    du = [2.1, -1.0, 1.9, 8.0, 0.0]
    d = [3.0, 2.3, -5.0, -0.9, 7.1]
    dl = [0.0, 3.4, 3.6, 7.0, -6.0]
    b = [2.7, -0.5, 2.6, 0.6, 2.7]
    x, info = run(ns, KERNELS[name], *(np.array([v]) for v in (dl, d, du, b)))
    np.testing.assert_array_equal(info, [0])
    np.testing.assert_allclose(x, [[-4.0, 7.0, 3.0, -4.0, -3.0]], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", list(PIVOTING))
def test_pivoting_random_non_dominant(ns, dtype, name, rng):
    for n in SIZES:
        dl, d, du, rhs = systems.tridiagonal(rng, (6,), n, dtype, dominance=None)
        x, info = run(ns, KERNELS[name], dl, d, du, rhs)
        np.testing.assert_array_equal(info, 0)
        tol = systems.tolerance(dtype, n)
        assert np.all(backward_error(dl, d, du, rhs, x) <= tol)
        if n:
            a = reference.dense_tridiagonal(dl, d, du).astype(np.complex128)
            cond = np.linalg.cond(a).max()
            assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), tol * cond)


@pytest.mark.parametrize("name", list(PIVOTING))
def test_pivoting_clement(ns, dtype, name):
    # Zero diagonal: every step interchanges rows. Even n is regular, odd n singular.
    for n in range(1, 12):
        dl, d, du, rhs = clement(2, n, dtype)
        with np.errstate(divide="raise", invalid="raise"):
            x, info = run(ns, KERNELS[name], dl, d, du, rhs)
        if n % 2:
            assert np.all(info > 0), (n, info)
        else:
            np.testing.assert_array_equal(info, 0)
            tol = systems.tolerance(dtype, n) * n
            assert_close(x, reference.solve_tridiagonal(dl, d, du, rhs), tol)


# ---------------------------------------------------------------------------- breakdown


@pytest.mark.parametrize("name", list(NON_PIVOTING))
def test_zero_leading_pivot_reported(ns, dtype, name, rng):
    for n in (1, 2, 3, 8, 9):
        dl, d, du, rhs = clement(2, n, dtype)
        with np.errstate(divide="raise", invalid="raise"):
            _, info = run(ns, KERNELS[name], dl, d, du, rhs)
        assert np.all(info > 0), (n, info)
        dl, d, du, rhs = systems.tridiagonal(rng, (3,), n, dtype)
        d[1, 0] = 0  # only the middle system breaks down
        _, info = run(ns, KERNELS[name], dl, d, du, rhs)
        assert info[0] == 0 and info[1] > 0 and info[2] == 0, info


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("bad", [0.0, 1e-30, np.inf, np.nan])
def test_info_names_the_first_bad_row(ns, name, bad):
    # Identity rows, except row r = (dl, d, du) = (1, bad, 1): every method meets the
    # pivot d[r] itself, and 1e-30 is tiny against that row's scale.
    if name in PIVOTING and bad != 0.0:
        pytest.skip("the pivoting kernels report exact zeros only, as LAPACK")
    n = 9
    rows = [None, 0, 4, 7, 8]
    dl, d, du = np.zeros((len(rows), n)), np.ones((len(rows), n)), np.zeros((len(rows), n))
    for b, r in enumerate(rows):
        if r is not None:
            d[b, r] = bad
            dl[b, r] = 1.0 if r > 0 else 0.0
            du[b, r] = 1.0 if r < n - 1 else 0.0
            if r < n - 1:
                d[b, n - 1] = 0.0  # a later bad row must not win
    with np.errstate(divide="raise", invalid="ignore"):
        _, info = run(ns, KERNELS[name], dl, d, du, np.ones_like(d))
    np.testing.assert_array_equal(info, [0 if r is None else r + 1 for r in rows])


# ---------------------------------------------------------------------------- properties


@st.composite
def problems(draw):
    return (
        draw(st.sampled_from(NAMESPACES)),
        draw(st.sampled_from(systems.DTYPES)),
        draw(st.integers(0, 40)),
        draw(st.integers(0, 3)),
        draw(st.integers(1, 45)),
        draw(st.floats(0.2, 4.0)),
        draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(problems())
def test_property_all_kernels_agree_with_reference(monkeypatch, problem):
    name, dtype, n, batch, chunks, dominance, seed = problem
    with monkeypatch.context() as mp:
        if name == "numpy":
            ns = Namespace(None, np.asarray, np.asarray, compat_numpy)
        else:
            ns = _strict_backend(mp)
        rng = np.random.default_rng(seed)
        dl, d, du, rhs = systems.tridiagonal(rng, (batch,), n, dtype, dominance=dominance)
        ref = reference.solve_tridiagonal(dl, d, du, rhs)
        tol = systems.tolerance(dtype, n) * 4 / dominance
        for kernel in (*KERNELS.values(), _hybrid(chunks)):
            x, info = run(ns, kernel, dl, d, du, rhs)
            np.testing.assert_array_equal(info, 0)
            assert_close(x, ref, tol)
