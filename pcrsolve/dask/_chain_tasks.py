"""The tasks of a distributed chain solve that run on the chunks, a group of chunks each.

The steps are split into chunks; chunk ``j`` holds the iterate of steps ``[a, b)``: ``X (b -
a, *batch, m)``. The chunks are dealt round-robin to groups, one group per worker thread, so
that one task per group and phase covers its chunks and the chunks still swept stay spread
over the workers as the converged prefix advances. A group's iterates are a tuple with one
array per chunk (None for a chunk no window reached yet).

One sweep over a chunk's steps ``[start, b)`` is :func:`evaluate` (the chain's values and
Jacobians at the current iterate, and the linear step ``dX_k = A_k dX_{k-1} + R_k`` from zero;
the large part stays on the worker, see :mod:`._stash`, the summary goes to the coupling
task), then, once the carries are known, :func:`complete` (the linear step from the carry,
the update, the per-step errors). The arithmetic is the single-machine sweep's
(:mod:`pcrsolve.chain._sweep`), chunk by chunk. Every task returns new arrays and never writes
into its inputs, and its result depends only on its arguments, so Dask may rerun it anywhere.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import _backend
from ..chain._eval import has
from ..chain._sequential import _SEQ_BLOCK, raise_first_nonfinite
from ..chain._sweep import linear_step, sqnorm
from ..linear._methods import choose
from . import _stash
from ._chain_data import (
    Coupling,
    Decision,
    Edge,
    Evaluated,
    Packed,
    Small,
    Spec,
    Summary,
    Window,
    group_arrays,
)
from ._recurrence import _product
from ._threads import kernel_slot

__all__ = ["chunk_of", "complete", "evaluate", "host", "probe", "sequential", "smalls_of", "transfer"]

Chunks = tuple[tuple[int, int, int], ...]  # (j, a, b) of a group's chunks


def chunk_of(X: Any, i: int):
    """Chunk ``i`` of a group's iterates (a completion's result or a sequential task's)."""
    if isinstance(X, tuple) and len(X) == 2 and not isinstance(X[1], dict):
        return X[0]  # a sequential task's (array, small)
    return group_arrays(X, i + 1)[i]


def host(a, dtype=np.float64):
    """A small device array on the host (one transfer per chunk and sweep, for the decision)."""
    get = getattr(a, "get", None)  # CuPy
    if callable(get) and not isinstance(a, np.ndarray):
        return np.asarray(get(), dtype=dtype)
    try:
        return np.asarray(a, dtype=dtype)
    except TypeError:  # libraries that only export DLPack
        return np.from_dlpack(a).astype(dtype)


def smalls_of(X: Packed) -> dict[int, Small]:
    """The small part of a completion's result (what the decision needs)."""
    return X.smalls


def _fill(xp, spec: Spec, X, edge: Edge, a: int, b: int, reached: bool):
    """The chunk's iterate as this round sees it: the probe's exact first states written in
    (first round), and a chunk the window reaches for the first time started from the latest
    state repeated (as on one machine). None: a chunk still out of reach."""
    rows = edge.rows if a == 0 else None
    if X is None:
        if not (reached or rows is not None):
            return None
        X = xp.asarray(xp.broadcast_to(edge.src[None, ...], (b - a, *spec.batch, spec.m)), copy=True)
    elif rows is not None:
        X = xp.asarray(X, copy=True)
    if rows is not None:
        X[: rows.shape[0], ...] = rows
    return X


def _before(X, edge: Edge, j: int, a: int, start: int):
    """The state before step ``start`` of chunk ``j``: its own, the left neighbour's, or ``x0``."""
    if start > a:
        return X[start - 1 - a, ...]
    if a == 0:
        return edge.x0
    return edge.last.get(j - 1, edge.src)


def transfer(xp, A, kind: str, s: int, B: int):
    """The chunk's transfer of the linear step, ``A_{s-1} ... A_0`` per batch element (None:
    zero or identity, which the carries handle directly)."""
    if kind in ("zero", "identity"):
        return None
    if kind == "block":  # (s, *batch, m/b, b, b): every block its own dense product
        phi = _product(xp, xp.moveaxis(A, 0, -3), True, False, s)
        return xp.reshape(phi, (B, *phi.shape[-3:]))
    dense = kind == "dense"
    phi = _product(xp, xp.moveaxis(A, 0, -3 if dense else -2), dense, False, s)
    return xp.reshape(phi, (B, *phi.shape[phi.ndim - (2 if dense else 1) :]))


def _method(be, spec: Spec, s: int) -> str:
    return choose("recurrence", "auto", be, spec.B, s) if be.is_numba else spec.opts.recurrence_method


def _evaluate_chunk(ev, be, spec: Spec, X, prev, start: int, a: int) -> tuple[Evaluated, Summary]:
    """Evaluate steps ``[start, a + len(X))`` at the iterate ``X`` and reduce them locally."""
    xp, opts = be.xp, spec.opts
    lo = start - a
    s = X.shape[0] - lo
    Xprev = xp.concat([prev[None, ...], X[lo : X.shape[0] - 1, ...]], axis=0)
    before = (ev.n_step_evals, ev.n_jac_evals, ev.eval_time)
    with np.errstate(all="ignore"):
        # The chain runs outside the kernel slot: its own code decides its threads and locks.
        F, A = ev.linearize(xp.asarray(Xprev, copy=True), xp.arange(start, start + s), opts.kind)
    with np.errstate(all="ignore"), kernel_slot():
        R = F - X[lo:, ...]
        dX = linear_step(be, opts, A, R, s, spec.batch, spec.m, None, _method(be, spec, s))
        phi = transfer(xp, A, opts.kind, s, spec.B)
    flat = xp.reshape(dX, (s, spec.B, spec.m))
    bad = ~xp.all(xp.isfinite(flat), axis=(0, 2))
    evals = (ev.n_step_evals - before[0], ev.n_jac_evals - before[1], ev.eval_time - before[2])
    summary = Summary(start, phi, flat[-1, ...], bad, X[-1, ...], F[-1, ...], evals)
    return Evaluated(X, F, A, R, start, evals), summary


def _reference(arrays: tuple[Any, ...], edge: Edge) -> Any:
    """Any array of the solve's library (to resolve the backend)."""
    return next((x for x in arrays if x is not None), edge.src if edge.src is not None else edge.x0)


def _evaluate_group(chain, spec: Spec, chunks: Chunks, X, edge: Edge, window) -> dict[int, tuple]:
    arrays = group_arrays(X, len(chunks))
    ev = be = None
    out = {}
    for i, (j, a, b) in enumerate(chunks):
        if b <= window.lo or a >= window.hi:
            continue
        if ev is None:
            ev, be = spec.evaluator(chain, _reference(arrays, edge))
        Xj = _fill(be.xp, spec, arrays[i], edge, a, b, True)
        start = max(a, window.lo)
        out[j] = _evaluate_chunk(ev, be, spec, Xj, _before(Xj, edge, j, a, start), start, a)
    return out


def evaluate(chain, spec: Spec, round_: int, chunks: Chunks, X, source, window: Window):
    """A group's evaluations for round ``round_``: ``{j: Summary}`` for its chunks in ``window``.

    ``X``: the group's iterates; ``source``: the previous round's :class:`Coupling` (or the
    first round's :class:`Decision`), whose ``edge`` holds the neighbours' states. The large
    parts stay in this worker's cache (:mod:`._stash`) for :func:`complete`.
    """
    out = {}
    for j, (E, summary) in _evaluate_group(chain, spec, chunks, X, source.edge, window).items():
        _stash.put(spec.solve, round_, j, E)
        out[j] = summary
    return out


def _complete_chunk(spec: Spec, E: Evaluated, c, poison_in, omega: float, first: bool, tail, a: int):
    """The chunk's update from its carry: ``(X_new, Small)``.

    As :func:`pcrsolve.chain._sweep.sweep`: non-finite positions are held back from the first
    one on (per batch element), and the sweep's first step is set to ``f`` exactly. The last
    step takes the coupling's values (``tail``), so that the next round's evaluation of the
    next chunk starts from exactly this chunk's last state.
    """
    be = _backend.resolve({"X": E.X}, spec.backend)
    xp, opts, batch, m = be.xp, spec.opts, spec.batch, spec.m
    X = E.X
    lo = E.start - a
    s = X.shape[0] - lo
    last, keep_last = tail
    with np.errstate(all="ignore"), kernel_slot():
        if opts.kind == "zero":
            dX = E.R
        else:
            dX = linear_step(be, opts, E.A, E.R, s, batch, m, c, _method(be, spec, s))
        Xa = X[lo:, ...]
        ndx = sqnorm(xp, dX)  # (s, *batch)
        inherited = xp.reshape(poison_in, batch) if batch else poison_in[0]
        poisoned = (xp.cumulative_sum(xp.astype(~xp.isfinite(ndx), xp.int32), axis=0) > 0) | inherited
        Xnew = Xa + omega * dX if omega != 1.0 else Xa + dX
        f0_bad = None
        if first:
            f0_ok = xp.isfinite(sqnorm(xp, E.F[0, ...]))
            Xnew = xp.concat([xp.where(f0_ok[..., None], E.F[0:1, ...], Xa[0:1, ...]), Xnew[1:, ...]], axis=0)
            f0_bad = xp.reshape(~f0_ok, (-1,))
        keep = poisoned | ~xp.isfinite(sqnorm(xp, Xnew))
        if first:
            keep = xp.concat([~f0_ok[None, ...], keep[1:, ...]], axis=0)
        keep = xp.concat([keep[:-1, ...], keep_last[None, ...]], axis=0)
        new = xp.where(keep[..., None], Xa, Xnew)
        new = xp.concat([new[:-1, ...], last[None, ...]], axis=0)
        out = xp.concat([X[:lo, ...], new], axis=0) if lo else new
        nx = sqnorm(xp, new)
        err = xp.where(
            keep | poisoned, xp.asarray(math.inf, dtype=ndx.dtype), xp.sqrt(ndx) / (1 + xp.sqrt(nx))
        )
        err = xp.max(xp.reshape(err, (s, -1)), axis=1) if batch else err
    err = host(err)
    rest = err[1:] if first else err  # the sweep's first step is exact: never the one that stops it
    rmax = np.maximum.accumulate(rest) if rest.size else rest
    rises = np.flatnonzero(np.concatenate([[True], rmax[1:] > rmax[:-1]])) if rest.size else np.zeros(0, int)
    small = Small(
        True,
        int(err.size),
        float(err.max()) if err.size else 0.0,
        rises + (1 if first else 0),
        rmax[rises],
        None if f0_bad is None else host(f0_bad, bool),
        E.evals,
    )
    return out, small


def complete(chain, spec: Spec, round_: int, chunks: Chunks, X, source, window: Window, coupling: Coupling):
    """A group's completions for round ``round_``: a :class:`Packed` of its new iterates.

    Takes each evaluated chunk's large part from this worker's cache, or, when this process
    does not hold it, evaluates the chunk again from the same arguments as :func:`evaluate`.
    """
    edge = source.edge
    arrays = list(group_arrays(X, len(chunks)))
    smalls: dict[int, Small] = {}
    xp = _backend.resolve({"x": _reference(tuple(arrays), edge)}, spec.backend).xp
    again = None
    for i, (j, a, b) in enumerate(chunks):
        evaluated = b > window.lo and a < window.hi
        E = _stash.take(spec.solve, round_, j) if evaluated else None
        if not (coupling.sweeping and j in coupling.carry):
            arrays[i] = _fill(xp, spec, arrays[i], edge, a, b, False)
            if evaluated:  # evaluated ahead of a prefix that passed it: only its counts remain
                smalls[j] = Small(False, evals=E.evals if E is not None else (0, 0, 0.0))
            continue
        if E is None:  # not in this process's cache: evaluate again (counted as evaluations)
            if again is None:
                again = _evaluate_group(chain, spec, chunks, X, edge, window)
            E = again[j][0]
        c, poison = coupling.carry[j]
        first = j == coupling.active[0]
        arrays[i], smalls[j] = _complete_chunk(spec, E, c, poison, coupling.omega, first, coupling.tail[j], a)
    return Packed(tuple(arrays), smalls)


def probe(chain, spec: Spec, x0, k: int, start: Decision):
    """The first ``k`` steps run sequentially (they are exact), each timed.

    Returns ``start`` (the first round's :class:`Decision`) with the probe's states as the
    edge's ``rows``, the latest state as its ``src``, the fastest step's time as ``t_step``
    and the evaluations counted.
    """
    ev, be = spec.evaluator(chain, x0)
    xp = be.xp
    times, rows = [], []
    x = x0[None, ...]
    for i in range(k):
        t0 = time.perf_counter()
        x = ev.step(x, xp.arange(i, i + 1))
        times.append(time.perf_counter() - t0)
        if not bool(xp.all(xp.isfinite(x))):
            raise_first_nonfinite(xp, x, i, spec.batch)
        rows.append(x)
    edge = start.edge
    edge = Edge(edge.last, x[0, ...], edge.x0, xp.concat(rows, axis=0) if rows else None)
    t_step = max(min(times), 1e-9) if times else 1e-9
    return start.but(edge=edge, t_step=t_step, counts=(ev.n_step_evals, 0))


def sequential(chain, spec: Spec, j: int, a: int, b: int, start: int, X, before):
    """The plain loop over steps ``[start, b)`` of chunk ``j = [a, b)``: ``(X_new, (evals, last))``.

    ``X``: the chunk's iterate, whose states before ``start`` are kept (None: a fresh one);
    ``before``: where the state before ``start`` comes from when ``X`` does not hold it: the
    previous chunk's small part ``(evals, last)``, or an object with an ``edge`` (a
    :class:`Coupling` or the first round's :class:`Decision`). Runs the chain's own
    ``sequential`` when it has one; finiteness is checked as on one machine and the error
    names the step.
    """
    if isinstance(before, tuple):
        ref = prev = before[1]
    else:
        prev, ref = None, before.edge.src if before.edge.src is not None else before.edge.x0
    ev, be = spec.evaluator(chain, X if X is not None else ref)
    xp = be.xp
    out = xp.empty((b - a, *spec.batch, spec.m), dtype=spec.dtype) if X is None else xp.asarray(X, copy=True)
    if prev is None:
        prev = _before(out, before.edge, j, a, start)
    if start < b:
        if has(chain, "sequential"):
            block = ev.sequential(prev, start, b)
            if not bool(xp.all(xp.isfinite(block))):
                raise_first_nonfinite(xp, block, start, spec.batch)
            out[start - a :, ...] = block
        else:
            x = prev[None, ...]
            for c0 in range(start, b, _SEQ_BLOCK):
                c1 = min(b, c0 + _SEQ_BLOCK)
                outs = []
                for k in range(c0, c1):
                    x = ev.step(x, xp.arange(k, k + 1))
                    outs.append(x)
                block = xp.concat(outs, axis=0)
                if not bool(xp.all(xp.isfinite(block))):
                    raise_first_nonfinite(xp, block, c0, spec.batch)
                out[c0 - a : c1 - a, ...] = block
    return out, (ev.n_step_evals, out[-1, ...])
