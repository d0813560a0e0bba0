"""Measuring a chain before :mod:`._cost` chooses its route.

Two probes, both on the first steps of the chain:

1. The sequential route runs steps ``[0, q1)`` and then ``[q1, q1 + q2)`` (``q2 = 3 q1``,
   together about ``n / 64``, at most 512), timed: its cost per step is the slope between
   the two calls (a call's fixed overhead cancels). These steps are exact, so they are the
   solve's first converged steps (each call is repeated, for its timing). For ``"auto"``
   the probe stops early when a call's own time per step (an upper bound: it includes the
   call's fixed cost) already puts the rest of the loop under ``SHORT_LOOP``: the loop is
   then the route whatever the slope, and a short chain is not run four times over.
2. A sweep is evaluated on the last 4, 16 and ``_SWEEP_PROBE_MAX`` of those exact steps
   (fewer when they are fewer), each size twice (the first always), stopping after the
   second size as soon as the probe has cost ``_PROBE_BUDGET`` of the loop's predicted time
   (an expensive evaluation needs no precise price to lose): its cost per step (the slope
   between the last two sizes), and, from a
   perturbation ``v`` carried through the linear step ``dX_k = A_k dX_{k-1}`` (the
   residuals vanish on exact states), the growth ``log(|A_k .. A_j v|) / s`` per step and
   the drift, the mean ``|A_k u - u| / |u|`` along the way (how far each step is from the
   identity), which forecast the number of sweeps. This is the extra work: at most
   ``2 * (4 + 16 + _SWEEP_PROBE_MAX)`` step evaluations.

Times are wall times (see ``_policy.TIMER``). Every measurement is taken twice and the
faster counts: a first call may load kernels, and on a shared machine a time slice lost to
another process should not decide the route. On the CPU the sweep probe also times the update
pass on a scratch copy, so ``t_sweep`` is the whole sweep's cost per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._cost import SHORT_LOOP
from ._eval import Evaluator
from ._policy import TIMER, Options, State
from ._sequential import run_sequential
from ._sweep import evaluate, sqnorm

__all__ = ["Probe", "probe"]

# The sequential probe's first call covers n / _SEQ_FRACTION steps (at most _SEQ_MAX), its
# second three times as many ...
_SEQ_FRACTION = 256
_SEQ_MAX = 128
# ... and the sweep probe at most this many of them, ...
_SWEEP_PROBE_MAX = 64
# ... spending on it about this fraction of the loop's predicted time at most.
_PROBE_BUDGET = 0.02


@dataclass
class Probe:
    """Measured costs: seconds per step of the loop and of a sweep, and the growth per step."""

    t_seq: float
    t_sweep: float | None = None
    growth: float | None = None
    drift: float | None = None
    sweep_steps: int = 0  # the most steps the sweep was timed on
    seq_bound: bool = False  # t_seq is one call's time per step (the probe stopped early)
    guess_error: float | None = None  # the caller's x_init on the exact steps (scaled, worst)


def _slope(t1: float, q1: int, t2: float, q2: int) -> float:
    """Cost per step from two timed calls of ``q1 < q2`` steps, robust to noise and warm-up."""
    per = t2 / q2
    if q2 <= q1:
        return max(per, 1e-12)
    fit = (t2 - t1) / (q2 - q1)
    return max(min(per, max(fit, per / 4)), 1e-12)


def _sizes(n: int) -> tuple[int, int]:
    """The steps of the sequential probe's two calls."""
    q1 = max(1, min(n // _SEQ_FRACTION, _SEQ_MAX))
    return q1, min(3 * q1, n - q1)


def _sequential(
    ev: Evaluator, X, x0, ks, n: int, st: State, short: float | None = None
) -> tuple[float, bool]:
    """``(seconds per step of the loop, whether a bound)`` from its first steps (which it
    solves: ``st.p`` advances).

    With ``short``, it returns after the first call of either size whose time per step puts
    the steps left under ``short`` seconds (that time, a bound from above).
    """
    q1, q2 = _sizes(n)

    def timed(a: int, b: int) -> float:
        t0 = TIMER()
        run_sequential(ev, X, x0[None, ...] if a == 0 else X[a - 1 : a, ...], ks, a, b)
        return TIMER() - t0

    def enough(t: float, steps: int, p: int) -> bool:
        st.p = p
        st.filled = max(st.filled, p)
        return short is not None and (n - p) * t / steps < short

    t1 = timed(0, q1)
    if enough(t1, q1, q1):
        return max(t1 / q1, 1e-12), True
    t1 = min(t1, timed(0, q1))
    if q2 <= 0:
        return max(t1 / q1, 1e-12), False
    t2 = timed(q1, q1 + q2)
    if enough(t2, q2, q1 + q2):
        return max(t2 / q2, 1e-12), True
    t2 = min(t2, timed(q1, q1 + q2))
    return _slope(t1, q1, t2, q2), False


def _tangent(xp, dtype, batch: tuple[int, ...], m: int):
    """A fixed perturbation of unit norm per batch element (generic: no zero entries)."""
    v = xp.cos(xp.arange(m, dtype=xp.float64) * 2.4 + 0.7)
    v = xp.astype(v / xp.sqrt(xp.sum(v * v)), dtype)
    return xp.broadcast_to(v, (*batch, m))


def _sweep(ev: Evaluator, be, opts: Options, X, x0, ks, p: int, budget: float) -> Probe:
    """A sweep's seconds per step, growth and drift per step, from the exact steps ``[0, p)``
    (``t_seq`` of the result is left 0)."""
    xp, batch, m = be.xp, ev.batch, ev.m
    measure = opts.kind not in ("zero", "identity")  # A = 0 or I says nothing about the chain
    v = xp.reshape(_tangent(xp, X.dtype, batch, m), (math.prod(batch), m)) if measure else None

    def timed(s: int) -> tuple[float, float, Any]:
        t0 = TIMER()
        _, dX = evaluate(ev, be, opts, X, x0, ks, p - s, p, v)
        last = sqnorm(xp, dX[-1, ...])  # (*batch); reading it synchronises a device
        worst = float(xp.max(xp.reshape(last, (-1,)))) if last.ndim else float(last)
        return TIMER() - t0, worst, dX

    spent, sizes, times = 0.0, [], []
    for s in sorted({min(p, size) for size in (4, 16, _SWEEP_PROBE_MAX)}):
        t, worst, dX = timed(s)
        spent += t
        if spent <= budget or not sizes:  # again (the first call may load kernels) within budget
            t2 = timed(s)[0]
            spent += t2
            t = min(t, t2)
        sizes.append(s)
        times.append(t)
        if spent > budget and len(sizes) > 1:  # two sizes at least: their slope drops the
            break  # per-call overhead, which dominates short evaluations of a Python chain
    s = sizes[-1]
    per = _slope(times[-2], sizes[-2], t, s) if len(sizes) > 1 else t / s
    if be.is_numba:
        per += _update_cost(X, p - s, p, batch, m)
    if not measure:
        return Probe(0.0, per, None, None, s)
    if not math.isfinite(worst):
        return Probe(0.0, per, math.inf, math.inf, s)
    growth = 0.5 * math.log(worst) / s if worst > 0 else -math.inf
    # Drift: |A_k u - u| / |u| along the perturbation's path, averaged over the steps (the
    # largest over the batch elements).
    before = xp.concat([xp.reshape(v, (1, *batch, m)), dX[:-1, ...]], axis=0)
    den = sqnorm(xp, before)  # real even for complex states
    tiny = xp.asarray(xp.finfo(den.dtype).smallest_normal, dtype=den.dtype)
    ratio = xp.sqrt(sqnorm(xp, dX - before) / xp.maximum(den, tiny))
    drift = float(xp.max(xp.mean(xp.reshape(ratio, (s, -1)), axis=0)))
    return Probe(0.0, per, growth, drift, s)


def _update_cost(X, a: int, b: int, batch: tuple[int, ...], m: int) -> float:
    """Seconds per step of the CPU sweep's update pass, timed on a scratch copy of ``X[a:b]``."""
    import numpy as np

    from ._fused import update

    B = math.prod(batch)
    scratch = np.array(np.reshape(X[a:b], (b - a, B, m)))
    zero = np.zeros((b - a, B, m), dtype=X.dtype)
    update(scratch[:1], 0, zero[:1], zero[:1], 1.0)  # loads the kernel
    best = math.inf
    for _ in range(2):
        t0 = TIMER()
        update(scratch, 0, zero, zero, 1.0)
        best = min(best, TIMER() - t0)
    return best / (b - a)


def _guess_error(xp, guess, exact) -> float:
    """The largest scaled error ``|guess - exact| / (1 + |exact|)`` over steps and batch."""
    err = xp.sqrt(sqnorm(xp, guess - exact)) / (1 + xp.sqrt(sqnorm(xp, exact)))
    return float(xp.max(xp.reshape(err, (-1,))))


def probe(ev: Evaluator, be, opts: Options, x0, X, ks, n: int, st: State) -> Probe:
    """Run the probes (the first steps become exact: ``st.p`` advances); see the module doc.

    With the caller's guess of every state (``x_init``), its error on the probe's exact steps
    is measured too (``guess_error``): whether it is the warm start the cost model assumes.
    """
    xp = be.xp
    k = min(n, sum(_sizes(n)))
    guess = xp.asarray(X[:k, ...], copy=True) if st.filled >= n else None
    t_seq, bound = _sequential(ev, X, x0, ks, n, st, SHORT_LOOP if opts.auto else None)
    error = None if guess is None else _guess_error(xp, guess[: st.p, ...], X[: st.p, ...])
    if st.p >= n or (opts.auto and (n - st.p) * t_seq < SHORT_LOOP):  # no sweep will run
        return Probe(t_seq, guess_error=error, seq_bound=bound)
    out = _sweep(ev, be, opts, X, x0, ks, st.p, _PROBE_BUDGET * n * t_seq)
    out.t_seq = t_seq
    out.guess_error = error
    return out
