"""solve_autoregressive against position-by-position loops, on every method, layout and backend."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pcrsolve as pcr
from conftest import count_host_syncs, hide_tqdm, unchanged
from pcrsolve.chain import _policy

FLOATS = [np.float32, np.float64]
BATCHES = [(), (3,), (2, 3)]
# method -> extra options
METHODS = {
    "jacobi": {},
    "sequential": {},
    "jacobi_gs": {"block_size": 7},
    "gs_jacobi": {"window": 9},
    "newton": {"jac": True},
    "newton_jvp": {"jvp": True},
    "newton_banded": {"jvp": True, "bandwidth": 4},
    "newton_window": {"jac": True, "window": 11},
}


@pytest.fixture
def no_fallback(monkeypatch):
    """Disable the cost rules, so that the sweeps alone decide."""
    monkeypatch.setattr(_policy, "should_stop", lambda *args, **kwargs: None)


# --------------------------------------------------------------------------- models and references


class DenseAR:
    """``x = u + a tanh(x W^T)`` with ``W`` strictly lower triangular: every position reads all earlier."""

    def __init__(self, rng, n, batch=(), dtype=np.float64, a=0.5, band=None):
        W = np.tril(rng.standard_normal((n, n)), -1) / math.sqrt(n if band is None else band)
        if band is not None:  # position i reads only i - band .. i - 1
            W = np.triu(W, -band)
        self.W = W.astype(dtype)
        self.u = rng.standard_normal((*batch, n)).astype(dtype)
        self.a = dtype(a)

    def __call__(self, x):
        return self.u + self.a * np.tanh(x @ self.W.T)

    def _d(self, x):
        return self.a * (1 - np.tanh(x @ self.W.T) ** 2)

    def jac(self, x):
        return self._d(x)[..., :, None] * self.W

    def jvp(self, x, v):
        return self._d(x) * (v @ self.W.T)


def gauss_seidel(f, x_init, axis=-1):
    """Sampling position by position: the plain loop, on a copy."""
    x = np.moveaxis(np.array(x_init, dtype=np.result_type(x_init, np.float32), copy=True), axis, -1)
    for i in range(x.shape[-1]):
        x[..., i] = np.moveaxis(f(np.moveaxis(x, -1, axis)), axis, -1)[..., i]
    return np.moveaxis(x, -1, axis)


def options(model, name):
    opts = dict(METHODS[name])
    if opts.pop("jac", False):
        opts["jac"] = model.jac
    if opts.pop("jvp", False):
        opts["jvp"] = model.jvp
    return {"method": name.split("_")[0] if name.startswith("newton") else name, **opts}


def assert_close(a, b, dtype, scale=1.0):
    tol = (2e-5 if dtype == np.float32 else 1e-10) * scale
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_methods_match_the_loop(name, batch, dtype, rng):
    n = 40
    model = DenseAR(rng, n, batch, dtype, band=4 if name == "newton_banded" else None)
    x_init = np.zeros((*batch, n), dtype=dtype)
    with unchanged(x_init, model.W, model.u):
        sol = pcr.solve_autoregressive(model, x_init, **options(model, name))
    assert sol.x.shape == x_init.shape and sol.x.dtype == dtype
    assert sol.converged and sol.status in ("converged", "sequential")
    assert_close(sol.x, gauss_seidel(model, x_init), dtype)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "sequential"])
def test_sweeps_alone_converge_in_few_calls(name, rng, no_fallback):
    n = 60
    model = DenseAR(rng, n, (2,), band=4 if name == "newton_banded" else None)
    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), **options(model, name))
    assert sol.status == "converged", sol.message
    assert_close(sol.x, gauss_seidel(model, np.zeros((2, n))), np.float64)
    assert len(sol.residuals) <= (n if name == "gs_jacobi" else 30)  # a window of 9 slides slowly
    if name in ("newton", "newton_jvp", "newton_banded"):
        assert sol.iterations <= 8


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_sequence_axis_anywhere(axis, rng):
    n = 30
    model = DenseAR(rng, n, (2, 3))  # canonical (2, 3, n)
    shape = list(model.u.shape)
    shape.insert(axis % 3, shape.pop())

    def func(x):  # the same model with its sequence axis at `axis`
        return np.moveaxis(model(np.moveaxis(x, axis, -1)), -1, axis)

    def jac(x):
        return model.jac(np.moveaxis(x, axis, -1))

    x_init = np.zeros(shape)
    expected = gauss_seidel(func, x_init, axis)
    for kw in ({}, {"method": "newton", "jac": jac}, {"method": "jacobi_gs", "block_size": 4}):
        sol = pcr.solve_autoregressive(func, x_init, axis=axis, **kw)
        assert sol.x.shape == tuple(shape)
        assert_close(sol.x, expected, np.float64)


# --------------------------------------------------------------------------- exactness and identities


def masked_relu(rng, n, batch=(3,), hidden=32):
    """A MADE-like masked ReLU network: the masks make position i read positions < i exactly."""
    deg_in = np.arange(n)
    deg_h = rng.integers(0, n - 1, hidden)
    W1 = rng.standard_normal((hidden, n)) * (deg_h[:, None] >= deg_in[None, :]) / math.sqrt(n)
    W2 = rng.standard_normal((n, hidden)) * (deg_in[:, None] > deg_h[None, :]) / math.sqrt(hidden)
    u = rng.standard_normal((*batch, n))
    return lambda x: u + np.maximum(x @ W1.T, 0.0) @ W2.T


def test_tol_zero_is_bitwise_the_loop(rng):
    n = 64
    f = masked_relu(rng, n)
    x_init = rng.standard_normal((3, n))
    expected = gauss_seidel(f, x_init)
    for kw in (
        {"method": "jacobi"},
        {"method": "gs_jacobi", "window": 16},
        {"method": "jacobi_gs", "block_size": 8},
    ):
        sol = pcr.solve_autoregressive(f, x_init, tol=0, **kw)
        np.testing.assert_array_equal(sol.x, expected)
        if kw["method"] == "jacobi":
            assert sol.n_evals < n


def test_worst_case_takes_exactly_n_sweeps(no_fallback):
    """``f_i = x_{i-1} + 1``: each sweep fixes exactly one more position."""
    n = 25

    def f(x):
        return np.concatenate([np.ones_like(x[..., :1]), x[..., :-1] + 1], axis=-1)

    sol = pcr.solve_autoregressive(f, np.zeros((2, n)))
    np.testing.assert_array_equal(sol.x, np.broadcast_to(np.arange(1.0, n + 1), (2, n)))
    assert sol.status == "converged" and len(sol.residuals) == n and sol.n_evals == n


def jacobi_iterates(f, x, k):
    for _ in range(k):
        x = f(x)
    return x


@pytest.mark.parametrize("k", [1, 3, 8])
def test_hybrid_identities(k, rng):
    """Fixed-iteration mode: jacobi_gs(b=1) == gs_jacobi(window=n) == jacobi == k plain Jacobi sweeps;
    gs_jacobi(window=1) == k positions sampled one by one; jacobi_gs(b=n) == one Gauss-Seidel pass."""
    n = 20
    model = DenseAR(rng, n, (2,), a=0.9)
    x_init = rng.standard_normal((2, n))
    fixed = {"tol": 0, "max_iter": k}
    ref = jacobi_iterates(model, x_init, k)
    for kw in (
        {"method": "jacobi"},
        {"method": "jacobi_gs", "block_size": 1},
        {"method": "gs_jacobi", "window": n},
    ):
        sol = pcr.solve_autoregressive(model, x_init, **fixed, **kw)
        np.testing.assert_array_equal(sol.x, ref)
        assert sol.n_evals == k and len(sol.residuals) == k
    gs = x_init.copy()
    for i in range(k):
        gs[:, i] = model(gs)[:, i]
    sol = pcr.solve_autoregressive(model, x_init, method="gs_jacobi", window=1, **fixed)
    np.testing.assert_array_equal(sol.x[:, :k], gs[:, :k])
    sol = pcr.solve_autoregressive(model, x_init, method="jacobi_gs", block_size=n, **fixed)
    np.testing.assert_array_equal(sol.x, gauss_seidel(model, x_init))
    assert sol.n_evals == n and sol.converged


def test_window_one_is_gauss_seidel(rng, no_fallback):
    n = 15
    model = DenseAR(rng, n, (2,))
    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), method="gs_jacobi", window=1, tol=0)
    np.testing.assert_array_equal(sol.x, gauss_seidel(model, np.zeros((2, n))))
    assert sol.n_evals == n


# --------------------------------------------------------------------------- Newton


def test_newton_solves_a_linear_model_in_one_sweep(rng, no_fallback):
    n = 50
    L = np.tril(rng.standard_normal((n, n)), -1) / math.sqrt(n)
    u = rng.standard_normal((3, n))
    for kw in ({"jac": lambda x: np.broadcast_to(L, (3, n, n))}, {"jvp": lambda x, v: v @ L.T}):
        sol = pcr.solve_autoregressive(lambda x: u + x @ L.T, np.zeros((3, n)), method="newton", **kw)
        assert sol.iterations == 1, sol.residuals
        np.testing.assert_allclose(sol.x, np.linalg.solve(np.eye(n) - L, u.T).T, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_linear_model(dtype, rng, no_fallback):
    n = 30
    L = (np.tril(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)), -1) / n).astype(dtype)
    u = (rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n))).astype(dtype)
    expected = np.linalg.solve(np.eye(n) - L.astype(np.complex128), u.T.astype(np.complex128)).T
    for kw in ({}, {"method": "newton", "jac": lambda x: np.broadcast_to(L, (2, n, n))}):
        sol = pcr.solve_autoregressive(lambda x: u + x @ L.T, np.zeros((2, n), dtype=dtype), **kw)
        assert sol.x.dtype == dtype and sol.converged
        np.testing.assert_allclose(sol.x, expected, rtol=1e-4 if dtype == np.complex64 else 1e-11)


def test_newton_converges_quadratically(rng, no_fallback):
    n = 80
    model = DenseAR(rng, n, (2,), a=1.0)
    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), method="newton", jac=model.jac)
    res = sol.residuals
    assert sol.iterations <= 6
    steps = [(a, b) for a, b in itertools.pairwise(res) if 1e-13 < b and a < 0.1]
    assert steps, res
    assert all(b <= 10 * a * a for a, b in steps), res


@pytest.mark.parametrize("r", [1, 3, 8])
def test_banded_newton_equals_dense_newton(r, rng):
    """bandwidth=r (r jvp tangents, an order-r recurrence) gives dense Newton's iterates."""
    n = 30
    model = DenseAR(rng, n, (2,), band=r)
    x_init = rng.standard_normal((2, n))
    for k in (1, 2):
        fixed = {"tol": 0, "max_iter": k, "method": "newton"}
        dense = pcr.solve_autoregressive(model, x_init, jac=model.jac, **fixed)
        banded = pcr.solve_autoregressive(model, x_init, jvp=model.jvp, bandwidth=r, **fixed)
        from_jac = pcr.solve_autoregressive(model, x_init, jac=model.jac, bandwidth=r, **fixed)
        np.testing.assert_allclose(banded.x, dense.x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(from_jac.x, dense.x, rtol=1e-12, atol=1e-12)
        assert banded.n_jac_evals == k * r


def test_too_small_bandwidth_is_slower_not_wrong(rng, no_fallback):
    n = 40
    model = DenseAR(rng, n, (2,))  # reads every earlier position
    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), method="newton", jvp=model.jvp, bandwidth=2)
    assert_close(sol.x, gauss_seidel(model, np.zeros((2, n))), np.float64)


def test_expensive_jacobian_goes_sequential(rng):
    """n jvp tangents per sweep cost about the whole loop: the cost rules sample one by one."""
    n = 200
    model = DenseAR(rng, n, (2,))

    def jvp(x, v):
        # One tangent at a time, each as dear as a model call on a busy machine: the sleep keeps
        # the cost rules' verdict the same under any load (a sweep costs >= 40 ms, the loop ~5 ms).
        time.sleep(2e-4 * len(v))
        return np.stack([model.jvp(x, vi) for vi in v])

    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), method="newton", jvp=jvp)
    assert sol.status == "sequential" and len(sol.residuals) <= 2, sol.message
    assert_close(sol.x, gauss_seidel(model, np.zeros((2, n))), np.float64)


# --------------------------------------------------------------------------- robustness


def test_nonfinite_iterates_are_held_back(no_fallback):
    """``sqrt`` of a negative guess is NaN, but the answer is finite: NaN never reaches it."""
    n = 20

    def f(x):
        return np.concatenate([np.ones_like(x[..., :1]), 0.5 * np.sqrt(x[..., :-1]) + 1], axis=-1)

    x_init = np.full((2, n), -5.0)
    for kw in ({"method": "jacobi"}, {"method": "newton", "jac": lambda x: _sqrt_jac(x)}):
        sol = pcr.solve_autoregressive(f, x_init, **kw)
        assert np.all(np.isfinite(sol.x)) and sol.converged
        assert_close(sol.x, gauss_seidel(f, np.ones((2, n))), np.float64)


def _sqrt_jac(x):
    n = x.shape[-1]
    J = np.zeros((*x.shape, n))
    i = np.arange(1, n)
    with np.errstate(all="ignore"):
        J[..., i, i - 1] = 0.25 / np.sqrt(x[..., :-1])
    return J


@pytest.mark.parametrize(
    "kw", [{}, {"method": "sequential"}, {"tol": 0, "max_iter": 30}, {"method": "jacobi_gs", "block_size": 4}]
)
def test_nan_in_the_answer_names_position_and_batch_element(kw):
    n = 12

    def f(x):
        y = np.concatenate([np.ones_like(x[..., :1]), x[..., :-1] + 1], axis=-1)
        y[1, 7] = np.nan  # position 7 of batch element 1 is NaN whatever its inputs
        return y

    with pytest.raises(FloatingPointError, match=r"position 7 \(batch element \(1,\)\)"):
        pcr.solve_autoregressive(f, np.zeros((3, n)), **kw)


def test_func_never_sees_the_iterate(rng):
    """A func that writes into its argument cannot corrupt the solve."""
    n = 30
    model = DenseAR(rng, n, (2,))

    def rude(x):
        y = model(x)
        x[...] = 1e6
        return y

    sol = pcr.solve_autoregressive(rude, np.zeros((2, n)))
    assert_close(sol.x, gauss_seidel(model, np.zeros((2, n))), np.float64)


def test_per_batch_convergence(rng, no_fallback):
    """One batch element is constant, the other needs many sweeps: both end exact."""
    n = 30
    model = DenseAR(rng, n, (2,), a=0.9)
    model.W = model.W * np.array([0.0, 1.0])[:, None, None]  # element 0 reads nothing
    model.jac = None

    def f(x):
        return model.u + model.a * np.tanh(np.einsum("bij,bj->bi", model.W, x))

    sol = pcr.solve_autoregressive(f, np.zeros((2, n)))
    assert_close(sol.x, gauss_seidel(f, np.zeros((2, n))), np.float64)
    assert len(sol.residuals) > 2


def test_max_iter_finishes_one_by_one(rng, no_fallback):
    n = 40
    model = DenseAR(rng, n, (2,), a=1.0)
    sol = pcr.solve_autoregressive(model, np.zeros((2, n)), max_iter=2)
    assert sol.status == "sequential" and "max_iter = 2" in sol.message
    assert_close(sol.x, gauss_seidel(model, np.zeros((2, n))), np.float64)


def test_fixed_iterations_report(rng):
    n = 40
    model = DenseAR(rng, n, (2,))
    few = pcr.solve_autoregressive(model, np.zeros((2, n)), tol=0, max_iter=2)
    assert few.status == "max_iter" and not few.converged and few.iterations == 2
    many = pcr.solve_autoregressive(model, np.zeros((2, n)), tol=0, max_iter=n + 5)
    assert many.converged and many.iterations == n
    np.testing.assert_array_equal(many.x, gauss_seidel(model, np.zeros((2, n))))
    windowed = pcr.solve_autoregressive(
        model, np.zeros((2, n)), method="gs_jacobi", window=5, tol=0, max_iter=3
    )
    assert windowed.status == "sequential"  # positions the window never reached were sampled
    assert_close(windowed.x, gauss_seidel(model, np.zeros((2, n))), np.float64)


def test_callback_and_progress(rng, capsys, monkeypatch, no_fallback):
    n = 30
    model = DenseAR(rng, n)
    seen = []
    sol = pcr.solve_autoregressive(model, np.zeros(n), callback=seen.append)
    assert [d["iteration"] for d in seen] == list(range(1, len(sol.residuals) + 1))
    assert seen[-1]["prefix"] == n and seen[-1]["n_evals"] == sol.n_evals
    hide_tqdm(monkeypatch)
    pcr.solve_autoregressive(model, np.zeros(n), progress=True)
    lines = [
        ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("solve_autoregressive: sweep")
    ]
    assert lines and "converged positions" in lines[-1]


def test_empty_tiny_and_integer_inputs(rng):
    empty = pcr.solve_autoregressive(lambda x: x + 1, np.zeros((3, 0)))
    assert empty.x.shape == (3, 0) and empty.converged and empty.n_evals == 0
    one = pcr.solve_autoregressive(lambda x: x * 0 + 2.0, np.zeros((2, 1), dtype=np.int64))
    assert one.x.dtype == np.float64 and np.all(one.x == 2.0)
    single = pcr.solve_autoregressive(lambda x: x * 0 + np.float32(1), np.zeros(4, dtype=np.float32))
    assert single.x.dtype == np.float32


def test_solution_is_frozen(rng):
    sol = pcr.solve_autoregressive(lambda x: x * 0 + 1.0, np.zeros(3))
    with pytest.raises(AttributeError):
        sol.x = None


# --------------------------------------------------------------------------- check_causal


def test_check_causal_passes_a_causal_model(rng):
    model = DenseAR(rng, 30, (2,))
    sol = pcr.solve_autoregressive(model, np.zeros((2, 30)), check_causal=True)
    assert sol.converged and sol.n_evals >= 6


@pytest.mark.parametrize("leak", ["diagonal", "shift", "global", "one_far_pair"])
def test_check_causal_catches_a_leak(leak, rng):
    n = 40
    W = np.tril(rng.standard_normal((n, n)), -1) / math.sqrt(n)
    if leak == "diagonal":  # an off-by-one mask: every position reads itself
        W += np.diag(rng.standard_normal(n))
    elif leak == "shift":  # a shift by one too few: every position reads the next one
        W += np.diag(rng.standard_normal(n - 1), 1)
    elif leak == "global":  # a normalisation over the whole sequence
        W += 0.1
    else:  # a single leak across a probed split
        W[3, n - 5] = 0.3

    def f(x):
        return np.tanh(x @ W.T) + 1.0

    with pytest.raises(ValueError, match=r"`func` is not causal along axis 1: its output at position \d+"):
        pcr.solve_autoregressive(f, np.zeros((2, n)), check_causal=True)


# --------------------------------------------------------------------------- array_api_strict


def _strict_model(case, model):
    xp = case.xp
    W, u, a = case.asarray(model.W), case.asarray(model.u), float(model.a)
    Wt = xp.matrix_transpose(W)

    def f(x):
        return u + a * xp.tanh(xp.matmul(x, Wt))

    def jac(x):
        d = a * (1 - xp.tanh(xp.matmul(x, Wt)) ** 2)
        return d[..., :, None] * W

    def jvp(x, v):
        d = a * (1 - xp.tanh(xp.matmul(x, Wt)) ** 2)
        return d * xp.matmul(v, Wt)

    return f, jac, jvp


def test_strict_array_api_path(rng, monkeypatch):
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    n = 24
    model = DenseAR(rng, n, (2,), band=3)
    f, jac, jvp = _strict_model(case, model)
    x_init = case.asarray(np.zeros((2, n)))
    expected = gauss_seidel(model, np.zeros((2, n)))
    for kw in (
        {},
        {"method": "sequential"},
        {"method": "jacobi_gs", "block_size": 5},
        {"method": "gs_jacobi", "window": 6},
        {"method": "newton", "jac": jac},
        {"method": "newton", "jvp": jvp},
        {"method": "newton", "jvp": jvp, "bandwidth": 3},
        {"method": "newton", "jac": jac, "bandwidth": 3, "window": 10},
        {"tol": 0, "max_iter": n},
        {"check_causal": True},
    ):
        sol = pcr.solve_autoregressive(f, x_init, **kw)
        assert isinstance(sol.x, type(x_init)) and sol.converged, kw
        assert_close(case.to_numpy(sol.x), expected, np.float64)


def test_fixed_mode_does_not_synchronise(rng, monkeypatch):
    """tol=0, max_iter=K: host conversions do not grow with K (none inside the loop)."""
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    n = 40
    model = DenseAR(rng, n, (2,))
    f, jac, _ = _strict_model(case, model)
    counts = count_host_syncs(monkeypatch, case.xp)
    syncs = []
    for k in (3, 12):
        for kw in ({}, {"method": "newton", "jac": jac}, {"method": "jacobi_gs", "block_size": 4}):
            counts["n"] = 0
            sol = pcr.solve_autoregressive(f, case.asarray(np.zeros((2, n))), tol=0, max_iter=k, **kw)
            syncs.append(counts["n"] - len(sol.residuals))  # after the loop: one per residual, plus a few
    assert syncs[:3] == syncs[3:], syncs


# --------------------------------------------------------------------------- hypothesis


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 50),
    batch=st.sampled_from([(), (2,), (2, 2)]),
    band=st.one_of(st.none(), st.integers(1, 6)),
    a=st.floats(0.0, 1.5),
    name=st.sampled_from([*METHODS, "jacobi_gs_1", "gs_jacobi_1"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_causal_models(n, batch, band, a, name, seed):
    rng = np.random.default_rng(seed)
    model = DenseAR(rng, n, batch, a=a, band=band)
    if name == "newton_banded":
        opts = {"method": "newton", "jvp": model.jvp, "bandwidth": band or n}
    elif name.endswith("_1"):
        opts = {"method": name[:-2], "block_size" if name.startswith("jacobi_gs") else "window": 1}
    else:
        opts = options(model, name)
    x_init = rng.standard_normal((*batch, n))
    sol = pcr.solve_autoregressive(model, x_init, **opts)
    assert sol.converged
    assert_close(sol.x, gauss_seidel(model, x_init), np.float64, scale=10)
