"""The sweeps of :func:`pcrsolve.solve_autoregressive` over a frozen prefix, and the fallback.

The same scheme as the chain solver's loop (:mod:`._loop`), with its policy reused as is: the
frozen prefix advances by at least one position per sweep, the acceptance threshold and the
cost rules come from :mod:`._policy`, and when more sweeps cannot pay the remaining positions
are sampled one by one (Gauss-Seidel). "One step of the sequential loop" is one call of
``func``: its fastest call is ``t_step``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _ar_sweep as sweeps
from . import _policy
from ._ar_eval import Problem
from ._policy import Options, State
from ._progress import Progress
from ._sequential import first_true

__all__ = ["Method", "Outcome", "run"]


@dataclass(frozen=True)
class Method:
    """A validated method with its options."""

    name: str  # "jacobi", "jacobi_gs", "newton" ("gs_jacobi" is "jacobi" with a window)
    window: int | None = None
    block_size: int | None = None
    bandwidth: int | None = None


@dataclass
class Outcome:
    converged: bool
    iterations: int
    residuals: list[float]
    status: str
    message: str


def _sweep(be, pb: Problem, meth: Method, X, p: int) -> tuple[sweeps.Swept, int]:
    n = pb.n
    e = n if meth.window is None else min(n, p + meth.window)
    if meth.name == "jacobi_gs":
        return sweeps.jacobi_gs(pb, X, p, e, meth.block_size), e
    if meth.name == "newton":
        return sweeps.newton(be, pb, X, p, e, meth.bandwidth), e
    return sweeps.jacobi(pb, X, p, e), e


def _raise_bad(pb: Problem, bad: Any, p: int) -> None:
    """Raise for the first non-finite exact position in ``bad (*batch, exact)`` (host sync)."""
    xp, nb = pb.xp, len(pb.batch)
    per = xp.any(bad, axis=tuple(range(nb))) if nb else bad
    i = int(first_true(xp, per))
    raise sweeps.nonfinite(pb, p + i, int(first_true(xp, xp.reshape(bad[..., i], (-1,)))))


def _info(st: State, pb: Problem, residual: Any, window: tuple[int, int]) -> dict[str, Any]:
    return {
        "iteration": st.sweeps,
        "residual": residual,
        "prefix": st.p,
        "window": window,
        "n_evals": pb.n_evals,
        "n_jac_evals": pb.n_jac_evals,
    }


def run(be, pb: Problem, opts: Options, meth: Method, X: Any) -> Outcome:
    """Solve in place on the canonical iterate ``X (*batch, n)``."""
    total = opts.max_iter if opts.fixed else pb.n
    progress = Progress(opts.progress, total, "solve_autoregressive", "position")
    try:
        with np.errstate(all="ignore"):  # non-finite iterates are handled, not reported
            if opts.fixed:
                return _fixed(be, pb, opts, meth, X, progress)
            return _adaptive(be, pb, opts, meth, X, progress)
    finally:
        progress.close()


def _adaptive(be, pb: Problem, opts: Options, meth: Method, X: Any, progress: Progress) -> Outcome:
    xp, n = pb.xp, pb.n
    st = State()
    residuals: list[float] = []
    reason = None
    while st.p < n:
        if opts.max_iter is not None and st.sweeps >= opts.max_iter:
            reason = f"max_iter = {opts.max_iter} sweeps did not converge"
            break
        if st.sweeps:  # the cost rules of solve_chain, one call of func as the loop's step
            st.t_step = pb.t_call
            # A Jacobi-family sweep costs about as many calls as the positions it surely fixes,
            # so only Newton's (Jacobian and solve on top) are weighed against a forecast.
            reason = _policy.should_stop(st, opts, n, residuals, forecast=meth.name == "newton")
            if reason is not None:
                break
        p = st.p
        t0, t_eval = time.perf_counter(), pb.eval_time
        out, e = _sweep(be, pb, meth, X, p)
        if bool(xp.any(out.bad)):
            _raise_bad(pb, out.bad, p)
        err = float(out.max_err)
        n_ok = out.converged(be, opts, residuals[-1] if residuals else None)
        st.record(p + n_ok, err, opts.tol, time.perf_counter() - t0, pb.eval_time - t_eval)
        residuals.append(err)
        # Sweeps that meet non-finite values and advance only by their exact positions count
        # towards rule (c) of the cost rules (there is no damping to retry with here).
        st.trouble = st.trouble + 1 if err == math.inf and n_ok <= out.exact else 0
        progress.update(st.sweeps, st.p, n, err)
        if opts.callback is not None:
            opts.callback(_info(st, pb, err, (p, e)))
    if st.p >= n:
        return Outcome(
            True,
            st.iterations,
            residuals,
            "converged",
            f"converged in {st.iterations} iterations ({st.sweeps} sweeps, {pb.n_evals} calls of func).",
        )
    start = st.p
    sweeps.gauss_seidel(pb, X, start, n)
    return Outcome(
        True,
        st.iterations,
        residuals,
        "sequential",
        f"sampled positions {start}..{n - 1} one by one after {st.sweeps} sweeps: {reason}.",
    )


def _fixed(be, pb: Problem, opts: Options, meth: Method, X: Any, progress: Progress) -> Outcome:
    """Exactly ``max_iter`` sweeps (fewer once every position is exact), no host sync inside."""
    xp, n = pb.xp, pb.n
    assert opts.max_iter is not None
    p, reached, count = 0, 0, 0
    residuals: list[Any] = []
    bad: list[tuple[int, Any]] = []  # (p, non-finite flags of the exact positions) per sweep
    while count < opts.max_iter and p < n:
        out, e = _sweep(be, pb, meth, X, p)
        bad.append((p, out.bad))
        count += 1
        reached = max(reached, e)
        p += out.exact
        residuals.append(out.max_err)
        progress.update(count, count, opts.max_iter, out.max_err)
        if opts.callback is not None:
            st = State(p=p, sweeps=count)
            opts.callback(_info(st, pb, out.max_err, (p - out.exact, e)))
    # One synchronisation after the loop (and a few more only to name a non-finite position).
    if bad and bool(xp.any(xp.stack([xp.any(b) for _, b in bad]))):
        for start, b in bad:
            if bool(xp.any(b)):
                _raise_bad(pb, b, start)
    host = [float(r) for r in residuals]
    last = host[-1] if host else math.inf
    if p < n and reached < n:  # a window that never reached the end: sample the rest
        sweeps.gauss_seidel(pb, X, p, n)
        return Outcome(
            True,
            count,
            host,
            "sequential",
            f"{count} fixed sweeps; positions {p}..{n - 1}, which the window never reached, were sampled "
            "one by one.",
        )
    converged = p >= n or last <= opts.default_tol
    message = f"{count} fixed sweeps (tol=0); the last update was {last:.3g}" + (
        "."
        if converged
        else f", above the default tolerance {opts.default_tol:.3g}: the positions after the exact "
        "prefix are the last iterate, not verified. Raise max_iter or use tol=None."
    )
    return Outcome(converged, count, host, "converged" if converged else "max_iter", message)
