"""``pcrsolve.dask.solve_chain``: the chain solver's sweeps on a ``dask.distributed`` cluster.

The steps are split into chunks whose iterates live on the workers (futures); the chain is
scattered to every worker once. One sweep submits, for every active chunk, an evaluation that
reduces the chunk's part of the linear step locally (:func:`._chain_tasks.evaluate`), one small
task for the carries between chunks, a completion per chunk, and one small task that decides
how far the converged prefix advanced: the client waits for that one result (a few numbers)
per sweep. While more sweeps are forecast and the cluster is wide enough, a sweep's graph also
holds the next sweep's evaluations, which start on the workers from that decision
(:func:`._chain_tasks.evaluate_ahead`), so the round trip is off the critical path. Chunks
behind the prefix are frozen and drop out; their futures are the result. The loop's rules
(tolerances, damping on trouble, the cost rules that switch to the plain loop) are the single
machine's, from :mod:`pcrsolve.chain._policy`.
"""

from __future__ import annotations

import contextlib
import math
import operator
import time
import uuid
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from .. import _backend, _validation
from ..chain import _policy
from ..chain import _validation as check
from ..chain._policy import MIN_DAMPING, Options, State
from ..chain._progress import Progress
from ..chain._protocol import Chain, ChainSolution
from ..chain._sequential import nonfinite_error
from ..chain._solve import _KIND, CHAIN_METHODS, auto_method
from . import _chain_tasks as tasks
from . import _stash

__all__ = ["solve_chain"]

_PROBE_STEPS = 3
# Default chunking: about this many chunks per worker thread (fewer steps per chunk lets frozen
# chunks drop out sooner; more tasks cost scheduler time).
_CHUNKS_PER_THREAD = 1
# Evaluations are made ahead only for sweeps spread over at least this many workers' worth of
# parallel steps (see _ahead).
_AHEAD_SPREAD = 8


def _client(client):
    if client is not None:
        return client
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "pcrsolve.dask.solve_chain needs a dask.distributed client and found none; start one, e.g. "
            "`from dask.distributed import Client, LocalCluster; client = Client(LocalCluster())`, "
            "or pass client=..."
        ) from None


def _chunk_bounds(n: int, chunk_steps: int | None, workers: dict) -> list[tuple[int, int]]:
    if chunk_steps is None:
        threads = sum(w.get("nthreads", 1) for w in workers.values()) or 1
        chunk_steps = max(1, -(-n // (_CHUNKS_PER_THREAD * threads)))
    return [(a, min(n, a + chunk_steps)) for a in range(0, n, chunk_steps)]


class _Run:
    """The client's view of one distributed solve: chunk futures, counters, the sweep.

    ``X[j]`` is a future of chunk ``j``'s iterate: an array, or after a sweep the pair
    ``(iterate, small)`` its completion returned (unpacked on the workers, see
    :func:`._chain_tasks.unpack`), so that no task is spent splitting it. ``small[j]`` is a
    future of that ``small`` part (errors, counts, the chunk's last state), or None.
    """

    def __init__(self, client, info, chain_f, spec, bounds, X, x0, ev_counts) -> None:
        self.client, self.chain_f, self.spec, self.bounds = client, chain_f, spec, bounds
        self.X = X  # futures, one per chunk
        self.small: list[Any] = [None] * len(bounds)
        self.x0 = x0
        self.n_step_evals, self.n_jac_evals = ev_counts
        # Each chunk has a home worker (round robin), where its tasks are asked to run: the
        # chunks stay spread over the cluster instead of piling up where their inputs were
        # made. Only a preference: another worker takes over if the home one is lost.
        workers = sorted(info) or [None]
        self.homes = [workers[j % len(workers)] for j in range(len(bounds))]
        self.threads = max(1, sum(w.get("nthreads", 1) for w in info.values()))
        self.solve_id, self.sweeps = uuid.uuid4().hex, 0
        self.ahead: dict[int, Any] = {}  # chunk -> its evaluation for the next sweep, made ahead

    def submit(self, func, *args, home: int | None = None, **kwargs):
        if home is not None and self.homes[home] is not None:
            kwargs.update(workers=[self.homes[home]], allow_other_workers=True)
        return self.client.submit(func, *args, pure=False, **kwargs)

    def item(self, fut, i, home: int | None = None):
        return self.submit(operator.getitem, fut, i, home=home)

    def set(self, j: int, X) -> None:
        self.X[j], self.small[j] = X, None

    def chunk_of(self, step: int) -> int:
        return next(j for j, (a, b) in enumerate(self.bounds) if a <= step < b)

    def state_before(self, p: int):
        """The state before step ``p``: ``x0`` or a future of it."""
        if p == 0:
            return self.x0
        j = self.chunk_of(p - 1)
        return self.submit(tasks.row, self.X[j], p - 1 - self.bounds[j][0], home=j)

    def fill(self, st: State, e: int) -> None:
        """Chunks entering a window for the first time start from the latest state (as on one
        machine: the state before the first step not filled yet)."""
        if e <= st.filled:
            return
        src = self.state_before(st.filled)
        for j, (a, b) in enumerate(self.bounds):
            if a >= st.filled and a < e:
                self.set(j, self.submit(tasks.initial, src, b - a, home=j))
                self.small[j] = src  # its last state, for the evaluation of the chunk after
        st.filled = max(st.filled, self.bounds[self.chunk_of(e - 1)][1])

    def sweep(self, p: int, e: int, omega: float, prev: float | None, ahead: bool):
        """One distributed sweep over the chunks that hold steps ``[p, e)``.

        The sweep's tasks go to the scheduler as one graph (one message, not one per task):
        per chunk an evaluation (unless one was made ahead; it returns the chunk's summary and
        keeps the rest on its worker), a completion and the completion's small part; one
        carries task and one decision. With ``ahead``, the graph also holds the next sweep's
        evaluations, which wait for the decision on the workers and start from the prefix it
        found (:func:`._chain_tasks.evaluate_ahead`): the client's round trip and the next
        graph's submission leave the critical path. Returns ``(n_ok, max_err, bad_element,
        t_eval)``, ``t_eval`` the longest chunk's evaluation time (the sweep without
        scheduling costs).
        """
        self.sweeps += 1
        active = [j for j, (a, b) in enumerate(self.bounds) if b > p and a < e]
        summaries, befores = self.evaluations(p, active)
        carry = self.task(tasks.carries)(self.spec.opts.kind, *summaries)
        outs, smalls = [], []
        for i, j in enumerate(active):
            a = self.bounds[j][0]
            with self.at(j):
                out = self.task(tasks.complete)(
                    self.key(j),
                    self.chain_f,
                    self.spec,
                    self.X[j],
                    befores[i],
                    carry,
                    i,
                    omega,
                    i == 0,
                    a,
                    max(a, p),
                )
                outs.append(out)
                smalls.append(out[1])
        decided = self.task(tasks.decide)(self.spec.opts, prev, *smalls)
        nxt = {}
        # Ahead only when the next sweep's chunks are known: no window that binds.
        if ahead and p + 1 < e == self.bounds[-1][1]:
            for i, j in enumerate(active):
                a, b = self.bounds[j]
                if b > p + 1:
                    with self.at(j):
                        nxt[j] = self.task(tasks.evaluate_ahead)(
                            decided,
                            e,
                            self.key(j, 1),
                            self.chain_f,
                            self.spec,
                            outs[i],
                            smalls[i - 1] if i else None,
                            a,
                            p,
                        )
        futures = self.client.compute([*outs, *smalls, decided, *nxt.values()])
        k = len(active)
        for i, j in enumerate(active):
            self.X[j], self.small[j] = futures[i], futures[k + i]
        self.ahead = dict(zip(nxt, futures[2 * k + 1 :]))
        n_ok, max_err, bad, (s_evals, j_evals, t_eval) = futures[2 * k].result()  # the one round trip
        self.n_step_evals += s_evals
        self.n_jac_evals += j_evals
        return n_ok, max_err, bad, t_eval

    def parallel_steps(self, p: int, e: int) -> int:
        """The steps one worker thread evaluates in a sweep over ``[p, e)`` (at the least)."""
        sizes = sorted((b - max(a, p) for a, b in self.bounds if b > p and a < e), reverse=True)
        return sum(sizes[:: self.threads])

    def key(self, j: int, later: int = 0) -> tuple[str, int, int]:
        """Where chunk ``j``'s evaluation for the current sweep (or ``later`` sweeps on) is kept."""
        return (self.solve_id, self.sweeps + later, j)

    def evaluations(self, p: int, active: list[int]) -> tuple[list[Any], list[Any]]:
        """The active chunks' evaluation summaries for a sweep from ``p`` (those made ahead,
        new ones for the rest) and the states before them (for a completion that must
        evaluate again); evaluations made ahead for chunks now frozen are cancelled."""
        ahead, self.ahead = self.ahead, {}
        summaries, befores = [], []
        for j in active:
            a = self.bounds[j][0]
            with self.at(j):
                if p > a:
                    before = None  # the chunk's own state p - 1
                elif j == 0:
                    before = self.x0
                else:  # the last state of the chunk before: from its completion, when it has one
                    before = self.small[j - 1]
                    if before is None:
                        before = self.task(tasks.row)(self.X[j - 1], -1)
                if j in ahead:  # made from where this sweep starts, see tasks.evaluate_ahead
                    ev = ahead.pop(j)
                else:
                    ev = self.task(tasks.evaluate)(
                        self.key(j), self.chain_f, self.spec, self.X[j], before, a, max(a, p)
                    )
            summaries.append(ev)
            befores.append(before)
        self.cancel(ahead)
        return summaries, befores

    def close(self, ended: bool) -> None:
        """After the loop: cancel what was made ahead; if evaluations may have been kept that no
        completion took (made ahead, or a solve that raised), drop them on every worker."""
        leftover = bool(self.ahead) or not ended
        self.cancel()
        if leftover:
            with contextlib.suppress(Exception):  # a cache: a failure to clear it is harmless
                self.client.run(_stash.forget, self.solve_id)

    def cancel(self, ahead: dict | None = None) -> None:
        """Cancel evaluations made ahead that no sweep will use."""
        ahead = self.ahead if ahead is None else ahead
        if ahead:
            self.client.cancel(list(ahead.values()))
        ahead.clear()

    @staticmethod
    def task(func):
        return dask.delayed(func, pure=False)

    def at(self, j: int):
        """Annotate the tasks built inside: run them on chunk ``j``'s home worker if it is there."""
        if self.homes[j] is None:
            return contextlib.nullcontext()
        return dask.annotate(workers=[self.homes[j]], allow_other_workers=True)

    def sequential(self, p: int, n: int) -> None:
        """The plain loop from step ``p``: a chain of per-chunk tasks, one state passed along."""
        prev = self.state_before(p)
        counts = []
        for j in range(self.chunk_of(p), len(self.bounds)):
            a, b = self.bounds[j]
            out = self.submit(
                tasks.sequential, self.chain_f, self.spec, self.X[j], prev, a, max(a, p), b - a, home=j
            )
            self.set(j, self.item(out, 0, home=j))
            counts.append(self.item(out, 1, home=j))
            if j + 1 < len(self.bounds):  # the last chunk's state is no one's start
                prev = self.submit(tasks.row, self.X[j], -1, home=j)
        self.n_step_evals += sum(self.client.gather(counts))

    def arrays(self) -> list[Any]:
        """Futures of the chunks' iterates as plain arrays."""
        return [self.submit(tasks.unpack, f, home=j) for j, f in enumerate(self.X)]


def solve_chain(
    chain: Chain,
    x0: Any,
    n_steps: int,
    *,
    chunk_steps: int | None = None,
    client: Any = None,
    method: str = "newton",
    x_init: Any = None,
    tol: float | None = None,
    max_iter: int | None = None,
    window: int | None = None,
    damping: float | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> ChainSolution:
    """Solve a chain ``x_k = f_k(x_{k-1})`` with its sweeps spread over a Dask cluster.

    The same solve as :func:`pcrsolve.solve_chain` (methods, tolerances, damping, window,
    callback, progress bar, cost rules and sequential fallback, guarantees), run eagerly on
    the workers of a ``dask.distributed`` client: the steps are split into chunks that live on
    the workers, the chain is sent to each worker once, and each sweep is, per active chunk,
    one evaluation (the chain's values and Jacobians, and the chunk's part of the linear step,
    reduced on its worker), one small task for the carries between chunks, one completion per
    chunk and one small task deciding how far the converged prefix advanced; only that
    decision (a few numbers) reaches the client. Chunks behind the prefix drop out. It pays
    when steps are expensive (milliseconds: a simulation step, a large network, a remote
    model) and there are many workers; see the "Scaling out" page for the cost model.

    Parameters
    ----------
    chain : Chain
        The chain; it must pickle when the workers are processes (a class defined in an
        importable module, or functions cloudpickle can send).
    x0 : (*batch, m) array_like
        The state before the first step.
    n_steps : int
        Number of steps.
    chunk_steps : int, optional
        Steps per chunk (default: the steps divided evenly over the cluster's worker threads).
    client : distributed.Client, optional
        The cluster to run on (default: the current client).
    method : {"newton", "diagonal", "picard", "jacobi", "sequential", "auto"}, optional
        As for :func:`pcrsolve.solve_chain`; ``"auto"`` here takes the sweeps the chain's
        Jacobians allow (the loop without Jacobians) and leaves the fallback to the cost rules
        of the distributed solve.
    x_init : (n_steps, *batch, m) array_like, optional
        A first guess (NumPy, or a Dask array).
    tol : float, optional
        As for :func:`pcrsolve.solve_chain`.
    max_iter : int, optional
        As for :func:`pcrsolve.solve_chain` (with ``tol=0``: exactly ``max_iter`` sweeps).
    window : int, optional
        Sweep only the chunks that hold steps ``[p, p + window)`` past the converged prefix.
    damping : float in (0, 1], optional
        As for :func:`pcrsolve.solve_chain`.
    callback : callable, optional
        Called on the client after every sweep with the dict :func:`pcrsolve.solve_chain` passes.
    progress : bool, optional
        Show a progress bar over the converged steps.
    backend : {"numba", "numpy", "cupy"}, optional
        The array library of the states on the workers; by default ``x0``'s.

    Returns
    -------
    ChainSolution
        As for :func:`pcrsolve.solve_chain`, with ``states`` a Dask array
        ``(n_steps, *batch, m)`` chunked along the steps, whose chunks stay on the workers.

    Raises
    ------
    ValueError
        For a bad option, or when there is no client (the message says how to start one).
    FloatingPointError
        If the sequential chain itself produces NaN or inf (the message names the step).
    TypeError
        For a chain without ``step`` or options of the wrong type.

    See Also
    --------
    pcrsolve.solve_chain : The same solve on one machine.

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> from distributed import Client, LocalCluster
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                              dashboard_address=":0"))  # doctest: +SKIP
    >>> chain = pcr.FunctionChain(lambda x, k: np.cos(x), jac=lambda x, k: -np.sin(x)[..., None])
    >>> sol = pcr.dask.solve_chain(chain, np.array([1.0]), 64, chunk_steps=16)  # doctest: +SKIP
    >>> sol.states.chunks  # doctest: +SKIP
    ((16, 16, 16, 16), (1,))
    """
    check.check_chain(chain, "pcrsolve.dask.solve_chain")
    method = _validation.method(method, CHAIN_METHODS, "solve_chain")
    n = check.n_steps(n_steps)
    chunk_steps = check.optional_int(chunk_steps, "chunk_steps", 1)
    max_iter = check.optional_int(max_iter, "max_iter", 0)
    window = check.optional_int(window, "window", 1)
    tol_v = check.optional_float(tol, "tol", 0.0, math.inf, low_open=False)
    damping_v = check.optional_float(damping, "damping", 0.0, 1.0, low_open=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None; got {type(callback).__name__}.")
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be a bool; got {type(progress).__name__}.")
    check.needs(chain, method)
    if method == "auto":  # no route probe here: the sweeps the chain's Jacobians allow
        method = auto_method(chain, tol_v == 0.0 and max_iter is not None) or "sequential"
    client = _client(client)

    be = _backend.resolve({"x0": x0}, backend)
    x = check.x0(be, x0)
    dtype, batch, m = x.dtype, tuple(x.shape[:-1]), x.shape[-1]
    dtol = check.default_tol(be.xp, dtype)
    opts = Options(
        kind=_KIND.get(method, "zero"),
        tol=dtol if tol_v is None else tol_v,
        fixed=tol_v == 0.0 and max_iter is not None,
        max_iter=max_iter,
        window=window,
        damping=1.0 if damping_v is None else damping_v,
        callback=None,
        progress=progress,
        default_tol=dtol,
        recurrence_method="pcr",
    )
    spec = tasks.Spec(opts, backend, dtype, batch, m)
    workers = client.scheduler_info()["workers"]  # one request for the chunking and the homes
    bounds = _chunk_bounds(n, chunk_steps, workers)
    chain_f = client.scatter(chain, broadcast=True, hash=False)
    X = _initial_chunks(client, be, x, x_init, n, bounds, dtype)
    run = _Run(client, workers, chain_f, spec, bounds, X, x, (0, 0))

    if n == 0:
        return _solution(run, n, x, True, 0, (), "converged", "nothing to solve (n_steps = 0).")
    if method == "sequential":
        run.sequential(0, n)
        return _solution(run, n, x, True, 0, (), "sequential", f"ran the {n} steps sequentially.")
    progress_bar = Progress(progress, max_iter if opts.fixed else n, "solve_chain")
    ended = False
    try:
        out = _loop(run, opts, n, callback, progress_bar, have_init=x_init is not None)
        ended = True
    finally:
        run.close(ended)
        progress_bar.close()
    return _solution(run, n, x, *out)


def _initial_chunks(client, be, x, x_init, n, bounds, dtype) -> list[Any]:
    if x_init is None:
        return [None] * len(bounds)  # filled when a sweep first reaches them
    if isinstance(x_init, da.Array):
        if tuple(x_init.shape) != (n, *x.shape):
            raise ValueError(
                f"`x_init` must have shape (n_steps, *batch, m) = {(n, *x.shape)} (a guess of every "
                f"state); got shape {tuple(x_init.shape)}."
            )
        steps = tuple(b - a for a, b in bounds)
        blocks = x_init.astype(dtype).rechunk({0: steps, **{i: -1 for i in range(1, x_init.ndim)}})
        return [client.compute(blocks.blocks[j]) for j in range(len(bounds))]
    arr = check.states_like(be, x_init, "x_init", n, x, "a guess of every state")
    return client.scatter([np.asarray(arr[a:b]) for a, b in bounds])


def _loop(run: _Run, opts: Options, n: int, callback, progress, have_init: bool):
    """The sweeps, then the plain loop if they do not pay: ``(converged, iterations, ...)``."""
    W = n if opts.window is None else min(opts.window, n)
    st = State(filled=n if have_init else 0, damping=opts.damping)
    residuals: list[float] = []
    probed = None
    if not opts.fixed:
        # The cost of one step of the plain loop, timed on the first steps (then exact).
        k = min(n, _PROBE_STEPS, run.bounds[0][1])
        run.fill(st, k)
        out = run.submit(tasks.probe, run.chain_f, run.spec, run.X[0], run.x0, k, home=0)
        run.set(0, run.item(out, 0, home=0))
        # Not waited for: the cost rules need the step's time only after the first sweep.
        probed = run.item(out, slice(1, None), home=0)
        st.p = k
    reason = None
    sweeps_cap = min(opts.max_iter, n) if opts.fixed else None
    while st.p < n:
        if opts.fixed:
            if st.sweeps >= sweeps_cap:
                break
        else:
            if opts.max_iter is not None and st.sweeps >= opts.max_iter:
                reason = f"max_iter = {opts.max_iter} sweeps did not converge"
                break
            if st.sweeps >= 1:
                reason = _policy.should_stop(st, opts, n, residuals)
                if reason is not None:
                    break
        p, e = st.p, min(n, st.p + W)
        run.fill(st, e)
        t0 = time.perf_counter()
        prev = residuals[-1] if residuals and not opts.fixed else None
        omega = opts.damping if opts.fixed else st.damping
        n_ok, err, bad, t_eval = run.sweep(p, e, omega, prev, _ahead(run, opts, st, residuals, n, p, e))
        if bad >= 0:
            raise nonfinite_error(p, run.spec.batch, bad)
        elapsed = time.perf_counter() - t0
        if st.sweeps:
            st.sweep_times.append(elapsed)
        else:  # as on one machine: the first sweep's one-off costs (compiling, loading) not counted
            st.first_eval = t_eval
            if probed is not None:  # done long ago: the first sweep started from its states
                st.t_step, evals = probed.result()
                run.n_step_evals += evals
        st.sweeps += 1
        st.iterations += err > opts.tol or opts.fixed
        st.p = p + (1 if opts.fixed else n_ok)
        st.prefixes.append(st.p)
        residuals.append(err)
        if err == math.inf and n_ok <= 1:
            st.trouble += 1
            st.damping = max(st.damping / 2, MIN_DAMPING)
        else:
            st.trouble = 0
            st.damping = min(st.damping * 2, opts.damping)
        progress.update(st.sweeps, st.p, n, err)
        if callback is not None:
            callback(
                {
                    "iteration": st.sweeps,
                    "residual": err,
                    "prefix": st.p,
                    "window": (p, e),
                    "damping": st.damping,
                    "n_step_evals": run.n_step_evals,
                    "n_jac_evals": run.n_jac_evals,
                }
            )
    if probed is not None and not st.sweeps:  # the probe solved every step
        run.n_step_evals += probed.result()[1]
    if opts.fixed:
        return _fixed_outcome(run, opts, st, residuals, n)
    if st.p >= n:
        msg = f"converged in {st.iterations} iterations ({st.sweeps} sweeps)."
        return True, st.iterations, residuals, "converged", msg
    start = st.p
    run.sequential(start, n)
    msg = f"finished steps {start}..{n - 1} with the sequential loop after {st.sweeps} sweeps: {reason}."
    return True, st.iterations, residuals, "sequential", msg


def _ahead(run: _Run, opts: Options, st: State, residuals: list[float], n: int, p: int, e: int) -> bool:
    """Whether the sweep about to run over ``[p, e)`` is, by the decisions so far, not the last
    one: then its graph also makes the next sweep's evaluations.

    With fixed iterations every sweep is known in advance. Otherwise the sweeps must spread
    their steps over at least ``_AHEAD_SPREAD`` workers' worth of parallel work: with less,
    they barely pay, the cost rules may switch to the plain loop after any sweep, and an
    evaluation made ahead cannot be stopped once it runs (the plain loop would wait for it).
    """
    if opts.fixed:
        return st.sweeps + 1 < min(opts.max_iter, n)
    if opts.max_iter is not None and st.sweeps + 1 >= opts.max_iter:
        return False
    if run.parallel_steps(p, e) * _AHEAD_SPREAD > n:
        return False
    return len(residuals) < 2 or 2 <= _policy.sweeps_needed(opts, residuals) < math.inf


def _fixed_outcome(run: _Run, opts: Options, st: State, residuals, n: int):
    last = residuals[-1] if residuals else math.inf
    if st.p < n and st.filled < n:
        run.sequential(st.p, n)
        msg = (
            f"{st.sweeps} fixed sweeps; steps {st.p}..{n - 1}, which the window never reached, were "
            "run sequentially."
        )
        return True, st.sweeps, residuals, "sequential", msg
    converged = st.p >= n or last <= opts.default_tol
    msg = f"{st.sweeps} fixed sweeps (tol=0); the last update was {last:.3g}" + (
        "."
        if converged
        else f", above the default tolerance {opts.default_tol:.3g}: the states after the exact prefix "
        "are the last iterate, not verified. Raise max_iter or use tol=None."
    )
    return converged, st.sweeps, residuals, "converged" if converged else "max_iter", msg


def _solution(run: _Run, n, x, converged, iterations, residuals, status, message) -> ChainSolution:
    meta = np.empty((0,) * (x.ndim + 1), dtype=x.dtype)
    parts = [
        da.from_delayed(f, shape=(b - a, *x.shape), dtype=x.dtype, meta=meta)
        for f, (a, b) in zip(run.arrays(), run.bounds)
    ]
    states = da.concatenate(parts, axis=0) if parts else da.empty((0, *x.shape), dtype=x.dtype)
    return ChainSolution(
        states,
        bool(converged),
        int(iterations),
        tuple(float(r) for r in residuals),
        status,
        message,
        run.n_step_evals,
        run.n_jac_evals,
    )
