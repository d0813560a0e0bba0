"""The adapters' chain methods (MLP, ResNet, DDIM) against hand-written NumPy references.

step / jac / jac_diag / jvp / vjp / linearize are tested directly (no chain solver involved):
against plain loops, against finite differences, on the Numba path, on the xp path over NumPy
(``use_backend("numpy")``) and on ``array_api_strict``; every error message is pinned down.
The references here (activations, networks, backprop, a DDIM sampler and a toy denoiser) are
also used by ``test_adapters_solve.py``; none of them calls pcrsolve.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import pcrsolve as pcr
from conftest import _strict_backend
from pcrsolve.adapters import ACTIVATIONS, DDIM, MLP, Activation, ResNet, get_activation
from pcrsolve.adapters._activations import _erfc_nr

# ----------------------------------------------------------------------------- references

_erfc = np.vectorize(math.erfc, otypes=[float])


def _cdf(z):
    return 0.5 * _erfc(-z / math.sqrt(2.0))


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


REF_ACT = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: (z > 0).astype(float)),
    "sigmoid": (_sig, lambda z: _sig(z) * (1.0 - _sig(z))),
    "gelu": (
        lambda z: z * _cdf(z),
        lambda z: _cdf(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
    ),
    "identity": (lambda z: z, np.ones_like),
}


def ref_layer(W, b, x, act, residual, h):
    """One layer on rows ``x`` (*batch, m): ``act(W x + b)`` or ``x + h act(W x + b)``."""
    z = x @ W.T + b
    a = REF_ACT[act][0](z)
    return x + h * a if residual else a


def ref_forward(W, b, x, act, residual=False, h=1.0):
    """All layer outputs, (L, *batch, m), by the plain loop."""
    out = []
    for k in range(W.shape[0]):
        x = ref_layer(W[k], b[k], x, act, residual, h)
        out.append(x)
    return np.stack(out)


def ref_backprop(W, b, x, grad_out, act, residual=False, h=1.0):
    """Hand-written backpropagation: (dW, db, dx) for a loss with dL/d(output) = grad_out."""
    prevs, zs = [], []
    for k in range(W.shape[0]):
        prevs.append(x)
        z = x @ W[k].T + b[k]
        zs.append(z)
        a = REF_ACT[act][0](z)
        x = x + h * a if residual else a
    g = grad_out
    dW, db = np.zeros_like(W), np.zeros_like(b)
    for k in reversed(range(W.shape[0])):
        delta = g * REF_ACT[act][1](zs[k]) * (h if residual else 1.0)
        dW[k] = delta.reshape(-1, W.shape[1]).T @ prevs[k].reshape(-1, W.shape[1])
        db[k] = delta.reshape(-1, W.shape[1]).sum(0)
        g = delta @ W[k] + (g if residual else 0.0)
    return dW, db, g


def toy_params(rng, m=2, hidden=16):
    """Parameters of a small tanh MLP denoiser eps(x, t) used by the DDIM tests."""
    return {
        "W1": rng.standard_normal((hidden, m)) / np.sqrt(m),
        "w_t": rng.standard_normal(hidden),
        "c1": 0.1 * rng.standard_normal(hidden),
        "W2": rng.standard_normal((m, hidden)) / np.sqrt(hidden),
    }


def toy_denoiser(P):
    """``eps(x, t) = W2 tanh(W1 x + w_t t/1000 + c1)``, vectorized over (s, *batch, m), t (s,)."""

    def pre(x, t):
        t = np.reshape(np.asarray(t, dtype=float) / 1000.0, (-1,) + (1,) * (x.ndim - 1))
        return x @ P["W1"].T + t * P["w_t"] + P["c1"]

    def eps(x, t):
        return np.tanh(pre(x, t)) @ P["W2"].T

    def jvp(x, t, v):
        d = 1.0 - np.tanh(pre(x, t)) ** 2
        return (d * (v @ P["W1"].T)) @ P["W2"].T

    return eps, jvp


def ref_ddim(eps, alpha_bar, timesteps, x, eta=0.0, noise=None):
    """The sequential DDIM sampler, one step at a time, as users write it."""
    out = []
    for k in range(len(timesteps)):
        a, a1 = alpha_bar[k], alpha_bar[k + 1]
        e = eps(x[None], np.array([timesteps[k]]))[0]
        x0_hat = (x - np.sqrt(1 - a) * e) / np.sqrt(a)
        sigma = eta * np.sqrt((1 - a1) / (1 - a)) * np.sqrt(1 - a / a1) if eta else 0.0
        x = np.sqrt(a1) * x0_hat + np.sqrt(1 - a1 - sigma**2) * e
        if eta:
            x = x + sigma * noise[k]
        out.append(x)
    return np.stack(out)


def schedule(n):
    """A cosine-like alpha_bar with n + 1 entries, increasing to 1.0."""
    s = np.linspace(0.0, 1.0, n + 1)
    return np.clip(np.sin(0.5 * np.pi * (0.02 + 0.98 * s)) ** 2, 1e-3, 1.0)


def network(rng, L, m, gain=0.8):
    W = gain * rng.standard_normal((L, m, m)) / np.sqrt(m)
    b = 0.3 * rng.standard_normal((L, m))
    return W, b


def make(cls, W, b, act, h=0.3):
    return MLP(W, b, act) if cls is MLP else ResNet(W, b, act, step_size=h)


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_reference(name):
    z = np.linspace(-6.0, 6.0, 241)
    act = get_activation(name)
    a, da = act.value_and_derivative(z)
    np.testing.assert_allclose(a, REF_ACT[name][0](z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(da, REF_ACT[name][1](z), rtol=1e-13, atol=1e-15)
    neg = z < -1.0  # relative accuracy in the lower tail too (no 1 + erf cancellation)
    np.testing.assert_allclose(a[neg], REF_ACT[name][0](z[neg]), rtol=1e-13)
    np.testing.assert_array_equal(act(z), a)
    np.testing.assert_array_equal(act.derivative(z), da)
    # derivative against central differences, away from relu's kink
    zz = z[np.abs(z) > 1e-3]
    fd = (act(zz + 1e-6) - act(zz - 1e-6)) / 2e-6
    np.testing.assert_allclose(act.derivative(zz), fd, rtol=1e-7, atol=1e-8)


def test_relu_derivative_is_zero_at_zero():
    a, da = get_activation("relu").value_and_derivative(np.array([0.0, -0.0]))
    np.testing.assert_array_equal(da, [0.0, 0.0])
    np.testing.assert_array_equal(a, [0.0, 0.0])


def test_gelu_is_the_exact_erf_gelu():
    # z Phi(z) with Phi(1) = 0.841344746068543, Phi(3) = 0.998650101968370 (not the tanh form)
    g = get_activation("gelu")(np.array([1.0, -1.0, 3.0, -3.0]))
    np.testing.assert_allclose(
        g, [0.841344746068543, -0.158655253931457, 2.99595030590511, -0.00404969409489], rtol=1e-12
    )


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a, da = get_activation("sigmoid").value_and_derivative(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(a, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(da, [0.0, 0.25, 0.0])


def test_erfc_fallback_accuracy():
    """The documented Numerical Recipes fit: relative error of erfc < 1.2e-7 on [-6, 6]."""
    z = np.linspace(-6.0, 6.0, 4001)
    ref = np.vectorize(math.erfc)(z)
    import array_api_compat.numpy as cnp

    got = _erfc_nr(cnp, z)
    assert np.max(np.abs(got / ref - 1.0)) < 1.2e-7


def test_gelu_fallback_on_strict(monkeypatch):
    be = _strict_backend(monkeypatch)
    z = np.linspace(-8.0, 8.0, 801)
    act = get_activation("gelu")
    a, da = act.value_and_derivative(be.asarray(z))
    a, da = be.to_numpy(a), be.to_numpy(da)
    ra, rda = REF_ACT["gelu"][0](z), REF_ACT["gelu"][1](z)
    assert np.all(np.abs(a - ra) <= 1.2e-7 * np.abs(z) + 1e-300)
    assert np.max(np.abs(da - rda)) < 1e-6
    neg = z < -0.5
    assert np.max(np.abs(a[neg] / ra[neg] - 1.0)) < 1.2e-7


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_on_strict(monkeypatch, name):
    be = _strict_backend(monkeypatch)
    z = np.linspace(-4.0, 4.0, 81)
    a, da = get_activation(name).value_and_derivative(be.asarray(z))
    tol = 2e-7 if name == "gelu" else 1e-14
    np.testing.assert_allclose(be.to_numpy(a), REF_ACT[name][0](z), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(da), REF_ACT[name][1](z), rtol=tol, atol=10 * tol)


def test_custom_activation_pair():
    act = get_activation((np.sin, np.cos))
    assert act.name == "custom" and get_activation(act) is act
    z = np.array([0.1, 0.2])
    np.testing.assert_array_equal(act.value_and_derivative(z)[1], np.cos(z))
    assert repr(act) == "Activation('custom')"
    assert isinstance(act, Activation)


# ----------------------------------------------------------------------------- MLP / ResNet chains

CLASSES = (MLP, ResNet)
BATCHES = ((), (3,), (2, 3))


def _ref_jac(W, b, x, k, act, residual, h):
    """Jacobians (s, *batch, m, m) by the formula diag(act'(z)) W (+ I)."""
    z = np.einsum("sij,s...j->s...i", W[k], x) + b[k].reshape(len(k), *([1] * (x.ndim - 2)), -1)
    d = REF_ACT[act][1](z) * (h if residual else 1.0)
    J = d[..., :, None] * W[k].reshape(len(k), *([1] * (x.ndim - 2)), *W.shape[1:])
    return J + np.eye(W.shape[1]) if residual else J


def _ref_step(W, b, x, k, act, residual, h):
    return np.stack([ref_layer(W[kk], b[kk], x[i], act, residual, h) for i, kk in enumerate(k)])


@pytest.mark.kernels
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("path", ("numba", "numpy"))
def test_chain_methods_match_reference(rng, cls, act, path):
    L, m = 6, 4
    W, b = network(rng, L, m)
    net = make(cls, W, b, act)
    residual, h = cls is ResNet, 0.3
    for batch in BATCHES:
        k = np.array([3, 0, 5, 3])
        x = rng.standard_normal((len(k), *batch, m))
        v = rng.standard_normal(x.shape)
        f_ref = _ref_step(W, b, x, k, act, residual, h)
        J_ref = _ref_jac(W, b, x, k, act, residual, h)
        with pcr.use_backend(path):
            f, J = net.linearize(x, k)
            np.testing.assert_allclose(net.step(x, k), f_ref, rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(f, f_ref, rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(J, J_ref, rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(net.jac(x, k), J_ref, rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(
                net.jac_diag(x, k), np.diagonal(J_ref, axis1=-2, axis2=-1), rtol=1e-13, atol=1e-14
            )
            np.testing.assert_allclose(net.jvp(x, k, v), np.einsum("...ij,...j->...i", J_ref, v), atol=1e-13)
            np.testing.assert_allclose(net.vjp(x, k, v), np.einsum("...ij,...i->...j", J_ref, v), atol=1e-13)
        assert f.shape == (len(k), *batch, m) and J.shape == (len(k), *batch, m, m)


@pytest.mark.kernels
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_jacobian_against_finite_differences(rng, cls, act):
    L, m = 5, 3
    W, b = network(rng, L, m)
    net = make(cls, W, b, act)
    k = np.arange(L)
    x = rng.standard_normal((L, 2, m))
    J = net.jac(x, k)
    eps = 1e-6
    for q in range(m):
        d = np.zeros(m)
        d[q] = eps
        col = (net.step(x + d, k) - net.step(x - d, k)) / (2 * eps)
        np.testing.assert_allclose(J[..., q], col, rtol=1e-6, atol=1e-7)
    u = rng.standard_normal(x.shape)
    fd = (np.sum(u * net.step(x + eps * u, k)) - np.sum(u * net.step(x - eps * u, k))) / (2 * eps)
    assert np.isclose(np.sum(u * net.jvp(x, k, u)), fd, rtol=1e-6)
    assert np.isclose(np.sum(net.vjp(x, k, u) * u), fd, rtol=1e-6)


@pytest.mark.parametrize("cls", CLASSES)
def test_custom_activation_matches_builtin(rng, cls):
    W, b = network(rng, 4, 3)
    a = make(cls, W, b, "tanh")
    c = make(cls, W, b, (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2))
    x, k = rng.standard_normal((4, 2, 3)), np.arange(4)
    for path in ("numba", "numpy"):
        with pcr.use_backend(path):
            np.testing.assert_allclose(c.linearize(x, k)[1], a.linearize(x, k)[1], rtol=1e-15)
            np.testing.assert_allclose(c.step(x, k), a.step(x, k), rtol=1e-15)


@pytest.mark.parametrize("cls", CLASSES)
def test_dtypes(rng, cls):
    W, b = network(rng, 4, 3)
    x, k = rng.standard_normal((4, 3)), np.arange(4)
    net32 = make(cls, W.astype(np.float32), b.astype(np.float32), "tanh")
    assert net32.step(x.astype(np.float32), k).dtype == np.float32
    assert net32.jac(x.astype(np.float32), k).dtype == np.float32
    assert net32.step(x, k).dtype == np.float64  # float64 states promote
    np.testing.assert_allclose(
        net32.step(x.astype(np.float32), k), make(cls, W, b, "tanh").step(x, k), rtol=1e-5
    )
    assert make(cls, W.astype(np.float16), b.astype(np.float16), "tanh").weights.dtype == np.float32
    ints = make(cls, np.ones((2, 2, 2), dtype=int), np.zeros((2, 2), dtype=int), "relu")
    assert ints.weights.dtype == np.float64
    assert ints.step(np.ones((2, 2), dtype=int), np.arange(2)).dtype == np.float64


@pytest.mark.parametrize("cls", CLASSES)
def test_read_only_inputs_are_untouched(rng, cls):
    W, b = network(rng, 4, 3)
    x, v, k = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), np.arange(4)
    for a in (W, b, x, v, k):
        a.setflags(write=False)
    net = make(cls, W, b, "gelu")
    net.linearize(x, k), net.jvp(x, k, v), net.vjp(x, k, v), net.jac_diag(x, k)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", ("tanh", "gelu", "relu"))
def test_strict_backend(monkeypatch, rng, cls, act):
    """Weights and states as array_api_strict arrays: the xp path, results equal NumPy's."""
    be = _strict_backend(monkeypatch)
    L, m = 5, 3
    W, b = network(rng, L, m)
    x, v, k = rng.standard_normal((L, 2, m)), rng.standard_normal((L, 2, m)), np.array([4, 0, 1, 2, 3])
    ref = make(cls, W, b, act)
    net = make(cls, be.asarray(W), be.asarray(b), act)
    X, V, K = be.asarray(x), be.asarray(v), be.asarray(k)
    tol = 3e-7 if act == "gelu" else 1e-13
    f, J = net.linearize(X, K)
    assert type(f) is type(X) and type(J) is type(X)
    np.testing.assert_allclose(be.to_numpy(f), ref.step(x, k), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(net.step(X, K)), ref.step(x, k), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(J), ref.jac(x, k), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(net.jac(X, K)), ref.jac(x, k), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(net.jac_diag(X, K)), ref.jac_diag(x, k), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(net.jvp(X, K, V)), ref.jvp(x, k, v), rtol=tol, atol=tol)
    np.testing.assert_allclose(be.to_numpy(net.vjp(X, K, V)), ref.vjp(x, k, v), rtol=tol, atol=tol)


def test_strict_float32(monkeypatch, rng):
    be = _strict_backend(monkeypatch)
    W, b = network(rng, 3, 2)
    net = MLP(be.asarray(W.astype(np.float32)), be.asarray(b.astype(np.float32)))
    out = net.jac(be.asarray(rng.standard_normal((3, 2)).astype(np.float32)), be.asarray(np.arange(3)))
    assert out.dtype == be.xp.float32


def test_attributes_and_repr(rng):
    W, b = network(rng, 4, 3)
    net = ResNet(W, b, "relu", step_size=0.5)
    assert (net.n_steps, net.width, net.step_size, net.activation.name) == (4, 3, 0.5, "relu")
    np.testing.assert_array_equal(net.weights, W)  # copies (see test_adapters_snapshot)
    np.testing.assert_array_equal(net.biases, b)
    assert repr(net) == "ResNet(L=4, m=3, activation='relu', step_size=0.5, dtype=float64)"
    assert repr(MLP(W, b)) == "MLP(L=4, m=3, activation='tanh', dtype=float64)"


def test_empty_steps_and_batch(rng):
    W, b = network(rng, 3, 2)
    net = MLP(W, b)
    assert net.step(np.zeros((0, 2)), np.zeros(0, dtype=int)).shape == (0, 2)
    assert net.jac(np.zeros((2, 0, 2)), np.arange(2)).shape == (2, 0, 2, 2)


# ----------------------------------------------------------------------------- DDIM chain


def _ddim_case(rng, n=6, m=2, eta=0.0, batch=(3,)):
    P = toy_params(rng, m)
    eps, jvp = toy_denoiser(P)
    ab = schedule(n)
    ts = np.linspace(999, 0, n).round().astype(int)
    noise = rng.standard_normal((n, *batch, m)) if eta else None
    return eps, jvp, ab, ts, noise


@pytest.mark.parametrize("eta", (0.0, 0.5, 1.0))
def test_ddim_step_matches_sampler(rng, eta):
    eps, jvp, ab, ts, noise = _ddim_case(rng, eta=eta)
    ddim = DDIM(eps, ab, ts, eta=eta, noise=noise, denoiser_jvp=jvp)
    x0 = rng.standard_normal((3, 2))
    ref = ref_ddim(eps, ab, ts, x0, eta, noise)
    prev = np.concatenate([x0[None], ref[:-1]])
    k = np.arange(len(ts))
    np.testing.assert_allclose(ddim.step(prev, k), ref, rtol=1e-12, atol=1e-13)
    # also one step at a time, in a shuffled order
    for kk in (5, 0, 3):
        np.testing.assert_allclose(ddim.step(prev[kk : kk + 1], np.array([kk])), ref[kk : kk + 1], atol=1e-13)


def test_ddim_coefficients(rng):
    eps, _, ab, ts, noise = _ddim_case(rng, eta=0.7)
    c_x, c_eps, sigma = DDIM(eps, ab, ts, eta=0.7, noise=noise).coefficients
    a, a1 = ab[:-1], ab[1:]
    s = 0.7 * np.sqrt((1 - a1) / (1 - a)) * np.sqrt(1 - a / a1)
    np.testing.assert_allclose(sigma, s, rtol=1e-14)
    np.testing.assert_allclose(c_x, np.sqrt(a1 / a), rtol=1e-14)
    np.testing.assert_allclose(
        c_eps, np.sqrt(1 - a1 - s**2) - np.sqrt(a1 * (1 - a) / a), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("batch", ((), (3,), (2, 2)))
def test_ddim_derivatives(rng, batch):
    eps, jvp, ab, ts, _ = _ddim_case(rng, batch=batch)
    ddim = DDIM(eps, ab, ts, denoiser_jvp=jvp)
    k = np.array([0, 2, 5])
    x = rng.standard_normal((3, *batch, 2))
    u = rng.standard_normal(x.shape)
    J = ddim.jac(x, k)
    assert J.shape == (3, *batch, 2, 2)
    h = 1e-6
    for q in range(2):
        d = np.zeros(2)
        d[q] = h
        np.testing.assert_allclose(
            J[..., q], (ddim.step(x + d, k) - ddim.step(x - d, k)) / (2 * h), atol=1e-7
        )
    np.testing.assert_allclose(ddim.jvp(x, k, u), np.einsum("...ij,...j->...i", J, u), atol=1e-13)
    np.testing.assert_allclose(ddim.vjp(x, k, u), np.einsum("...ij,...i->...j", J, u), atol=1e-13)
    np.testing.assert_allclose(ddim.jac_diag(x, k), np.diagonal(J, axis1=-2, axis2=-1), atol=1e-15)
    f, J2 = ddim.linearize(x, k)
    np.testing.assert_array_equal(J2, J)
    np.testing.assert_array_equal(f, ddim.step(x, k))


def test_ddim_strict(monkeypatch, rng):
    be = _strict_backend(monkeypatch)
    xp = be.xp
    m, n = 2, 4
    A = 0.3 * rng.standard_normal((m, m))
    ab, ts = schedule(n), np.arange(n)[::-1].copy()
    noise = rng.standard_normal((n, m))
    lin = lambda x, t: x @ A.T  # noqa: E731
    ref = DDIM(lin, ab, ts, eta=0.5, noise=noise, denoiser_jvp=lambda x, t, v: v @ A.T)
    As = be.asarray(A)
    ddim = DDIM(
        lambda x, t: x @ xp.matrix_transpose(As),
        ab,
        ts,
        eta=0.5,
        noise=be.asarray(noise),
        denoiser_jvp=lambda x, t, v: v @ xp.matrix_transpose(As),
    )
    x, k = rng.standard_normal((n, m)), np.arange(n)
    np.testing.assert_allclose(
        be.to_numpy(ddim.step(be.asarray(x), be.asarray(k))), ref.step(x, k), atol=1e-14
    )
    np.testing.assert_allclose(be.to_numpy(ddim.jac(be.asarray(x), be.asarray(k))), ref.jac(x, k), atol=1e-14)


def test_ddim_attributes(rng):
    eps, _, ab, ts, noise = _ddim_case(rng, eta=0.5)
    ddim = DDIM(eps, ab, ts, eta=0.5, noise=noise)
    assert ddim.n_steps == 6 and ddim.eta == 0.5
    np.testing.assert_array_equal(ddim.noise, noise)  # a copy (see test_adapters_snapshot)
    assert ddim.alphas_cumprod.dtype == np.float64 and ddim.timesteps is not None
    assert repr(ddim) == "DDIM(n=6, eta=0.5, denoiser_jvp=no)"
    assert DDIM(eps, ab, ts, noise=noise).noise is None  # eta = 0: no noise term


# ----------------------------------------------------------------------------- error messages


def test_weight_errors(rng):
    W, b = network(rng, 4, 3)
    with raises(
        ValueError,
        "`weights` must have shape (L, m, m): one square m x m matrix per layer; got shape (4, 3, 2).",
    ):
        MLP(W[..., :2], b)
    with raises(ValueError, "`weights` must have shape (L, m, m)"):
        ResNet(W[0], b)
    with raises(
        ValueError,
        "`biases` must have shape (L, m) = (4, 3) to match `weights` of shape (4, 3, 3); got shape (3, 3).",
    ):
        MLP(W, b[:3])
    with raises(ValueError, "`biases` must have shape (L, m) = (4, 3)"):
        ResNet(W, b[:, :2])
    with raises(TypeError, "`weights` must have a real floating (or integer) dtype; got complex128."):
        MLP(W + 0j, b)
    with raises(TypeError, "`biases` must have a real floating"):
        MLP(W, b.astype(complex))


def test_activation_errors(rng):
    W, b = network(rng, 2, 2)
    with raises(
        ValueError,
        "`activation` must be one of 'tanh', 'relu', 'sigmoid', 'gelu', 'identity' or a pair of callables "
        "(function, derivative); got 'softplus'.",
    ):
        MLP(W, b, "softplus")
    with raises(
        TypeError,
        "`activation` must be a name ('tanh', 'relu', 'sigmoid', 'gelu', 'identity') or a pair "
        "of callables (function, derivative); got int.",
    ):
        ResNet(W, b, 3)
    with raises(TypeError, "got tuple"):
        MLP(W, b, (np.tanh,))
    bad = MLP(W, b, (np.tanh, lambda z: np.ones(3)))
    with raises(
        ValueError,
        "the custom `activation` derivative must return an array of the shape of its input (2, "
        "1, 2); got shape (3,).",
    ):
        bad.jac(np.zeros((2, 2)), np.arange(2))


def test_step_size_errors(rng):
    W, b = network(rng, 2, 2)
    with raises(TypeError, "`step_size` must be a real number; got str."):
        ResNet(W, b, step_size="0.1")
    with raises(ValueError, "`step_size` must be finite; got nan."):
        ResNet(W, b, step_size=float("nan"))


def test_call_errors(rng):
    W, b = network(rng, 3, 2)
    net = MLP(W, b)
    for path in ("numba", "numpy"):
        with pcr.use_backend(path):
            with raises(
                ValueError, "`x_prev` must have shape (s, *batch, m) with m = 2 features; got shape (3, 4)."
            ):
                net.step(np.zeros((3, 4)), np.arange(3))
            with raises(ValueError, "`k` must have one index per step, shape (3,); got shape (2,)."):
                net.step(np.zeros((3, 2)), np.arange(2))
            with raises(ValueError, "`v` must have the shape of `x_prev`, (3, 2); got shape (3, 1)."):
                net.jvp(np.zeros((3, 2)), np.arange(3), np.zeros((3, 1)))
    with raises(ValueError, "`k` must hold step indices in [0, 3); got values in [-1, 3]."):
        net.step(np.zeros((2, 2)), np.array([3, -1]))
    with raises(
        ValueError,
        "`x` must have shape (*batch, m) with m = 2 features (the width of `weights`); got shape (3,).",
    ):
        net.forward(np.zeros(3))


def test_mixed_libraries(monkeypatch, rng):
    be = _strict_backend(monkeypatch)
    W, b = network(rng, 3, 2)
    with raises(
        TypeError,
        "the inputs come from different array libraries (numpy for `weights`, array_api_strict for `biases`)",
    ):
        MLP(W, be.asarray(b))
    with raises(TypeError, "(numpy for `weights`, array_api_strict for `x_prev`)"):
        MLP(W, b).step(be.asarray(np.zeros((3, 2))), be.asarray(np.arange(3)))


def test_gradient_shape_errors(rng):
    W, b = network(rng, 3, 2)
    net = MLP(W, b)
    x = np.zeros((4, 2))
    with raises(
        ValueError,
        "`states` must have shape (L, *batch, m) = (3, 4, 2) (one state per layer, for `x` of "
        "shape (4, 2)); got shape (3, 2).",
    ):
        net.gradients(x, np.zeros((3, 2)), np.zeros((4, 2)))
    with raises(ValueError, "`grad_out` must have the shape of the network output, (4, 2); got shape (2,)."):
        net.gradients(x, np.zeros((3, 4, 2)), np.zeros(2))


def test_ddim_errors(rng):
    eps, _, ab, ts, noise = _ddim_case(rng, eta=0.5)
    with raises(TypeError, "`denoiser` must be a callable (x, t) -> eps; got ndarray."):
        DDIM(ab, ab, ts)
    with raises(TypeError, "`denoiser_jvp` must be a callable (x, t, v) -> J v or None; got int."):
        DDIM(eps, ab, ts, denoiser_jvp=1)
    with raises(
        ValueError,
        "`alphas_cumprod` must be a 1-D array of n + 1 >= 2 values (from the noisiest point of the "
        "schedule to the cleanest, for n steps); got shape (1,).",
    ):
        DDIM(eps, ab[:1], ts[:0])
    with raises(ValueError, "`alphas_cumprod` must be a 1-D array"):
        DDIM(eps, ab[None], ts)
    with raises(
        ValueError,
        "`alphas_cumprod` must hold values in (0, 1] (cumulative products of 1 - beta); got values in [0.0, ",
    ):
        DDIM(eps, np.r_[0.0, ab[1:]], ts)
    with raises(ValueError, "`alphas_cumprod` must hold values in (0, 1]"):
        DDIM(eps, np.r_[ab[:-1], 1.5], ts)
    with raises(ValueError, "`alphas_cumprod` must hold values in (0, 1]"):
        DDIM(eps, np.r_[ab[:-1], np.nan], ts)
    with raises(TypeError, "`alphas_cumprod` must be real; got dtype complex128."):
        DDIM(eps, ab + 0j, ts)
    with raises(
        ValueError,
        "`timesteps` must have shape (n,) = (6,): one value per step, for `alphas_cumprod` of 7 "
        "entries; got shape (7,).",
    ):
        DDIM(eps, ab, np.arange(7))
    with raises(
        ValueError,
        "`noise` must have shape (n, *batch, m) with n = 6 (one draw per step); got shape (5, 3, 2).",
    ):
        DDIM(eps, ab, ts, eta=0.5, noise=noise[:5])
    with raises(ValueError, "`noise` is required when `eta` > 0 (got eta=0.5): draw it up front"):
        DDIM(eps, ab, ts, eta=0.5)
    with raises(ValueError, "`eta` must be a finite number >= 0 (0: DDIM, 1: DDPM variance); got -1.0."):
        DDIM(eps, ab, ts, eta=-1.0)
    with raises(TypeError, "`eta` must be a real number; got str."):
        DDIM(eps, ab, ts, eta="0")
    with raises(
        ValueError,
        "`eta` = 5.0 is too large for this schedule: 1 - a[k+1] - sigma_k^2 < 0 at some step; "
        "eta <= 1 always works.",
    ):
        DDIM(eps, ab, ts, eta=5.0, noise=noise)
    with raises(
        ValueError,
        "with `eta` > 0, `alphas_cumprod` must be non-decreasing with alphas_cumprod[k] < 1 for k < n",
    ):
        DDIM(eps, ab[::-1].copy(), ts, eta=0.5, noise=noise)


def test_ddim_call_errors(rng):
    eps, _, ab, ts, noise = _ddim_case(rng, eta=0.5)
    x, k = np.zeros((2, 3, 2)), np.arange(2)
    bad = DDIM(lambda x, t: x[..., :1], ab, ts)
    with raises(
        ValueError,
        "`denoiser` must return an array of the shape of its input x, (s, *batch, m) = (2, 3, "
        "2); got shape (2, 3, 1).",
    ):
        bad.step(x, k)
    with raises(ValueError, "got list"):
        DDIM(lambda x, t: [0.0], ab, ts).step(x, k)
    with raises(
        ValueError, "`denoiser_jvp` must return an array of the shape of v, (2, 3, 2); got shape (2,)."
    ):
        DDIM(eps, ab, ts, denoiser_jvp=lambda x, t, v: v[:, 0, 0]).jvp(x, k, x)
    no_jvp = DDIM(eps, ab, ts)
    msg = "needs Jacobian-vector products of the denoiser: pass `denoiser_jvp`"
    for name in ("jac", "jac_diag", "linearize"):
        with raises(ValueError, f"DDIM.{name} {msg}"):
            getattr(no_jvp, name)(x, k)
    for name in ("jvp", "vjp"):
        with raises(ValueError, f"DDIM.{name} {msg}"):
            getattr(no_jvp, name)(x, k, x)
    for method in ("newton", "diagonal"):
        with raises(ValueError, f'method="{method}" {msg}'):
            no_jvp.forward(np.zeros((3, 2)), method=method)
    with raises(ValueError, 'or use a Jacobian-free method such as method="picard".'):
        no_jvp.forward(np.zeros((3, 2)), method="newton")
    noisy = DDIM(eps, ab, ts, eta=0.5, noise=noise)
    with raises(
        ValueError,
        "`noise` must have shape (n, *batch, m) = (6, 4, 2) (or broadcast to it) for `x` of "
        "shape (4, 2); got shape (6, 3, 2).",
    ):
        noisy.forward(np.zeros((4, 2)))
    with raises(ValueError, "`k` must have one index per step, shape (2,); got shape (3,)."):
        noisy.step(x, np.arange(3))
