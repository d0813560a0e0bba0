"""The tasks of a distributed chain solve: what runs on the workers, one chunk of steps each.

A chunk holds the iterate of steps ``[a, a + s)``: ``X (s, *batch, m)``. One sweep over the
active steps ``[start, stop)`` of a chunk is :func:`evaluate` (the chain's values and
Jacobians at the current iterate, and the linear step ``dX_k = A_k dX_{k-1} + R_k`` from zero,
kept on the worker, :mod:`._stash`; it returns a small summary), then, once the carries are
known (:func:`carries`), :func:`complete` (the linear step from the carry, the update, the
per-step errors). Every task is pure: it returns new arrays and never writes into its inputs,
and a completion that does not find its evaluation kept makes it again, so Dask may rerun
any task on another worker.
The arithmetic is the single-machine sweep's (:mod:`pcrsolve.chain._sweep`), chunk by chunk.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend
from ..chain._eval import Evaluator
from ..chain._policy import Options, threshold
from ..chain._sequential import _SEQ_BLOCK, first_true, raise_first_nonfinite
from ..chain._sweep import linear_step, sqnorm
from ..linear._methods import choose
from . import _stash
from ._recurrence import _product
from ._threads import kernel_slot

__all__ = [
    "Evaluated",
    "Spec",
    "carries",
    "complete",
    "decide",
    "evaluate",
    "evaluate_ahead",
    "initial",
    "probe",
    "row",
    "sequential",
    "summary",
    "unpack",
]


@dataclass(frozen=True)
class Spec:
    """What every task needs to know about the solve (small, sent with each task)."""

    opts: Options  # without the callback: it stays on the client
    backend: str | None
    dtype: Any
    batch: tuple[int, ...]
    m: int

    def evaluator(self, chain, x) -> tuple[Evaluator, Any]:
        be = _backend.resolve({"x": x}, self.backend)
        return Evaluator(chain, be.xp, self.dtype, self.batch, self.m), be


@dataclass
class Evaluated:
    """One chunk's sweep after evaluation: kept on its worker until :func:`complete`."""

    F: Any
    A: Any
    R: Any
    dX_end: Any  # (B, m) the linear step's last value from zero
    phi: Any  # (B, m, m) dense, (B, m) diagonal, or None (Jacobi): the chunk's transfer
    bad: Any  # (B,) bool: non-finite values in the chunk's local linear step
    evals: tuple[int, int, float]  # step and Jacobian evaluations, evaluation seconds


def unpack(X):
    """A chunk's iterate from what its last task left: the array, or ``(array, small)``."""
    return X[0] if isinstance(X, tuple) else X


def row(X, i: int):
    """State ``i`` of a chunk ``(*batch, m)``."""
    return unpack(X)[i, ...]


def _state(prev):
    """A state ``(*batch, m)``, or the last one of a completion's small part."""
    return prev[3] if isinstance(prev, tuple) else prev


def initial(x, size: int):
    """A chunk's first iterate: the state ``x`` repeated."""
    return np.repeat(np.asarray(x)[None, ...], size, axis=0) if size else np.empty((0, *np.shape(x)))


def probe(chain, spec: Spec, X, x0, k: int):
    """The first ``k`` steps run sequentially (they are exact); the fastest step's time.

    Returns ``(X, t_step, n_step_evals)``.
    """
    ev, be = spec.evaluator(chain, x0)
    xp = be.xp
    X = xp.asarray(unpack(X), copy=True)
    times = []
    x = x0[None, ...]
    for i in range(k):
        t0 = time.perf_counter()
        x = ev.step(x, xp.arange(i, i + 1))
        times.append(time.perf_counter() - t0)
        if not bool(xp.all(xp.isfinite(x))):
            raise_first_nonfinite(xp, x, i, spec.batch)
        X[i : i + 1, ...] = x
    if k:
        X[k:, ...] = x  # the rest starts from the latest exact state, as on one machine
    return X, max(min(times), 1e-9) if times else 1e-9, ev.n_step_evals


def sequential(chain, spec: Spec, X, prev, a: int, start: int, size: int):
    """The plain loop over the chunk's steps ``[start, a + size)`` from ``prev``: ``(X, evals)``.

    ``X`` is the chunk's iterate, or None for a chunk no sweep has reached.

    Finiteness is checked once per block of steps, as in :func:`~pcrsolve.chain._sequential.run_sequential`;
    the error names the global step.
    """
    ev, be = spec.evaluator(chain, prev)
    xp = be.xp
    X = (
        xp.empty((size, *spec.batch, spec.m), dtype=spec.dtype)
        if X is None
        else xp.asarray(unpack(X), copy=True)
    )
    x = prev[None, ...]
    stop = a + X.shape[0]
    if True:  # the chain's own calls: no kernel slot (see evaluate)
        for c0 in range(start, stop, _SEQ_BLOCK):
            c1 = min(stop, c0 + _SEQ_BLOCK)
            outs = []
            for k in range(c0, c1):
                x = ev.step(x, xp.arange(k, k + 1))
                outs.append(x)
            block = xp.concat(outs, axis=0)
            if not bool(xp.all(xp.isfinite(block))):
                raise_first_nonfinite(xp, block, c0, spec.batch)
            X[c0 - a : c1 - a, ...] = block
    return X, ev.n_step_evals


def _transfer(xp, A, kind: str, s: int):
    """The chunk's transfer of the linear step: ``A_{s-1} ... A_0`` per batch element."""
    if kind == "zero":
        return None
    if kind == "identity":
        return None  # the identity: carries pass through unchanged
    dense = kind == "dense"
    A = xp.moveaxis(A, 0, -3 if dense else -2)  # (*batch, s, m[, m])
    return _product(xp, A, dense, False, s)


def _evaluate(chain, spec: Spec, X, prev, a: int, start: int) -> Evaluated:
    """Evaluate the chain on the chunk's active steps ``[start, a + s)`` and reduce locally.

    ``prev`` is the state before ``start``; None when ``start > a`` (then it is the chunk's
    own state ``start - 1``, and no task is spent fetching it).
    """
    X = unpack(X)
    lo = start - a
    prev = X[lo - 1, ...] if prev is None else _state(prev)
    ev, be = spec.evaluator(chain, X)
    xp, opts = be.xp, spec.opts
    s_all = X.shape[0]
    s = s_all - lo
    Xprev = xp.concat([prev[None, ...], X[lo : s_all - 1, ...]], axis=0) if s > 1 else prev[None, ...]
    ks = xp.arange(start, start + s)
    with np.errstate(all="ignore"):
        # The chain runs outside the kernel slot: its own code decides its threads and locks.
        F, A = ev.linearize(xp.asarray(Xprev, copy=True), ks, opts.kind)
    return _reduce(spec, be, F, A, X[lo:, ...], (ev.n_step_evals, ev.n_jac_evals, ev.eval_time))


def evaluate(key: tuple, chain, spec: Spec, X, prev, a: int, start: int):
    """:func:`_evaluate` as a task: returns the summary the carries task needs and keeps the
    rest on the worker for the chunk's completion (under ``key``, see :mod:`._stash`)."""
    e = _evaluate(chain, spec, X, prev, a, start)
    _stash.put(*key, e)
    return summary(e)


def evaluate_ahead(decided, n: int, key: tuple, chain, spec: Spec, X, before, a: int, p: int):
    """The next sweep's :func:`evaluate` of a chunk, made as soon as the sweep from ``p`` is decided.

    ``decided`` is that sweep's :func:`decide` result: the next sweep starts at the new
    converged prefix ``q`` (``p + 1`` with fixed iterations), so the chunk is evaluated from
    ``max(a, q)``, exactly as the client will ask; None (nothing run) when there will be no
    next sweep or the chunk is frozen. ``before``: the last state of the chunk before, from
    its completion (used when the chunk starts the next sweep at its first step).
    """
    n_ok, _, bad, _ = decided
    q = p + (1 if spec.opts.fixed else n_ok)
    if bad >= 0 or q >= n or a + unpack(X).shape[0] <= q:
        return None
    start = max(a, q)
    return evaluate(key, chain, spec, X, before if start == a else None, a, start)


def _reduce(spec: Spec, be, F, A, Xa, evals) -> Evaluated:
    """The chunk's part of the linear step ``dX_k = A_k dX_{k-1} + R_k`` from zero."""
    xp, opts = be.xp, spec.opts
    s, B = F.shape[0], math.prod(spec.batch)
    with np.errstate(all="ignore"), kernel_slot():
        R = F - Xa
        method = choose("recurrence", "auto", be, B, s) if be.is_numba else opts.recurrence_method
        dX = linear_step(be, opts, A, R, s, spec.batch, spec.m, None, method)
        phi = _transfer(xp, A, opts.kind, s)
    flat = xp.reshape(dX, (s, B, spec.m))
    bad = ~xp.all(xp.isfinite(flat), axis=(0, 2))
    end = flat[-1, ...]
    if phi is not None:
        phi = xp.reshape(phi, (B, *phi.shape[len(spec.batch) :]))
    return Evaluated(F, A, R, end, phi, bad, evals)


def summary(e: Evaluated):
    """The small part of an evaluation that the carries task needs."""
    return e.phi, e.dX_end, e.bad


def carries(kind: str, *summaries):
    """The value of the linear step entering each active chunk, and whether it is poisoned.

    ``c_0 = 0`` (the state before the sweep is exact), ``c_j = Phi_j c_{j-1} + dX_end_j``;
    poisoned: a non-finite value anywhere before the chunk (per batch element), which holds
    the rest of the sweep back as on one machine.
    """
    out = []
    c, poison = None, None
    for phi, end, bad in summaries:
        if c is None:
            c = np.zeros_like(end)
            poison = np.zeros(end.shape[0], dtype=bool)
        out.append((c, poison))
        with np.errstate(all="ignore"):
            if kind == "zero":
                nxt = np.zeros_like(end)
            elif kind == "identity":
                nxt = c + end
            elif kind == "dense":
                nxt = (phi @ c[..., None])[..., 0] + end
            else:
                nxt = phi * c + end
        poison = poison | bad | ~np.all(np.isfinite(nxt), axis=-1)
        c = nxt
    return out


def complete(
    key: tuple, chain, spec: Spec, X, before, carry, j: int, omega: float, first: bool, a: int, start: int
):
    """The chunk's update from its carry: ``(X_new, small)``.

    The evaluation is the one :func:`evaluate` kept under ``key`` on this worker; when it is
    not here (the task runs in another process, or Dask recomputes it after a lost worker) it
    is made again from the same arguments (``before``: the state before ``start`` when
    ``start == a``), with the same result.

    ``small = (err (s,), evals, f0_bad (B,) or None, last state)`` is what leaves the worker.

    As :func:`pcrsolve.chain._sweep.sweep`: non-finite positions are held back from the first
    one on (per batch element), the first active step of the sweep is set to ``f`` exactly.
    """
    e = _stash.take(*key)
    if e is None:
        e = _evaluate(chain, spec, X, before if start == a else None, a, start)
    X = unpack(X)
    be = _backend.resolve({"X": X}, spec.backend)
    xp, opts = be.xp, spec.opts
    c, poison_in = carry[j]
    B, m, batch = math.prod(spec.batch), spec.m, spec.batch
    lo = start - a
    s = X.shape[0] - lo
    with np.errstate(all="ignore"), kernel_slot():
        if opts.kind == "zero":
            dX = e.R
        else:
            method = choose("recurrence", "auto", be, B, s) if be.is_numba else opts.recurrence_method
            dX = linear_step(be, opts, e.A, e.R, s, batch, m, xp.asarray(c), method)
        Xa = X[lo:, ...]
        ndx = sqnorm(xp, dX)  # (s, *batch)
        inherited = xp.reshape(xp.asarray(poison_in), batch) if batch else xp.asarray(poison_in)[0]
        poisoned = (xp.cumulative_sum(xp.astype(~xp.isfinite(ndx), xp.int32), axis=0) > 0) | inherited
        Xnew = Xa + omega * dX if omega != 1.0 else Xa + dX
        f0_bad = None
        if first:
            f0_ok = xp.isfinite(sqnorm(xp, e.F[0, ...]))
            Xnew = xp.concat([xp.where(f0_ok[..., None], e.F[0:1, ...], Xa[0:1, ...]), Xnew[1:, ...]], axis=0)
            f0_bad = xp.reshape(~f0_ok, (-1,))
        nx = sqnorm(xp, Xnew)
        keep = poisoned | ~xp.isfinite(nx)
        if first:
            keep = xp.concat([~f0_ok[None, ...], keep[1:, ...]], axis=0)
        out = xp.asarray(X, copy=True)
        out[lo:, ...] = xp.where(keep[..., None], Xa, Xnew)
        err = xp.where(
            keep | poisoned, xp.asarray(math.inf, dtype=ndx.dtype), xp.sqrt(ndx) / (1 + xp.sqrt(nx))
        )
        err = xp.max(xp.reshape(err, (s, -1)), axis=1) if batch else err
    return out, (err, e.evals, f0_bad, out[-1, ...])


def decide(opts: Options, prev: float | None, *smalls):
    """The sweep's outcome: ``(n_ok, max_err, bad_element, (step evals, Jacobian evals, t_eval))``.

    ``smalls`` are the active chunks' small parts from :func:`complete`, in order. ``n_ok``
    counts the leading steps within the acceptance threshold (at least 1, the exact first step);
    ``bad_element`` is the first batch element whose first step is not finite, or -1.
    """
    counts = (sum(s[1][0] for s in smalls), sum(s[1][1] for s in smalls), max(s[1][2] for s in smalls))
    first_step_bad = smalls[0][2]
    err = np.concatenate([np.asarray(s[0], dtype=np.float64) for s in smalls])
    max_err = float(err.max()) if err.size else 0.0
    over = np.flatnonzero(err[1:] > threshold(np, opts, max_err, prev))
    n_ok = 1 + int(over[0]) if over.size else int(err.size)
    bad = -1
    if first_step_bad is not None and np.any(first_step_bad):
        bad = int(first_true(np, np.asarray(first_step_bad)))
    return n_ok, max_err, bad, counts
