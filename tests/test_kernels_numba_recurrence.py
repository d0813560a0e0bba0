"""Numba linear-recurrence kernels against the plain loop (also run with NUMBA_DISABLE_JIT=1)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
import systems
from conftest import unchanged
from pcrsolve.kernels.numba import block, recurrence

pytestmark = pytest.mark.kernels

KERNELS = {
    (kind, method): getattr(recurrence, f"{kind}_{method}")
    for kind in ("dense", "diag")
    for method in ("sequential", "pcr", "hybrid")
}
NS = (0, 1, 2, 3, 7, 8, 9, 16, 33)
MS = (1, 2, 3)
TWINS = ("serial",) if numba.config.DISABLE_JIT else ("serial", "parallel")


@pytest.fixture(params=TWINS)
def twin(request, monkeypatch):
    """Force the serial or the parallel compiled copy of the kernels."""
    limit = 0 if request.param == "parallel" else np.inf
    monkeypatch.setattr(block, "PARALLEL_MIN_WORK", limit)
    return request.param


def assert_recurrence(x, A, b, x0, dtype):
    expected = reference.linear_recurrence(A, b, x0)
    tol = systems.tolerance(dtype, b.shape[-2])
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(x, expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize(("kind", "method"), KERNELS)
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n", NS)
def test_matches_loop(kind, method, n, m, dtype, rng, twin):
    nb = (1, 2, 3)[(n + m) % 3]
    A, b, x0 = systems.recurrence(rng, (nb,), n, m, dtype, dense=kind == "dense")
    x = KERNELS[kind, method](A, b, x0)
    assert x.shape == (nb, n, m) and x.dtype == dtype
    if n:
        assert_recurrence(x, A, b, x0, dtype)


@pytest.mark.parametrize("kind", ["dense", "diag"])
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n", NS)
def test_sequential_time_invariant_A(kind, n, m, dtype, rng, twin):
    """``invariant_A``: a sequence axis of length 1 in ``A`` means the same ``A`` at every
    step, bit for bit what the repeated array gives."""
    kernel = KERNELS[kind, "sequential"]
    assert kernel.invariant_A
    nb = (1, 3, 6)[(n + m) % 3]  # 6 * m chains: tasks of four chains and a remainder
    A, b, x0 = systems.recurrence(rng, (nb,), 1, m, dtype, dense=kind == "dense")
    b = systems.recurrence(rng, (nb,), n, m, dtype, dense=kind == "dense")[1]
    full = np.ascontiguousarray(np.broadcast_to(A, (nb, n, *A.shape[2:])))
    with unchanged(A, b, x0):
        x = kernel(A, b, x0)
    np.testing.assert_array_equal(x, kernel(full, b, x0))
    if n:
        assert_recurrence(x, full, b, x0, dtype)


@pytest.mark.parametrize(("kind", "method"), KERNELS)
@pytest.mark.parametrize(("nb", "n", "m"), [(0, 5, 2), (2, 0, 2), (0, 0, 1)])
def test_empty(kind, method, nb, n, m, dtype):
    A = np.zeros((nb, n, m, m) if kind == "dense" else (nb, n, m), dtype)
    x = KERNELS[kind, method](A, np.zeros((nb, n, m), dtype), np.zeros((nb, m), dtype))
    assert x.shape == (nb, n, m) and x.dtype == dtype


@pytest.mark.parametrize("kind", ["dense", "diag"])
@pytest.mark.parametrize("chunks", [1, 2, 3, 5, 8, 32, 100])
@pytest.mark.parametrize(("nb", "n", "m"), [(1, 33, 1), (2, 17, 3), (3, 40, 2)])
def test_hybrid_forced_chunks(kind, chunks, nb, n, m, dtype, rng, twin):
    A, b, x0 = systems.recurrence(rng, (nb,), n, m, dtype, dense=kind == "dense")
    x = KERNELS[kind, "hybrid"](A, b, x0, chunks=chunks)
    assert_recurrence(x, A, b, x0, dtype)


@pytest.mark.parametrize("kind", ["dense", "diag"])
def test_time_varying_and_expanding_steps(kind, rng, twin):
    """Non-contracting steps mixed in (|A| up to 1.5): the methods still agree."""
    A, b, x0 = systems.recurrence(rng, (2,), 30, 2, np.float64, dense=kind == "dense", radius=2.5)
    for method in ("sequential", "pcr", "hybrid"):
        assert_recurrence(KERNELS[kind, method](A, b, x0), A, b, x0, np.float64)


@pytest.mark.parametrize(("kind", "method"), KERNELS)
def test_inputs_unchanged_and_read_only(kind, method, rng, twin):
    A, b, x0 = systems.recurrence(rng, (3,), 37, 3, np.complex128, dense=kind == "dense")
    for a in (A, b, x0):
        a.flags.writeable = False
    with unchanged(A, b, x0):
        x = KERNELS[kind, method](A, b, x0)
    assert_recurrence(x, A, b, x0, np.complex128)


def test_iir_filter_matches_lfilter(rng):
    """A first-order IIR filter is the diagonal recurrence with m = 1."""
    from scipy.signal import lfilter

    a = np.array([0.5, -0.9, 0.99])
    u = rng.standard_normal((3, 40))
    A = np.repeat(a[:, None, None], 40, axis=1)
    expected = np.stack([lfilter([1.0], [1.0, -a[i]], u[i]) for i in range(3)])
    for method in ("sequential", "pcr", "hybrid"):
        x = KERNELS["diag", method](A, u[:, :, None].copy(), np.zeros((3, 1)))
        np.testing.assert_allclose(x[:, :, 0], expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25 if numba.config.DISABLE_JIT else 60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    nb=st.integers(1, 3),
    n=st.integers(1, 40),
    m=st.integers(1, 4),
    dtype=st.sampled_from(systems.DTYPES),
    kind=st.sampled_from(["dense", "diag"]),
    chunks=st.integers(1, 40),
    radius=st.floats(0.0, 0.99),
)
def test_property_pcr_and_hybrid_match_sequential(seed, nb, n, m, dtype, kind, chunks, radius):
    rng = np.random.default_rng(seed)
    A, b, x0 = systems.recurrence(rng, (nb,), n, m, dtype, dense=kind == "dense", radius=radius)
    x = KERNELS[kind, "sequential"](A, b, x0)
    tol = systems.tolerance(dtype, n)
    scale = max(1.0, float(np.abs(x).max()))
    for y in (KERNELS[kind, "pcr"](A, b, x0), KERNELS[kind, "hybrid"](A, b, x0, chunks=chunks)):
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * scale)
