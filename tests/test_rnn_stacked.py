"""StackedRNN: layer-wise and grid forward passes against the loop over layers and time,
the grid chain's derivatives, and gradients against finite differences and BPTT."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import rnn_reference as ref

import pcrsolve as pcr
from conftest import _strict_backend
from pcrsolve.adapters import StackedRNN, StackedSolution

MIXED = ["gru_diag", "lstm_diag", "gru", "elman"]


def stack(rng, cells, T=30, batch=(2,), w=4, d_in=3, h0=True, scale=0.5):
    layers, h0s, d = [], [], d_in
    for cell in cells:
        layers.append((cell, ref.random_params(rng, cell, w, d, scale)))
        h0s.append(0.3 * rng.standard_normal((*batch, ref.state_size(cell, w))) if h0 else None)
        d = w
    x = rng.standard_normal((T, *batch, d_in))
    return layers, x, (h0s if h0 else None)


def ref_stack(layers, x, h0s):
    """Every layer's states by the plain loop, layer after layer."""
    out, inputs = [], x
    for l, (cell, p) in enumerate(layers):
        w = p[("U" + ref.GATES[cell][0])].shape[0]
        h = np.zeros((*x.shape[1:-1], ref.state_size(cell, w))) if h0s is None else h0s[l]
        states = ref.loop(cell, p, inputs, h)
        out.append(states)
        inputs = states[..., -w:]
    return out


def ref_loss(layers, x, h0s, g):
    return sum(float(np.sum(gl * sl)) for gl, sl in zip(g, ref_stack(layers, x, h0s)))


@pytest.mark.parametrize("cells", [["gru_diag"] * 3, MIXED], ids=["paragru3", "mixed"])
@pytest.mark.parametrize("batch", [(), (2, 2)], ids=str)
def test_grid_equals_layerwise_equals_loop(rng, cells, batch):
    layers, x, h0 = stack(rng, cells, T=80, batch=batch)
    net = StackedRNN(layers, x, h0=h0)
    expected = ref_stack(layers, x, h0)
    lw = net.forward(method="layerwise")
    grid = net.forward(method="grid")
    assert isinstance(grid, StackedSolution) and grid.method == "grid" and len(grid.solutions) == 1
    assert lw.converged and grid.converged and len(lw.solutions) == len(cells)
    for l in range(len(cells)):
        np.testing.assert_allclose(lw.states[l], expected[l], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grid.states[l], expected[l], rtol=1e-12, atol=1e-12)
    seq = net.grid.sequential(np.concatenate([np.asarray(h) for h in h0], axis=-1), 0, 80)
    np.testing.assert_allclose(seq, np.concatenate(expected, axis=-1), rtol=1e-13, atol=1e-14)


def sweeps_needed(sol):
    """Sweeps with an update above the default tolerance, from a fixed-iteration run (no cost rules)."""
    return sum(sum(r > np.finfo(np.float64).eps ** 0.75 for r in s.residuals) for s in sol.solutions)


def test_grid_iterations_do_not_grow_with_depth(rng):
    its = {}
    for k in (1, 2, 4):
        layers, x, h0 = stack(rng, ["gru_diag"] * k, T=400, batch=(), w=8)
        net = StackedRNN(layers, x, h0=h0)
        grid = net.forward(method="grid", tol=0, max_iter=12)
        lw = net.forward(method="layerwise", tol=0, max_iter=12)
        assert grid.converged and lw.converged
        its[k] = (sweeps_needed(grid), sweeps_needed(lw))
    assert 3 <= its[1][0] <= 6, its
    assert its[4][0] <= its[1][0] + 1, its
    assert its[4][1] >= 3 * its[1][1], its


@pytest.mark.parametrize("cells", [["gru_diag", "lstm_diag"], ["gru", "elman"]], ids=["diag", "dense"])
def test_grid_chain_derivatives(rng, cells):
    layers, x, h0 = stack(rng, cells, T=10, batch=(2,), w=3)
    grid = StackedRNN(layers, x, h0=h0).grid
    M = grid.m
    s, k = 6, np.array([0, 2, 5, 9, 3, 3])
    X = 0.5 * rng.standard_normal((s, 2, M))
    v = rng.standard_normal((s, 2, M))
    J = grid.jac(X, k)

    def one(h, i, b):  # the step of row i, batch element b, as a function of its state
        Y = X[i : i + 1].copy()
        Y[0, b] = h
        return grid.step(Y, k[i : i + 1])[0, b]

    rows = [[ref.fd_jacobian(functools.partial(one, i=i, b=b), X[i, b]) for b in range(2)] for i in range(s)]
    fd = np.array(rows)
    np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(grid.jvp(X, k, v), np.einsum("...ij,...j->...i", J, v), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grid.vjp(X, k, v), np.einsum("...ji,...j->...i", J, v), rtol=1e-12, atol=1e-13)
    # block lower triangular: layer 0 does not depend on layer 1's state
    m0 = grid.sizes[0]
    assert np.all(J[..., :m0, m0:] == 0)


@pytest.mark.parametrize(
    "cells", [["gru_diag", "lstm_diag"], ["lstm_diag", "gru", "elman"]], ids=["two", "three"]
)
def test_gradients_match_finite_differences_and_bptt(rng, cells):
    layers, x, h0 = stack(rng, cells, T=5, batch=(2,), w=3, d_in=2, scale=0.7)
    net = StackedRNN(layers, x, h0=h0)
    sol = net.forward(method="grid")
    g = [rng.standard_normal(s.shape) for s in sol.states]
    g[0] = None if len(cells) > 2 else g[0]  # a layer without its own loss
    got = net.gradients(sol, g)
    gz = [np.zeros(s.shape) if gl is None else gl for gl, s in zip(g, sol.states)]
    eps = 1e-6
    for l, (_, p) in enumerate(layers):
        for name, v in p.items():
            for idx in [(0,) * v.ndim, tuple(d - 1 for d in v.shape)]:
                plus = [(c, dict(q)) for c, q in layers]
                minus = [(c, dict(q)) for c, q in layers]
                plus[l][1][name] = v.copy()
                minus[l][1][name] = v.copy()
                plus[l][1][name][idx] += eps
                minus[l][1][name][idx] -= eps
                fd = (ref_loss(plus, x, h0, gz) - ref_loss(minus, x, h0, gz)) / (2 * eps)
                np.testing.assert_allclose(got[l][name][idx], fd, rtol=1e-6, atol=1e-8, err_msg=f"{l} {name}")
    for idx in [(0, 0, 0), (4, 1, 1), (2, 0, 1)]:
        a, b = x.copy(), x.copy()
        a[idx] += eps
        b[idx] -= eps
        fd = (ref_loss(layers, a, h0, gz) - ref_loss(layers, b, h0, gz)) / (2 * eps)
        np.testing.assert_allclose(got[0]["inputs"][idx], fd, rtol=1e-6, atol=1e-8)
    # BPTT on the top layer alone (its inputs fixed): the top layer's own gradients
    top_cell, top_p = layers[-1]
    below = sol.states[-2][..., -3:]
    bp = ref.bptt(top_cell, top_p, below, h0[-1], gz[-1])
    for name in top_p:
        np.testing.assert_allclose(got[-1][name], bp[name], rtol=1e-6, atol=1e-8)
    assert got[-1]["h0"].shape == h0[-1].shape


def test_chain_method_option(rng):
    layers, x, h0 = stack(rng, ["gru_diag", "lstm_diag"], T=60)
    net = StackedRNN(layers, x, h0=h0)
    expected = ref_stack(layers, x, h0)
    for method in ("layerwise", "grid"):
        sol = net.forward(method=method, chain_method="jacobi")
        assert all(s.converged for s in sol.solutions)
        np.testing.assert_allclose(sol.states[1], expected[1], rtol=1e-10, atol=1e-10)
    seq = net.forward(method="grid", chain_method="sequential")
    assert seq.solutions[0].status == "sequential" and seq.iterations == 0


def test_default_initial_states(rng):
    layers, x, _ = stack(rng, ["gru_diag", "lstm_diag"], T=50, h0=False)
    net = StackedRNN(layers, x)
    sol = net.forward(method="grid")
    expected = ref_stack(layers, x, None)
    np.testing.assert_allclose(sol.states[1], expected[1], rtol=1e-12, atol=1e-12)
    assert net.state_sizes == (4, 8) and net.n_layers == 2 and net.n_steps == 50
    assert repr(net) == "StackedRNN([gru_diag(4), lstm_diag(4)], T=50, batch=(2,))"


@pytest.mark.parametrize("path", ["numpy", "strict"])
def test_xp_paths(rng, monkeypatch, path):
    layers, x, h0 = stack(rng, ["gru_diag", "lstm_diag"], T=40)
    expected = ref_stack(layers, x, h0)
    if path == "numpy":
        net = StackedRNN(layers, x, h0=h0)
        sols = [net.forward(method=m, backend="numpy") for m in ("layerwise", "grid")]
        conv = np.asarray
    else:
        be = _strict_backend(monkeypatch)
        layers_s = [(c, {k: be.asarray(v) for k, v in p.items()}) for c, p in layers]
        net = StackedRNN(layers_s, be.asarray(x), h0=[be.asarray(h) for h in h0])
        sols = [net.forward(method=m) for m in ("layerwise", "grid")]
        conv = be.to_numpy
    for sol in sols:
        for l in range(2):
            np.testing.assert_allclose(conv(sol.states[l]), expected[l], rtol=1e-12, atol=1e-12)
    grads = net.gradients(sols[1], [None, (sols[1].states[1] * 0 + 1)])
    np_net = StackedRNN(layers, x, h0=h0)
    want = np_net.gradients(np_net.forward(), [None, np.ones_like(expected[1])])
    for l in range(2):
        for name in want[l]:
            np.testing.assert_allclose(conv(grads[l][name]), want[l][name], rtol=1e-10, atol=1e-12)


def test_grid_is_a_chain(rng):
    layers, x, h0 = stack(rng, ["gru_diag", "gru_diag"], T=20)
    net = StackedRNN(layers, x, h0=h0)
    assert isinstance(net.grid, pcr.Chain)
    H0 = np.concatenate(h0, axis=-1)
    np.testing.assert_allclose(
        pcr.sequential_chain(net.grid, H0, 20), net.grid.sequential(H0, 0, 20), rtol=1e-13
    )
