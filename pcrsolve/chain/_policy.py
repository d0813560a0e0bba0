"""When the chain solver accepts a step and when it stops sweeping: its options and cost rules.

A step counts as converged when its scaled update is within a threshold predicted from the
last two sweeps (:func:`threshold`). After every sweep :func:`should_stop` decides from
measured times whether more sweeps can still pay against the plain loop. (Whether to sweep
at all is the cost model's decision, :mod:`._cost`.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_TROUBLE",
    "MIN_DAMPING",
    "TIMER",
    "Options",
    "State",
    "should_stop",
    "sweeps_needed",
    "threshold",
]

# The whole solve may cost at most about this many times the sequential loop (rule (a)).
_BUDGET = 2.0
# Rule (b) (give up on slow progress) waits for this many sweeps, or until the sweeps have
# cost this fraction of the sequential loop, whichever comes first: Newton from a poor
# guess often needs a few sweeps before it contracts, and until then its progress says
# nothing; the sweep count bounds the step evaluations an unpromising chain costs.
_EXPLORE_SWEEPS = 4
_EXPLORE = 0.5
# The timer of the cost model and rules: wall time, what the user waits for, including what a
# chain waits for itself (a device, I/O), which the process's CPU time would not show; the
# price is noise on a busy machine, against which every probe timing is taken twice.
TIMER: Callable[[], float] = time.perf_counter
# Consecutive sweeps that produced non-finite values without advancing the prefix past its
# exact first step before the solver gives up on the parallel solve (rule (c)).
MAX_TROUBLE = 3
MIN_DAMPING = 1.0 / 16


@dataclass
class Options:
    """Validated options of one solve."""

    kind: str  # "dense", "diag", "identity", "zero"
    tol: float  # convergence threshold on the scaled update
    fixed: bool  # tol == 0 and max_iter given: exactly max_iter sweeps, no host sync
    max_iter: int | None
    window: int | None
    damping: float
    callback: Any
    progress: bool
    default_tol: float  # the dtype's default tolerance (for the final check of a fixed run)
    recurrence_method: str
    method: str = ""  # the sweeps' method ("newton", "diagonal", ...)
    auto: bool = False  # chosen by method="auto": the cost model picks the faster route
    exact: bool = False  # the chain declares the method's linear step its exact Jacobian


@dataclass
class State:
    """Bookkeeping of the adaptive loop (host-side numbers only)."""

    p: int = 0
    sweeps: int = 0
    iterations: int = 0
    filled: int = 0  # states [0, filled) hold an iterate; later ones are not initialised yet
    damping: float = 1.0
    trouble: int = 0
    sweep_times: list[float] = field(default_factory=list)  # of every sweep timed
    first_eval: float = 0.0  # a first sweep's evaluations, for callers that do not time it
    prefixes: list[int] = field(default_factory=list)
    t_step: float | None = None  # seconds per step of the sequential route (measured)

    def record(self, p: int, err: float, tol: float, elapsed: float, evals: float) -> None:
        """Book a finished sweep: the new frozen prefix ``p``, its largest update, its times.

        ``elapsed``: the sweep's wall time; ``evals``: the time of its evaluations, which stands
        for the first sweep (whose total includes one-off costs).
        """
        if self.sweeps:
            self.sweep_times.append(elapsed)
        else:
            self.first_eval = evals
        self.sweeps += 1
        self.iterations += err > tol
        self.p = p
        self.prefixes.append(p)


def _quadratic(opts: Options) -> bool:
    """Whether the sweeps converge quadratically: exact Newton (not ``band1``, whose dropped
    skip Jacobians make it a linearly converging quasi-Newton method on the dense kind), or a
    structured method the chain declares exact (``_exact_method``: a diagonal Jacobian under
    ``"diagonal"``, a block-diagonal one under ``"block"``)."""
    return (opts.kind == "dense" and opts.method != "band1") or opts.exact


def threshold(xp, opts: Options, cur: Any, prev: float | None) -> Any:
    """The largest update with which a step counts as converged after this sweep.

    ``tol``, or more when the last two sweeps show the iteration contracting: the error
    left after an update of size ``d`` is predicted as ``C d^2`` for exact Newton (quadratic
    convergence, ``C = cur / prev^2``) and ``theta / (1 - theta) d`` for the linear methods,
    ``band1`` included (``theta = cur / prev``, the estimate of Hairer & Wanner's simplified
    Newton). The step is accepted when the prediction is within ``tol``. This spares the sweep that
    would only confirm convergence. Never above ``sqrt(tol)``; device arithmetic, no sync.
    """
    tol = opts.tol
    if prev is None or not math.isfinite(prev) or prev <= 0 or tol <= 0:
        return tol
    if isinstance(cur, float):  # host numbers (the Numba path)
        if not cur < prev:
            return tol
        if _quadratic(opts):
            thr = math.sqrt(tol * prev * prev / cur) if cur > 0 else math.inf
        else:
            thr = tol * (1 - cur / prev) / (cur / prev) if cur > 0 else math.inf
        return min(max(thr, tol), math.sqrt(tol))
    if _quadratic(opts):
        thr = xp.sqrt(tol * prev * prev / cur)
    else:
        theta = cur / prev
        thr = tol * (1 - theta) / theta
    thr = xp.minimum(
        xp.maximum(thr, xp.asarray(tol, dtype=cur.dtype)), xp.asarray(math.sqrt(tol), dtype=cur.dtype)
    )
    return xp.where(cur < prev, thr, xp.asarray(tol, dtype=cur.dtype))


def sweeps_needed(opts: Options, errs: list[float]) -> float:
    """Sweeps still needed, forecast from the last two largest updates (inf: no contraction)."""
    if len(errs) < 2:
        return math.inf
    e0, e1 = errs[-2], errs[-1]
    if not (math.isfinite(e0) and 0 < e1 < e0):
        return math.inf
    # tol=0 accepts only exact updates; forecast the sweeps to rounding level instead.
    tol = opts.tol if opts.tol > 0 else opts.default_tol
    if e1 <= tol:
        return 1.0
    if _quadratic(opts):  # e <- C e^2, C e1 = (e1/e0)^2 < 1
        c, e, count = e1 / (e0 * e0), e1, 0
        while e > tol and count < 64:
            e, count = c * e * e, count + 1
        return float(max(count, 1))
    return max(1.0, math.log(tol / e1) / math.log(e1 / e0))


def should_stop(st: State, opts: Options, n: int, errs: list[float], forecast: bool = True) -> str | None:
    """The cost rules: why to finish sequentially now, or None to keep sweeping.

    (a) budget: the sweeps so far, one more (at the fastest sweep time seen) and the loop
    over the steps still unconverged would exceed ``_BUDGET`` times the whole sequential
    loop; (b) stall (from the ``_EXPLORE_SWEEPS``-th sweep, or once the sweeps have cost
    ``_EXPLORE`` times the loop): the sweeps still needed, forecast from the rate at which the
    largest update shrinks or the prefix advances, would take longer than the sequential
    loop over the remaining steps; (c) ``MAX_TROUBLE`` sweeps in a row met non-finite values
    without advancing the prefix past its exact first step. ``forecast=False`` skips rule
    (b): for sweeps that cost about one step of the loop per step they are sure to fix
    (autoregressive Jacobi), stopping early could only save their overhead, while a forecast
    misled by a slow start would forgo their gain.
    """
    if st.trouble >= MAX_TROUBLE:
        return (
            f"{st.trouble} sweeps in a row produced non-finite values without progress, even with "
            f"damping {st.damping:g}"
        )
    t_sweep = min(st.sweep_times) if st.sweep_times else st.first_eval
    t_step = st.t_step
    assert t_step is not None
    loop = n * t_step
    remaining = n - st.p
    spent = sum(st.sweep_times) + st.first_eval
    if spent + t_sweep + remaining * t_step > _BUDGET * loop:
        return (
            f"another sweep and the loop over the {remaining} steps left would bring the solve past "
            f"{_BUDGET:g}x the sequential loop ({st.sweeps} sweeps of {t_sweep * 1e3:.3g} ms against "
            f"{loop * 1e3:.3g} ms for the loop)"
        )
    if not forecast:
        return None
    if st.sweeps < 2 or (st.sweeps < _EXPLORE_SWEEPS and spent < _EXPLORE * loop):
        return None  # a forecast needs two sweeps
    back = min(2, len(st.prefixes) - 1)
    advance = (st.prefixes[-1] - st.prefixes[-1 - back]) / back if back > 0 else 1.0
    needed = min(sweeps_needed(opts, errs), remaining / max(advance, 1.0))
    if needed * t_sweep > remaining * t_step:
        return (
            f"the prefix advances too slowly for the parallel solve to pay (about {needed:.3g} more "
            f"sweeps of {t_sweep * 1e3:.3g} ms against {remaining * t_step * 1e3:.3g} ms sequentially)"
        )
    return None
