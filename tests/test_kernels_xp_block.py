"""The xp block tridiagonal kernels against the dense reference, on NumPy and array_api_strict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
import systems
from conftest import kernel_namespace
from pcrsolve.kernels.xp import block

pytestmark = pytest.mark.kernels

NS = (0, 1, 2, 3, 7, 8, 9, 16, 33)
MS = (1, 2, 3)
BATCHES = (1, 3)
METHODS = {
    "sequential": block.block_thomas,
    "pcr": block.block_pcr,
    "hybrid": block.block_hybrid,
}
CHUNKS = (1, 2, 3, 4, 7, 100)


def _wide(a):
    """``a`` in double precision, for an accurate reference."""
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def run(xb, f, L, D, U, rhs, **kwargs):
    """Call kernel ``f`` on backend copies of the NumPy inputs; check they are unchanged."""
    args = [xb.asarray(a) for a in (L, D, U, rhs)]
    before = [np.array(xb.to_numpy(a), copy=True) for a in args]
    x, info = f(xb.xp, *args, **kwargs)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(xb.to_numpy(a), b, err_msg="an input array was modified")
    return xb.to_numpy(x), xb.to_numpy(info)


def check_solution(x, info, L, D, U, rhs, dtype):
    n = D.shape[1]
    assert x.shape == rhs.shape and x.dtype == np.dtype(dtype)
    assert info.shape == D.shape[:1] and info.dtype == np.int64
    np.testing.assert_array_equal(info, 0)
    if x.size == 0:
        return
    ref = reference.solve_block_tridiagonal(*(_wide(a) for a in (L, D, U, rhs)))
    err = np.max(np.abs(x - ref)) / max(1.0, np.max(np.abs(ref)))
    assert err <= systems.tolerance(dtype, n), (err, systems.tolerance(dtype, n))


@pytest.mark.parametrize("method", list(METHODS))
def test_matches_reference(xb, dtype, method, rng):
    for n in NS:
        for m in MS:
            for batch in BATCHES:
                L, D, U, rhs = systems.block_tridiagonal(rng, (batch,), n, m, dtype)
                x, info = run(xb, METHODS[method], L, D, U, rhs)
                check_solution(x, info, L, D, U, rhs, dtype)


@pytest.mark.parametrize("chunks", CHUNKS)
def test_hybrid_forced_chunks(xb, dtype, chunks, rng):
    for n in NS:
        for m in (1, 3):
            L, D, U, rhs = systems.block_tridiagonal(rng, (2,), n, m, dtype)
            x, info = run(xb, block.block_hybrid, L, D, U, rhs, chunks=chunks)
            check_solution(x, info, L, D, U, rhs, dtype)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("n", [0, 1, 5])
def test_empty_batch(xb, method, n, rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (0,), n, 2, np.float64)
    x, info = run(xb, METHODS[method], L, D, U, rhs)
    assert x.shape == (0, n, 2) and info.shape == (0,) and info.dtype == np.int64


def test_factor_solve_reuses_factors(xb, dtype, rng):
    for n in (0, 1, 2, 9, 33):
        for m in MS:
            L, D, U, rhs = systems.block_tridiagonal(rng, (3,), n, m, dtype)
            factors, info = block.block_thomas_factor(xb.xp, *(xb.asarray(a) for a in (L, D, U)))
            np.testing.assert_array_equal(xb.to_numpy(info), 0)
            for _ in range(2):
                rhs = systems._random(rng, rhs.shape, dtype)
                x = xb.to_numpy(block.block_thomas_factor_solve(xb.xp, factors, xb.asarray(rhs)))
                check_solution(x, xb.to_numpy(info), L, D, U, rhs, dtype)


def _breakdown_cases(rng, dtype, n, m):
    """Batch of 4: fine, zero leading block, rank-deficient (in float) leading block, NaN-free."""
    L, D, U, rhs = systems.block_tridiagonal(rng, (4,), n, m, dtype)
    D[1, 0] = 0
    if m == 1:
        D[2, 0] = np.finfo(dtype).eps * 1e-3 * (np.abs(U[2, 0]).sum() + 1)
    else:
        v = systems._random(rng, (m,), dtype)
        D[2, 0] = np.outer(v, v) + np.eye(m) * np.finfo(dtype).eps * 1e-3  # rank one + tiny
    return L, D, U, rhs


@pytest.mark.parametrize("method", [*METHODS, "hybrid-3"])
@pytest.mark.parametrize("n", [2, 3, 9, 33])
def test_singular_leading_block_sets_info(xb, dtype, method, n, rng):
    f, kwargs = (block.block_hybrid, {"chunks": 3}) if method == "hybrid-3" else (METHODS[method], {})
    for m in MS:
        L, D, U, rhs = _breakdown_cases(rng, dtype, n, m)
        with np.errstate(over="raise", divide="raise", invalid="raise"):  # no inf/NaN arithmetic
            x, info = run(xb, f, L, D, U, rhs, **kwargs)
        np.testing.assert_array_equal(info, [0, 1, 1, 0])
        assert x.shape == rhs.shape
        check_solution(x[[0, 3]], info[[0, 3]], *(a[[0, 3]] for a in (L, D, U, rhs)), dtype)


@pytest.mark.parametrize("method", list(METHODS))
def test_singular_later_block_sets_info(xb, method, rng):
    # Row 2 decoupled from row 1 (L[2] = 0) with a zero diagonal block: the modified block of
    # row 2 is exactly singular in every elimination order.
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), 6, 2, np.float64)
    L[1, 2] = 0
    D[1, 2] = 0
    _, info = run(xb, METHODS[method], L, D, U, rhs)
    assert info[0] == 0 and info[1] > 0
    if method == "sequential":
        assert info[1] == 3
    _, finfo = block.block_thomas_factor(xb.xp, *(xb.asarray(a) for a in (L, D, U)))
    np.testing.assert_array_equal(xb.to_numpy(finfo), [0, 3])


@settings(max_examples=25, deadline=None)
@given(
    backend=st.sampled_from(("numpy", "array_api_strict")),
    dtype=st.sampled_from(systems.DTYPES),
    n=st.integers(0, 24),
    m=st.integers(1, 3),
    batch=st.integers(0, 3),
    chunks=st.one_of(st.none(), st.integers(1, 30)),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_all_methods_agree_with_reference(backend, dtype, n, m, batch, chunks, seed):
    rng = np.random.default_rng(seed)
    L, D, U, rhs = systems.block_tridiagonal(rng, (batch,), n, m, dtype)
    with pytest.MonkeyPatch.context() as mp:
        xb = kernel_namespace(backend, mp)
        for f, kwargs in (
            (block.block_thomas, {}),
            (block.block_pcr, {}),
            (block.block_hybrid, {"chunks": chunks}),
        ):
            x, info = run(xb, f, L, D, U, rhs, **kwargs)
            check_solution(x, info, L, D, U, rhs, dtype)


FACTORED = {
    "sequential": (block.block_thomas_factor, block.block_thomas_factor_solve, block.block_thomas),
    "pcr": (block.block_pcr_factor, block.block_pcr_factor_solve, block.block_pcr),
    "hybrid": (block.block_hybrid_factor, block.block_hybrid_factor_solve, block.block_hybrid),
}


@pytest.mark.parametrize("method", FACTORED)
@pytest.mark.parametrize("n", [1, 2, 9, 33])
def test_factor_solve_matches_the_solver(xb, dtype, method, n, rng):
    """Several right-hand sides per factorization; factors of one system serve a batch."""
    factor, solve, direct = FACTORED[method]
    L, D, U, _ = systems.block_tridiagonal(rng, (2,), n, 2, dtype)
    factors, info = factor(xb.xp, *(xb.asarray(a) for a in (L, D, U)))
    np.testing.assert_array_equal(xb.to_numpy(info), 0)
    for _ in range(2):
        rhs = systems.block_tridiagonal(rng, (2,), n, 2, dtype)[3]
        x = xb.to_numpy(solve(xb.xp, factors, xb.asarray(rhs)))
        y = run(xb, direct, L, D, U, rhs)[0]
        check_solution(x, np.zeros(2, np.int64), L, D, U, rhs, dtype)
        np.testing.assert_allclose(x, y, rtol=systems.tolerance(dtype, n), atol=systems.tolerance(dtype, n))
    one, _ = factor(xb.xp, *(xb.asarray(a[:1]) for a in (L, D, U)))
    rhs = systems.block_tridiagonal(rng, (3,), n, 2, dtype)[3]
    x = xb.to_numpy(solve(xb.xp, one, xb.asarray(rhs)))
    check_solution(x, np.zeros(3, np.int64), *(np.repeat(a[:1], 3, 0) for a in (L, D, U)), rhs, dtype)


@pytest.mark.parametrize("method", FACTORED)
def test_factor_reports_the_solvers_breakdown(xb, method, rng):
    L, D, U, rhs = systems.block_tridiagonal(rng, (2,), 6, 2, np.float64)
    L[1, 2] = 0
    D[1, 2] = 0
    factor, _, direct = FACTORED[method]
    _, info = factor(xb.xp, *(xb.asarray(a) for a in (L, D, U)))
    np.testing.assert_array_equal(xb.to_numpy(info), run(xb, direct, L, D, U, rhs)[1])


def test_table_binds_block_kernels():
    import array_api_compat.numpy as cnp

    from pcrsolve.kernels.xp import table

    pytest.importorskip("pcrsolve.kernels.xp.tridiagonal")  # written separately
    t = table(cnp)
    assert set(t.block_tridiagonal) == {"sequential", "pcr", "hybrid"}
    assert set(t.block_tridiagonal_factor) == set(t.block_tridiagonal)
    assert set(t.tridiagonal_factor) == set(t.tridiagonal)
    assert t.block_tridiagonal["pcr"].args == (cnp,)
    assert t.block_tridiagonal_factor["sequential"][0].func is block.block_thomas_factor


def test_strict_backend_forbids_host_values(monkeypatch):
    xb = kernel_namespace("array_api_strict", monkeypatch)
    a = xb.asarray(np.ones(2))
    for convert in (bool, float, int, np.asarray):
        with pytest.raises(RuntimeError):
            convert(a[0] if convert is not np.asarray else a)
