"""``pcrsolve.dask.solve_chain``: the chain solver's sweeps on a ``dask.distributed`` cluster.

The steps are split into chunks whose iterates live on the workers (futures), a few chunks
per worker thread; the chain is scattered to every worker once. One sweep is a round of
``3 G + 2`` tasks for the ``G`` groups of chunks still swept (see :mod:`._chain_run`); the
client fetches one small decision per sweep, and the next round is already with the
scheduler. Chunks behind the converged prefix are frozen and drop out; their futures are the
result. The loop's rules (tolerances, damping on trouble, the cost rules that switch to the
plain loop) are the single machine's, from :mod:`pcrsolve.chain._policy`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from .. import _backend, _validation
from ..chain import _validation as check
from ..chain._policy import Options
from ..chain._progress import Progress
from ..chain._protocol import Chain, ChainSolution
from ..chain._solve import _KIND, CHAIN_METHODS, auto_method
from . import _chain_tasks as tasks
from ._chain_data import Decision, Edge, Spec
from ._chain_run import Outcome, Run, new_solve_id

__all__ = ["solve_chain"]

_PROBE_STEPS = 3
# Default chunking: about this many chunks per worker thread. Each thread's chunks are spread
# along the chain (round robin), so as the converged prefix advances every thread keeps about
# the same share of the steps still swept; their tasks are one per thread either way.
_CHUNKS_PER_THREAD = 4


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


def _chunk_bounds(n: int, chunk_steps: int | None, threads: int) -> list[tuple[int, int]]:
    if chunk_steps is None:
        chunk_steps = max(1, -(-n // (_CHUNKS_PER_THREAD * threads)))
    return [(a, min(n, a + chunk_steps)) for a in range(0, n, chunk_steps)]


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
    asked = method
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
    fixed = tol_v == 0.0 and max_iter is not None
    if method == "auto":  # no route probe here: the sweeps the chain's Jacobians allow
        method = auto_method(chain, fixed) or "sequential"
    client = _client(client)

    be = _backend.resolve({"x0": x0}, backend)
    x = check.x0(be, x0)
    dtype, batch, m = x.dtype, tuple(x.shape[:-1]), x.shape[-1]
    dtol = check.default_tol(be.xp, dtype)
    opts = Options(
        kind=_KIND.get(method, "zero"),
        tol=dtol if tol_v is None else tol_v,
        fixed=fixed,
        max_iter=max_iter,
        window=window,
        damping=1.0 if damping_v is None else damping_v,
        callback=None,
        progress=progress,
        default_tol=dtol,
        recurrence_method="pcr",
        method=method,
    )
    spec = Spec(opts, backend, dtype, batch, m, new_solve_id())
    workers = client.scheduler_info()["workers"]
    bounds = _chunk_bounds(n, chunk_steps, sum(w.get("nthreads", 1) for w in workers.values()) or 1)
    width = n if window is None else min(window, n)
    # Not in the fixed mode: the first steps run sequentially (they are exact) and time the loop.
    p1 = 0 if fixed or method == "sequential" else min(n, _PROBE_STEPS, bounds[0][1])
    template = Decision("sweep", p1, opts.damping, 0 if x_init is None else n, damping=opts.damping)
    start: Any = template.but(edge=Edge({}, x, x))
    X0 = _initial(client, be, x, x_init, n, bounds, dtype)
    if x_init is not None:
        start = _with_guess(client, start, x_init, x, bounds)
    chain_f = client.scatter(chain, broadcast=True, hash=False)
    run = Run(client, chain_f, spec, bounds, n, width, start, template, workers)
    if X0 is not None:
        run.X = X0(run.groups)
    why = _route_reason(asked, method)

    if n == 0:
        msg = "nothing to solve (n_steps = 0)."
        return _solution(
            run, n, x, Outcome(template, run.X), 0, 0, (), "converged", msg, "sequential", "n_steps = 0"
        )
    if method == "sequential":
        out = Outcome(template, run.X, start, run.sequential(0, run.X, start))
        msg = f"ran the {n} steps sequentially."
        return _solution(
            run, n, x, out, _counts(client, out.sequential), 0, (), "sequential", msg, "sequential", why
        )
    if p1:
        run.start = run.submit(tasks.probe, chain_f, spec, x, p1, start, group=0, priority=10)
    progress_bar = Progress(progress, max_iter if fixed else n, "solve_chain")

    def on_sweep(d: Decision) -> None:
        progress_bar.update(d.sweeps, d.sweeps if fixed else d.q, n, d.residuals[-1])
        if callback is not None:
            callback(
                {
                    "iteration": d.sweeps,
                    "residual": d.residuals[-1],
                    "prefix": d.q,
                    "window": d.window,
                    "damping": d.damping,
                    "n_step_evals": d.counts[0],
                    "n_jac_evals": d.counts[1],
                }
            )

    try:
        out = run.loop(p1, on_sweep)
    finally:
        progress_bar.close()
    return _finish(run, n, x, out, why)


def _route_reason(asked: str, method: str) -> str:
    if asked == "auto":
        if method == "sequential":
            return (
                "auto: the chain gives no Jacobians (jac, jvp, linearize, jac_blocks or jac_diag), which "
                "the parallel methods need; method='picard' or 'jacobi' sweeps with `step` alone"
            )
        return f"auto: the sweeps the chain's Jacobians allow ({method!r}); on Dask the route is not probed"
    return f"method={asked!r}"


def _finish(run: Run, n: int, x, out: Outcome, why: str) -> ChainSolution:
    """The solution after the sweeps: converged, or the plain loop over the rest."""
    d, opts = out.decision, run.spec.opts
    iters = d.sweeps if opts.fixed else d.iterations
    last = d.residuals[-1] if d.residuals else math.inf
    route = opts.method
    if d.action == "converged":
        msg = f"converged in {d.iterations} iterations ({d.sweeps} sweeps)."
        return _solution(run, n, x, out, *d.counts, d.residuals, "converged", msg, route, why, iters)
    if d.action == "done" and not (d.q < n and d.filled < n):
        converged = d.q >= n or last <= opts.default_tol
        msg = f"{d.sweeps} fixed sweeps (tol=0); the last update was {last:.3g}" + (
            "."
            if converged
            else f", above the default tolerance {opts.default_tol:.3g}: the states after the exact prefix "
            "are the last iterate, not verified. Raise max_iter or use tol=None."
        )
        status = "converged" if converged else "max_iter"
        return _solution(run, n, x, out, *d.counts, d.residuals, status, msg, route, why, iters, converged)
    out.sequential = run.sequential(d.q, out.X, out.source)
    extra = _counts(run.client, out.sequential)
    if d.action == "done":
        msg = (
            f"{d.sweeps} fixed sweeps; steps {d.q}..{n - 1}, which the window never reached, were "
            "run sequentially."
        )
    else:
        msg = f"finished steps {d.q}..{n - 1} with the sequential loop after {d.sweeps} sweeps: {d.reason}."
    return _solution(
        run, n, x, out, d.counts[0] + extra, d.counts[1], d.residuals, "sequential", msg, route, why, iters
    )


def _counts(client, seq: dict[int, Any]) -> int:
    """Step evaluations of the plain loop's tasks (waits for them: the solve is eager)."""
    smalls = client.gather([client.submit(operator.getitem, f, 1, pure=False) for f in seq.values()])
    return sum(s[0] for s in smalls)


def _initial(client, be, x, x_init, n, bounds, dtype):
    """``x_init`` as a function of the groups: their tuples of chunk iterates (futures)."""
    if x_init is None:
        return None
    if isinstance(x_init, da.Array):
        if tuple(x_init.shape) != (n, *x.shape):
            raise ValueError(
                f"`x_init` must have shape (n_steps, *batch, m) = {(n, *x.shape)} (a guess of every "
                f"state); got shape {tuple(x_init.shape)}."
            )
        steps = tuple(b - a for a, b in bounds)
        blocks = x_init.astype(dtype).rechunk({0: steps, **{i: -1 for i in range(1, x_init.ndim)}})
        futures = [client.compute(blocks.blocks[j]) for j in range(len(bounds))]
        return lambda groups: [
            client.submit(_pack, *(futures[j] for j, _, _ in g), pure=False) for g in groups
        ]
    arr = check.states_like(be, x_init, "x_init", n, x, "a guess of every state")
    chunks = [np.asarray(arr[a:b]) for a, b in bounds]
    return lambda groups: client.scatter([tuple(chunks[j] for j, _, _ in g) for g in groups])


def _pack(*arrays):
    return tuple(arrays)


def _with_guess(client, start: Decision, x_init, x, bounds) -> Any:
    """The first decision with every chunk's last state from ``x_init``."""
    ends = [b - 1 for _, b in bounds]
    if isinstance(x_init, da.Array):
        rows = client.compute(x_init[ends].astype(x.dtype))
        return client.submit(_start_with_rows, start, rows, pure=False)
    return client.scatter(_start_with_rows(start, np.asarray(x_init)[ends].astype(x.dtype)), hash=False)


def _start_with_rows(start: Decision, rows) -> Decision:
    edge = start.edge
    return start.but(edge=Edge({j: rows[j] for j in range(rows.shape[0])}, edge.src, edge.x0, edge.rows))


def _lazy(func, *args, dask_key_name: str):
    return dask.delayed(func, pure=False)(*args, dask_key_name=dask_key_name)


def _solution(
    run: Run,
    n,
    x,
    out: Outcome,
    n_steps,
    n_jac,
    residuals,
    status,
    message,
    route,
    why,
    iterations=0,
    converged=True,
) -> ChainSolution:
    meta = np.empty((0,) * (x.ndim + 1), dtype=x.dtype)
    G, sid = len(run.groups), run.spec.solve
    parts = []
    for j, (a, b) in enumerate(run.bounds):
        # Named explicitly: deriving names by hashing the futures costs milliseconds per chunk.
        if j in out.sequential:
            ref = _lazy(operator.getitem, out.sequential[j], 0, dask_key_name=f"pcrsolve-chain-{sid}-{j}")
        else:
            ref = _lazy(tasks.chunk_of, out.X[j % G], j // G, dask_key_name=f"pcrsolve-chain-{sid}-{j}")
        shape = (b - a, *x.shape)
        parts.append(
            da.from_delayed(ref, shape=shape, dtype=x.dtype, meta=meta, name=f"pcrsolve-states-{sid}-{j}")
        )
    states = da.concatenate(parts, axis=0) if parts else da.empty((0, *x.shape), dtype=x.dtype)
    return ChainSolution(
        states,
        bool(converged),
        int(iterations),
        tuple(float(r) for r in residuals),
        status,
        message,
        int(n_steps),
        int(n_jac),
        route,
        why,
    )
