"""solve_chain and sequential_chain against hand-written loops, on every method and path."""

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
from pcrsolve.chain import _loop, _policy, _probe, _sweep

METHODS = ["newton", "diagonal", "picard", "jacobi", "sequential"]
BATCHES = [(), (3,), (2, 3)]
FLOATS = [np.float32, np.float64]


# --------------------------------------------------------------------------- chains


class MLP:
    """``x_k = tanh(W_k x + b_k)`` (or ``x + h tanh(W_k x + b_k)`` when ``residual``), any batch.

    Written as a user would in NumPy, vectorized over the step axis, with every derivative.
    """

    def __init__(self, W, b, residual=False, h=0.1):
        self.W, self.b, self.residual, self.h = W, b, residual, h
        self.calls = {"step": [], "jac": []}

    def _pre(self, x, k):
        nb = x.ndim - 2
        Wk = self.W[k].reshape(len(k), *(1,) * nb, *self.W.shape[1:])
        bk = self.b[k].reshape(len(k), *(1,) * nb, self.b.shape[-1])
        return (Wk @ x[..., None])[..., 0] + bk, Wk

    def step(self, x, k):
        self.calls["step"].append(len(k))
        pre, _ = self._pre(x, k)
        return x + self.h * np.tanh(pre) if self.residual else np.tanh(pre)

    def _d(self, x, k):
        pre, Wk = self._pre(x, k)
        d = 1 - np.tanh(pre) ** 2
        return (self.h * d if self.residual else d), Wk

    def jac(self, x, k):
        self.calls["jac"].append(len(k))
        d, Wk = self._d(x, k)
        J = d[..., :, None] * Wk
        if self.residual:
            J = J + np.eye(x.shape[-1], dtype=x.dtype)
        return J

    def jac_diag(self, x, k):
        d, Wk = self._d(x, k)
        diag = d * np.diagonal(Wk, axis1=-2, axis2=-1)
        return diag + 1 if self.residual else diag

    def jvp(self, x, k, v):
        d, Wk = self._d(x, k)
        out = d * (Wk @ v[..., None])[..., 0]
        return v + out if self.residual else out

    def vjp(self, x, k, u):
        d, Wk = self._d(x, k)
        out = (np.swapaxes(Wk, -1, -2) @ (d * u)[..., None])[..., 0]
        return u + out if self.residual else out


def mlp(rng, n, m, dtype=np.float64, scale=0.5, residual=False, h=0.1):
    W = (rng.standard_normal((n, m, m)) * scale / np.sqrt(m)).astype(dtype)
    b = rng.standard_normal((n, m)).astype(dtype)
    return MLP(W, b, residual, h)


def hand_loop(chain, x0, n):
    """The loop a user writes: one step at a time with plain matrix-vector products."""
    x, out = np.asarray(x0), []
    for k in range(n):
        pre = np.einsum("ij,...j->...i", chain.W[k], x) + chain.b[k]
        x = x + chain.h * np.tanh(pre) if chain.residual else np.tanh(pre)
        out.append(x)
    return np.stack(out) if out else np.zeros((0, *np.shape(x0)))


def function_chain(ch, *names):
    return pcr.FunctionChain(ch.step, **{name: getattr(ch, name) for name in names})


def assert_states(actual, expected, dtype, scale=1.0):
    tol = (2e-4 if dtype == np.float32 else 1e-9) * scale
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


@pytest.fixture
def no_fallback(monkeypatch):
    """Disable the cost model and rules, so that parallel-path behaviour is deterministic."""
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_methods_match_hand_loop(method, batch, dtype, rng):
    n, m = 48, 4
    ch = mlp(rng, n, m, dtype, residual=method == "picard")
    x0 = rng.standard_normal((*batch, m)).astype(dtype)
    expected = hand_loop(ch, x0.astype(np.float64), n)
    with unchanged(x0, ch.W, ch.b):
        sol = pcr.solve_chain(ch, x0, n, method=method)
    assert sol.states.shape == (n, *batch, m) and sol.states.dtype == dtype
    assert sol.converged and sol.status in ("converged", "sequential")
    assert_states(sol.states, expected, dtype)


@pytest.mark.parametrize("method", ["newton", "diagonal", "picard", "jacobi"])
def test_parallel_path_converges(method, rng, no_fallback):
    """With the timing rules off, each method converges by sweeps alone."""
    n, m = 200, 3
    ch = mlp(rng, n, m, residual=method == "picard", scale=0.4)
    x0 = rng.standard_normal((2, m))
    sol = pcr.solve_chain(ch, x0, n, method=method)
    assert sol.status == "converged", sol.message
    assert 1 <= sol.iterations <= len(sol.residuals)
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)
    if method == "newton":
        assert sol.iterations <= 8


@pytest.mark.kernels  # also run without JIT: the fused Numba passes
@pytest.mark.parametrize("method", ["newton", "diagonal", "picard", "jacobi"])
@pytest.mark.parametrize("window", [None, 50])
def test_blocked_cpu_sweeps_match_one_block(method, window, rng, no_fallback, monkeypatch):
    """CPU sweeps run on blocks of steps with the linear step carried across blocks: the
    same iterates, sweep by sweep, as one block per sweep."""
    n, m = 120, 3
    ch = mlp(rng, n, m, residual=method == "picard", scale=0.4)
    x0 = rng.standard_normal((2, m))
    whole = pcr.solve_chain(function_chain(ch, "jac"), x0, n, method=method, window=window)
    assert max(ch.calls["step"][3:]) > 7  # the probes are single steps
    ch.calls["step"].clear()
    monkeypatch.setattr(_sweep, "_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_MIN_BLOCK", 7)  # does not divide n, the window or p
    blocked = pcr.solve_chain(function_chain(ch, "jac"), x0, n, method=method, window=window)
    assert max(ch.calls["step"]) == 7
    assert blocked.status == whole.status == "converged"
    np.testing.assert_allclose(blocked.residuals, whole.residuals, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(blocked.states, whole.states, rtol=1e-13, atol=1e-13)
    assert_states(blocked.states, hand_loop(ch, x0, n), np.float64)


@pytest.mark.kernels
@pytest.mark.parametrize("kind", ["dense", "diag", "identity", "zero"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_linear_block_matches_linear_recurrence(kind, dtype, rng):
    """The CPU sweep's one-pass linear step against the linear layer's recurrence solver."""
    from pcrsolve.chain._fused import linear_block

    s, B, m, n, a = 9, 3, 4, 20, 6

    def draw(*shape):
        x = rng.standard_normal(shape)
        return (x + 1j * rng.standard_normal(shape)).astype(dtype) if dtype == np.complex128 else x

    F, X, carry = draw(s, B, m), draw(n, B, m), draw(B, m)
    A = draw(s, B, m, m) if kind == "dense" else draw(s, B, m)
    dX = np.empty_like(F)
    with unchanged(A, F, X, carry):
        linear_block(None if kind in ("identity", "zero") else A, F, X, a, carry, kind, dX)
    R = F - X[a : a + s]
    if kind == "zero":
        ref = R
    else:
        Ak = {"dense": A, "diag": A, "identity": np.ones((s, B, m), dtype)}[kind]
        Ak = np.moveaxis(Ak, 0, 1)  # batch-major for linear_recurrence
        ref = np.moveaxis(pcr.linear_recurrence(Ak, np.moveaxis(R, 0, 1), carry, method="sequential"), 1, 0)
    np.testing.assert_allclose(dX, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["newton", "sequential"])
def test_chain_never_sees_the_callers_x0(method, rng):
    """Even a chain that writes into x_prev cannot change the caller's x0."""
    ch = mlp(rng, 40, 3, scale=0.4)
    seen = []

    def step(x, k):
        seen.append(x)
        out = ch.step(x, k)
        x[...] = 0.0
        return out

    x0 = rng.standard_normal(3)
    with unchanged(x0):
        pcr.solve_chain(pcr.FunctionChain(step, jac=ch.jac), x0, 40, method=method)
        pcr.sequential_chain(pcr.FunctionChain(step), x0, 40)
    assert not any(np.shares_memory(x, x0) for x in seen)


def test_sequential_chain_matches_hand_loop(rng):
    ch = mlp(rng, 30, 5)
    x0 = rng.standard_normal((2, 5))
    np.testing.assert_allclose(
        pcr.sequential_chain(ch, x0, 30), hand_loop(ch, x0, 30), rtol=1e-13, atol=1e-13
    )
    assert len(ch.calls["step"]) == 30 and set(ch.calls["step"]) == {1}


def test_jac_and_jvp_only_agree(rng, no_fallback):
    n, m = 100, 4
    ch = mlp(rng, n, m)
    x0 = rng.standard_normal((3, m))
    with_jac = pcr.solve_chain(function_chain(ch, "jac"), x0, n)
    with_jvp = pcr.solve_chain(function_chain(ch, "jvp"), x0, n)
    assert with_jac.status == with_jvp.status == "converged"
    assert with_jac.iterations == with_jvp.iterations
    assert with_jvp.n_jac_evals == with_jac.n_jac_evals > 0
    assert_states(with_jvp.states, with_jac.states, np.float64)
    diag = pcr.solve_chain(function_chain(ch, "jvp"), x0, n, method="diagonal")
    assert_states(diag.states, with_jac.states, np.float64)


def test_linearize_is_used_when_present(rng, no_fallback):
    ch = mlp(rng, 64, 3)
    used = []

    class Fused:
        def step(self, x, k):
            return ch.step(x, k)

        def linearize(self, x, k):
            used.append(len(k))
            return ch.step(x, k), ch.jac(x, k)

    sol = pcr.solve_chain(Fused(), np.zeros(3), 64)
    assert used and sol.status == "converged"
    assert_states(sol.states, hand_loop(ch, np.zeros(3), 64), np.float64)


@pytest.mark.parametrize("window", [8, 10, 64, 1000])
def test_window(window, rng, no_fallback):
    n, m = 64, 3
    ch = mlp(rng, n, m)
    x0 = rng.standard_normal(m)
    sol = pcr.solve_chain(ch, x0, n, window=window)
    assert sol.status == "converged"
    assert max(ch.calls["jac"]) <= min(window, n)  # Jacobians never for more than W steps
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)


def test_window_with_timing_rules(rng):
    ch = mlp(rng, 100, 3)
    sol = pcr.solve_chain(ch, np.ones(3), 100, window=7, method="diagonal")
    assert_states(sol.states, hand_loop(ch, np.ones(3), 100), np.float64)


class SlowJacobian(MLP):
    """An MLP whose Jacobians cost 50 us per step: a whole sweep cannot pay."""

    def jac(self, x, k):
        time.sleep(50e-6 * len(k))
        return super().jac(x, k)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("method", ["auto", "newton"])
def test_expensive_jacobians_go_sequential_at_once(backend, method, rng):
    """Jacobians at 50 us per step (ten times a step of the loop): the cost probe evaluates a
    few exact steps, finds that sweeps would cost more than the loop ("auto") or more than
    twice the loop (an explicit method), and runs the loop; the answer is the loop's."""
    n, m = 1024, 3
    base = mlp(rng, n, m, scale=0.4)
    ch = SlowJacobian(base.W, base.b)
    x0 = rng.standard_normal(m)
    sol = pcr.solve_chain(ch, x0, n, backend=backend, method=method)
    assert sol.status == "sequential" and sol.route == "sequential", sol.route_reason
    assert sol.route_reason.startswith("auto" if method == "auto" else "method='newton'")
    assert sol.route_reason.endswith("the loop") and "ran steps" in sol.message
    assert sol.iterations == 0 and sol.residuals == ()
    assert 0 < sum(ch.calls["jac"]) <= 2 * _probe._SWEEP_PROBE_MAX  # the probe's evaluations only
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_warm_start_from_the_answer(dtype, rng, no_fallback):
    n, m = 128, 4
    ch = mlp(rng, n, m, dtype)
    x0 = rng.standard_normal((3, m)).astype(dtype)
    answer = pcr.sequential_chain(ch, x0, n)
    with unchanged(answer):
        sol = pcr.solve_chain(ch, x0, n, x_init=answer, method="newton")
    assert sol.iterations <= 1 and sol.status == "converged"
    assert len(sol.residuals) == 1  # one sweep confirms it
    assert_states(sol.states, answer, dtype)


class Linear:
    def __init__(self, A, c):
        self.A, self.c = A, c

    def step(self, x, k):
        return (self.A[k] @ x[..., None])[..., 0] + self.c[k]

    def jac(self, x, k):
        return self.A[k]


@pytest.mark.parametrize("method", ["newton", "diagonal"])
def test_linear_chain_converges_in_one_iteration(method, rng, no_fallback):
    n, m = 1000, 4
    if method == "newton":
        A = rng.standard_normal((n, m, m)) * 0.9 / np.sqrt(m)
    else:
        A = np.stack([np.diag(d) for d in rng.uniform(-1.2, 1.2, (n, m))])
    ch = Linear(A, rng.standard_normal((n, m)))
    if method == "diagonal":
        ch.jac_diag = lambda x, k: np.diagonal(A[k], axis1=-2, axis2=-1).copy()
    x0 = rng.standard_normal(m)
    sol = pcr.solve_chain(ch, x0, n, method=method)
    assert sol.iterations == 1 and sol.status == "converged", sol.message
    assert len(sol.residuals) == 2  # the second sweep only confirms
    ref = pcr.sequential_chain(ch, x0, n)
    np.testing.assert_allclose(sol.states, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


class Logistic:
    r = 3.9

    def step(self, x, k):
        return self.r * x * (1 - x)

    def jac(self, x, k):
        return (self.r * (1 - 2 * x))[..., None]


@pytest.mark.parametrize("method", ["newton", "diagonal", "jacobi", "picard"])
def test_chaotic_logistic_map(method):
    n = 2000
    ch = Logistic()
    ch.jac_diag = lambda x, k: Logistic.r * (1 - 2 * x)
    x0 = np.array([[0.2], [0.31], [0.77]])
    sol = pcr.solve_chain(ch, x0, n, method=method)
    ref = pcr.sequential_chain(ch, x0, n)
    assert np.all(np.isfinite(sol.states))
    np.testing.assert_array_equal(sol.states, ref)  # bit for bit: any error would grow to O(1)
    assert sol.converged and sol.n_step_evals <= 6 * n, (sol.n_step_evals, sol.message)


def test_expanding_mlp(rng):
    """Weights of spectral norm 2.5: the linearization expands; the answer is still the loop's."""
    n, m = 400, 4
    Q = np.linalg.qr(rng.standard_normal((n, m, m)))[0]
    ch = MLP(2.5 * Q, 0.1 * rng.standard_normal((n, m)))
    assert np.all(np.linalg.norm(ch.W, 2, axis=(1, 2)) >= 2)
    x0 = rng.standard_normal(m)
    sol = pcr.solve_chain(ch, x0, n)
    ref = pcr.sequential_chain(ch, x0, n)
    assert np.all(np.isfinite(sol.states)) and sol.converged
    # Each state follows from the previous one to within tol (the chain amplifies any
    # difference, so compare step by step rather than with the loop's far end).
    prev = np.concatenate([x0[None], sol.states[:-1]])
    resid = sol.states - ch.step(prev, np.arange(n))
    assert np.max(np.abs(resid)) < 1e-9
    assert sol.n_step_evals <= 40 * n
    np.testing.assert_allclose(sol.states[:50], ref[:50], rtol=1e-6, atol=1e-6)


class NaNAt:
    """``x -> 0.5 x``, except that step ``bad`` returns NaN for batch element ``elem``."""

    def __init__(self, bad, elem=None):
        self.bad, self.elem = bad, elem

    def step(self, x, k):
        out = 0.5 * x + 1.0
        hit = (k == self.bad).reshape(-1, *(1,) * (x.ndim - 1))
        if self.elem is None:
            return np.where(hit, np.nan, out)
        mask = np.zeros(x.shape[1:-1], dtype=bool)
        mask[self.elem] = True
        return np.where(hit & mask[..., None], np.nan, out)

    def jac(self, x, k):
        return np.broadcast_to(0.5 * np.eye(x.shape[-1]), (*x.shape, x.shape[-1])).copy()


@pytest.mark.parametrize("method", METHODS)
def test_nan_chain_names_the_step(method):
    with pytest.raises(FloatingPointError, match=r"NaN or inf at step 37\b"):
        pcr.solve_chain(NaNAt(37), np.zeros(2), 100, method=method)


def test_nan_chain_names_the_batch_element():
    with pytest.raises(FloatingPointError, match=r"step 5 \(batch element \(1, 2\)\)"):
        pcr.solve_chain(NaNAt(5, (1, 2)), np.zeros((2, 3, 2)), 20)
    with pytest.raises(FloatingPointError, match=r"step 70 \(batch element \(1,\)\)"):
        pcr.sequential_chain(NaNAt(70, (1,)), np.zeros((3, 2)), 100)


def test_nan_in_fixed_iterations():
    with pytest.raises(FloatingPointError, match="at step 2"):
        pcr.solve_chain(NaNAt(2), np.zeros(2), 10, tol=0, max_iter=5)


class Sqrt:
    """``x -> sqrt(x) + 1``: finite on the true path, NaN where a poor iterate goes negative."""

    def step(self, x, k):
        return np.sqrt(x) + 1.0

    def jac(self, x, k):
        return (0.5 / np.sqrt(x))[..., None]


def test_nonfinite_iterates_never_reach_the_user(no_fallback):
    x0 = np.array([1e-6])
    guess = np.full((50, 1), -3.0)  # sqrt of a negative: NaN in the first sweep
    infos = []
    sol = pcr.solve_chain(Sqrt(), x0, 50, x_init=guess, callback=infos.append)
    assert np.all(np.isfinite(sol.states))
    assert any(math.isinf(i["residual"]) for i in infos)
    np.testing.assert_allclose(sol.states, pcr.sequential_chain(Sqrt(), x0, 50), rtol=1e-10)


# --------------------------------------------------------------------------- modes and options


def test_fixed_iterations(rng):
    ch = mlp(rng, 64, 3)
    x0 = rng.standard_normal(3)
    infos = []
    sol = pcr.solve_chain(ch, x0, 64, tol=0, max_iter=3, callback=infos.append)
    assert sol.iterations == 3 and len(sol.residuals) == 3 and len(infos) == 3
    assert [i["iteration"] for i in infos] == [1, 2, 3]
    ref = hand_loop(ch, x0, 64)
    np.testing.assert_allclose(sol.states[:3], ref[:3], rtol=1e-13)  # the exact prefix
    many = pcr.solve_chain(ch, x0, 64, tol=0, max_iter=12)
    assert many.converged and many.status == "converged"
    assert_states(many.states, ref, np.float64)


def test_max_iter_ends_with_the_sequential_result(rng, no_fallback):
    ch = mlp(rng, 100, 3, scale=1.0)
    x0 = rng.standard_normal(3)
    sol = pcr.solve_chain(ch, x0, 100, max_iter=2)
    assert sol.status == "sequential" and sol.converged and "max_iter" in sol.message
    assert len(sol.residuals) == 2
    assert_states(sol.states, hand_loop(ch, x0, 100), np.float64)
    zero = pcr.solve_chain(ch, x0, 100, max_iter=0)
    assert zero.status == "sequential" and zero.residuals == ()
    assert_states(zero.states, hand_loop(ch, x0, 100), np.float64)


def test_damping(rng, no_fallback):
    ch = mlp(rng, 60, 3)
    x0 = rng.standard_normal(3)
    sol = pcr.solve_chain(ch, x0, 60, damping=0.5)
    plain = pcr.solve_chain(ch, x0, 60)
    assert sol.status == "converged" and len(sol.residuals) > len(plain.residuals)
    assert_states(sol.states, hand_loop(ch, x0, 60), np.float64)


def test_callback_and_progress(rng, capsys, monkeypatch, no_fallback):
    ch = mlp(rng, 80, 3)
    infos = []
    sol = pcr.solve_chain(ch, np.zeros(3), 80, callback=infos.append, progress=True)
    assert len(infos) == len(sol.residuals) >= 1
    assert [i["iteration"] for i in infos] == list(range(1, len(infos) + 1))
    assert [i["residual"] for i in infos] == list(sol.residuals)
    assert set(infos[0]) >= {"iteration", "residual", "prefix", "window", "n_step_evals"}
    assert all(a["prefix"] <= b["prefix"] for a, b in itertools.pairwise(infos))
    # Without tqdm: one plain line per sweep on stderr.
    hide_tqdm(monkeypatch)
    capsys.readouterr()
    sol = pcr.solve_chain(ch, np.zeros(3), 80, progress=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("solve_chain: sweep")]
    assert len(lines) == len(sol.residuals)


def test_empty_and_tiny_chains(rng):
    ch = mlp(rng, 3, 2)
    for method in METHODS:
        sol = pcr.solve_chain(ch, np.ones((4, 2)), 0, method=method)
        assert sol.states.shape == (0, 4, 2) and sol.converged and sol.n_step_evals == 0
    assert pcr.sequential_chain(ch, np.ones(2), 0).shape == (0, 2)
    one = pcr.solve_chain(ch, np.ones(2), 1)
    assert_states(one.states, hand_loop(ch, np.ones(2), 1), np.float64)


def test_integer_x0_promotes_and_float32_stays(rng):
    ch = mlp(rng, 10, 2)
    assert pcr.solve_chain(ch, np.array([1, 2]), 10).states.dtype == np.float64
    ch32 = mlp(rng, 10, 2, np.float32)
    assert pcr.solve_chain(ch32, np.ones(2, np.float32), 10).states.dtype == np.float32


def test_solution_is_frozen(rng):
    sol = pcr.solve_chain(mlp(rng, 5, 2), np.ones(2), 5)
    with pytest.raises(AttributeError):
        sol.converged = False


# --------------------------------------------------------------------------- array_api_strict


def test_strict_array_api_path(rng, monkeypatch, no_fallback):
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    xp = case.xp
    n, m = 40, 3
    ch = mlp(rng, n, m, residual=False)
    W, b = case.asarray(ch.W), case.asarray(ch.b)

    def pre(x, k):
        Wk = xp.take(W, k, axis=0)[:, None, ...]  # batch (2,)
        bk = xp.take(b, k, axis=0)[:, None, :]
        return xp.matmul(Wk, x[..., None])[..., 0] + bk, Wk

    def step(x, k):
        assert isinstance(k, type(W)) and isinstance(x, type(W))
        return xp.tanh(pre(x, k)[0])

    def jac(x, k):
        p, Wk = pre(x, k)
        return (1 - xp.tanh(p) ** 2)[..., None] * Wk

    def jvp(x, k, v):
        p, Wk = pre(x, k)
        return (1 - xp.tanh(p) ** 2) * xp.matmul(Wk, v[..., None])[..., 0]

    x0 = rng.standard_normal((2, m))
    expected = hand_loop(ch, x0, n)
    for chain, method in [
        (pcr.FunctionChain(step, jac=jac), "newton"),
        (pcr.FunctionChain(step, jvp=jvp), "newton"),
        (pcr.FunctionChain(step, jac=jac), "diagonal"),
        (pcr.FunctionChain(step), "jacobi"),
        (pcr.FunctionChain(step), "sequential"),
    ]:
        sol = pcr.solve_chain(chain, case.asarray(x0), n, method=method, window=16)
        assert isinstance(sol.states, type(W)) and sol.converged
        assert_states(case.to_numpy(sol.states), expected, np.float64)
    fixed = pcr.solve_chain(pcr.FunctionChain(step, jac=jac), case.asarray(x0), n, tol=0, max_iter=10)
    assert_states(case.to_numpy(fixed.states), expected, np.float64)
    seq = pcr.sequential_chain(pcr.FunctionChain(step), case.asarray(x0), n)
    assert_states(case.to_numpy(seq), expected, np.float64)


def test_fixed_mode_does_not_synchronise(rng, monkeypatch):
    """tol=0, max_iter=K: host conversions do not grow with K (none inside the loop)."""
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    xp = case.xp
    n, m = 30, 2
    ch = mlp(rng, n, m)
    W, b = case.asarray(ch.W), case.asarray(ch.b)
    chain = pcr.FunctionChain(
        lambda x, k: xp.tanh(xp.matmul(xp.take(W, k, axis=0), x[..., None])[..., 0] + xp.take(b, k, axis=0)),
        jac=lambda x, k: (
            (
                1
                - xp.tanh(xp.matmul(xp.take(W, k, axis=0), x[..., None])[..., 0] + xp.take(b, k, axis=0)) ** 2
            )[..., None]
            * xp.take(W, k, axis=0)
        ),
    )
    counts = count_host_syncs(monkeypatch, xp)
    syncs = []
    for K in (2, 8):
        counts["n"] = 0
        pcr.solve_chain(chain, case.asarray(np.zeros(m)), n, tol=0, max_iter=K, callback=lambda info: None)
        syncs.append(counts["n"] - K)  # after the loop: one conversion per residual, plus a few
    assert syncs[0] == syncs[1], syncs


# --------------------------------------------------------------------------- hypothesis


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    m=st.integers(1, 4),
    batch=st.sampled_from([(), (2,)]),
    scale=st.floats(0.0, 0.9),
    method=st.sampled_from(["newton", "diagonal", "jacobi"]),
    window=st.one_of(st.none(), st.integers(1, 20)),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_contracting_chains(n, m, batch, scale, method, window, seed):
    rng = np.random.default_rng(seed)
    ch = mlp(rng, n, m, scale=scale)
    x0 = rng.standard_normal((*batch, m))
    sol = pcr.solve_chain(ch, x0, n, method=method, window=window)
    assert sol.converged
    assert_states(sol.states, pcr.sequential_chain(ch, x0, n), np.float64)


@pytest.mark.parametrize("method", ["newton", "diagonal", "picard", "jacobi"])
def test_numpy_backend_runs_the_xp_path(method, rng, no_fallback):
    """backend="numpy": the array-namespace code (what CuPy runs) on NumPy arrays."""
    n, m = 70, 3
    ch = mlp(rng, n, m, residual=method == "picard", scale=0.4)
    x0 = rng.standard_normal((2, m))
    sol = pcr.solve_chain(ch, x0, n, method=method, backend="numpy", window=32)
    assert sol.status == "converged"
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)
    fixed = pcr.solve_chain(ch, x0, n, method=method, backend="numpy", tol=0, max_iter=n)
    assert_states(fixed.states, hand_loop(ch, x0, n), np.float64)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_complex_linear_chain(backend, rng, no_fallback):
    n, m = 50, 3
    A = (rng.standard_normal((n, m, m)) + 1j * rng.standard_normal((n, m, m))) * 0.3 / np.sqrt(m)
    ch = Linear(A, rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m)))
    x0 = np.ones(m, dtype=complex)
    sol = pcr.solve_chain(ch, x0, n, backend=backend)
    assert sol.states.dtype == np.complex128 and sol.iterations == 1
    np.testing.assert_allclose(sol.states, pcr.sequential_chain(ch, x0, n), rtol=1e-12, atol=1e-12)


def test_tol_zero_adaptive_forecast(rng):
    """tol=0 without max_iter: the cost rules' forecast must not divide by log(0)."""
    n, m = 400, 4
    ch = mlp(rng, n, m, scale=0.9)
    x0 = np.zeros(m)
    sol = pcr.solve_chain(function_chain(ch), x0, n, method="jacobi", tol=0)
    assert sol.converged
    np.testing.assert_array_equal(sol.states, pcr.sequential_chain(function_chain(ch), x0, n))
