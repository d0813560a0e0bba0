"""The adapters' fast paths against the unfused reference and hand-written loops.

- ``sequential`` (the compiled loop / the DDIM sampler loop) against the plain loop of ``step``.
- The fused sweep pass (``_fused_pass``: no Jacobians formed) against the generic path
  (``linearize`` + a recurrence kernel): the same iterates sweep by sweep, for every method,
  batch shape, float32 and float64, blocks that do not divide the sweep, and windows.
- The fused adjoint behind ``gradients`` and ``chain_adjoint`` against the generic adjoint,
  hand-written backprop and finite differences.

The kernels' parallel twins run too (``PARALLEL_MIN_WORK = 0``); tests marked ``kernels`` also
run under ``NUMBA_DISABLE_JIT=1``.
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
from conftest import unchanged
from pcrsolve.adapters import ACTIVATIONS, DDIM, MLP, ResNet, _dense_fused
from pcrsolve.chain import _loop, _policy, _sweep

CLASSES = (MLP, ResNet)
METHODS = ("newton", "diagonal", "picard", "jacobi")


@pytest.fixture(params=[False, True], ids=["serial", "parallel"])
def threads(request, monkeypatch):
    """Run the fused kernels' serial twins, or their parallel twins on any size (and a single
    chain split in two halves, the hybrid partition, from 8 steps on)."""
    if request.param:
        monkeypatch.setattr(_dense_fused, "PARALLEL_MIN_WORK", 0)
        monkeypatch.setattr(_dense_fused, "_MIN_HALF", 4)
        monkeypatch.setattr(_dense_fused, "_threads", lambda: 2)
    return request.param


@pytest.fixture
def sweeps_only(monkeypatch):
    """No cost model, no cost rules: every solve sweeps until it converges."""
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)


def generic(net):
    """The same chain without its fast paths: the reference of the fused ones."""
    return pcr.FunctionChain(net.step, jac=net.jac, jac_diag=net.jac_diag, vjp=net.vjp)


# --------------------------------------------------------------------------- the compiled loop


@pytest.mark.kernels
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", [*ACTIVATIONS, "custom"])
@pytest.mark.parametrize("batch", [(), (3,), (2, 2), (64,)], ids=str)  # (64,): NumPy's loop
def test_sequential_matches_the_step_loop(rng, cls, act, batch, threads):
    L, m = 30, 4
    W, b = network(rng, L, m)
    custom = (np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    net = make(cls, W, b, custom if act == "custom" else act, h=0.2)
    x = rng.standard_normal((*batch, m))
    ref = ref_forward(W, b, x, "tanh" if act == "custom" else act, cls is ResNet, 0.2)
    with unchanged(x):
        out = net.sequential(x, 0, L)
        part = net.sequential(ref[9], 10, 25)
    assert out.shape == (L, *batch, m)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(part, ref[10:25], rtol=1e-13, atol=1e-14)
    assert net.sequential(x, 5, 5).shape == (0, *batch, m)
    assert pcr.sequential_chain(net, x, L).shape == (L, *batch, m)


@pytest.mark.kernels
@pytest.mark.parametrize("batch", [(3,), (64,)], ids=str)  # the compiled loop, NumPy's loop
def test_sequential_into_the_solvers_states(rng, batch):
    L, m = 30, 4
    W, b = network(rng, L, m)
    net = ResNet(W, b, "tanh", step_size=0.2)
    x = rng.standard_normal((*batch, m))
    ref = ref_forward(W, b, x, "tanh", True, 0.2)
    out = np.full((15, *batch, m), np.nan)
    assert net._sequential_into(ref[9], 10, 25, out)
    np.testing.assert_allclose(out, ref[10:25], rtol=1e-13, atol=1e-14)
    # what does not fit is left alone (the solvers then call `sequential`)
    unfit = [
        np.zeros((15, *batch, m), dtype=np.float32),  # another dtype
        np.zeros((14, *batch, m)),  # another shape
        np.zeros((m, *batch, 15)).T,  # not C-contiguous
    ]
    for bad in unfit:
        before = bad.copy()
        assert not net._sequential_into(ref[9], 10, 25, bad)
        np.testing.assert_array_equal(bad, before)
    # the solvers' loop writes into their states ...
    direct = ResNet(W, b, "tanh", step_size=0.2)
    direct.sequential = lambda *args: pytest.fail("the states were not written in place")
    np.testing.assert_allclose(pcr.sequential_chain(direct, x, L), ref, rtol=1e-13, atol=1e-14)
    # ... and calls `sequential` when the private hook declines
    declined = ResNet(W, b, "tanh", step_size=0.2)
    declined._sequential_into = lambda *args: False
    np.testing.assert_allclose(pcr.sequential_chain(declined, x, L), ref, rtol=1e-13, atol=1e-14)


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_compiled_tanh_is_within_two_ulp(dtype):
    """The compiled loop's vectorizable tanh against NumPy's, on a dense grid and the specials."""
    from pcrsolve.adapters import _kernels

    grid = np.concatenate([np.linspace(-25.0, 25.0, 200_001), np.geomspace(1e-300, 30.0, 20_001)])
    x = np.concatenate([grid, -grid, [0.625, np.nextafter(0.625, 0.0), 22.0, 710.0]]).astype(dtype)
    out = np.empty_like(x)
    _kernels.TANH(x, out)
    ref = np.tanh(x)
    assert np.all(np.abs(out - ref) <= 2 * np.spacing(np.abs(ref)))
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    got = np.empty_like(specials)
    _kernels.TANH(specials, got)
    np.testing.assert_array_equal(got, [0.0, -0.0, 1.0, -1.0, np.nan])
    assert np.signbit(got[1]) and not np.signbit(got[0])


@pytest.mark.parametrize("path", ["numpy", "float32", "strict"])
def test_sequential_on_other_paths(rng, path, monkeypatch):
    W, b = network(rng, 20, 3)
    x = rng.standard_normal((2, 3))
    ref = ref_forward(W, b, x, "gelu", True, 0.1)
    if path == "strict":
        from conftest import _strict_backend

        be = _strict_backend(monkeypatch)
        net = ResNet(be.asarray(W), be.asarray(b), "gelu", step_size=0.1)
        out = net.sequential(be.asarray(x), 0, 20)
        assert type(out) is type(be.asarray(x))
        np.testing.assert_allclose(be.to_numpy(out), ref, atol=1e-6)  # the fallback erfc
    elif path == "float32":
        net = ResNet(W.astype(np.float32), b.astype(np.float32), "gelu", step_size=0.1)
        out = net.sequential(x.astype(np.float32), 0, 20)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=1e-5)
    else:
        net = ResNet(W, b, "gelu", step_size=0.1)
        with pcr.use_backend("numpy"):
            np.testing.assert_allclose(net.sequential(x, 0, 20), ref, rtol=1e-13, atol=1e-14)


def test_sequential_errors(rng):
    net = MLP(*network(rng, 10, 3))
    with pytest.raises(
        ValueError, match=r"0 <= start <= stop <= 10 \(the chain has 10 layers\); got 4 and 11"
    ):
        net.sequential(np.zeros(3), 4, 11)
    with pytest.raises(ValueError, match=r"0 <= start <= stop <= 10 .*; got 5 and 4"):
        net.sequential(np.zeros(3), 5, 4)
    with pytest.raises(TypeError, match=r"`start` and `stop` must be ints; got float and int"):
        net.sequential(np.zeros(3), 1.0, 4)
    with pytest.raises(
        ValueError, match=r"`x_prev` must have shape \(\*batch, m\) with m = 3 .*got shape \(4,\)"
    ):
        net.sequential(np.zeros(4), 0, 4)


def test_ddim_sequential_is_the_sampler_loop(rng):
    eps, jvp = toy_denoiser(toy_params(rng, 2))
    n, ab = 40, schedule(40)
    ts = np.linspace(999, 0, n).round().astype(int)
    noise = rng.standard_normal((n, 2))
    ddim = DDIM(eps, ab, ts, eta=0.5, noise=noise, denoiser_jvp=jvp)
    x = rng.standard_normal(2)
    ref = ref_ddim(eps, ab, ts, x, 0.5, noise)
    np.testing.assert_allclose(ddim.sequential(x, 0, n), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ddim.sequential(ref[9], 10, 30), ref[10:30], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pcr.sequential_chain(ddim, x, n), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(
        ValueError, match=r"0 <= start <= stop <= 40 \(the chain has 40 steps\); got 0 and 41"
    ):
        ddim.sequential(x, 0, 41)
    sol = ddim.forward(x)  # "auto" with a denoiser_jvp
    assert sol.route in ("newton", "sequential") and sol.route_reason.startswith("auto")
    np.testing.assert_allclose(sol.states, ref, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- the fused sweep pass


@pytest.mark.kernels
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kind", ["dense", "diag", "identity", "zero"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("batch", [(), (2, 3)], ids=str)
def test_fused_pass_matches_linearize_and_recurrence(rng, cls, kind, dtype, batch, threads):
    """One block of a sweep, from a random iterate and carry: F bit for bit, dX to rounding."""
    from pcrsolve import _backend
    from pcrsolve.chain._eval import Evaluator

    n, m = 40, 4
    W, b = network(rng, n, m)
    net = make(cls, W.astype(dtype), b.astype(dtype), "tanh", h=0.25)
    X = rng.standard_normal((n, *batch, m)).astype(dtype)
    x0 = rng.standard_normal((*batch, m)).astype(dtype)
    carry = rng.standard_normal((int(np.prod(batch)), m)).astype(dtype)
    opts = _policy.Options(kind, 1e-12, False, None, None, 1.0, None, False, 1e-12, "sequential")
    be = _backend.resolve({}, backend="numba")
    fused_ev = Evaluator(net, np, np.dtype(dtype), batch, m)
    generic_ev = Evaluator(generic(net), np, np.dtype(dtype), batch, m)
    assert fused_ev.fused(kind) is not None and generic_ev.fused(kind) is None
    tol = 2e-5 if dtype == np.float32 else 1e-13
    for a, e in ((0, 17), (17, 40)):
        with unchanged(X, x0, carry):
            F, dX = _sweep.evaluate(fused_ev, be, opts, X, x0, np.arange(n), a, e, carry)
        Fr, dXr = _sweep.evaluate(generic_ev, be, opts, X, x0, np.arange(n), a, e, carry)
        np.testing.assert_array_equal(F, Fr)
        np.testing.assert_allclose(dX, dXr, rtol=tol, atol=tol)
    assert fused_ev.n_step_evals == generic_ev.n_step_evals == n
    assert fused_ev.n_jac_evals == generic_ev.n_jac_evals == (n if kind in ("dense", "diag") else 0)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)], ids=str)
@pytest.mark.parametrize("window", [None, 13])
def test_fused_sweeps_match_generic_sweeps(
    rng, cls, method, batch, window, sweeps_only, threads, monkeypatch
):
    """Whole solves, blocks of 7 steps (dividing neither the sweeps nor the window): the
    fused and the generic path take the same iterates, sweep by sweep."""
    monkeypatch.setattr(_sweep, "_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_FUSED_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_MIN_BLOCK", 7)
    n, m = 60, 3
    W, b = network(rng, n, m, gain=0.5)
    net = make(cls, W, b, "sigmoid", h=0.1)
    x = rng.standard_normal((*batch, m))
    fused = pcr.solve_chain(net, x, n, method=method, window=window)
    ref = pcr.solve_chain(generic(net), x, n, method=method, window=window)
    assert fused.route == ref.route == method and fused.status == ref.status == "converged"
    assert len(fused.residuals) == len(ref.residuals)
    np.testing.assert_allclose(fused.residuals, ref.residuals, rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(fused.states, ref.states, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.states, ref_forward(W, b, x, "sigmoid", cls is ResNet, 0.1), atol=1e-10)


def test_fused_sweeps_float32_and_custom_activation(rng, sweeps_only):
    W, b = network(rng, 50, 4, gain=0.5)
    net = MLP(W.astype(np.float32), b.astype(np.float32), (np.tanh, lambda z: 1 - np.tanh(z) ** 2))
    x = rng.standard_normal((2, 4)).astype(np.float32)
    sol = pcr.solve_chain(net, x, 50, method="newton")
    assert sol.states.dtype == np.float32 and sol.status == "converged"
    np.testing.assert_allclose(sol.states, ref_forward(W, b, x.astype(float), "tanh"), atol=2e-5)


def test_fused_pass_is_skipped_where_it_does_not_apply(rng, sweeps_only):
    """float32 states with float64 weights: the generic path runs, and raises its dtype error."""
    net = MLP(*network(rng, 20, 3))
    assert net._fused_pass("dense", np.dtype(np.float32)) is None
    assert net._fused_pass("block", np.dtype(np.float64)) is None
    with pytest.raises(TypeError, match=r"`chain.sequential` must return the states' dtype float32"):
        pcr.solve_chain(net, np.zeros(3, np.float32), 20, method="newton")


@pytest.mark.parametrize("method", ["sequential", "newton"])
def test_more_steps_than_layers(rng, method, sweeps_only):
    net = MLP(*network(rng, 20, 3))
    with pytest.raises(
        ValueError, match=r"(`k` must hold step indices in \[0, 20\))|(the chain has 20 layers)"
    ):
        pcr.solve_chain(net, np.zeros(3), 30, method=method)


# --------------------------------------------------------------------------- the fused adjoint


@pytest.mark.kernels
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loop", ["compiled", "blas"])  # blas: the wide layers' reverse loop
def test_gradients_match_hand_backprop_and_the_generic_adjoint(rng, cls, act, loop, threads, monkeypatch):
    from pcrsolve.adapters import _dense_fused

    if loop == "blas":
        monkeypatch.setattr(_dense_fused, "_compiled_pays", lambda *args: False)
    L, m, batch = 24, 4, (2, 3)
    W, b = network(rng, L, m, gain=0.6)
    net = make(cls, W, b, act, h=0.2)
    x = rng.standard_normal((*batch, m))
    states = ref_forward(W, b, x, act, cls is ResNet, 0.2)
    g_out = rng.standard_normal((*batch, m))
    with unchanged(x, states, g_out):
        grads = net.gradients(x, states, g_out)
    dW, db, dx = ref_backprop(W, b, x, g_out, act, cls is ResNet, 0.2)
    np.testing.assert_allclose(grads["weights"], dW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["biases"], db, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["x"], dx, rtol=1e-10, atol=1e-12)
    # The generic path (chain_adjoint by PCR, then the batched product) agrees.
    pcr_grads = net.gradients(x, states, g_out, method="pcr")
    for key in grads:
        np.testing.assert_allclose(grads[key], pcr_grads[key], rtol=1e-10, atol=1e-12)
    # chain_adjoint itself takes the fused pass for the adapters (no Jacobian asked for).
    G = rng.standard_normal(states.shape)

    def no_jacobians(*args):
        raise AssertionError("the fused adjoint forms no Jacobian")

    with pytest.MonkeyPatch.context() as mp:
        for name in ("jac", "linearize", "vjp"):
            mp.setattr(net, name, no_jacobians)
        adj, gx = pcr.chain_adjoint(net, x, states, G)
    ref_adj, ref_gx = pcr.chain_adjoint(generic(net), x, states, G)
    np.testing.assert_allclose(adj, ref_adj, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-10, atol=1e-12)


def test_gradients_against_finite_differences(rng):
    L, m = 12, 3
    W, b = network(rng, L, m, gain=0.8)
    x = rng.standard_normal((2, m))
    c = rng.standard_normal((2, m))

    def loss(W, b, x):
        return float(np.sum(c * ResNet(W, b, "gelu", step_size=0.3).sequential(x, 0, L)[-1]))

    grads = ResNet(W, b, "gelu", step_size=0.3).gradients(x, ResNet(W, b, "gelu", 0.3).sequential(x, 0, L), c)
    eps = 1e-6
    for idx in [(0, 1, 2), (5, 0, 0), (11, 2, 1)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        assert grads["weights"][idx] == pytest.approx((loss(Wp, b, x) - loss(Wm, b, x)) / (2 * eps), rel=1e-6)
    bp, bm = b.copy(), b.copy()
    bp[7, 1] += eps
    bm[7, 1] -= eps
    assert grads["biases"][7, 1] == pytest.approx((loss(W, bp, x) - loss(W, bm, x)) / (2 * eps), rel=1e-6)
    xp_, xm = x.copy(), x.copy()
    xp_[1, 2] += eps
    xm[1, 2] -= eps
    assert grads["x"][1, 2] == pytest.approx((loss(W, b, xp_) - loss(W, b, xm)) / (2 * eps), rel=1e-6)


def test_gradients_float32_and_overflow(rng):
    W, b = network(rng, 30, 3)
    net = MLP(W.astype(np.float32), b.astype(np.float32))
    x = rng.standard_normal(3).astype(np.float32)
    states = net.sequential(x, 0, 30)
    g = net.gradients(x, states, np.ones(3, np.float32))
    assert g["weights"].dtype == np.float32
    dW = ref_backprop(W, b, x.astype(float), np.ones(3), "tanh")[0]
    np.testing.assert_allclose(g["weights"], dW, rtol=1e-3, atol=1e-5)
    # An adjoint that overflows: the fused pass hands over to chain_adjoint, which says so.
    big = ResNet(1e200 * np.ones((4, 2, 2)), np.zeros((4, 2)), "identity")
    with pytest.raises(FloatingPointError, match="the chain adjoint overflowed"):
        big.gradients(np.ones(2), np.ones((4, 2)), np.ones(2))
