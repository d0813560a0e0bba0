"""Chains of order r (skip connections) against plain loops, banded Newton and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from test_chain import assert_states, mlp

import pcrsolve as pcr
from conftest import unchanged
from pcrsolve.chain import _loop, _policy

METHODS = ["newton", "band1", "diagonal", "picard", "jacobi", "sequential"]
BATCHES = [(), (3,), (2, 3)]
FLOATS = [np.float32, np.float64]


@pytest.fixture
def no_fallback(monkeypatch):
    """Disable the cost model and rules, so that parallel-path behaviour is deterministic."""
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))


# --------------------------------------------------------------------------- a skip chain


class Skip:
    """``x_k = tanh(sum_j W[k, j] x_{k-1-j} + b_k)`` (``x + h tanh(...)`` when ``residual``).

    A DenseNet-like chain of order r, written as a user would in NumPy, vectorized over the
    steps, with every derivative in the order-r layout.
    """

    def __init__(self, W, b, residual=False, h=0.1):
        self.W, self.b, self.residual, self.h = W, b, residual, h
        self.order = W.shape[1]

    def _pre(self, x, k):
        # x: (s, r, *batch, m); W[k]: (s, r, m, m)
        nb = x.ndim - 3
        Wk = self.W[k].reshape(len(k), self.order, *(1,) * nb, *self.W.shape[2:])
        bk = self.b[k].reshape(len(k), *(1,) * nb, self.b.shape[-1])
        return (Wk @ x[..., None])[..., 0].sum(axis=1) + bk, Wk

    def step(self, x, k):
        pre, _ = self._pre(x, k)
        return x[:, 0] + self.h * np.tanh(pre) if self.residual else np.tanh(pre)

    def _d(self, x, k):
        pre, Wk = self._pre(x, k)
        d = 1 - np.tanh(pre) ** 2
        return (self.h * d if self.residual else d), Wk

    def jac(self, x, k):
        d, Wk = self._d(x, k)
        J = d[:, None, ..., :, None] * Wk  # (s, r, *batch, m, m)
        if self.residual:
            J[:, 0] += np.eye(x.shape[-1], dtype=x.dtype)
        return J

    def jac_diag(self, x, k):
        return np.diagonal(self.jac(x, k), axis1=-2, axis2=-1)

    def jvp(self, x, k, v):
        d, Wk = self._d(x, k)
        out = d * (Wk @ v[..., None])[..., 0].sum(axis=1)
        return v[:, 0] + out if self.residual else out

    def vjp(self, x, k, u):
        d, Wk = self._d(x, k)
        out = (np.swapaxes(Wk, -1, -2) @ (d * u)[:, None, ..., None])[..., 0]
        if self.residual:
            out[:, 0] += u
        return out

    def linearize(self, x, k):
        return self.step(x, k), self.jac(x, k)


def skip(rng, n, r, m, dtype=np.float64, scale=0.6, residual=False):
    W = (rng.standard_normal((n, r, m, m)) * scale / np.sqrt(r * m)).astype(dtype)
    b = rng.standard_normal((n, m)).astype(dtype)
    return Skip(W, b, residual)


class _Linearized:
    """A chain offering only ``step`` and ``linearize`` (FunctionChain has no ``linearize``)."""

    def __init__(self, ch):
        self.step, self.linearize, self.order = ch.step, ch.linearize, ch.order


def chain_of(ch, *names):
    if names == ("linearize",):
        return _Linearized(ch)
    return pcr.FunctionChain(ch.step, **{k: getattr(ch, k) for k in names}, order=ch.order)


def hand_loop(ch: Skip, x0, n):
    """The loop a user writes: a history of the last r states, one step at a time."""
    hist = [np.asarray(x0[i], dtype=np.float64) for i in range(ch.order)]  # x_{-r} .. x_{-1}
    out = []
    for k in range(n):
        pre = ch.b[k] + sum(np.einsum("ij,...j->...i", ch.W[k, j], hist[-1 - j]) for j in range(ch.order))
        x = hist[-1] + ch.h * np.tanh(pre) if ch.residual else np.tanh(pre)
        hist.append(x)
        out.append(x)
    return np.stack(out)


def lag_jacobians(ch: Skip, x0, X):
    """``J[k][j] = df_k/dx_{k-1-j}`` at the iterate ``X`` (plain loop over the steps)."""
    r, n = ch.order, len(X)
    full = np.concatenate([x0, X])  # full[t] = x_{t-r}
    out = []
    for k in range(n):
        xp_ = np.stack([full[k + r - 1 - j] for j in range(r)])[None]
        out.append(ch.jac(xp_, np.array([k]))[0])
    return out


def banded_newton_step(ch: Skip, x0, X):
    """One Newton step on the block lower-banded system, by forward substitution (a loop)."""
    r, n = ch.order, len(X)
    full = np.concatenate([x0, X])
    J = lag_jacobians(ch, x0, X)
    d = np.zeros_like(X)
    for k in range(n):
        xp_ = np.stack([full[k + r - 1 - j] for j in range(r)])[None]
        rk = ch.step(xp_, np.array([k]))[0] - X[k]
        for j in range(r):
            if k - 1 - j >= 0:
                rk = rk + np.einsum("...ij,...j->...i", J[k][j], d[k - 1 - j])
        d[k] = rk
    return X + d


def hand_backprop(ch: Skip, x0, states, g):
    """Reverse mode by hand for the skip chain: adjoints and the gradient of every initial state."""
    r, n = ch.order, len(states)
    J = lag_jacobians(ch, x0, states)
    adj = np.array(g, dtype=np.float64, copy=True)
    gx0 = np.zeros_like(x0, dtype=np.float64)
    for k in range(n - 1, -1, -1):
        for j in range(r):  # f_k reads x_{k-1-j}
            contrib = np.einsum("...ji,...j->...i", J[k][j], adj[k])
            t = k - 1 - j
            if t >= 0:
                adj[t] += contrib
            else:
                gx0[r + t] += contrib
    return adj, gx0


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_methods_match_hand_loop(method, batch, dtype, rng):
    n, r, m = 40, 3, 4
    ch = skip(rng, n, r, m, dtype, residual=method == "picard")
    x0 = rng.standard_normal((r, *batch, m)).astype(dtype)
    expected = hand_loop(ch, x0, n)
    with unchanged(x0, ch.W, ch.b):
        sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, method=method)
    assert sol.states.shape == (n, *batch, m) and sol.states.dtype == dtype
    assert sol.converged
    assert_states(sol.states, expected, dtype)


@pytest.mark.parametrize("method", ["newton", "band1", "diagonal", "picard", "jacobi"])
@pytest.mark.parametrize("r", [2, 5])
def test_parallel_path_converges_within_n_sweeps(method, r, rng, no_fallback):
    """With the cost rules off every method converges by sweeps alone, in at most n sweeps."""
    n, m = 60, 3
    ch = skip(rng, n, r, m, residual=method == "picard")
    x0 = rng.standard_normal((r, 2, m))
    sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, method=method)
    assert sol.status == "converged", sol.message
    assert len(sol.residuals) <= n
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)
    if method == "newton":
        assert sol.iterations <= 10


@pytest.mark.parametrize("names", [("jac",), ("jvp",), ("linearize",), ("jac_diag",)], ids=str)
def test_every_derivative_callback(names, rng, no_fallback):
    n, r, m = 30, 3, 3
    ch = skip(rng, n, r, m)
    x0 = rng.standard_normal((r, 2, m))
    method = "diagonal" if names == ("jac_diag",) else "newton"
    sol = pcr.solve_chain(chain_of(ch, *names), x0, n, method=method)
    assert sol.status == "converged"
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)


@pytest.mark.parametrize("window", [7, 25])
def test_window(window, rng, no_fallback):
    n, r, m = 50, 4, 3
    ch = skip(rng, n, r, m)
    x0 = rng.standard_normal((r, m))
    sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, window=window)
    assert_states(sol.states, hand_loop(ch, x0, n), np.float64)


def test_sequential_chain_matches_hand_loop(rng):
    n, r, m = 33, 4, 2
    ch = skip(rng, n, r, m)
    x0 = rng.standard_normal((r, 3, m))
    with unchanged(x0):
        states = pcr.sequential_chain(chain_of(ch), x0, n)
    np.testing.assert_allclose(states, hand_loop(ch, x0, n), rtol=1e-13, atol=1e-13)


def test_the_loop_from_a_prefix_reads_the_last_r_states(rng, no_fallback):
    # sweeps that stop after two leave the rest to the loop, which starts from the states the
    # sweeps froze: its history must hold the r states before its first step, newest first
    n, r, m = 40, 3, 2
    ch = skip(rng, n, r, m, scale=1.2)
    x0 = rng.standard_normal((r, 2, m))
    sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, method="newton", max_iter=2)
    assert sol.status == "sequential" and 0 < len(sol.residuals) <= 2, sol.message
    np.testing.assert_allclose(sol.states, hand_loop(ch, x0, n), rtol=1e-12, atol=1e-12)


class _OwnLoop:
    """A chain of order r with its own ``sequential`` hook (the hand loop), recording its calls."""

    def __init__(self, ch, x0):
        self.ch, self.x0, self.order, self.calls = ch, x0, ch.order, []
        self.step = ch.step

    def sequential(self, x_prev, start, stop):
        self.calls.append((x_prev.copy(), start, stop))
        states = hand_loop(self.ch, self.x0, stop)
        return states[start:stop]


def test_own_sequential_hook_of_an_order_r_chain(rng, no_fallback):
    n, r, m = 30, 3, 2
    ch = skip(rng, n, r, m)
    x0 = rng.standard_normal((r, 4, m))
    ref = hand_loop(ch, x0, n)
    own = _OwnLoop(ch, x0)
    np.testing.assert_array_equal(pcr.sequential_chain(own, x0, n), ref)
    ((given, start, stop),) = own.calls
    np.testing.assert_array_equal(given, x0[::-1])  # the r states before step 0, newest first
    assert (start, stop) == (0, n)
    # a loop from a later step gets the states before it from the solve
    own.calls.clear()
    sol = pcr.solve_chain(own, x0, n, method="jacobi", max_iter=2)
    assert sol.status == "sequential" and len(sol.residuals) == 2, sol.message
    last_start, last_stop = own.calls[-1][1:]  # the loop that finished the chain after the sweeps
    assert 0 < last_start < last_stop == n
    full = np.concatenate([x0, ref])  # full[t] = x_{t-r}
    for given, start, _ in own.calls:
        np.testing.assert_allclose(given, full[start : start + r][::-1], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(sol.states, ref, rtol=1e-13, atol=1e-13)


def test_own_sequential_hook_of_the_wrong_shape(rng):
    ch = skip(rng, 6, 2, 3)
    x0 = rng.standard_normal((2, 3))
    bad = pcr.FunctionChain(ch.step, sequential=lambda x, a, b: np.zeros((b - a, 2, 3)), order=2)
    with pytest.raises(
        ValueError,
        match=r"`chain.sequential` must return shape \(stop - start, \*batch, m\) "
        r"= \(6, 3\) for x_prev of shape \(2, 3\)",
    ):
        pcr.sequential_chain(bad, x0, 6)


# --------------------------------------------------------------------------- Newton itself


@pytest.mark.parametrize("r", [2, 4])
def test_companion_newton_matches_banded_substitution(r, rng):
    """Iterate K of the solver (fixed-iteration mode) equals K Newton steps on the banded system."""
    n, m = 24, 3
    ch = skip(rng, n, r, m, scale=1.2)
    x0 = rng.standard_normal((r, 2, m))
    guess = rng.standard_normal((n, 2, m))
    X = guess.copy()
    for K in (1, 2, 3):
        X = banded_newton_step(ch, x0, X)
        sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, x_init=guess, tol=0, max_iter=K)
        assert len(sol.residuals) == K
        np.testing.assert_allclose(sol.states, X, rtol=1e-12, atol=1e-12)


def test_band1_matches_lag1_substitution(rng):
    """band1: one step keeps only J_{k,1}; the first iterate equals that substitution."""
    n, r, m = 20, 3, 2
    ch = skip(rng, n, r, m)
    x0 = rng.standard_normal((r, m))
    guess = rng.standard_normal((n, m))
    J = lag_jacobians(ch, x0, guess)
    full = np.concatenate([x0, guess])
    d = np.zeros_like(guess)
    for k in range(n):
        xp_ = np.stack([full[k + r - 1 - j] for j in range(r)])[None]
        d[k] = ch.step(xp_, np.array([k]))[0] - guess[k] + (J[k][0] @ d[k - 1] if k else 0)
    sol = pcr.solve_chain(chain_of(ch, "jac"), x0, n, method="band1", x_init=guess, tol=0, max_iter=1)
    np.testing.assert_allclose(sol.states, guess + d, rtol=1e-12, atol=1e-12)


def test_linear_chain_in_one_newton_iteration(rng, no_fallback):
    n, r, m = 40, 3, 3
    A = rng.standard_normal((n, r, m, m)) * 0.3 / np.sqrt(r * m)
    c = rng.standard_normal((n, m))

    def step(x, k):
        return (A[k] @ x[..., None])[..., 0].sum(axis=1) + c[k]

    chain = pcr.FunctionChain(step, jac=lambda x, k: A[k].copy(), order=r)
    x0 = rng.standard_normal((r, m))
    sol = pcr.solve_chain(chain, x0, n)
    assert sol.iterations == 1, sol.residuals
    np.testing.assert_allclose(sol.states, pcr.sequential_chain(chain, x0, n), rtol=1e-12, atol=1e-12)


def test_worst_case_takes_n_sweeps(no_fallback):
    """x_k = x_{k-2} + 1 from a poor guess: Jacobi fixes one more step per sweep (<= n sweeps)."""
    n = 12
    chain = pcr.FunctionChain(lambda x, k: x[:, 1] + 1.0, order=2)
    x0 = np.zeros((2, 1))
    sol = pcr.solve_chain(chain, x0, n, method="jacobi", tol=0)
    assert sol.status == "converged" and len(sol.residuals) <= n
    np.testing.assert_array_equal(sol.states[:, 0], np.arange(n) // 2 + 1)


# --------------------------------------------------------------------------- order 1 unchanged


class _NoOrder:
    """A chain without an ``order`` attribute: the first-order behaviour of today."""

    def __init__(self, ch):
        self.step, self.jac = ch.step, ch.jac


@pytest.mark.parametrize("method", ["newton", "band1", "diagonal", "jacobi"])
def test_order_one_is_todays_chain(method, rng):
    n, m = 64, 3
    ch = mlp(rng, n, m)
    x0 = rng.standard_normal((2, m))
    fixed = {"tol": 0, "max_iter": 5}
    a = pcr.solve_chain(_NoOrder(ch), x0, n, method="newton" if method == "band1" else method, **fixed)
    b = pcr.solve_chain(pcr.FunctionChain(ch.step, jac=ch.jac, order=1), x0, n, method=method, **fixed)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.residuals == b.residuals


# --------------------------------------------------------------------------- adjoint


@pytest.mark.parametrize("names", [("jac",), ("vjp",), ("linearize",)], ids=str)
@pytest.mark.parametrize("method", ["auto", "sequential", "pcr"])
@pytest.mark.parametrize("batch", [(), (2,)], ids=str)
def test_adjoint_matches_hand_backprop(names, method, batch, rng):
    n, r, m = 21, 3, 3
    ch = skip(rng, n, r, m, scale=0.9)
    x0 = rng.standard_normal((r, *batch, m))
    states = hand_loop(ch, x0, n)
    g = rng.standard_normal(states.shape)
    with unchanged(x0, states, g):
        adj, gx0 = pcr.chain_adjoint(chain_of(ch, *names), x0, states, g, method=method)
    ref_adj, ref_gx0 = hand_backprop(ch, x0, states, g)
    assert adj.shape == states.shape and gx0.shape == x0.shape
    np.testing.assert_allclose(adj, ref_adj, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gx0, ref_gx0, rtol=1e-11, atol=1e-11)


def test_adjoint_finite_differences(rng):
    """grad_x0[i] is the gradient of L = sum_k <g_k, x_k> with respect to x_{i-r}."""
    n, r, m = 15, 3, 2
    ch = skip(rng, n, r, m, scale=0.9)
    x0 = rng.standard_normal((r, m))
    g = rng.standard_normal((n, m))
    chain = chain_of(ch, "jac")
    _, gx0 = pcr.chain_adjoint(chain, x0, pcr.sequential_chain(chain, x0, n), g)

    def loss(x):
        return float(np.sum(g * hand_loop(ch, x, n)))

    h, fd = 1e-6, np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        fd[idx] = (loss(x0 + e) - loss(x0 - e)) / (2 * h)
    np.testing.assert_allclose(gx0, fd, rtol=1e-7, atol=1e-8)


def test_adjoint_empty_chain(rng):
    ch = skip(rng, 1, 2, 3)
    adj, gx0 = pcr.chain_adjoint(chain_of(ch, "jac"), np.ones((2, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
    assert adj.shape == (0, 3) and gx0.shape == (2, 3) and not gx0.any()


# --------------------------------------------------------------------------- errors


def test_x0_of_the_wrong_shape(rng):
    ch = skip(rng, 5, 3, 2)
    for f in (
        lambda x: pcr.solve_chain(chain_of(ch, "jac"), x, 5),
        lambda x: pcr.sequential_chain(chain_of(ch), x, 5),
        lambda x: pcr.chain_adjoint(chain_of(ch, "jac"), x, np.zeros((5, 2)), np.zeros((5, 2))),
    ):
        shape = r"order 3 .* must have shape \(order, \*batch, m\).*got shape \(2,\)"
        with pytest.raises(ValueError, match=shape):
            f(np.zeros(2))
        with pytest.raises(ValueError, match=r"got shape \(2, 2\)"):
            f(np.zeros((2, 2)))


def test_block_method_is_for_first_order_chains(rng):
    ch = skip(rng, 5, 2, 2)
    with pytest.raises(ValueError, match=r"method='block' is not available for chains of order > 1"):
        pcr.solve_chain(
            pcr.FunctionChain(ch.step, jac_blocks=lambda x, k: None, order=2),
            np.zeros((2, 2)),
            5,
            method="block",
        )


def test_bad_order():
    step = lambda x, k: x  # noqa: E731
    with pytest.raises(ValueError, match=r"`order` must be >= 1.*got 0"):
        pcr.FunctionChain(step, order=0)
    with pytest.raises(TypeError, match=r"`order` must be an int >= 1; got float"):
        pcr.FunctionChain(step, order=1.5)
    with pytest.raises(TypeError, match=r"got bool"):
        pcr.FunctionChain(step, order=True)

    class Odd:
        order = "2"

        def step(self, x, k):
            return x

    with pytest.raises(TypeError, match=r"`chain.order` must be an int"):
        pcr.solve_chain(Odd(), np.zeros(2), 3)


def test_wrong_callback_shapes(rng):
    ch = skip(rng, 6, 2, 3)
    x0 = rng.standard_normal((2, 3))
    bad_step = pcr.FunctionChain(lambda x, k: x, order=2)  # returns every lag
    with pytest.raises(ValueError, match=r"`chain.step` must return shape .* With order 2, x_prev\[:, j\]"):
        pcr.solve_chain(bad_step, x0, 6, method="jacobi")
    bad_jac = pcr.FunctionChain(ch.step, jac=lambda x, k: ch.jac(x, k)[:, 0], order=2)  # one lag only
    with pytest.raises(ValueError, match=r"`chain.jac` .* one m x m block per lag"):
        pcr.solve_chain(bad_jac, x0, 6, method="newton")
    bad_dtype = pcr.FunctionChain(lambda x, k: ch.step(x, k).astype(np.float32), order=2)
    with pytest.raises(TypeError, match=r"`chain.step` must return the states' dtype float64"):
        pcr.sequential_chain(bad_dtype, x0, 6)


# --------------------------------------------------------------------------- array_api_strict


def test_strict_array_api_path(rng, monkeypatch, no_fallback):
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    xp = case.xp
    n, r, m = 30, 3, 2
    ch = skip(rng, n, r, m)
    W, b = case.asarray(ch.W), case.asarray(ch.b)

    def pre(x, k):  # x: (s, r, batch, m)
        Wk = xp.take(W, k, axis=0)[:, :, None, ...]
        return xp.sum(xp.matmul(Wk, x[..., None])[..., 0], axis=1) + xp.take(b, k, axis=0)[:, None, :], Wk

    def step(x, k):
        return xp.tanh(pre(x, k)[0])

    def jac(x, k):
        p, Wk = pre(x, k)
        return (1 - xp.tanh(p) ** 2)[:, None, ..., None] * Wk

    def vjp(x, k, u):
        p, Wk = pre(x, k)
        return xp.matmul(xp.matrix_transpose(Wk), ((1 - xp.tanh(p) ** 2) * u)[:, None, ..., None])[..., 0]

    x0 = rng.standard_normal((r, 2, m))
    expected = hand_loop(ch, x0, n)
    for method in ("newton", "band1", "diagonal", "jacobi", "sequential"):
        sol = pcr.solve_chain(pcr.FunctionChain(step, jac=jac, order=r), case.asarray(x0), n, method=method)
        assert isinstance(sol.states, type(W)) and sol.converged
        assert_states(case.to_numpy(sol.states), expected, np.float64)
    seq = pcr.sequential_chain(pcr.FunctionChain(step, order=r), case.asarray(x0), n)
    assert_states(case.to_numpy(seq), expected, np.float64)
    g = rng.standard_normal(expected.shape)
    adj, gx0 = pcr.chain_adjoint(
        pcr.FunctionChain(step, vjp=vjp, order=r), case.asarray(x0), case.asarray(expected), case.asarray(g)
    )
    ref_adj, ref_gx0 = hand_backprop(ch, x0, expected, g)
    np.testing.assert_allclose(case.to_numpy(adj), ref_adj, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(case.to_numpy(gx0), ref_gx0, rtol=1e-11, atol=1e-11)
