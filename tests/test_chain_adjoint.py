"""chain_adjoint against hand-written backpropagation and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from test_chain import MLP, hand_loop, mlp

import pcrsolve as pcr
from conftest import unchanged
from pcrsolve.chain import _sweep


def hand_backprop(ch: MLP, x0, states, g):
    """Reverse-mode by hand for x_k = tanh(W_k x_{k-1} + b_k): a plain loop."""
    n = len(states)
    adj = np.zeros_like(states)
    carry = np.zeros_like(x0)
    for k in range(n - 1, -1, -1):
        adj[k] = g[k] + carry
        x_prev = x0 if k == 0 else states[k - 1]
        pre = np.einsum("ij,...j->...i", ch.W[k], x_prev) + ch.b[k]
        d = 1 - np.tanh(pre) ** 2
        carry = np.einsum("ji,...j->...i", ch.W[k], d * adj[k])  # J_k^T adj[k]
    return adj, carry


@pytest.mark.kernels  # also run without JIT: the fused Numba passes
@pytest.mark.parametrize("with_", ["jac", "vjp", "both"])
@pytest.mark.parametrize("method", ["auto", "sequential", "pcr", "hybrid"])
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)], ids=str)
@pytest.mark.parametrize("block", [None, 5, 36])
def test_matches_hand_backprop(with_, method, batch, block, rng, monkeypatch):
    """``block``: the CPU pass of the sequential method runs on blocks of this many steps
    (carrying J_b^T adj[b] from block to block); None: the default, one block here."""
    if block is not None:
        monkeypatch.setattr(_sweep, "_BLOCK_BYTES", 0)
        monkeypatch.setattr(_sweep, "_MIN_BLOCK", block)
    n, m = 37, 4
    ch = mlp(rng, n, m, scale=0.8)
    names = ["jac", "vjp"] if with_ == "both" else [with_]
    chain = pcr.FunctionChain(ch.step, **{k: getattr(ch, k) for k in names})
    x0 = rng.standard_normal((*batch, m))
    states = hand_loop(ch, x0, n)
    g = rng.standard_normal(states.shape)
    with unchanged(x0, states, g):
        adj, gx0 = pcr.chain_adjoint(chain, x0, states, g, method=method)
    ref_adj, ref_gx0 = hand_backprop(ch, x0, states, g)
    assert adj.shape == states.shape and gx0.shape == x0.shape
    np.testing.assert_allclose(adj, ref_adj, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gx0, ref_gx0, rtol=1e-11, atol=1e-11)


def test_finite_differences(rng):
    """grad_x0 is the gradient of L(x0) = sum_k <g_k, x_k(x0)>."""
    n, m = 25, 3
    ch = mlp(rng, n, m, scale=0.9)
    x0 = rng.standard_normal(m)
    g = rng.standard_normal((n, m))

    def loss(x):
        return float(np.sum(g * pcr.sequential_chain(ch, x, n)))

    states = pcr.solve_chain(ch, x0, n).states
    _, gx0 = pcr.chain_adjoint(ch, x0, states, g)
    h = 1e-6
    fd = np.array([(loss(x0 + h * e) - loss(x0 - h * e)) / (2 * h) for e in np.eye(m)])
    np.testing.assert_allclose(gx0, fd, rtol=1e-6, atol=1e-8)


def test_adjoint_of_residual_chain_and_states_from_quasi_newton(rng):
    n, m = 50, 3
    ch = mlp(rng, n, m, residual=True)
    x0 = rng.standard_normal((2, m))
    states = pcr.solve_chain(ch, x0, n, method="diagonal").states
    g = rng.standard_normal(states.shape)
    adj_jac, gx_jac = pcr.chain_adjoint(pcr.FunctionChain(ch.step, jac=ch.jac), x0, states, g)
    adj_vjp, gx_vjp = pcr.chain_adjoint(pcr.FunctionChain(ch.step, vjp=ch.vjp), x0, states, g)
    np.testing.assert_allclose(adj_vjp, adj_jac, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx_vjp, gx_jac, rtol=1e-12, atol=1e-12)


def test_float32_and_empty(rng):
    ch = mlp(rng, 10, 2, np.float32)
    x0 = np.ones(2, np.float32)
    states = pcr.sequential_chain(ch, x0, 10)
    adj, gx0 = pcr.chain_adjoint(ch, x0, states, np.ones_like(states))
    assert adj.dtype == gx0.dtype == np.float32
    adj, gx0 = pcr.chain_adjoint(ch, x0, states[:0], states[:0])
    assert adj.shape == (0, 2) and np.all(gx0 == 0)


def test_strict_array_api(rng, monkeypatch):
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    xp = case.xp
    n, m = 20, 3
    ch = mlp(rng, n, m)
    W, b = case.asarray(ch.W), case.asarray(ch.b)

    def step(x, k):
        return xp.tanh(xp.matmul(xp.take(W, k, axis=0), x[..., None])[..., 0] + xp.take(b, k, axis=0))

    def vjp(x, k, u):
        Wk = xp.take(W, k, axis=0)
        d = 1 - xp.tanh(xp.matmul(Wk, x[..., None])[..., 0] + xp.take(b, k, axis=0)) ** 2
        return xp.matmul(xp.matrix_transpose(Wk), (d * u)[..., None])[..., 0]

    x0 = rng.standard_normal(m)
    states = hand_loop(ch, x0, n)
    g = rng.standard_normal(states.shape)
    adj, gx0 = pcr.chain_adjoint(
        pcr.FunctionChain(step, vjp=vjp), case.asarray(x0), case.asarray(states), case.asarray(g)
    )
    ref_adj, ref_gx0 = hand_backprop(ch, x0, states, g)
    np.testing.assert_allclose(case.to_numpy(adj), ref_adj, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(case.to_numpy(gx0), ref_gx0, rtol=1e-11, atol=1e-11)
