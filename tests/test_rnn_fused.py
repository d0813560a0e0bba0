"""The RNN adapters' fast paths against the generic ones and plain loops.

- The fused sweep pass (``_fused_pass``: gates, step values and linear step in compiled passes,
  no Jacobians stored) against the generic path (the chain methods ``step``, ``jac``,
  ``jac_diag``, ``jac_blocks`` and a recurrence kernel, through a ``FunctionChain`` that hides
  the hooks): one block bit for bit in ``F`` and to rounding in ``dX``; whole solves iterate
  for iterate, for every cell and kind, float32/float64, batch shapes, blocks that do not
  divide the sweep, windows and the fixed-iteration mode.
- The compiled reverse pass behind ``gradients`` and ``chain_adjoint`` (``_fused_adjoint``)
  against ``chain_adjoint`` with dense Jacobians.
- The first guess (``_initial_guess``) and the route: ``forward()`` is ``method="auto"``, which
  weighs the cell's structured exact Newton method (forecast as Newton) against the loop.

The plain-loop references are in ``rnn_reference``; tests marked ``kernels`` also run under
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rnn_reference as ref

import pcrsolve as pcr
from conftest import unchanged
from pcrsolve import _backend
from pcrsolve.adapters import RNN
from pcrsolve.chain import _cost, _loop, _policy, _probe, _sweep
from pcrsolve.chain._eval import Evaluator
from pcrsolve.chain._solve import auto_method

CELLS = ref.CELLS
KINDS = ("zero", "identity", "diag", "block", "dense")
# The kinds each cell fuses (the others take the generic path).
FUSED = {
    "gru_diag": KINDS,
    "lstm_diag": KINDS,
    "elman": ("zero", "identity", "block", "dense"),
    "gru": ("zero", "identity", "block", "dense"),
}
METHOD_OF = {"zero": "jacobi", "identity": "picard", "diag": "diagonal", "block": "block", "dense": "newton"}


def make(rng, cell, T=40, batch=(2,), w=4, d_in=3, dtype=np.float64, scale=0.5):
    p = ref.random_params(rng, cell, w, d_in, scale, dtype)
    x = rng.standard_normal((T, *batch, d_in)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((*batch, ref.state_size(cell, w)))).astype(dtype)
    return RNN(cell, p, x, h0=h0), p, x, h0


def generic(rnn, guess=True):
    """The same chain without its fused passes: the reference of the fused paths (with the
    RNN's first guess, so that both start from the same iterate, and its exact method, so
    that both accept steps alike)."""
    chain = pcr.FunctionChain(
        rnn.step, jac=rnn.jac, jac_diag=rnn.jac_diag, jac_blocks=rnn.jac_blocks, vjp=rnn.vjp
    )
    chain._exact_method = rnn._exact_method
    if guess:
        chain._initial_guess = rnn._initial_guess
    return chain


@pytest.fixture
def sweeps_only(monkeypatch):
    """No cost model, no cost rules: every solve sweeps until it converges."""
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)


def options(kind):
    return _policy.Options(kind, 1e-12, False, None, None, 1.0, None, False, 1e-12, "sequential")


# ----------------------------------------------------------------------------- one block


@pytest.mark.kernels
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("batch", [(), (2, 3)], ids=str)
def test_fused_pass_matches_the_generic_pass(rng, cell, dtype, batch):
    """One block of a sweep from a random iterate and carry: F to rounding (the same gates),
    dX to rounding, the same counts; inputs untouched."""
    n = 40
    rnn, *_ = make(rng, cell, n, batch, dtype=dtype)
    m = rnn.state_size
    X = rng.standard_normal((n, *batch, m)).astype(dtype)
    x0 = rng.standard_normal((*batch, m)).astype(dtype)
    carry = rng.standard_normal((math.prod(batch), m)).astype(dtype)
    be = _backend.resolve({}, backend="numba")
    tol = 5e-5 if dtype == np.float32 else 1e-13
    for kind in KINDS:
        fused_ev = Evaluator(rnn, np, np.dtype(dtype), batch, m)
        generic_ev = Evaluator(generic(rnn), np, np.dtype(dtype), batch, m)
        assert (fused_ev.fused(kind) is not None) == (kind in FUSED[cell]) and generic_ev.fused(kind) is None
        for a, e in ((0, 17), (17, 40)):  # the first block copies x0 in; later ones read X in place
            with unchanged(X, x0, carry):
                F, dX = _sweep.evaluate(fused_ev, be, options(kind), X, x0, np.arange(n), a, e, carry)
            Fr, dXr = _sweep.evaluate(generic_ev, be, options(kind), X, x0, np.arange(n), a, e, carry)
            np.testing.assert_allclose(F, Fr, rtol=tol, atol=tol, err_msg=kind)
            np.testing.assert_allclose(dX, dXr, rtol=tol, atol=tol, err_msg=kind)
        jac = kind not in ("zero", "identity")
        assert fused_ev.n_step_evals == generic_ev.n_step_evals == n
        assert fused_ev.n_jac_evals == generic_ev.n_jac_evals == (n if jac else 0)


@pytest.mark.kernels
@pytest.mark.parametrize("cell", CELLS)
def test_fused_pass_with_any_state_before(rng, cell):
    """``x_first`` need not be ``X[a-1]``: the pass then evaluates from a copy."""
    n = 12
    rnn, *_ = make(rng, cell, n, (3,))
    m = rnn.state_size
    run = rnn._fused_pass("dense", np.dtype(np.float64))
    X = rng.standard_normal((n, 3, m))
    x_first = rng.standard_normal((3, m))
    F, dX = np.empty((7, 3, m)), np.empty((7, 3, m))
    run(X, x_first, 4, 11, np.zeros((3, m)), F, dX)
    prev = np.concatenate([x_first[None], X[4:10]])
    np.testing.assert_allclose(F, rnn.step(prev, np.arange(4, 11)), rtol=1e-13, atol=1e-14)
    J = rnn.jac(prev, np.arange(4, 11))
    expected, d = [], np.zeros((3, m))
    for t in range(7):  # the linear step, one step at a time with the dense Jacobians
        d = np.einsum("bij,bj->bi", J[t], d) + F[t] - X[4 + t]
        expected.append(d)
    np.testing.assert_allclose(dX, np.stack(expected), rtol=1e-12, atol=1e-13)


def test_fused_pass_applies_only_to_the_compute_dtype(rng):
    rnn, *_ = make(rng, "gru_diag", 10)  # float64 parameters
    assert rnn._fused_pass("diag", np.dtype(np.float32)) is None
    assert rnn._fused_pass("diag", np.dtype(np.complex128)) is None
    assert rnn._fused_adjoint(np.dtype(np.float32)) is None
    elman, *_ = make(rng, "elman", 10)
    assert elman._fused_pass("diag", np.dtype(np.float64)) is None  # quasi-Newton: generic
    with pytest.raises(TypeError, match=r"`chain.sequential` must return the states' dtype float32"):
        pcr.solve_chain(rnn, np.zeros((2, 4), np.float32), 10, method="diagonal")


def test_fused_pass_rejects_steps_past_the_sequence(rng, sweeps_only):
    rnn, *_ = make(rng, "lstm_diag", 20, ())
    with pytest.raises(ValueError, match=r"`k` must hold step indices in \[0, 20\); got values in"):
        pcr.solve_chain(rnn, rnn.h0, 30, method="block", tol=0, max_iter=3)


# ----------------------------------------------------------------------------- whole solves


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)], ids=str)
@pytest.mark.parametrize("window", [None, 13])
def test_fused_sweeps_match_generic_sweeps(rng, cell, kind, batch, window, sweeps_only, monkeypatch):
    """Blocks of 7 steps (dividing neither the sweeps nor the window): the fused and the generic
    path take the same iterates, sweep by sweep, and end with the loop's answer."""
    monkeypatch.setattr(_sweep, "_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_FUSED_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_MIN_BLOCK", 7)
    T = 60
    rnn, p, x, h0 = make(rng, cell, T, batch, w=3, scale=0.4)
    method = METHOD_OF[kind]  # the dense cells' "diagonal" is generic on both sides
    fused = pcr.solve_chain(rnn, h0, T, method=method, window=window)
    ref_sol = pcr.solve_chain(generic(rnn), h0, T, method=method, window=window)
    assert fused.route == ref_sol.route == method and fused.status == ref_sol.status == "converged"
    assert len(fused.residuals) == len(ref_sol.residuals)
    np.testing.assert_allclose(fused.residuals, ref_sol.residuals, rtol=1e-6, atol=1e-13)
    np.testing.assert_allclose(fused.states, ref_sol.states, rtol=1e-12, atol=1e-12)
    exact = method in ("newton", rnn.method) or (cell == "gru_diag" and kind != "zero" and kind != "identity")
    tol = 1e-10 if exact else 1e-8  # the linear methods stop at tol on the update, not the error
    np.testing.assert_allclose(fused.states, ref.loop(cell, p, x, h0), rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_fixed_iterations_match_generic(rng, cell, dtype, monkeypatch):
    """The fixed-iteration mode (tol=0, max_iter=K) from the first guess f_t(h0): the same
    K-th iterate on both paths, for the cell's exact method."""
    monkeypatch.setattr(_sweep, "_FUSED_BLOCK_BYTES", 0)
    monkeypatch.setattr(_sweep, "_MIN_BLOCK", 16)
    T = 50
    rnn, _, _, h0 = make(rng, cell, T, (2,), dtype=dtype)
    guess = rnn.step(np.ascontiguousarray(np.broadcast_to(h0, (T, *h0.shape))), np.arange(T))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for K in (1, 3):
        a = rnn.forward(tol=0, max_iter=K)  # auto: the cell's method, sweeps, fused
        chain = generic(rnn, guess=False)
        b = pcr.solve_chain(chain, h0, T, method=rnn.method, tol=0, max_iter=K, x_init=guess)
        assert a.route == rnn.method and len(a.residuals) == K
        np.testing.assert_allclose(a.states, b.states, rtol=tol, atol=tol)
        np.testing.assert_allclose(a.residuals, b.residuals, rtol=max(tol, 1e-6), atol=tol)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_solves(rng, cell, sweeps_only):
    T = 80
    rnn, p, x, h0 = make(rng, cell, T, (3,), dtype=np.float32)
    sol = rnn.forward(method=rnn.method)
    assert sol.states.dtype == np.float32 and sol.status == "converged"
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    expected = ref.loop(cell, p64, x.astype(np.float64), h0.astype(np.float64))
    np.testing.assert_allclose(sol.states, expected, rtol=2e-4, atol=2e-4)


# ----------------------------------------------------------------------------- the adjoint


@pytest.mark.kernels
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch", [(), (2, 3)], ids=str)
def test_fused_adjoint_matches_dense_chain_adjoint(rng, cell, batch):
    T = 25
    rnn, _, _, h0 = make(rng, cell, T, batch)
    S = rnn.sequential(h0, 0, T)
    G = rng.standard_normal(S.shape)
    dense = pcr.FunctionChain(rnn.step, jac=rnn.jac)
    for n in (T, 9):  # all states, or the first n
        with unchanged(S, G, h0):
            adj, gx0 = pcr.chain_adjoint(rnn, h0, S[:n], G[:n])
        adj_r, gx0_r = pcr.chain_adjoint(dense, h0, S[:n], G[:n], method="sequential")
        np.testing.assert_allclose(adj, adj_r, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(gx0, gx0_r, rtol=1e-12, atol=1e-13)
    grads = rnn.gradients(S, G)
    np.testing.assert_allclose(grads["h0"], pcr.chain_adjoint(dense, h0, S, G)[1], rtol=1e-12, atol=1e-13)


def test_fused_adjoint_rejects_more_states_than_steps(rng):
    rnn, *_ = make(rng, "gru", 10, ())
    S = rnn.sequential(rnn.h0, 0, 10)
    with pytest.raises(ValueError, match=r"`k` must hold step indices in \[0, 10\); got values in \[0, 19\]"):
        pcr.chain_adjoint(rnn, rnn.h0, np.concatenate([S, S]), np.zeros((20, 4)))


# ----------------------------------------------------------------------------- the first guess


@pytest.mark.parametrize("cell", CELLS)
def test_initial_guess_is_one_step_from_the_state_before(rng, cell):
    T = 30
    rnn, p, x, h0 = make(rng, cell, T, (2,))
    y = rng.standard_normal(h0.shape)
    with unchanged(y):
        guess = rnn._initial_guess(y, 5, 19)
    expected = np.stack([ref.step(cell, p, y, x[t]) for t in range(5, 19)])
    np.testing.assert_allclose(guess, expected, rtol=1e-13, atol=1e-14)
    with pcr.use_backend("numpy"):
        np.testing.assert_allclose(rnn._initial_guess(y, 5, 19), expected, rtol=1e-13, atol=1e-14)
    assert rnn._initial_guess(y.astype(np.float32), 5, 19) is None  # not the compute dtype


def test_sweeps_start_from_the_guess_after_the_probe(rng, monkeypatch):
    """Adaptive solves fill the steps past the probe with f_t(x_{p-1}) when sweeps run (and
    only then); the fixed-iteration mode from f_t(h0)."""
    T = 200
    rnn, _, _, h0 = make(rng, "gru_diag", T, (2,))
    calls = []
    original = RNN._initial_guess

    def spy(self, x_prev, start, stop):
        calls.append((start, stop, np.array(x_prev)))
        return original(self, x_prev, start, stop)

    monkeypatch.setattr(RNN, "_initial_guess", spy)
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("sequential", "the loop (test)"))
    assert rnn.forward().route == "sequential" and calls == []  # the loop: no guess needed
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))
    sol = rnn.forward()
    ((start, stop, before),) = calls
    assert 0 < start < stop == T and sol.status == "converged"
    np.testing.assert_array_equal(before, sol.states[start - 1])  # the exact state before
    calls.clear()
    rnn.forward(tol=0, max_iter=2)
    assert [(a, b) for a, b, _ in calls] == [(0, T)]
    np.testing.assert_array_equal(calls[0][2], h0)
    calls.clear()
    rnn.forward(tol=0, max_iter=2, x_init=np.zeros((T, 2, 4)))  # the caller's guess wins
    assert calls == []


# ----------------------------------------------------------------------------- the route


def test_auto_is_the_cells_structured_method(rng):
    for cell in CELLS:
        rnn, *_ = make(rng, cell, 5)
        assert auto_method(rnn, fixed=False) == rnn.method
    plain = pcr.FunctionChain(lambda x, k: x, jac_diag=lambda x, k: np.ones_like(x))
    plain._exact_method = "sequential"  # not a structured method: ignored
    assert auto_method(plain, fixed=False) == "diagonal"


def test_exact_structured_methods_are_forecast_as_newton():
    tol = 1e-12
    newton = _cost.expected_sweeps("dense", -0.5, 1.0, 1000, tol)
    assert _cost.expected_sweeps("diag", -0.5, 1.0, 1000, tol, exact=True) == newton
    assert _cost.expected_sweeps("diag", -0.5, 1.0, 1000, tol) == pytest.approx(1.2 * math.log(1e12) / 0.5)
    opts = options("diag")
    opts.method = "diagonal"
    # an update falling from 1e-4 to 1e-5: linear convergence (theta = 0.1) accepts 9e-12 ...
    assert _policy.threshold(np, opts, 1e-5, 1e-4) == pytest.approx(1e-12 * 0.9 / 0.1)
    assert _policy.sweeps_needed(opts, [1e-4, 1e-5]) == pytest.approx(7.0)
    opts.exact = True  # ... quadratic (e <- 1e3 e^2) accepts updates whose square is within tol
    assert _policy.threshold(np, opts, 1e-5, 1e-4) == pytest.approx(math.sqrt(1e-12 / 1e3))
    assert _policy.sweeps_needed(opts, [1e-4, 1e-5]) == 3.0  # 1e-7, 1e-11, 1e-19


@pytest.mark.parametrize("cell", CELLS)
def test_forward_runs_the_route_the_costs_favour(rng, cell, monkeypatch):
    """Injected costs: cheap sweeps -> the cell's exact method (forecast as Newton), a cheap
    loop -> the loop; the answer is the loop's either way."""
    T = 300
    rnn, p, x, h0 = make(rng, cell, T, (2,))
    expected = ref.loop(cell, p, x, h0)
    seen = []
    real = _loop.choose_route

    def record(costs, auto, method):
        seen.append(costs)
        return real(costs, auto, method)

    monkeypatch.setattr(_loop, "choose_route", record)
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)
    for t_sweep, route in ((0.1e-6, rnn.method), (100e-6, "sequential")):

        def fake(ev, be, opts, x0, X, ks, n, st, t_sweep=t_sweep):
            out = _probe.probe(ev, be, opts, x0, X, ks, n, st)
            out.t_seq, out.t_sweep = 10e-6, t_sweep
            return out

        monkeypatch.setattr(_loop, "probe", fake)
        sol = rnn.forward()
        assert sol.route == route and sol.route_reason.startswith("auto:")
        np.testing.assert_allclose(sol.states, expected, rtol=1e-10, atol=1e-10)
    costs = seen[-1]
    assert costs.kind == {"gru_diag": "diag", "lstm_diag": "block"}.get(cell, "dense")
    assert costs.exact == (cell in ("gru_diag", "lstm_diag")) and not costs.warm
    # the forecast is Newton's, from the measured contraction
    args = (costs.growth, costs.drift, costs.steps, costs.tol)
    newton = _cost.expected_sweeps("dense", *args)
    assert _cost.expected_sweeps(costs.kind, *args, exact=costs.exact) == newton


def test_a_rough_x_init_is_not_a_warm_start(rng, monkeypatch):
    T = 400
    rnn, p, x, h0 = make(rng, "gru_diag", T, (2,))
    seen = []

    def record(costs, *args):
        seen.append(costs)
        return "parallel", "sweeps (test)"

    monkeypatch.setattr(_loop, "choose_route", record)
    answer = ref.loop("gru_diag", p, x, h0)
    rnn.forward(x_init=np.zeros_like(answer))
    rnn.forward(x_init=answer)
    rnn.forward()
    assert [c.warm for c in seen] == [False, True, False]


def test_blocks_are_sized_for_what_the_kind_stores(rng):
    """Jacobian bytes per block: m numbers per state entry (dense), b (blocks), 1 (diagonal)."""
    batch, m = (2,), 8
    states = 2 * m * 8  # bytes of one step's states
    dense = _sweep.block_steps(batch, m, 8, per_state=m)
    assert dense == _sweep.block_steps(batch, m, 8) == _sweep._BLOCK_BYTES // (states * m)
    assert _sweep.block_steps(batch, m, 8, per_state=1) == _sweep._BLOCK_BYTES // states == 8 * dense
    assert _sweep.block_steps(batch, m, 8, per_state=0) == _sweep._BLOCK_BYTES // states
    assert _sweep.block_steps(batch, m, 8, fused=True) == _sweep._FUSED_BLOCK_BYTES // states
    rnn, *_ = make(rng, "lstm_diag", 6, batch, w=m // 2)
    ev = Evaluator(rnn, np, np.dtype(np.float64), batch, m)
    assert [ev.jacobian_size(k) for k in ("dense", "diag", "identity", "zero")] == [m, 1, 0, 0]
    assert ev.jacobian_size("block") is None  # not known before the first jac_blocks
    ev.jac_blocks(rng.standard_normal((6, *batch, m)), np.arange(6))
    assert ev.jacobian_size("block") == 2
