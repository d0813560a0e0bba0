"""The decision after a sweep, and the small task that couples the chunks of a sweep.

:func:`couple` runs once the chunks of a sweep are evaluated: from their summaries it solves
the carries ``c_j = Phi_j c_{j-1} + y_j`` (the linear step's value entering each chunk) and
each chunk's new last state. :func:`advance` decides a sweep from its chunks' smalls: how far
the converged prefix advanced (the single machine's acceptance threshold) and the damping on
trouble. The client runs it on the smalls it fetches, adding the cost rules, which need its
clock; a round submitted before the decision of the sweep before it runs it in its coupling
task, on the same smalls, and gets the same answer.

Such a round's chunks are evaluated from ``lo``, one step past the previous sweep's start,
and the sweep starts at the converged prefix rounded down to a chunk start (not below
``lo``), where the evaluations made are exactly those a sweep from there needs. The steps
between that chunk start and the prefix are swept once more.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _backend
from ..chain._blocks import from_blocks, to_blocks
from ..chain._policy import MIN_DAMPING, Options, threshold
from ..chain._sequential import first_true
from ..chain._sweep import sqnorm
from ._chain_data import Coupling, Decision, Edge, Spec

__all__ = ["active_chunks", "advance", "couple", "start_of"]


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


def active_chunks(bounds, p: int, e: int) -> tuple[int, ...]:
    """The chunks holding steps of ``[p, e)``."""
    return tuple(j for j, (a, b) in enumerate(bounds) if b > p and a < e)


def couple(
    spec: Spec, n: int, width: int, bounds, lo: int | None, prev: Decision, source, k: int, *parts
) -> Coupling:
    """The carries of a sweep from its chunks' summaries.

    ``parts``: ``k`` dicts of summaries (one per group), then, when the sweep before was not
    decided yet (``lo`` given), that sweep's smalls (one dict per group): the decision is
    taken here as on the client. ``prev``: the decision before (that one, or this sweep's
    when it is known); ``source``: the round before's :class:`Coupling` (or the first
    :class:`Decision`), whose edge states this one carries forward for chunks not swept yet.
    """
    if len(parts) > k:
        # The sweep before started at lo - 1: decide it as the client does.
        prev = advance(spec, n, bounds, prev, lo - 1, min(n, lo - 1 + width), _merge(parts[k:]))
    if prev.action != "sweep":
        return Coupling(False)
    summaries = _merge(parts[:k])
    p = start_of(prev.q, lo, bounds)
    e = min(n, p + width)
    active = active_chunks(bounds, p, e)
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


def _merge(groups) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for g in groups:
        out.update(g)
    return out


def advance(spec: Spec, n: int, bounds, prev: Decision, p: int, e: int, smalls: dict[int, Any]) -> Decision:
    """The decision after the sweep over ``[p, e)``, from its chunks' smalls.

    Deterministic (the client and a coupling task get the same answer); the cost rules,
    which need the client's clock, are not applied here.
    """
    opts: Options = spec.opts
    active = active_chunks(bounds, p, e)
    out = prev.but(
        sweeps=prev.sweeps + 1,
        window=(p, e),
        filled=max(prev.filled, bounds[active[-1]][1]),
        counts=(
            prev.counts[0] + sum(s.evals[0] for s in smalls.values()),
            prev.counts[1] + sum(s.evals[1] for s in smalls.values()),
        ),
        edge=None,
        reason=None,
    )
    f0_bad = smalls[active[0]].f0_bad
    if f0_bad is not None and bool(np.any(f0_bad)):
        return out.but(action="error", bad=(p, int(first_true(np, f0_bad))))
    peak = max(smalls[j].peak for j in active)
    out.residuals = (*prev.residuals, peak)
    if opts.fixed:
        cap = min(opts.max_iter, n)
        return out.but(q=p + 1, omega=opts.damping, action="sweep" if out.sweeps < cap else "done")
    thr = threshold(np, opts, peak, prev.residuals[-1] if prev.residuals else None)
    n_ok, offset = None, 0
    for j in active:
        hit = smalls[j].first_over(thr)
        if hit is not None:
            n_ok = offset + hit
            break
        offset += smalls[j].rows
    out.q = p + (offset if n_ok is None else n_ok)
    out.iterations = prev.iterations + (peak > opts.tol)
    out.prefixes = (*prev.prefixes, out.q)
    if not prev.sweeps:  # as on one machine: the first sweep's one-off costs are not counted
        out.first_eval = max((s.evals[2] for s in smalls.values()), default=0.0)
    if peak == math.inf and out.q - p <= 1:  # damping on trouble, as on one machine
        out.trouble, out.damping = prev.trouble + 1, max(prev.damping / 2, MIN_DAMPING)
    else:
        out.trouble, out.damping = 0, min(prev.damping * 2, opts.damping)
    out.omega = out.damping
    if out.q >= n:
        out.action = "converged"
    elif opts.max_iter is not None and out.sweeps >= opts.max_iter:
        out.action, out.reason = "stop", f"max_iter = {opts.max_iter} sweeps did not converge"
    else:
        out.action = "sweep"
    return out
