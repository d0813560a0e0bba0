"""RNN.gradients against finite differences of the loop and against back-propagation through time."""

from __future__ import annotations

import numpy as np
import pytest
import rnn_reference as ref

import pcrsolve as pcr
from conftest import _strict_backend, unchanged
from pcrsolve.adapters import RNN

CELLS = ref.CELLS


def problem(rng, cell, T=6, batch=(2,), w=3, d_in=2, dtype=np.float64):
    p = ref.random_params(rng, cell, w, d_in, 0.7, dtype)
    x = rng.standard_normal((T, *batch, d_in)).astype(dtype)
    m = ref.state_size(cell, w)
    h0 = (0.5 * rng.standard_normal((*batch, m))).astype(dtype)
    g = rng.standard_normal((T, *batch, m)).astype(dtype)
    return p, x, h0, g


def assert_grads(got, expected, rtol, atol):
    assert set(got) == set(expected)
    for name in expected:
        assert got[name].shape == expected[name].shape, name
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("batch", [(), (2,), (2, 2)], ids=str)
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_finite_differences(rng, cell, batch):
    p, x, h0, g = problem(rng, cell, batch=batch)
    with unchanged(x, h0, g, *p.values()):
        rnn = RNN(cell, p, x, h0=h0)
        sol = rnn.forward()
        got = rnn.gradients(sol, g)
    assert_grads(got, ref.fd_gradients(cell, p, x, h0, g), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_bptt(rng, cell):
    p, x, h0, g = problem(rng, cell, T=5)
    rnn = RNN(cell, p, x, h0=h0)
    got = rnn.gradients(rnn.sequential(h0, 0, 5), g)  # states as an array
    assert_grads(got, ref.bptt(cell, p, x, h0, g), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell", CELLS)
def test_long_sequence_against_loop_adjoint(rng, cell):
    """T = 300: the structured reverse solve against chain_adjoint with dense Jacobians."""
    p, x, h0, g = problem(rng, cell, T=300, batch=(3,), w=4)
    rnn = RNN(cell, p, x, h0=h0)
    states = rnn.forward().states
    got = rnn.gradients(states, g)
    dense = pcr.FunctionChain(rnn.step, jac=rnn.jac)
    adj, gx0 = pcr.chain_adjoint(dense, h0, states, g, method="sequential")
    np.testing.assert_allclose(got["h0"], gx0, rtol=1e-11, atol=1e-12)
    # the input gradient at step t is (df_t/dx_t)^T adj[t]: check a few steps by differences
    for t in (0, 137, 299):
        for bi in range(3):
            prev = h0[bi] if t == 0 else states[t - 1, bi]
            Jx = ref.fd_jacobian(lambda v, t=t, prev=prev: ref.step(cell, p, prev, v), x[t, bi])
            np.testing.assert_allclose(got["inputs"][t, bi], Jx.T @ adj[t, bi], rtol=1e-6, atol=1e-8)


@pytest.mark.kernels  # also run without JIT: the compiled reverse pass
@pytest.mark.parametrize("path", ["numpy", "strict"])
@pytest.mark.parametrize("cell", CELLS)
def test_xp_paths_agree(rng, monkeypatch, cell, path):
    p, x, h0, g = problem(rng, cell, T=40, batch=(2,), w=4)
    expected = RNN(cell, p, x, h0=h0).gradients(ref.loop(cell, p, x, h0), g)
    if path == "numpy":
        rnn = RNN(cell, p, x, h0=h0)
        with pcr.use_backend("numpy"):
            got = rnn.gradients(ref.loop(cell, p, x, h0), g)
    else:
        be = _strict_backend(monkeypatch)
        rnn = RNN(cell, {k: be.asarray(v) for k, v in p.items()}, be.asarray(x), h0=be.asarray(h0))
        out = rnn.gradients(rnn.forward(), be.asarray(g))
        got = {k: be.to_numpy(v) for k, v in out.items()}
    assert_grads(got, expected, rtol=1e-10, atol=1e-12)


def test_float32(rng):
    p, x, h0, g = problem(rng, "lstm_diag", T=100, batch=(2,), w=4, dtype=np.float32)
    rnn = RNN("lstm_diag", p, x, h0=h0)
    got = rnn.gradients(rnn.forward(), g)
    assert all(v.dtype == np.float32 for v in got.values())
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    r64 = RNN("lstm_diag", p64, x.astype(float), h0=h0.astype(float))
    expected = r64.gradients(r64.forward(), g.astype(float))
    assert_grads(got, expected, rtol=2e-3, atol=2e-4)


def test_gradient_of_a_loss_on_the_last_state_only(rng):
    """Zero gradients except at the last step: the chain rule through every step."""
    p, x, h0, _ = problem(rng, "gru", T=8)
    g = np.zeros((8, 2, 3))
    g[-1] = 1.0
    got = RNN("gru", p, x, h0=h0).gradients(ref.loop("gru", p, x, h0), g)
    assert_grads(got, ref.fd_gradients("gru", p, x, h0, g), rtol=1e-6, atol=1e-8)
