"""The adapters through the chain solver: forward passes, gradients, training and sampling.

``MLP/ResNet.forward`` against hand-written loops and ``.gradients`` against hand-written
backprop for every activation (up to L = 1024), SGD training with pcrsolve gradients against
hand backprop, and DDIM sampling (eta 0 and 0.5) against a hand-written sequential sampler.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_adapters import (
    make,
    network,
    ref_backprop,
    ref_ddim,
    ref_forward,
    schedule,
    toy_denoiser,
    toy_params,
)

import pcrsolve as pcr
from pcrsolve.adapters import ACTIVATIONS, DDIM, MLP, ResNet

CLASSES = (MLP, ResNet)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_and_gradients_match_hand_code(rng, cls, act):
    L, m, batch = 24, 4, (3,)
    W, b = network(rng, L, m, gain=0.6)
    net = make(cls, W, b, act, h=0.2)
    residual = cls is ResNet
    x = rng.standard_normal((*batch, m))
    sol = net.forward(x)
    ref = ref_forward(W, b, x, act, residual, 0.2)
    assert sol.states.shape == (L, *batch, m)
    np.testing.assert_allclose(sol.states, ref, rtol=1e-10, atol=1e-10)
    g_out = rng.standard_normal((*batch, m))
    grads = net.gradients(x, sol, g_out)
    dW, db, dx = ref_backprop(W, b, x, g_out, act, residual, 0.2)
    np.testing.assert_allclose(grads["weights"], dW, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["biases"], db, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["x"], dx, rtol=1e-9, atol=1e-11)
    # states given as an array instead of the solution: the same
    again = net.gradients(x, sol.states, g_out)
    np.testing.assert_array_equal(again["weights"], grads["weights"])


@pytest.mark.parametrize("cls", CLASSES)
def test_deep_network(rng, cls):
    L, m = 1024, 4
    W, b = network(rng, L, m, gain=0.5)
    net = make(cls, W, b, "tanh", h=1.0 / 64)
    x = rng.standard_normal((2, m))
    sol = net.forward(x)
    residual = cls is ResNet
    np.testing.assert_allclose(sol.states, ref_forward(W, b, x, "tanh", residual, 1.0 / 64), atol=1e-10)
    g_out = rng.standard_normal((2, m))
    grads = net.gradients(x, sol, g_out)
    dW, db, dx = ref_backprop(W, b, x, g_out, "tanh", residual, 1.0 / 64)
    np.testing.assert_allclose(grads["weights"], dW, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grads["biases"], db, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grads["x"], dx, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ("newton", "diagonal", "picard", "sequential"))
def test_forward_methods_agree(rng, method):
    W, b = network(rng, 40, 3, gain=0.5)
    net = MLP(W, b, "sigmoid")
    x = rng.standard_normal(3)
    np.testing.assert_allclose(
        net.forward(x, method=method).states, ref_forward(W, b, x, "sigmoid"), atol=1e-10
    )


def test_forward_on_the_xp_path(rng):
    W, b = network(rng, 30, 3)
    net = ResNet(W, b, "gelu", step_size=0.1)
    x = rng.standard_normal((2, 3))
    ref = ref_forward(W, b, x, "gelu", True, 0.1)
    np.testing.assert_allclose(net.forward(x, backend="numpy").states, ref, atol=1e-11)
    with pcr.use_backend("numpy"):
        sol = net.forward(x)
        g = net.gradients(x, sol, np.ones((2, 3)))
    np.testing.assert_allclose(sol.states, ref, atol=1e-11)
    np.testing.assert_allclose(
        g["weights"], ref_backprop(W, b, x, np.ones((2, 3)), "gelu", True, 0.1)[0], atol=1e-11
    )


def test_float32(rng):
    W, b = network(rng, 50, 4)
    net = MLP(W.astype(np.float32), b.astype(np.float32))
    x = rng.standard_normal(4).astype(np.float32)
    sol = net.forward(x)
    assert sol.states.dtype == np.float32
    np.testing.assert_allclose(sol.states, ref_forward(W, b, x.astype(float), "tanh"), atol=1e-4)
    assert net.gradients(x, sol, np.ones(4, dtype=np.float32))["weights"].dtype == np.float32


def _hand_sgd(W, b, X, Y, act, residual, h, lr, steps):
    W, b = W.copy(), b.copy()
    for _ in range(steps):
        out = ref_forward(W, b, X, act, residual, h)[-1]
        g = 2.0 * (out - Y) / X.shape[0]
        dW, db, _ = ref_backprop(W, b, X, g, act, residual, h)
        W -= lr * dW
        b -= lr * db
    return W, b


def _pcr_sgd(cls, W, b, X, Y, act, h, lr, steps):
    W, b = W.copy(), b.copy()
    for _ in range(steps):
        net = make(cls, W, b, act, h=h)
        sol = net.forward(X)
        g = 2.0 * (sol.states[-1] - Y) / X.shape[0]
        grads = net.gradients(X, sol, g)
        W -= lr * grads["weights"]
        b -= lr * grads["biases"]
    return W, b


@pytest.mark.parametrize("cls", CLASSES)
def test_sgd_training_matches_hand_backprop(rng, cls):
    L, m, n = 64, 3, 16
    W, b = network(rng, L, m, gain=0.7)
    X = rng.standard_normal((n, m))
    Y = np.tanh(X[:, ::-1])
    h = 1.0 / 16 if cls is ResNet else 1.0
    Wr, br = _hand_sgd(W, b, X, Y, "tanh", cls is ResNet, h, 0.1, 5)
    Wp, bp = _pcr_sgd(cls, W, b, X, Y, "tanh", h, 0.1, 5)
    assert not np.allclose(Wr, W)  # training moved the weights
    np.testing.assert_allclose(Wp, Wr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bp, br, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- DDIM


def _ddim(rng, n, eta, batch, with_jvp=True):
    eps, jvp = toy_denoiser(toy_params(rng, 2))
    ab = schedule(n)
    ts = np.linspace(999, 0, n).round().astype(int)
    noise = rng.standard_normal((n, *batch, 2)) if eta else None
    ddim = DDIM(eps, ab, ts, eta=eta, noise=noise, denoiser_jvp=jvp if with_jvp else None)
    return ddim, eps, ab, ts, noise


@pytest.mark.parametrize("eta", (0.0, 0.5))
@pytest.mark.parametrize("method", ("newton", "picard"))
def test_ddim_sampling_matches_sequential_sampler(rng, eta, method):
    n = 100
    ddim, eps, ab, ts, noise = _ddim(rng, n, eta, (1,))
    x = rng.standard_normal((1, 2))
    sol = ddim.forward(x, method=method)
    ref = np.stack(
        [ref_ddim(eps, ab, ts, x[i], eta, None if noise is None else noise[:, i]) for i in range(1)], 1
    )
    assert sol.states.shape == (n, 1, 2)
    np.testing.assert_allclose(sol.states, ref, rtol=1e-9, atol=1e-9)


def test_ddim_batch_and_broadcast_noise(rng):
    n = 50
    ddim, eps, ab, ts, noise = _ddim(rng, n, 0.5, (1,))  # noise (n, 1, 2) shared by the batch
    x = rng.standard_normal((4, 2))
    sol = ddim.forward(x)
    for i in range(4):
        np.testing.assert_allclose(sol.states[:, i], ref_ddim(eps, ab, ts, x[i], 0.5, noise[:, 0]), atol=1e-9)


def test_ddim_without_jvp_defaults_to_picard(rng):
    ddim, eps, ab, ts, _ = _ddim(rng, 60, 0.0, (), with_jvp=False)
    x = rng.standard_normal(2)
    sol = ddim.forward(x)
    np.testing.assert_allclose(sol.states, ref_ddim(eps, ab, ts, x), atol=1e-9)
    np.testing.assert_allclose(
        ddim.forward(x, method="sequential").states, ref_ddim(eps, ab, ts, x), atol=1e-12
    )


def test_ddim_on_the_xp_path(rng):
    ddim, eps, ab, ts, _ = _ddim(rng, 40, 0.0, ())
    x = rng.standard_normal((3, 2))
    sol = ddim.forward(x, backend="numpy")
    for i in range(3):
        np.testing.assert_allclose(sol.states[:, i], ref_ddim(eps, ab, ts, x[i]), atol=1e-9)


def test_strict_forward_gradients_and_sampling(monkeypatch, rng):
    """array_api_strict parameters and inputs: the whole solve stays in that library."""
    from conftest import _strict_backend

    be = _strict_backend(monkeypatch)
    W, b = network(rng, 20, 3, gain=0.5)
    x, g_out = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    net = ResNet(be.asarray(W), be.asarray(b), "tanh", step_size=0.3)
    sol = net.forward(be.asarray(x))
    assert type(sol.states) is type(be.asarray(x))
    np.testing.assert_allclose(be.to_numpy(sol.states), ref_forward(W, b, x, "tanh", True, 0.3), atol=1e-10)
    grads = net.gradients(be.asarray(x), sol, be.asarray(g_out))
    dW, db, dx = ref_backprop(W, b, x, g_out, "tanh", True, 0.3)
    np.testing.assert_allclose(be.to_numpy(grads["weights"]), dW, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(be.to_numpy(grads["biases"]), db, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(be.to_numpy(grads["x"]), dx, rtol=1e-9, atol=1e-11)

    xp = be.xp
    A = 0.4 * rng.standard_normal((2, 2))
    As = be.asarray(A)
    ab, ts = schedule(30), np.arange(30)[::-1].copy()
    ddim = DDIM(
        lambda x, t: xp.tanh(x @ xp.matrix_transpose(As)),
        ab,
        ts,
        denoiser_jvp=lambda x, t, v: (
            (1 - xp.tanh(x @ xp.matrix_transpose(As)) ** 2) * (v @ xp.matrix_transpose(As))
        ),
    )
    z = rng.standard_normal(2)
    ref = ref_ddim(lambda x, t: np.tanh(x @ A.T), ab, ts, z)
    np.testing.assert_allclose(be.to_numpy(ddim.forward(be.asarray(z)).states), ref, atol=1e-9)
