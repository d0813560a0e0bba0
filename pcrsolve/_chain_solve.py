"""The chain solver's loop: parallel sweeps over a frozen prefix, and the sequential fallback.

One sweep over the active steps ``[p, e)`` evaluates every step at once on the current
iterate, ``F_k = f_k(X_{k-1})``, forms the linear step ``dX_k = A_k dX_{k-1} + (F_k - X_k)``
with ``dX_{p-1} = 0`` and solves it with a recurrence kernel (dense for Newton, diagonal for
the quasi-Newton and Picard methods, nothing for Jacobi). Because ``X_{p-1}`` is exact,
``X_p`` becomes exact (it is set to ``F_p``), so the frozen prefix ``p`` advances by at
least one step per sweep and the solve always terminates. The policy that decides when to
stop sweeping and finish with the plain loop lives in :func:`_should_stop`.

Everything here works on validated arrays of one namespace ``xp`` and calls kernels
directly; nothing is re-validated inside the loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._chain_eval import Evaluator
from ._chain_progress import Progress
from ._chain_sequential import first_true as _first_true
from ._chain_sequential import nonfinite_error as _nonfinite_error
from ._chain_sequential import raise_first_nonfinite as _raise_first_nonfinite
from ._chain_sequential import run_sequential
from ._linear import recurrence_kernel
from ._methods import choose

__all__ = ["Options", "Outcome", "block_steps", "solve", "to_kernel"]

# Steps run sequentially (and timed) to learn the cost of one step of the plain loop.
_PROBE_STEPS = 3
# Sweeps run before the cost rules are first consulted.
_FREE_SWEEPS = 1
# The sweeps may cost at most this many times the whole sequential loop (rule (a)).
_BUDGET = 2.0
# Rule (b) (give up on slow progress) waits for this many sweeps, or until the sweeps have
# cost this fraction of the sequential loop, whichever comes first: Newton from a poor
# guess often needs a few sweeps before it contracts, and until then its progress says
# nothing; the sweep count bounds the step evaluations an unpromising chain costs.
_EXPLORE_SWEEPS = 4
_EXPLORE = 0.5
# Consecutive sweeps that produced non-finite values without advancing the prefix past its
# exact first step before the solver gives up on the parallel solve (rule (c)).
_MAX_TROUBLE = 3
# Array-namespace path: first sweeps at least this long are preceded by a timed evaluation of
# an eighth of them (CPU sweeps time their first block instead).
_PRESWEEP_MIN = 512
_MIN_DAMPING = 1.0 / 16
# CPU sweeps (and chain_adjoint) run on blocks of steps whose dense Jacobians take about this
# many bytes (an L2 cache), and at least _MIN_BLOCK steps (the chain's per-call overhead).
_BLOCK_BYTES = 1 << 19
_MIN_BLOCK = 64


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


@dataclass
class Outcome:
    """What the loop hands back to the public shell."""

    states: Any
    converged: bool
    iterations: int
    residuals: list[float]
    status: str
    message: str
    sweeps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _sqnorm(xp, a) -> Any:
    """Squared 2-norms over the last axis (a real array); NaN/inf (or overflow) stay non-finite."""
    sq = xp.vecdot(a, a)
    return xp.real(sq) if xp.isdtype(sq.dtype, "complex floating") else sq


def to_kernel(xp, be, a, s: int, B: int, tail: tuple[int, ...]) -> Any:
    """Step-major ``(s, *batch, *tail)`` -> the kernels' batch-major ``(B, s, *tail)``."""
    a = xp.reshape(a, (s, B, *tail))
    return be.contiguous(xp.permute_dims(a, (1, 0, *range(2, 2 + len(tail)))))


def _linear_step(be, opts: Options, A, R, s: int, batch: tuple[int, ...], m: int, z=None, method=None) -> Any:
    """Solve ``dX_k = A_k dX_{k-1} + R_k`` over ``s`` active steps from ``dX_{-1} = z``.

    ``z``: ``(B, m)`` with ``B = prod(batch)``, zeros when omitted (the state before the
    sweep is exact); a carry when a sweep is solved block by block. ``method``: the
    recurrence kernel, ``opts.recurrence_method`` when omitted.
    """
    xp = be.xp
    if opts.kind == "zero":
        return R
    B = math.prod(batch)
    if opts.kind == "identity":
        dX = xp.cumulative_sum(R, axis=0)
        return dX if z is None else dX + xp.reshape(z, (*batch, m))
    dense = opts.kind == "dense"
    Ak = to_kernel(xp, be, A, s, B, (m, m) if dense else (m,))
    Rk = to_kernel(xp, be, R, s, B, (m,))
    z = xp.zeros((B, m), dtype=R.dtype) if z is None else z
    dX = recurrence_kernel(be, Ak, Rk, z, dense=dense, method=method or opts.recurrence_method)
    dX = xp.permute_dims(dX, (1, 0, 2))
    return xp.reshape(dX, (s, *batch, m))


# --------------------------------------------------------------------------- the loop


@dataclass
class _State:
    """Bookkeeping of the adaptive loop (host-side numbers only)."""

    p: int = 0
    sweeps: int = 0
    iterations: int = 0
    filled: int = 0  # states [0, filled) hold an iterate; later ones are not initialised yet
    damping: float = 1.0
    trouble: int = 0
    sweep_times: list[float] = field(default_factory=list)  # of sweeps 2, 3, ...
    first_eval: float = 0.0  # time of the chain's evaluations in sweep 1
    prefixes: list[int] = field(default_factory=list)
    t_step: float | None = None


def _sweep(
    ev: Evaluator, be, opts: Options, X, x0, ks, p: int, e: int, omega: float, prev: float | None, budget=None
):
    """One parallel sweep over ``[p, e)``: updates ``X[p:e]`` and returns device statistics.

    Returns ``(n_ok, max_err, f0_bad)`` as device arrays: the number of leading steps that
    converged (at least 1: step ``p`` is exact), the largest scaled update (``inf`` when
    non-finite values were held back), and per batch element whether ``f_p`` itself (the
    sequential chain) is not finite. ``prev`` is the previous sweep's largest update, from
    which the acceptance threshold is predicted (see :func:`_threshold`). ``budget``
    (seconds; the CPU path only, see :func:`_eval_budget`) abandons the sweep, returning an
    :class:`_OverBudget` with ``X`` untouched, when its first block shows that the chain's
    evaluations would cost more.
    """
    if be.is_numba:
        return _sweep_blocked(ev, be, opts, X, x0, ks, p, e, omega, prev, budget)
    xp, m, batch = be.xp, ev.m, ev.batch
    s = e - p
    first = x0[None, ...] if p == 0 else X[p - 1 : p, ...]
    Xprev = xp.concat([first, X[p : e - 1, ...]], axis=0) if s > 1 else first
    Xa = X[p:e, ...]
    F, A = ev.linearize(Xprev, ks[p:e], opts.kind)
    dX = _linear_step(be, opts, A, F - Xa, s, batch, m)
    # Non-finite values (from f or J at a bad iterate, or an overflowing linear solve) poison
    # everything after them along the chain (NaN propagates through A); hold those positions
    # back, per batch element, so that no non-finite value ever enters the iterate. The
    # squared norms double as the finiteness test (NaN and inf propagate through them),
    # which saves a reduction over the short state axis.
    ndx = _sqnorm(xp, dX)  # (s, *batch)
    poisoned = xp.cumulative_sum(xp.astype(~xp.isfinite(ndx), xp.int32), axis=0) > 0
    Xnew = Xa + omega * dX if omega != 1.0 else Xa + dX
    f0_ok = xp.isfinite(_sqnorm(xp, F[0, ...]))
    # Step p follows an exact state: its value is f_p itself, undamped and bit-exact.
    Xnew = xp.concat([xp.where(f0_ok[..., None], F[0:1, ...], Xa[0:1, ...]), Xnew[1:, ...]], axis=0)
    nx = _sqnorm(xp, Xnew)
    keep = poisoned | ~xp.isfinite(nx)
    keep = xp.concat([~f0_ok[None, ...], keep[1:, ...]], axis=0)
    X[p:e, ...] = xp.where(keep[..., None], Xa, Xnew)
    # The scaled Newton update ||dx|| / (1 + ||x||): an estimate of the forward error of the
    # old iterate, relative to the state's size.
    err = xp.where(keep | poisoned, xp.asarray(math.inf, dtype=ndx.dtype), xp.sqrt(ndx) / (1 + xp.sqrt(nx)))
    err = xp.max(xp.reshape(err, (s, -1)), axis=1) if batch else err  # worst batch element
    max_err = xp.max(err)
    over = err > _threshold(xp, opts, max_err, prev)
    # Step p is exact whatever its update: never count it as unconverged.
    over = xp.concat([xp.zeros((1,), dtype=xp.bool), over[1:]], axis=0)
    return _first_true(xp, over), max_err, xp.reshape(~f0_ok, (-1,))


def block_steps(batch: tuple[int, ...], m: int, itemsize: int) -> int:
    """Steps per block of a CPU pass over a chain: about ``_BLOCK_BYTES`` of dense Jacobians."""
    return max(_MIN_BLOCK, _BLOCK_BYTES // (math.prod(batch) * m * m * itemsize))


def _sweep_blocked(ev: Evaluator, be, opts: Options, X, x0, ks, p: int, e: int, omega: float, prev, budget):
    """:func:`_sweep` on NumPy states (Numba backend), block by block; host numbers out.

    The chain is evaluated and the linear step solved on blocks of consecutive steps, the
    linear step's last value carried from block to block (the same arithmetic as one
    sequential solve), so a block's Jacobians, and the chain's own temporaries, are
    consumed while they are in cache and the sweep never holds more than one block of
    them: memory O(block m^2) instead of O(s m^2), and on this class of CPU about half the
    time of one call over the whole sweep. The states are updated only after every block
    has been evaluated at the old iterate; the bookkeeping is fused into one Numba pass.
    """
    from ._chain_numba import update

    m, batch = ev.m, ev.batch
    B, s = math.prod(batch), e - p
    c = block_steps(batch, m, X.dtype.itemsize)
    F = np.empty((s, *batch, m), dtype=X.dtype)
    dX = np.empty((s, *batch, m), dtype=X.dtype)
    carry = None
    for a in range(p, e, c):
        b = min(e, a + c)
        # A copy (s m numbers, small against the Jacobians): defensive, a chain that writes
        # into x_prev cannot corrupt the iterate.
        Xprev = np.concatenate([x0[None, ...], X[: b - 1, ...]]) if a == 0 else X[a - 1 : b - 1, ...].copy()
        t_eval = ev.eval_time
        Fb, A = ev.linearize(Xprev, ks[a:b], opts.kind)
        if budget is not None and a == p and b < e:  # (a sweep of one block is paid for already)
            estimate = (ev.eval_time - t_eval) * s / (b - a)
            if estimate > budget:
                return _OverBudget(estimate, b - a)
        F[a - p : b - p] = Fb
        method = choose("recurrence", "auto", be, B, b - a)
        dX[a - p : b - p] = _linear_step(be, opts, A, Fb - X[a:b, ...], b - a, batch, m, carry, method)
        carry = np.reshape(dX[b - p - 1], (B, m))
    err, f0_ok = update(
        np.reshape(X, (X.shape[0], B, m)), p, np.reshape(F, (s, B, m)), np.reshape(dX, (s, B, m)), omega
    )
    max_err = float(err.max())
    over = np.flatnonzero(err[1:] > _threshold(np, opts, max_err, prev))
    return (1 + int(over[0]) if over.size else s), max_err, ~f0_ok


def _threshold(xp, opts: Options, cur: Any, prev: float | None) -> Any:
    """The largest update with which a step counts as converged after this sweep.

    ``tol``, or more when the last two sweeps show the iteration contracting: the error
    left after an update of size ``d`` is predicted as ``C d^2`` for Newton (quadratic
    convergence, ``C = cur / prev^2``) and ``theta / (1 - theta) d`` for the linear
    methods (``theta = cur / prev``, the estimate of Hairer & Wanner's simplified Newton).
    The step is accepted when the prediction is within ``tol``. This spares the sweep that
    would only confirm convergence. Never above ``sqrt(tol)``; device arithmetic, no sync.
    """
    tol = opts.tol
    if prev is None or not math.isfinite(prev) or prev <= 0 or tol <= 0:
        return tol
    if isinstance(cur, float):  # host numbers (the Numba path)
        if not cur < prev:
            return tol
        if opts.kind == "dense":
            thr = math.sqrt(tol * prev * prev / cur) if cur > 0 else math.inf
        else:
            thr = tol * (1 - cur / prev) / (cur / prev) if cur > 0 else math.inf
        return min(max(thr, tol), math.sqrt(tol))
    if opts.kind == "dense":
        thr = xp.sqrt(tol * prev * prev / cur)
    else:
        theta = cur / prev
        thr = tol * (1 - theta) / theta
    thr = xp.minimum(
        xp.maximum(thr, xp.asarray(tol, dtype=cur.dtype)), xp.asarray(math.sqrt(tol), dtype=cur.dtype)
    )
    return xp.where(cur < prev, thr, xp.asarray(tol, dtype=cur.dtype))


def _sweeps_needed(opts: Options, errs: list[float]) -> float:
    """Sweeps still needed, forecast from the last two largest updates (inf: no contraction)."""
    if len(errs) < 2:
        return math.inf
    e0, e1 = errs[-2], errs[-1]
    if not (math.isfinite(e0) and 0 < e1 < e0):
        return math.inf
    if e1 <= opts.tol:
        return 1.0
    if opts.kind == "dense":  # e <- C e^2, C e1 = (e1/e0)^2 < 1
        c, e, count = e1 / (e0 * e0), e1, 0
        while e > opts.tol and count < 64:
            e, count = c * e * e, count + 1
        return float(max(count, 1))
    return max(1.0, math.log(opts.tol / e1) / math.log(e1 / e0))


def _should_stop(st: _State, opts: Options, n: int, errs: list[float]) -> str | None:
    """The cost rules: why to finish sequentially now, or None to keep sweeping.

    (a) budget: the sweeps, at the fastest sweep time seen, would exceed ``_BUDGET`` times
    the whole sequential loop; (b) stall (from the ``_EXPLORE_SWEEPS``-th sweep, or once
    the sweeps have cost ``_EXPLORE`` times the loop): the sweeps still needed, forecast
    from the rate at which the largest update shrinks or the prefix advances, would take
    longer than the sequential loop over the remaining steps; (c) ``_MAX_TROUBLE`` sweeps
    in a row met non-finite values without advancing the prefix past its exact first step.
    """
    if st.trouble >= _MAX_TROUBLE:
        return (
            f"{st.trouble} sweeps in a row produced non-finite values without progress, even with "
            f"damping {st.damping:g}"
        )
    # The first sweep's total time includes one-off costs (loading or compiling the
    # kernels); until a second sweep has been timed, its chain evaluations stand for it.
    t_sweep = min(st.sweep_times) if st.sweep_times else st.first_eval
    t_step = st.t_step
    assert t_step is not None
    loop = n * t_step
    if (st.sweeps + 1) * t_sweep > _BUDGET * loop:
        return (
            f"the parallel sweeps would cost more than {_BUDGET:g}x the sequential loop "
            f"({st.sweeps} sweeps of {t_sweep * 1e3:.3g} ms against {loop * 1e3:.3g} ms)"
        )
    if st.sweeps < 2 or (st.sweeps < _EXPLORE_SWEEPS and st.sweeps * t_sweep < _EXPLORE * loop):
        return None  # a forecast needs two sweeps (and the first one's time includes warm-up)
    remaining = n - st.p
    back = min(2, len(st.prefixes) - 1)
    advance = (st.prefixes[-1] - st.prefixes[-1 - back]) / back if back > 0 else 1.0
    needed = min(_sweeps_needed(opts, errs), remaining / max(advance, 1.0))
    if needed * t_sweep > remaining * t_step:
        return (
            f"the prefix advances too slowly for the parallel solve to pay (about {needed:.3g} more "
            f"sweeps of {t_sweep * 1e3:.3g} ms against {remaining * t_step * 1e3:.3g} ms sequentially)"
        )
    return None


def _probe_step_time(ev: Evaluator, X, x0, ks, st: _State, n: int) -> None:
    """Run (and time) a few exact steps sequentially from the prefix: the loop's cost per step."""
    xp = ev.xp
    stop = min(n, st.p + _PROBE_STEPS)
    times = []
    x = x0[None, ...] if st.p == 0 else X[st.p - 1 : st.p, ...]
    for k in range(st.p, stop):
        t0 = time.perf_counter()
        x = ev.step(x, ks[k : k + 1])
        times.append(time.perf_counter() - t0)
        if not bool(xp.all(xp.isfinite(x))):
            _raise_first_nonfinite(xp, x, k, ev.batch)
        X[k : k + 1, ...] = x
    st.p = stop
    st.filled = max(st.filled, stop)
    st.t_step = max(min(times), 1e-9)


@dataclass
class _OverBudget:
    """A sweep abandoned after its first block: its evaluations would exceed the budget."""

    estimate: float  # seconds, for the whole sweep
    steps: int  # the steps timed


def _eval_budget(st: _State, n: int) -> float:
    """The most one sweep's chain evaluations may cost: half the sequential loop.

    Half: every nonlinear chain needs at least two sweeps, and an estimate scaled from part
    of a sweep runs low for large arrays (their allocation and cache misses grow faster
    than linearly). This spares chains whose Jacobians are expensive (large ``m``) a whole
    sweep that cannot pay.
    """
    assert st.t_step is not None
    return 0.5 * n * st.t_step


def _over_budget_reason(over: _OverBudget, st: _State, n: int) -> str:
    assert st.t_step is not None
    return (
        f"one sweep's chain evaluations alone would cost about {over.estimate * 1e3:.3g} ms (timed on "
        f"{over.steps} steps), more than half the sequential loop ({n * st.t_step * 1e3:.3g} ms)"
    )


def _presweep_check(ev: Evaluator, opts: Options, x0, X, ks, st: _State, n: int, W: int) -> str | None:
    """Before the first sweep of a long chain (array-namespace path): is a sweep over budget?

    The chain is evaluated (and timed) on an eighth of the first sweep's steps, at the latest
    state; the time scales linearly to the whole sweep. Short sweeps are not checked: the
    first sweep itself is then cheap. (The CPU path needs no extra evaluation: it times the
    first block of its first sweep, see :func:`_sweep_blocked`.)
    """
    xp = ev.xp
    s = min(W, n - st.p)
    if s < _PRESWEEP_MIN or st.t_step is None:
        return None
    blk = s // 8
    latest = x0 if st.p == 0 else X[st.p - 1, ...]
    Xp = xp.zeros((blk, *ev.batch, ev.m), dtype=X.dtype) + latest
    with np.errstate(all="ignore"):
        t0 = time.perf_counter()
        ev.linearize(Xp, ks[st.p : st.p + blk], opts.kind)
        estimate = (time.perf_counter() - t0) * s / blk
    if estimate > _eval_budget(st, n):
        return _over_budget_reason(_OverBudget(estimate, blk), st, n)
    return None


def _initial_fill(xp, X, x0, st: _State, e: int) -> None:
    """Give states ``[filled, e)`` their first iterate: the latest state repeated."""
    if e <= st.filled:
        return
    src = x0 if st.filled == 0 else X[st.filled - 1, ...]
    X[st.filled : e, ...] = src
    st.filled = e


def solve(ev: Evaluator, be, opts: Options, x0, X, n: int, have_init: bool) -> Outcome:
    """Run the sweeps (and, when they do not pay, the sequential loop) on states ``X``."""
    xp = be.xp
    ks = xp.arange(n)
    W = n if opts.window is None else min(opts.window, n)
    st = _State(filled=n if have_init else 0, damping=opts.damping)
    residuals: list[Any] = []
    progress = Progress(opts.progress, opts.max_iter if opts.fixed else n, "solve_chain")
    try:
        if opts.fixed:
            out = _solve_fixed(ev, be, opts, x0, X, ks, n, W, st, residuals, progress)
        else:
            out = _solve_adaptive(ev, be, opts, x0, X, ks, n, W, st, residuals, progress)
    finally:
        progress.close()
    # A last line of defence (one check of the whole result): the sweeps hold non-finite
    # values back, relying on NaN/inf propagating through norms; should an array library
    # not propagate them, redo the tail from the first bad step sequentially.
    bad = ~xp.all(xp.reshape(xp.isfinite(X), (n, -1)), axis=1)
    if bool(xp.any(bad)):
        q = int(_first_true(xp, bad))
        run_sequential(ev, X, x0[None, ...] if q == 0 else X[q - 1 : q, ...], ks, q, n)
        out.status, out.converged = "sequential", True
        out.message += f" Non-finite states from step {q} on were redone sequentially."
    return out


def _info(st: _State, ev: Evaluator, residual: Any, window: tuple[int, int]) -> dict[str, Any]:
    return {
        "iteration": st.sweeps,
        "residual": residual,
        "prefix": st.p,
        "window": window,
        "damping": st.damping,
        "n_step_evals": ev.n_step_evals,
        "n_jac_evals": ev.n_jac_evals,
    }


def _solve_adaptive(ev, be, opts, x0, X, ks, n, W, st: _State, residuals, progress) -> Outcome:
    xp = be.xp
    # The cost of one step of the loop, measured on the first steps (which are then exact).
    _probe_step_time(ev, X, x0, ks, st, n)
    reason = None if be.is_numba else _presweep_check(ev, opts, x0, X, ks, st, n, W)
    with np.errstate(all="ignore"):  # non-finite iterates are handled, not reported
        while st.p < n and reason is None:
            if opts.max_iter is not None and st.sweeps >= opts.max_iter:
                reason = f"max_iter = {opts.max_iter} sweeps did not converge"
                break
            if st.sweeps >= _FREE_SWEEPS:
                reason = _should_stop(st, opts, n, residuals)
                if reason is not None:
                    break
            p, e = st.p, min(n, st.p + W)
            _initial_fill(xp, X, x0, st, e)
            t0, t_eval = time.perf_counter(), ev.eval_time
            prev = residuals[-1] if residuals else None
            budget = _eval_budget(st, n) if st.sweeps == 0 else None
            out = _sweep(ev, be, opts, X, x0, ks, p, e, st.damping, prev, budget)
            if isinstance(out, _OverBudget):
                reason = _over_budget_reason(out, st, n)
                break
            n_ok, max_err, f0_bad = out
            n_ok, err = int(n_ok), float(max_err)
            troubled = err == math.inf
            if bool(xp.any(f0_bad)):
                raise _nonfinite_error(p, ev.batch, int(_first_true(xp, f0_bad)))
            if st.sweeps:
                st.sweep_times.append(time.perf_counter() - t0)
            else:
                st.first_eval = ev.eval_time - t_eval
            st.sweeps += 1
            st.iterations += err > opts.tol
            st.p = p + n_ok
            st.prefixes.append(st.p)
            residuals.append(err)
            # Damping on trouble: a sweep that met non-finite values and only advanced by its
            # exact first step is retried damped; a clean sweep restores the user's damping.
            if troubled and n_ok <= 1:
                st.trouble += 1
                st.damping = max(st.damping / 2, _MIN_DAMPING)
            else:
                st.trouble = 0
                st.damping = min(st.damping * 2, opts.damping)
            progress.update(st.sweeps, st.p, n, err)
            if opts.callback is not None:
                opts.callback(_info(st, ev, err, (p, e)))
    if st.p >= n:
        return Outcome(
            X,
            True,
            st.iterations,
            residuals,
            "converged",
            f"converged in {st.iterations} iterations ({st.sweeps} sweeps).",
            st.sweeps,
        )
    start = st.p
    prev = x0[None, ...] if start == 0 else X[start - 1 : start, ...]
    run_sequential(ev, X, prev, ks, start, n)
    return Outcome(
        X,
        True,
        st.iterations,
        residuals,
        "sequential",
        f"finished steps {start}..{n - 1} with the sequential loop after {st.sweeps} sweeps: {reason}.",
        st.sweeps,
    )


def _solve_fixed(ev, be, opts, x0, X, ks, n, W, st: _State, residuals, progress) -> Outcome:
    """Exactly ``max_iter`` sweeps (fewer only when every step is exact), no host sync inside.

    The prefix advances by exactly one step per sweep (the step that is exact), so the
    active range is known without looking at the data.
    """
    xp = be.xp
    bad_step = xp.asarray(-1)  # first step where f_p itself is not finite, on the device
    bad_elem = xp.asarray(-1)
    sweeps = min(opts.max_iter, n)
    with np.errstate(all="ignore"):
        for _ in range(sweeps):
            p, e = st.p, min(n, st.p + W)
            _initial_fill(xp, X, x0, st, e)
            _, max_err, f0_bad = _sweep(ev, be, opts, X, x0, ks, p, e, opts.damping, None)
            hit = xp.any(f0_bad) & (bad_step < 0)
            bad_elem = xp.where(hit, _first_true(xp, f0_bad), bad_elem)
            bad_step = xp.where(hit, xp.asarray(p), bad_step)
            st.sweeps += 1
            st.p = p + 1
            residuals.append(max_err)
            progress.update(st.sweeps, st.sweeps, opts.max_iter, max_err)
            if opts.callback is not None:
                opts.callback(_info(st, ev, max_err, (p, e)))
    # One synchronisation after the loop.
    if int(bad_step) >= 0:
        raise _nonfinite_error(int(bad_step), ev.batch, int(bad_elem))
    host = [float(r) for r in residuals]
    last = host[-1] if host else math.inf
    if st.p < n and st.filled < n:  # a window that never reached the end: run the rest
        run_sequential(ev, X, X[st.p - 1 : st.p, ...] if st.p else x0[None, ...], ks, st.p, n)
        return Outcome(
            X,
            True,
            st.sweeps,
            host,
            "sequential",
            f"{st.sweeps} fixed sweeps; steps {st.p}..{n - 1}, which the window never reached, "
            "were run sequentially.",
            st.sweeps,
        )
    converged = st.p >= n or last <= opts.default_tol
    status = "converged" if converged else "max_iter"
    message = f"{st.sweeps} fixed sweeps (tol=0); the last update was {last:.3g}" + (
        "."
        if converged
        else f", above the default tolerance {opts.default_tol:.3g}: the states "
        "after the exact prefix are the last iterate, not verified. Raise max_iter or use tol=None."
    )
    return Outcome(X, converged, st.sweeps, host, status, message, st.sweeps)
