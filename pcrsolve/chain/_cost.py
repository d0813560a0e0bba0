"""The cost model of :func:`~pcrsolve.solve_chain`: the sequential loop or parallel sweeps?

Measured costs go in (:class:`Costs`, from :mod:`._probe`), a route and the reason for it come
out. Nothing here times anything, so the decision can be tested on injected costs.

The model: the loop costs ``steps * t_seq``; the sweeps ``sweeps * steps * t_sweep``, where the
number of sweeps is forecast from how a perturbation evolves along the exact first steps: its
``growth`` (mean log growth per step) and its ``drift`` (mean relative change per step,
``|J u - u| / |u|``). Fitted on tanh networks, logistic maps, ResNets and a DDIM sampler
(float64, default tolerance):

- Steps close to the identity (``drift < 0.25``: ODE integrators, diffusion samplers, ResNets
  with small steps) converge like an ODE over the chain's total "time" ``steps * drift``:
  Newton in ``2 + 0.8 log2(1 + steps * drift)`` sweeps (total 1.4: 3 sweeps, 142: 8), the
  linear methods in ``6 + 0.22 steps * drift`` (1.4: 6, 142: 37).
- Otherwise Newton converges quadratically once the linearization holds along the chain;
  the sweeps needed grow as the chain contracts less: ``4 + 0.6 / growth**2`` (growth -1.65:
  4 sweeps, -0.96: 5, -0.43: 7, -0.27: 11, -0.18: 22). The linear methods converge at the
  chain's own contraction rate: ``1.2 log(1/tol) / -growth`` sweeps.
- A chain far from the identity that does not contract (``growth >= 0``: chaotic maps,
  expanding networks) advances the converged prefix by about one step per sweep: as many
  sweeps as steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BUDGET", "SHORT_LOOP", "Costs", "choose_route", "expected_sweeps"]

# An explicitly requested parallel method still runs the loop at once when its sweeps are
# predicted to cost more than this many times the loop (the cost guarantee of solve_chain).
BUDGET = 2.0
# Seconds: "auto" runs a loop shorter than this without timing a sweep. The probe's sweep and
# the fixed costs of the few sweeps any method needs (about 0.1-0.3 ms each on a CPU) cost
# about as much as the whole loop, so sweeps cannot win there.
SHORT_LOOP = 1.5e-3
# Fitted constants of the sweep forecast (see the module docstring).
_NEWTON_BASE = 4.0
_NEWTON_CURVE = 0.6
_LINEAR_FACTOR = 1.2
_NEAR_IDENTITY = 0.25
# Every nonlinear chain needs at least this many sweeps (one that moves, one that confirms).
_MIN_SWEEPS = 2.0
# A warm start (``x_init``) is assumed good: at most this many sweeps.
_WARM_SWEEPS = 2.0


@dataclass(frozen=True)
class Costs:
    """What the model decides from.

    Attributes
    ----------
    steps : int
        Steps left to solve (after the exact first steps of the probe).
    t_seq : float
        Seconds per step of the sequential route (the chain's ``sequential`` hook, or one
        ``step`` call per step).
    t_sweep : float or None
        Seconds per step of one parallel sweep (evaluation, linear step, update); None when
        not measured.
    growth : float or None
        Mean log growth per step of a perturbation along the exact states (negative: the
        chain contracts); None when the method has no Jacobians to measure it with.
    drift : float or None
        Mean relative change per step of that perturbation, ``|J u - u| / |u|``.
    kind : str
        The sweeps' linear step: ``"dense"`` (Newton), ``"diag"``, ``"identity"``, ``"zero"``...
    tol : float
        The convergence threshold.
    warm : bool
        Whether the sweeps start from the caller's guess (``x_init``).
    timed_steps : int
        The most steps a sweep was timed on (few: ``t_sweep`` is an upper bound).
    exact : bool
        Whether the chain declares the sweeps' linear step its exact Jacobian (a diagonal or
        block-diagonal one: Newton's method, forecast as such whatever the kind).
    seq_bound : bool
        Whether ``t_seq`` is a bound from above (one call's time per step, its fixed cost
        included), not the slope between two calls.
    """

    steps: int
    t_seq: float
    t_sweep: float | None
    growth: float | None
    drift: float | None
    kind: str
    tol: float
    warm: bool = False
    timed_steps: int = 0
    exact: bool = False
    seq_bound: bool = False


def expected_sweeps(
    kind: str,
    growth: float | None,
    drift: float | None,
    steps: int,
    tol: float,
    warm: bool = False,
    exact: bool = False,
) -> float:
    """The forecast number of sweeps (at most ``steps``; ``_MIN_SWEEPS`` when unknown).

    Newton's forecast for the dense and block kinds, and for any kind the chain declares
    ``exact``; the linear methods' otherwise.
    """
    newton = exact or kind in ("dense", "block")
    if growth is None or math.isnan(growth):
        sweeps = _MIN_SWEEPS
    elif drift is not None and drift < _NEAR_IDENTITY:
        total = steps * drift
        sweeps = 2.0 + 0.8 * math.log2(1.0 + total) if newton else 6.0 + 0.22 * total
    elif growth >= 0:
        sweeps = math.inf
    elif newton:
        sweeps = _NEWTON_BASE + _NEWTON_CURVE / (growth * growth)
    else:
        sweeps = _LINEAR_FACTOR * math.log(1.0 / tol) / -growth if tol > 0 else math.inf
    if warm:
        sweeps = min(sweeps, _WARM_SWEEPS)
    return max(1.0, min(float(steps), max(sweeps, _MIN_SWEEPS)))


def _ms(t: float) -> str:
    return f"{t * 1e3:.3g} ms"


def _us(t: float) -> str:
    return f"{t * 1e6:.3g} us"


def choose_route(costs: Costs, auto: bool, method: str) -> tuple[str, str]:
    """``("sequential" | "parallel", reason)``.

    ``auto``: the route predicted faster. An explicit parallel ``method``: its sweeps unless
    they are predicted to cost more than ``BUDGET`` times the loop.
    """
    c = costs
    loop = c.steps * c.t_seq
    who = "auto" if auto else f"method={method!r}"
    if auto and loop < SHORT_LOOP:
        return "sequential", (
            f"{who}: the loop costs {'at most ' if c.seq_bound else ''}{_us(c.t_seq)}/step, "
            f"{_ms(loop)} for the {c.steps} steps left, "
            f"less than the fixed costs of sweeps (under {_ms(SHORT_LOOP)} they cannot pay): the loop"
        )
    if c.t_sweep is None:
        return "parallel", f"{who}: sweeps (their cost was not measured)"
    sweeps = expected_sweeps(c.kind, c.growth, c.drift, c.steps, c.tol, c.warm, c.exact)
    par = sweeps * c.steps * c.t_sweep
    if c.growth is None:
        trend = "no contraction estimate"
    elif c.growth == math.inf:
        trend = "perturbations overflow along the chain"
    else:
        trend = f"a perturbation grows {math.exp(c.growth):.3g}x and turns {c.drift or 0:.2g} per step"
    timed = f" (timed on {c.timed_steps} steps)" if c.timed_steps else ""
    facts = (
        f"the loop costs {_us(c.t_seq)}/step, {_ms(loop)} for the {c.steps} steps left; a sweep "
        f"{_us(c.t_sweep)}/step{timed}, and about {sweeps:.3g} sweeps are expected ({trend}), {_ms(par)}"
    )
    limit = loop if auto else BUDGET * loop
    if par <= limit:
        return "parallel", f"{who}: {facts}: sweeps"
    worse = "slower than the loop" if auto else f"more than {BUDGET:g}x the loop"
    return "sequential", f"{who}: {facts}, {worse}: the loop"
