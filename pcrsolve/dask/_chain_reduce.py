"""The two small tasks of a distributed sweep: coupling the chunks, and deciding what next.

:func:`couple` runs once the chunks of a sweep are evaluated: from their summaries it solves
the carries ``c_j = Phi_j c_{j-1} + y_j`` (the linear step's value entering each chunk) and
each chunk's new last state. :func:`decide` runs once they are completed: from their errors
it advances the converged prefix and applies the single machine's rules (acceptance
threshold, damping on trouble, cost rules that stop for the plain loop). Both see only small
numbers. The client fetches the decision, nothing else, once per sweep.

A round may be submitted before the decision of the sweep before it (see
:mod:`._chain_run`): its chunks are then evaluated from ``lo``, one step past the previous
sweep's start, and the sweep starts at the converged prefix rounded down to a chunk start
(not below ``lo``), where the evaluations made are exactly those a sweep from there needs.
The steps between that chunk start and the prefix are swept once more.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import _backend
from ..chain._blocks import from_blocks, to_blocks
from ..chain._policy import MIN_DAMPING, Options, State, should_stop, threshold
from ..chain._sequential import first_true
from ..chain._sweep import sqnorm
from ._chain_data import Coupling, Decision, Edge, Spec

__all__ = ["couple", "decide", "start_of"]


def start_of(q: int, lo: int | None, bounds) -> int:
    """Where a sweep starts: the converged prefix ``q``, or when the round was evaluated
    from ``lo`` ahead of the decision, the last chunk start in ``[lo, q]`` (else ``lo``)."""
    if lo is None:
        return q
    return max([lo] + [a for a, _ in bounds if lo <= a <= q])


def _advance(xp, kind: str, phi, c, end):
    """The linear step's value after a chunk: ``Phi c + end`` (``c`` None: zero)."""
    if c is None or kind == "zero":
        return end
    if kind == "identity":
        return c + end
    if kind == "dense":
        return xp.matmul(phi, c[..., None])[..., 0] + end
    if kind == "block":
        b = phi.shape[-1]
        return from_blocks(xp, xp.matmul(phi, to_blocks(xp, c, b)[..., None])[..., 0]) + end
    return phi * c + end


def couple(
    spec: Spec, n: int, width: int, bounds, lo: int | None, prev: Decision, source, *groups
) -> Coupling:
    """The carries of a sweep from its chunks' summaries (``groups``: one dict per group).

    ``prev``: the decision before this sweep (where it starts, the damping); ``source``: the
    round before's :class:`Coupling` (or the first :class:`Decision`), whose edge states
    this one carries forward for chunks not swept yet.
    """
    if prev.action != "sweep":
        return Coupling(False)
    summaries: dict[int, Any] = {}
    for g in groups:
        summaries.update(g)
    p = start_of(prev.q, lo, bounds)
    e = min(n, p + width)
    active = tuple(j for j, (a, b) in enumerate(bounds) if b > p and a < e)
    ref = summaries[active[0]]
    xp = _backend.resolve({"end": ref.end}, spec.backend).xp
    kind, batch, m, omega = spec.opts.kind, spec.batch, spec.m, prev.omega
    carry, tail = {}, {}
    c, poison = None, xp.zeros(ref.end.shape[0], dtype=xp.bool)
    with np.errstate(all="ignore"):
        for j in active:
            S = summaries[j]
            if S.start != max(bounds[j][0], p):  # a scheduling error, never the user's
                raise RuntimeError(f"chunk {j} was evaluated from step {S.start}, the sweep starts at {p}")
            carry[j] = (c, poison)
            out = _advance(xp, kind, S.phi, c, S.end)  # (B, m): the step's value at the chunk's end
            if c is None and bounds[j][1] - S.start == 1:  # the sweep's exact first step only
                f_ok = xp.isfinite(sqnorm(xp, S.f_last))
                keep = ~f_ok
                new = xp.where(f_ok[..., None], S.f_last, S.last)
            else:
                d = xp.reshape(out, (*batch, m))
                cand = S.last + omega * d if omega != 1.0 else S.last + d
                held = xp.reshape(poison | S.bad | ~xp.all(xp.isfinite(out), axis=-1), batch)
                keep = held | ~xp.isfinite(sqnorm(xp, cand))
                new = xp.where(keep[..., None], S.last, cand)
            tail[j] = (new, keep)
            poison = poison | S.bad | ~xp.all(xp.isfinite(out), axis=-1)
            c = out
    filled = max(prev.filled, bounds[active[-1]][1])
    old = source.edge
    last = {j: v for j, v in old.last.items() if bounds[j][1] > p and j not in tail}
    last.update({j: new for j, (new, _) in tail.items()})
    jf = next(j for j, (a, b) in enumerate(bounds) if b >= filled)
    src = last.get(jf, old.src)
    return Coupling(True, p, e, omega, active, carry, tail, Edge(last, src), filled)


def decide(spec: Spec, n: int, cap: int, prev: Decision, coupling: Coupling, *groups) -> Decision:
    """The decision after a sweep, from its chunks' smalls (``groups``: one dict per group)."""
    if prev.action != "sweep" or not coupling.sweeping:
        return prev
    opts: Options = spec.opts
    smalls: dict[int, Any] = {}
    for g in groups:
        smalls.update(g)
    counts = (
        prev.counts[0] + sum(s.evals[0] for s in smalls.values()),
        prev.counts[1] + sum(s.evals[1] for s in smalls.values()),
    )
    t_eval = max((s.evals[2] for s in smalls.values()), default=0.0)
    p, e = coupling.p, coupling.e
    now = time.time()
    first = smalls[coupling.active[0]]
    out = prev.but(counts=counts, window=(p, e), sweeps=prev.sweeps + 1, t_done=now, edge=None)
    out.filled = coupling.filled
    if first.f0_bad is not None and bool(np.any(first.f0_bad)):
        return out.but(action="error", bad=(p, int(first_true(np, first.f0_bad))))
    err = np.concatenate([smalls[j].err for j in coupling.active])
    max_err = float(err.max()) if err.size else 0.0
    out.residuals = (*prev.residuals, max_err)
    if opts.fixed:
        out.q = p + 1
        out.omega = opts.damping
        out.action = "sweep" if out.sweeps < cap else "done"
        return out
    before = prev.residuals[-1] if prev.residuals else None
    over = np.flatnonzero(err[1:] > threshold(np, opts, max_err, before))
    n_ok = 1 + int(over[0]) if over.size else int(err.size)
    out.q = p + n_ok
    out.iterations = prev.iterations + (max_err > opts.tol)
    out.prefixes = (*prev.prefixes, out.q)
    if prev.sweeps:
        out.sweep_times = (*prev.sweep_times, now - prev.t_done)
    else:  # as on one machine: the first sweep's one-off costs are not counted, only its evaluations
        out.first_eval = t_eval
    if max_err == math.inf and n_ok <= 1:  # damping on trouble, as on one machine
        out.trouble, out.damping = prev.trouble + 1, max(prev.damping / 2, MIN_DAMPING)
    else:
        out.trouble, out.damping = 0, min(prev.damping * 2, opts.damping)
    out.omega = out.damping
    if out.q >= n:
        out.action = "converged"
        return out
    if opts.max_iter is not None and out.sweeps >= opts.max_iter:
        out.action, out.reason = "stop", f"max_iter = {opts.max_iter} sweeps did not converge"
        return out
    st = State(
        p=out.q,
        sweeps=out.sweeps,
        iterations=out.iterations,
        damping=out.damping,
        trouble=out.trouble,
        sweep_times=list(out.sweep_times),
        first_eval=out.first_eval,
        prefixes=list(out.prefixes),
        t_step=out.t_step,
    )
    reason = should_stop(st, opts, n, list(out.residuals))
    out.action, out.reason = ("sweep", None) if reason is None else ("stop", reason)
    return out
