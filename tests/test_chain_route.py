"""The route of solve_chain: the sequential hook, the cost model, and the cost guarantees.

The cost model is tested on injected costs (no timing): :func:`choose_route` directly, and
``solve_chain`` with the probe's measurements replaced by fixed numbers. The probe's timing-
free outputs (growth and drift of a perturbation) are checked against their definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_chain import MLP, Logistic, assert_states, hand_loop, mlp

import pcrsolve as pcr
from conftest import unchanged
from pcrsolve.chain import _cost, _loop, _policy, _probe
from pcrsolve.chain._cost import Costs, choose_route, expected_sweeps

# --------------------------------------------------------------------------- the sequential hook


class Hooked(MLP):
    """The test MLP with the user's own loop as its ``sequential`` hook (records the calls)."""

    def __init__(self, W, b):
        super().__init__(W, b)
        self.hook_calls = []

    def sequential(self, x, start, stop):
        self.hook_calls.append((start, stop, x.shape))
        out = []
        for k in range(start, stop):
            x = np.tanh(np.einsum("ij,...j->...i", self.W[k], x) + self.b[k])
            out.append(x)
        return np.stack(out)


def hooked(rng, n, m, scale=0.5):
    base = mlp(rng, n, m, scale=scale)
    return Hooked(base.W, base.b)


def test_sequential_chain_runs_the_hook_once(rng):
    ch = hooked(rng, 50, 3)
    x0 = rng.standard_normal((2, 3))
    with unchanged(x0):
        out = pcr.sequential_chain(ch, x0, 50)
    assert ch.hook_calls == [(0, 50, (2, 3))] and ch.calls["step"] == []
    np.testing.assert_allclose(out, hand_loop(ch, x0, 50), rtol=1e-13, atol=1e-13)


def test_function_chain_hook_is_used_by_every_sequential_run(rng):
    ch = hooked(rng, 60, 3)
    calls = []

    def loop(x, a, b):
        calls.append((a, b))
        return ch.sequential(x, a, b)

    chain = pcr.FunctionChain(ch.step, jac=ch.jac, sequential=loop)
    assert "sequential" in repr(chain)
    x0 = rng.standard_normal(3)
    ref = hand_loop(ch, x0, 60)
    sol = pcr.solve_chain(chain, x0, 60, method="sequential")
    assert calls == [(0, 60)] and sol.route == "sequential" and sol.route_reason == "method='sequential'"
    assert_states(sol.states, ref, np.float64)
    # A fallback (max_iter=0: no sweep at all) runs the rest through the hook too.
    calls.clear()
    sol = pcr.solve_chain(chain, x0, 60, method="newton", max_iter=0)
    assert sol.status == "sequential" and sol.residuals == ()
    # The probe's two calls (each twice, for the timing), then one for the rest: never a call
    # per step.
    assert len(calls) == 5 and calls[0] == calls[1] == (0, 1) and calls[2] == calls[3] == (1, 4)
    assert calls[4] == (4, 60)
    assert_states(sol.states, ref, np.float64)


def test_hook_answer_equals_the_step_loop_after_sweeps(rng, monkeypatch):
    """Sweeps, then the hook finishes: the states are the loop's whichever ran them."""
    monkeypatch.setattr(_loop, "choose_route", lambda *args: ("parallel", "sweeps (test)"))
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)
    ch = hooked(rng, 80, 4, scale=1.0)
    x0 = rng.standard_normal(4)
    sol = pcr.solve_chain(ch, x0, 80, method="newton", max_iter=2)
    assert sol.route == "newton" and sol.status == "sequential" and len(sol.residuals) == 2
    assert ch.hook_calls[-1][1] == 80
    assert_states(sol.states, hand_loop(ch, x0, 80), np.float64)


# --------------------------------------------------------------------------- the cost model


def test_expected_sweeps():
    tol = 1e-12
    assert expected_sweeps("dense", -1.0, None, 1000, tol) == pytest.approx(4.6)
    assert expected_sweeps("dense", -0.2, 1.0, 1000, tol) == pytest.approx(4 + 0.6 / 0.04)
    assert expected_sweeps("diag", -0.5, 1.0, 1000, tol) == pytest.approx(1.2 * math.log(1e12) / 0.5)
    # Not contracting and far from the identity: the prefix advances a step per sweep.
    assert expected_sweeps("dense", 0.3, 1.0, 500, tol) == 500
    assert expected_sweeps("dense", math.inf, math.inf, 500, tol) == 500
    # Near the identity (ODE-like): by the total drift, whatever the growth.
    assert expected_sweeps("dense", 0.001, 0.002, 1000, tol) == pytest.approx(2 + 0.8 * math.log2(3.0))
    assert expected_sweeps("identity", 0.0, 0.002, 1000, tol) == pytest.approx(6 + 0.22 * 2.0)
    # Unknown (no Jacobians): the minimum; a warm start: at most 2; never more than the steps.
    assert expected_sweeps("zero", None, None, 1000, tol) == 2
    assert expected_sweeps("dense", 0.5, 1.0, 1000, tol, warm=True) == 2
    assert expected_sweeps("dense", -0.01, 1.0, 7, tol) == 7


def costs(t_seq, t_sweep, growth=-1.0, drift=1.0, steps=1000, kind="dense"):
    return Costs(steps, t_seq, t_sweep, growth, drift, kind, 1e-12)


def test_choose_route_auto_takes_the_faster():
    # 4.6 sweeps of 1 us/step against a loop of 10 us/step: sweeps.
    route, why = choose_route(costs(10e-6, 1e-6), True, "newton")
    assert route == "parallel" and why.startswith("auto: the loop costs 10 us/step, 10 ms")
    assert "a sweep 1 us/step" in why and "about 4.6 sweeps" in why and why.endswith(": sweeps")
    # ... against a loop of 4 us/step: the loop.
    route, why = choose_route(costs(4e-6, 1e-6), True, "newton")
    assert route == "sequential" and why.endswith("slower than the loop: the loop")
    # A chain that does not contract: the loop, however cheap a sweep.
    route, why = choose_route(costs(10e-6, 0.1e-6, growth=0.4), True, "newton")
    assert route == "sequential" and "grows 1.49x" in why and "1e+03 sweeps" in why


def test_auto_runs_a_short_loop_without_timing_a_sweep(rng, monkeypatch):
    """A loop under SHORT_LOOP cannot pay for sweeps: "auto" runs it, an explicit method sweeps."""
    route, why = choose_route(costs(1e-6, 1e-9, steps=1000), True, "newton")  # a 1 ms loop
    assert route == "sequential" and "less than the fixed costs of sweeps" in why
    assert choose_route(costs(1e-6, 1e-9, steps=1000), False, "newton")[0] == "parallel"
    assert choose_route(costs(1e-6, 1e-9, steps=10_000), True, "newton")[0] == "parallel"
    ch = mlp(rng, 50, 2)
    x0 = rng.standard_normal(2)

    def no_sweep(*args):
        raise AssertionError("the probe timed a sweep for a short loop")

    monkeypatch.setattr(_probe, "_sweep", no_sweep)
    monkeypatch.setattr(_probe, "_sequential", lambda *args: (_real_sequential(*args), (1e-6, False))[1])
    sol = pcr.solve_chain(ch, x0, 50)
    assert sol.route == "sequential" and "fixed costs of sweeps" in sol.route_reason
    assert_states(sol.states, hand_loop(ch, x0, 50), np.float64)


_real_sequential = _probe._sequential


def test_choose_route_explicit_method_sweeps_unless_over_budget():
    loop_per_step = 4e-6  # 4.6 sweeps of 1 us: 1.15x the loop, within the budget
    assert choose_route(costs(loop_per_step, 1e-6), False, "newton")[0] == "parallel"
    route, why = choose_route(costs(loop_per_step, 2e-6), False, "newton")  # 2.3x
    assert route == "sequential" and why.startswith("method='newton'") and "more than 2x the loop" in why
    assert choose_route(costs(1e-6, None), False, "picard") == (
        "parallel",
        "method='picard': sweeps (their cost was not measured)",
    )


def inject(monkeypatch, t_seq, t_sweep, growth=-1.0, drift=1.0):
    """Replace the probe's measurements by fixed numbers (the exact first steps still run)."""

    def fake(ev, be, opts, x0, X, ks, n, st):
        _probe._sequential(ev, X, x0, ks, n, st)
        return _probe.Probe(t_seq, t_sweep, growth, drift)

    monkeypatch.setattr(_loop, "probe", fake)
    monkeypatch.setattr(_policy, "should_stop", lambda *args: None)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_auto_runs_the_route_the_costs_favour(backend, rng, monkeypatch):
    n, m = 300, 3
    ch = mlp(rng, n, m)
    x0 = rng.standard_normal((2, m))
    ref = hand_loop(ch, x0, n)
    inject(monkeypatch, t_seq=10e-6, t_sweep=1e-6)
    fast = pcr.solve_chain(ch, x0, n, backend=backend)
    assert fast.route == "newton" and fast.status == "converged" and fast.iterations >= 1
    assert fast.route_reason.startswith("auto:") and fast.route_reason.endswith("sweeps")
    assert_states(fast.states, ref, np.float64)
    ch.calls["jac"].clear()
    inject(monkeypatch, t_seq=1e-6, t_sweep=1e-6)
    slow = pcr.solve_chain(ch, x0, n, backend=backend)
    assert slow.route == "sequential" and slow.status == "sequential" and slow.residuals == ()
    assert ch.calls["jac"] == [] and slow.n_jac_evals == 0  # no sweep, no Jacobian
    assert slow.message.startswith("ran steps ") and "the cost probe" in slow.message
    assert_states(slow.states, ref, np.float64)


def test_auto_prefers_newton_then_diagonal(rng, monkeypatch):
    inject(monkeypatch, t_seq=100e-6, t_sweep=1e-6)  # a 10 ms loop: long enough to sweep
    ch = mlp(rng, 100, 2)
    x0 = np.ones(2)
    assert pcr.solve_chain(pcr.FunctionChain(ch.step, jvp=ch.jvp), x0, 100).route == "newton"
    diag = pcr.solve_chain(pcr.FunctionChain(ch.step, jac_diag=ch.jac_diag), x0, 100)
    assert diag.route == "diagonal"
    assert_states(diag.states, hand_loop(ch, x0, 100), np.float64)
    # The fixed-iteration mode always sweeps: with `step` alone, Jacobi.
    fixed = pcr.solve_chain(pcr.FunctionChain(ch.step), x0, 100, tol=0, max_iter=100)
    assert fixed.route == "jacobi" and "fixed-iteration" in fixed.route_reason
    assert_states(fixed.states, hand_loop(ch, x0, 100), np.float64)


def test_chaotic_chain_goes_sequential_whatever_the_timing():
    """The logistic map at r = 3.9 expands perturbations (growth > 0): no sweep can pay."""
    ch = Logistic()
    x0 = np.array([[0.2], [0.31], [0.77]])
    sol = pcr.solve_chain(ch, x0, 2000)
    assert sol.route == "sequential" and sol.residuals == ()
    # Forecast slower (expected sweeps: n), or, when the probe times the loop fast, too short
    # a loop to sweep at all.
    why = sol.route_reason
    assert ("slower than the loop" in why and "expected" in why) or "fixed costs of sweeps" in why, why
    np.testing.assert_array_equal(sol.states, pcr.sequential_chain(ch, x0, 2000))
    assert sol.n_step_evals <= 2000 + 2000 // 32 + 3 * _probe._SWEEP_PROBE_MAX  # the loop, the probe


# --------------------------------------------------------------------------- the probe


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_probe_measures_growth_and_drift(backend):
    """For x_k = a x_{k-1} + c: growth log|a| and drift |a - 1| per step, exactly."""
    n, m, a = 640, 3, 0.8
    ch = pcr.FunctionChain(
        lambda x, k: a * x + 1.0, jac=lambda x, k: np.broadcast_to(a * np.eye(m), (*x.shape, m))
    )
    opts = _policy.Options("dense", 1e-12, False, None, None, 1.0, None, False, 1e-12, "pcr")
    from pcrsolve import _backend
    from pcrsolve.chain._eval import Evaluator

    be = _backend.resolve({}, backend=backend)
    X = np.empty((n, 2, m))
    ev = Evaluator(ch, np, np.float64, (2,), m)
    st = _policy.State()
    pr = _probe.probe(ev, be, opts, np.zeros((2, m)), X, np.arange(n), n, st)
    assert st.p == 4 * (n // _probe._SEQ_FRACTION)  # q1 + 3 q1 exact steps
    np.testing.assert_allclose(X[: st.p], pcr.sequential_chain(ch, np.zeros((2, m)), st.p), rtol=1e-14)
    assert pr.growth == pytest.approx(math.log(a), rel=1e-9)
    assert pr.drift == pytest.approx(1 - a, rel=1e-9)
    assert pr.t_seq > 0 and pr.t_sweep > 0


@pytest.mark.parametrize(
    ("short", "calls", "solved"),
    [(None, 4, 4), (0.0, 4, 4), (1e9, 1, 1)],  # not auto; a bound that never holds; always holds
)
def test_sequential_probe_stops_when_the_loop_is_surely_short(short, calls, solved, monkeypatch):
    n, m = 512, 2  # q1 = 2 steps, then q2 = 6
    ch = pcr.FunctionChain(lambda x, k: 0.5 * x + 1.0)
    from pcrsolve.chain._eval import Evaluator

    ran = []
    real = _probe.run_sequential
    monkeypatch.setattr(_probe, "run_sequential", lambda *args: ran.append(args[4:]) or real(*args))
    X = np.full((n, m), np.nan)
    st = _policy.State()
    t, bound = _probe._sequential(
        Evaluator(ch, np, np.float64, (), m), X, np.zeros(m), np.arange(n), n, st, short
    )
    q1 = n // _probe._SEQ_FRACTION
    assert len(ran) == calls and st.p == st.filled == solved * q1 and t > 0
    assert bound == (calls == 1)
    assert ran[0] == (0, q1) and all(r in ((0, q1), (q1, 4 * q1)) for r in ran)
    np.testing.assert_allclose(X[: st.p], pcr.sequential_chain(ch, np.zeros(m), st.p), rtol=1e-15)
    assert np.isnan(X[st.p :]).all()


def test_a_surely_short_loop_runs_each_step_once(rng, monkeypatch):
    # a clock that says every call took a microsecond: the first call bounds the loop far
    # under SHORT_LOOP, so the probe stops there and no step is evaluated twice
    clock = iter(range(10**6))
    monkeypatch.setattr(_probe, "TIMER", lambda: 1e-6 * next(clock))
    ch = mlp(rng, 300, 2)
    x0 = rng.standard_normal(2)
    sol = pcr.solve_chain(ch, x0, 300)
    assert sol.route == "sequential" and sol.n_step_evals == 300 and sol.n_jac_evals == 0
    assert sol.route_reason.startswith("auto: the loop costs at most 1 us/step"), sol.route_reason
    assert_states(sol.states, hand_loop(ch, x0, 300), np.float64)


def test_probe_without_jacobians_measures_only_time(rng):
    ch = mlp(rng, 200, 2)
    sol = pcr.solve_chain(pcr.FunctionChain(ch.step), np.ones(2), 200, method="jacobi")
    assert "grows" not in sol.route_reason and "no contraction estimate" in sol.route_reason


# --------------------------------------------------------------------------- the guarantees


def state(t_step, sweep_times, p):
    st = _policy.State(p=p, sweeps=len(sweep_times), t_step=t_step)
    st.sweep_times = list(sweep_times)
    st.prefixes = [p] * len(sweep_times)
    return st


def test_budget_rule_keeps_the_total_within_twice_the_loop():
    opts = _policy.Options("dense", 1e-12, False, None, None, 1.0, None, False, 1e-12, "pcr")
    n = 1000  # loop: 1 ms
    # Spent 0.2 ms; one more sweep (0.1) and the loop over 500 steps (0.5): 0.8 <= 2 ms.
    assert _policy.should_stop(state(1e-6, [0.1e-3, 0.1e-3], 500), opts, n, [1e-1, 1e-3]) is None
    # Spent 1.4 ms: 1.4 + 0.35 + 0.5 > 2 ms: stop.
    why = _policy.should_stop(state(1e-6, [0.35e-3] * 4, 500), opts, n, [1.0, 0.9, 0.8, 0.7])
    assert why is not None and "past 2x the sequential loop" in why


def test_stall_rule_gives_up_on_a_slow_prefix():
    opts = _policy.Options("diag", 1e-12, False, None, None, 1.0, None, False, 1e-12, "pcr")
    st = state(1e-6, [0.05e-3] * 4, 10)
    st.prefixes = [7, 8, 9, 10]  # one step per sweep: about 990 more sweeps of 50 us
    why = _policy.should_stop(st, opts, 1000, [0.5, 0.5, 0.5, 0.5])
    assert why is not None and "advances too slowly" in why


def test_total_cost_of_a_hopeless_chain_is_bounded(rng):
    """An expanding chain forced onto Newton sweeps: the rules stop them; the evaluations stay
    within a few times the loop's (a count, not a time)."""
    n, m = 400, 4
    Q = np.linalg.qr(rng.standard_normal((n, m, m)))[0]
    ch = MLP(2.5 * Q, 0.1 * rng.standard_normal((n, m)))
    x0 = rng.standard_normal(m)
    sol = pcr.solve_chain(ch, x0, n, method="newton")
    assert sol.converged and np.all(np.isfinite(sol.states))
    assert sol.n_step_evals <= 8 * n
    np.testing.assert_allclose(sol.states[:50], pcr.sequential_chain(ch, x0, n)[:50], rtol=1e-6, atol=1e-6)


def test_cost_model_constants_are_documented():
    assert _cost.BUDGET == 2.0 and "ODE" in _cost.__doc__
