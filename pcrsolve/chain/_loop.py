"""The chain solver's loop: parallel sweeps over a frozen prefix, and the sequential fallback.

One sweep over the active steps ``[p, e)`` evaluates every step at once on the current
iterate, ``F_k = f_k(X_{k-1})``, forms the linear step ``dX_k = A_k dX_{k-1} + (F_k - X_k)``
with ``dX_{p-1} = 0`` and solves it with a recurrence kernel (dense for Newton, diagonal for
the quasi-Newton and Picard methods, nothing for Jacobi). Because ``X_{p-1}`` is exact,
``X_p`` becomes exact (it is set to ``F_p``), so the frozen prefix ``p`` advances by at
least one step per sweep and the solve always terminates. The policy that decides when to
stop sweeping and finish with the plain loop lives in :mod:`._policy`; before the first
sweep, :mod:`._probe` measures the chain on its first steps and :mod:`._cost` chooses the
route (the loop, or the sweeps).

Everything here works on validated arrays of one namespace ``xp`` and calls kernels
directly; nothing is re-validated inside the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _policy
from ._cost import Costs, choose_route
from ._eval import Evaluator
from ._policy import MIN_DAMPING, Options, State
from ._probe import probe
from ._progress import Progress
from ._sequential import first_true, nonfinite_error, run_sequential
from ._sweep import sweep

__all__ = ["Outcome", "solve"]

# Sweeps run before the cost rules are first consulted.
_FREE_SWEEPS = 1


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
    route: str = ""
    route_reason: str = ""


# --------------------------------------------------------------------------- helpers


def _initial_fill(ev: Evaluator, xp, X, x0, st: State, e: int) -> None:
    """Give states ``[filled, e)`` their first iterate: the latest state repeated, or what the
    chain's ``_initial_guess`` makes of it (see :meth:`Evaluator.guess`)."""
    if e <= st.filled:
        return
    src = x0 if st.filled == 0 else X[st.filled - 1, ...]
    guess = ev.guess(src, st.filled, e)
    X[st.filled : e, ...] = src if guess is None else guess
    st.filled = e


def solve(ev: Evaluator, be, opts: Options, x0, X, n: int, have_init: bool) -> Outcome:
    """Run the sweeps (and, when they do not pay, the sequential loop) on states ``X``."""
    xp = be.xp
    ks = xp.arange(n)
    W = n if opts.window is None else min(opts.window, n)
    st = State(filled=n if have_init else 0, damping=opts.damping)
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
        q = int(first_true(xp, bad))
        run_sequential(ev, X, x0[None, ...] if q == 0 else X[q - 1 : q, ...], ks, q, n)
        out.status, out.converged = "sequential", True
        out.message += f" Non-finite states from step {q} on were redone sequentially."
    return out


def _info(st: State, ev: Evaluator, residual: Any, window: tuple[int, int]) -> dict[str, Any]:
    return {
        "iteration": st.sweeps,
        "residual": residual,
        "prefix": st.p,
        "window": window,
        "damping": st.damping,
        "n_step_evals": ev.n_step_evals,
        "n_jac_evals": ev.n_jac_evals,
    }


def _solve_adaptive(ev, be, opts, x0, X, ks, n, W, st: State, residuals, progress) -> Outcome:
    xp = be.xp
    # The first steps run sequentially (they are exact); they and one evaluation of a sweep on
    # them give the costs from which the route is chosen.
    pr = probe(ev, be, opts, x0, X, ks, n, st)
    st.t_step = pr.t_seq
    # The caller's x_init is a warm start (forecast: a couple of sweeps) when it is within
    # sqrt(tol) of the exact first steps, so that one Newton sweep brings it within tol; a
    # rough first guess (an RNN's f_t(h0)) is forecast like a cold start.
    warm = pr.guess_error is not None and pr.guess_error <= math.sqrt(opts.tol)
    costs = Costs(
        n - st.p,
        pr.t_seq,
        pr.t_sweep,
        pr.growth,
        pr.drift,
        opts.kind,
        opts.tol,
        warm,
        pr.sweep_steps,
        opts.exact,
        pr.seq_bound,
    )
    route, why = choose_route(costs, opts.auto, opts.method)
    reason = None if route == "parallel" else "chosen by the cost model"
    with np.errstate(all="ignore"):  # non-finite iterates are handled, not reported
        while st.p < n and reason is None:
            if opts.max_iter is not None and st.sweeps >= opts.max_iter:
                reason = f"max_iter = {opts.max_iter} sweeps did not converge"
                break
            if st.sweeps >= _FREE_SWEEPS:
                reason = _policy.should_stop(st, opts, n, residuals)
                if reason is not None:
                    break
            p, e = st.p, min(n, st.p + W)
            _initial_fill(ev, xp, X, x0, st, e)
            t0 = _policy.TIMER()
            prev = residuals[-1] if residuals else None
            n_ok, max_err, f0_bad = sweep(ev, be, opts, X, x0, ks, p, e, st.damping, prev)
            n_ok, err = int(n_ok), float(max_err)
            troubled = err == math.inf
            if bool(xp.any(f0_bad)):
                raise nonfinite_error(p, ev.batch, int(first_true(xp, f0_bad)))
            elapsed = _policy.TIMER() - t0  # the probe loaded the kernels: every sweep is typical
            st.record(p + n_ok, err, opts.tol, elapsed, elapsed)
            residuals.append(err)
            # Damping on trouble: a sweep that met non-finite values and only advanced by its
            # exact first step is retried damped; a clean sweep restores the user's damping.
            if troubled and n_ok <= 1:
                st.trouble += 1
                st.damping = max(st.damping / 2, MIN_DAMPING)
            else:
                st.trouble = 0
                st.damping = min(st.damping * 2, opts.damping)
            progress.update(st.sweeps, st.p, n, err)
            if opts.callback is not None:
                opts.callback(_info(st, ev, err, (p, e)))
    name = "sequential" if route == "sequential" else opts.method
    if st.p >= n:
        return Outcome(
            X,
            True,
            st.iterations,
            residuals,
            "converged",
            f"converged in {st.iterations} iterations ({st.sweeps} sweeps).",
            st.sweeps,
            route=name,
            route_reason=why,
        )
    start = st.p
    prev = x0[None, ...] if start == 0 else X[start - 1 : start, ...]
    run_sequential(ev, X, prev, ks, start, n)
    if route == "sequential":
        message = f"ran steps {start}..{n - 1} with the loop (steps 0..{start - 1}: the cost probe)."
    else:
        message = (
            f"finished steps {start}..{n - 1} with the sequential loop after {st.sweeps} sweeps: {reason}."
        )
    return Outcome(
        X, True, st.iterations, residuals, "sequential", message, st.sweeps, route=name, route_reason=why
    )


def _solve_fixed(ev, be, opts, x0, X, ks, n, W, st: State, residuals, progress) -> Outcome:
    """Exactly ``max_iter`` sweeps (fewer only when every step is exact), no host sync inside.

    The prefix advances by exactly one step per sweep (the step that is exact), so the
    active range is known without looking at the data.
    """
    xp = be.xp
    who = "auto" if opts.auto else f"method={opts.method!r}"
    why = f"{who}: the fixed-iteration mode (tol=0, max_iter={opts.max_iter}) runs sweeps"
    bad_step = xp.asarray(-1)  # first step where f_p itself is not finite, on the device
    bad_elem = xp.asarray(-1)
    sweeps = min(opts.max_iter, n)
    with np.errstate(all="ignore"):
        for _ in range(sweeps):
            p, e = st.p, min(n, st.p + W)
            _initial_fill(ev, xp, X, x0, st, e)
            _, max_err, f0_bad = sweep(ev, be, opts, X, x0, ks, p, e, opts.damping, None)
            hit = xp.any(f0_bad) & (bad_step < 0)
            bad_elem = xp.where(hit, first_true(xp, f0_bad), bad_elem)
            bad_step = xp.where(hit, xp.asarray(p), bad_step)
            st.sweeps += 1
            st.p = p + 1
            residuals.append(max_err)
            progress.update(st.sweeps, st.sweeps, opts.max_iter, max_err)
            if opts.callback is not None:
                opts.callback(_info(st, ev, max_err, (p, e)))
    # One synchronisation after the loop.
    if int(bad_step) >= 0:
        raise nonfinite_error(int(bad_step), ev.batch, int(bad_elem))
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
            route=opts.method,
            route_reason=why,
        )
    converged = st.p >= n or last <= opts.default_tol
    status = "converged" if converged else "max_iter"
    message = f"{st.sweeps} fixed sweeps (tol=0); the last update was {last:.3g}" + (
        "."
        if converged
        else f", above the default tolerance {opts.default_tol:.3g}: the states "
        "after the exact prefix are the last iterate, not verified. Raise max_iter or use tol=None."
    )
    return Outcome(
        X, converged, st.sweeps, host, status, message, st.sweeps, route=opts.method, route_reason=why
    )
