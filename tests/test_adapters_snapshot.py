"""Adapters copy their arrays when built: changes made in place afterwards never reach them.

Before, a network read its weights by reference but cached derived copies (transposed,
converted, the RNN's input projections), so an in-place update reached some paths and not
others: the loop, the sweeps and the gradients then disagreed silently.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnn_reference as ref
from test_adapters import network, schedule, toy_denoiser, toy_params

from pcrsolve.adapters import DDIM, MLP, RNN, ResNet, StackedRNN


def _every_route(net, x):
    """The loop, Newton's sweeps and the gradients: each reads the parameters its own way."""
    seq = net.sequential(x, 0, net.n_steps)
    sol = net.forward(x, method="newton", tol=0, max_iter=net.n_steps)
    grads = net.gradients(x, sol, np.ones_like(x))
    return seq, sol.states, grads["weights"], grads["biases"]


@pytest.mark.parametrize("cls", [MLP, ResNet])
@pytest.mark.parametrize("batch", [(), (64,)], ids=str)  # the compiled loop; NumPy's BLAS loop
@pytest.mark.parametrize("used", [False, True], ids=["fresh", "used"])
def test_dense_networks_keep_their_weights(rng, cls, batch, used):
    L, m = 24, 3
    W, b = network(rng, L, m)
    x = rng.standard_normal((*batch, m))
    expected = _every_route(cls(W.copy(), b.copy()), x)
    net = cls(W, b)
    if used:
        _every_route(net, x)  # the caches are filled
    W *= 0.5
    b += 1.0
    for got, want in zip(_every_route(net, x), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(net.weights, W) and not np.shares_memory(net.biases, b)


@pytest.mark.parametrize("cell", ["elman", "gru_diag", "lstm_diag"])
@pytest.mark.parametrize("used", [False, True], ids=["fresh", "used"])
def test_rnns_keep_their_arrays(rng, cell, used):
    T, w, d_in = 30, 4, 3
    p = ref.random_params(rng, cell, w, d_in, 0.5, np.float64)
    x = rng.standard_normal((T, 2, d_in))
    h0 = 0.5 * rng.standard_normal((2, ref.state_size(cell, w)))
    expected = RNN(cell, {k: v.copy() for k, v in p.items()}, x.copy(), h0=h0.copy()).forward().states
    rnn = RNN(cell, p, x, h0=h0)
    stacked = StackedRNN([(cell, p)], x, h0=[h0])
    if used:
        rnn.forward()
        stacked.forward()
    for a in (*p.values(), x, h0):
        a += 1.0
    # (forward() may take the loop or sweeps, which agree within the default tolerance)
    np.testing.assert_allclose(rnn.forward().states, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stacked.forward().states[0], expected, rtol=1e-10, atol=1e-10)


def test_ddim_keeps_its_noise_and_times(rng):
    n, m = 20, 2
    eps, jvp = toy_denoiser(toy_params(rng, m))
    noise = rng.standard_normal((n, 3, m))
    times = np.arange(n)[::-1].copy()
    x = rng.standard_normal((3, m))
    expected = DDIM(eps, schedule(n), times.copy(), eta=0.5, noise=noise.copy()).forward(x).states
    sampler = DDIM(eps, schedule(n), times, eta=0.5, noise=noise, denoiser_jvp=jvp)
    noise *= -1.0
    times += 7
    np.testing.assert_allclose(sampler.forward(x).states, expected, rtol=1e-10, atol=1e-10)
