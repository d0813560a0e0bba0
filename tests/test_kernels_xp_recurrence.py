"""The xp linear-recurrence kernels against the plain-loop reference, on NumPy and array_api_strict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
import systems
from conftest import kernel_namespace
from pcrsolve.kernels.xp import recurrence

pytestmark = pytest.mark.kernels

NS = (0, 1, 2, 3, 7, 8, 9, 16, 33)
MS = (1, 2, 3)
BATCHES = (1, 3)
KINDS = ("dense", "diag")
METHODS = ("sequential", "pcr", "hybrid")
CHUNKS = (1, 2, 3, 4, 7, 100)


def kernel(kind, method):
    return getattr(recurrence, f"{kind}_{method}")


def _wide(a):
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def run(xb, f, A, b, x0, **kwargs):
    """Call kernel ``f`` on backend copies of the NumPy inputs; check they are unchanged."""
    args = [xb.asarray(a) for a in (A, b, x0)]
    before = [np.array(xb.to_numpy(a), copy=True) for a in args]
    x = f(xb.xp, *args, **kwargs)
    for a, c in zip(args, before):
        np.testing.assert_array_equal(xb.to_numpy(a), c, err_msg="an input array was modified")
    return xb.to_numpy(x)


def check(x, A, b, x0, dtype):
    assert x.shape == b.shape and x.dtype == np.dtype(dtype)
    if x.size == 0:
        return
    ref = reference.linear_recurrence(_wide(A), _wide(b), _wide(x0))
    err = np.max(np.abs(x - ref)) / max(1.0, np.max(np.abs(ref)))
    tol = systems.tolerance(dtype, b.shape[1])
    assert err <= tol, (err, tol)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(xb, dtype, kind, method, rng):
    for n in NS:
        for m in MS:
            for batch in BATCHES:
                A, b, x0 = systems.recurrence(rng, (batch,), n, m, dtype, dense=kind == "dense")
                check(run(xb, kernel(kind, method), A, b, x0), A, b, x0, dtype)


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("kind", KINDS)
def test_hybrid_forced_chunks(xb, dtype, kind, chunks, rng):
    for n in NS:
        for m in (1, 3):
            A, b, x0 = systems.recurrence(rng, (2,), n, m, dtype, dense=kind == "dense")
            x = run(xb, kernel(kind, "hybrid"), A, b, x0, chunks=chunks)
            check(x, A, b, x0, dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, 1, 5])
def test_empty_batch(xb, kind, method, n, rng):
    A, b, x0 = systems.recurrence(rng, (0,), n, 2, np.float64, dense=kind == "dense")
    x = run(xb, kernel(kind, method), A, b, x0)
    assert x.shape == (0, n, 2) and x.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_expanding_recurrence(xb, kind, method, rng):
    # Growth (|A| about 1.5): relative accuracy is what a sequential loop gives.
    A, b, x0 = systems.recurrence(rng, (2,), 40, 3, np.float64, dense=kind == "dense", radius=3.0)
    check(run(xb, kernel(kind, method), A, b, x0), A, b, x0, np.float64)


@pytest.mark.parametrize("method", METHODS)
def test_dense_with_diagonal_matrices_matches_diag(xb, method, rng):
    A, b, x0 = systems.recurrence(rng, (3,), 17, 3, np.complex128, dense=False)
    Ad = A[..., None] * np.eye(3)
    x_dense = run(xb, kernel("dense", method), Ad, b, x0)
    x_diag = run(xb, kernel("diag", method), A, b, x0)
    np.testing.assert_allclose(x_dense, x_diag, rtol=1e-13, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(
    backend=st.sampled_from(("numpy", "array_api_strict")),
    dtype=st.sampled_from(systems.DTYPES),
    kind=st.sampled_from(KINDS),
    n=st.integers(0, 40),
    m=st.integers(1, 3),
    batch=st.integers(0, 3),
    chunks=st.one_of(st.none(), st.integers(1, 50)),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_all_methods_agree_with_reference(backend, dtype, kind, n, m, batch, chunks, seed):
    rng = np.random.default_rng(seed)
    A, b, x0 = systems.recurrence(rng, (batch,), n, m, dtype, dense=kind == "dense")
    with pytest.MonkeyPatch.context() as mp:
        xb = kernel_namespace(backend, mp)
        for method in METHODS:
            kwargs = {"chunks": chunks} if method == "hybrid" else {}
            check(run(xb, kernel(kind, method), A, b, x0, **kwargs), A, b, x0, dtype)
