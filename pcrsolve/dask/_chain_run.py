"""The client's side of a distributed chain solve: chunks, groups, rounds of tasks, the loop.

The steps are split into chunks, dealt round-robin to groups, one group per worker thread
(its home worker: tasks are asked to run there, and run elsewhere only if it is gone). One
sweep is a round of tasks over the ``G`` groups with a chunk still swept:

    evaluate (G) -> couple (1) -> complete (G) -> smalls (G)

``3 G + 1`` tasks. The client fetches the smalls (a few numbers per chunk), decides
(:func:`._chain_reduce.advance` and the cost rules) and submits what comes next. When the
decisions so far forecast at least one more sweep after the one running, the round after it
is submitted at once, ahead of that sweep's decision: its evaluations start as soon as the
chunks of the running sweep are complete, from one step past that sweep's start, and its
coupling task takes that decision itself from the same smalls (see
:mod:`._chain_reduce`); a sweep then costs three task latencies (evaluate, couple, complete)
and no client round trip. Otherwise the next round waits for the client's decision. In the
fixed-iteration mode every round is known in advance and goes ahead.
"""

from __future__ import annotations

import math
import operator
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from distributed import fire_and_forget

from ..chain._policy import State, should_stop, sweeps_needed
from ..chain._sequential import nonfinite_error
from . import _chain_reduce as reduce
from . import _chain_tasks as tasks
from . import _stash
from ._chain_data import Decision, Spec, Window

__all__ = ["Outcome", "Run", "new_solve_id"]

# Small tasks run before a worker's next evaluation (a completion's small part first).
_URGENT = 10


def new_solve_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Round:
    start: int | None  # where the sweep starts (None until known, for a round submitted ahead)
    lo: int  # its chunks are evaluated from here
    ahead: bool  # submitted before the decision of the sweep before it
    groups: tuple[int, ...]
    futures: list[Any]  # every task of the round
    coupling: Any
    smalls: list[Any]
    X: list[Any]  # every group's iterates after this round (futures or the initial data)


@dataclass
class Outcome:
    """How the loop ended: the last decision, the groups' final iterates, the plain loop's."""

    decision: Decision
    X: list[Any]  # per group
    source: Any = None  # the last round's coupling (the states before the plain loop's start)
    sequential: dict[int, Any] = field(default_factory=dict)  # chunk -> future of (X, small)


class Run:
    """One distributed solve, seen from the client."""

    def __init__(
        self, client, chain_f, spec: Spec, bounds, n: int, width: int, start, template: Decision, info
    ) -> None:
        self.client, self.chain_f, self.spec = client, chain_f, spec
        self.bounds, self.n, self.width = tuple(bounds), n, width
        self.start = start  # the first round's Decision: a literal, or a future (the probe's)
        self.template = template  # what the client knows of it before it is computed
        threads = [w for w in sorted(info) for _ in range(max(1, info[w].get("nthreads", 1)))]
        G = max(1, min(len(bounds), len(threads)))
        self.homes = threads[:G] if threads else [None]
        self.groups = tuple(
            tuple((j, a, b) for j, (a, b) in enumerate(bounds) if j % G == g) for g in range(G)
        )
        self.X: list[Any] = [None] * G
        self.rounds: dict[int, _Round] = {}
        self.tasks_per_round: dict[int, int] = {}

    # ------------------------------------------------------------------ submission

    def submit(self, func, *args, group: int | None = None, priority: int = 0):
        kwargs: dict[str, Any] = {"pure": False, "priority": priority}
        if group is not None and self.homes[group] is not None:
            kwargs.update(workers=[self.homes[group]], allow_other_workers=True)
        return self.client.submit(func, *args, **kwargs)

    def submit_round(self, r: int, lo: int, decision, ahead: bool) -> None:
        """Round ``r``, its chunks evaluated from ``lo``.

        ``ahead``: submitted before the decision of sweep ``r - 1`` (``decision`` is the one
        before it, and ``lo`` one step past sweep ``r - 1``'s start); else ``decision`` is
        sweep ``r - 1``'s and ``lo`` where this sweep starts.
        """
        n, spec = self.n, self.spec
        before = self.rounds.get(r - 1)
        source = before.coupling if before else self.start
        window = Window(lo, min(n, lo + self.width))
        groups = tuple(
            g
            for g, chunks in enumerate(self.groups)
            if any(b > window.lo and a < window.hi for _, a, b in chunks)
        )
        evals = [
            self.submit(
                tasks.evaluate, self.chain_f, spec, r, self.groups[g], self.X[g], source, window, group=g
            )
            for g in groups
        ]
        pending = before.smalls if ahead and before else []
        coupling = self.submit(
            reduce.couple,
            spec,
            n,
            self.width,
            self.bounds,
            lo if ahead and before else None,
            decision,
            source,
            len(evals),
            *evals,
            *pending,
            priority=_URGENT,
        )
        completes = [
            self.submit(
                tasks.complete,
                self.chain_f,
                spec,
                r,
                self.groups[g],
                self.X[g],
                source,
                window,
                coupling,
                group=g,
                priority=_URGENT,
            )
            for g in groups
        ]
        smalls = [
            self.submit(tasks.smalls_of, f, group=g, priority=_URGENT)
            for g, f in zip(groups, completes, strict=True)
        ]
        for g, f in zip(groups, completes, strict=True):
            self.X[g] = f
        start = None if ahead and before else lo
        futures = [*evals, coupling, *completes, *smalls]
        self.rounds[r] = _Round(
            start, lo, ahead and before is not None, groups, futures, coupling, smalls, list(self.X)
        )
        self.tasks_per_round[r] = len(futures)

    # ------------------------------------------------------------------ the loop

    def _ahead(self, d: Decision, lo: int) -> bool:
        """Whether to submit the round after the running sweep before that sweep's decision."""
        opts = self.spec.opts
        if opts.fixed:
            return True
        if lo + self.width < self.n:  # a window that binds: its end depends on the decision
            return False
        if not d.sweeps:  # before any sweep: the first converges only from a guess near the answer
            return d.filled < self.n
        # At least two more sweeps forecast (finitely) after the last one decided: the sweep
        # running now is not the last, so its successor's evaluations will be needed.
        return 2 <= sweeps_needed(opts, list(d.residuals)) < math.inf

    def _wanted(self, r: int, lo: int) -> bool:
        opts = self.spec.opts
        limit = min(opts.max_iter, self.n) if opts.fixed else (opts.max_iter or self.n)
        return r <= limit and lo < self.n

    def decide(self, prev: Decision, r: int, t_prev: float) -> Decision:
        """Sweep ``r``'s decision on the client: its smalls fetched, the cost rules applied."""
        rd = self.rounds[r]
        smalls = {}
        for part in self.client.gather(rd.smalls):  # the one fetch per sweep
            smalls.update(part)
        p = rd.start
        d = reduce.advance(self.spec, self.n, self.bounds, prev, p, min(self.n, p + self.width), smalls)
        now = time.perf_counter()
        if d.sweeps > 1:  # the first sweep's one-off costs are not counted, as on one machine
            d.sweep_times = (*prev.sweep_times, now - t_prev)
        if d.action == "sweep" and not self.spec.opts.fixed:
            st = State(
                p=d.q,
                sweeps=d.sweeps,
                iterations=d.iterations,
                damping=d.damping,
                trouble=d.trouble,
                sweep_times=list(d.sweep_times),
                first_eval=d.first_eval,
                prefixes=list(d.prefixes),
                t_step=d.t_step,
            )
            reason = should_stop(st, self.spec.opts, self.n, list(d.residuals))
            if reason is not None:
                d.action, d.reason = "stop", reason
        return d

    def loop(self, p1: int, on_sweep) -> Outcome:
        """Sweep from step ``p1`` until a decision ends it; ``on_sweep(decision)`` after each."""
        self.submit_round(1, p1, self.start, False)
        if self._wanted(2, p1 + 1) and self._ahead(self.template, p1 + 1):
            self.submit_round(2, p1 + 1, self.start, True)
        d, r, t = self.template, 1, time.perf_counter()
        try:
            while True:
                if r == 1 and hasattr(self.start, "result"):
                    d = self.start.result()  # the probe's timing and counts (done long ago)
                d = self.decide(d, r, t)
                t = time.perf_counter()
                if d.action == "error":
                    raise nonfinite_error(d.bad[0], self.spec.batch, d.bad[1])
                on_sweep(d)
                if d.action != "sweep":
                    break
                nxt = self.rounds.get(r + 1)
                if nxt is None:  # submitted now that the sweep's start is known
                    self.submit_round(r + 1, d.q, d, False)
                    nxt = self.rounds[r + 1]
                else:
                    nxt.start = reduce.start_of(d.q, nxt.lo, self.bounds)
                lo = nxt.start + 1
                if self._wanted(r + 2, lo) and self._ahead(d, lo):
                    self.submit_round(r + 2, lo, d, True)
                r += 1
        finally:
            self._drop_after(r)
        return Outcome(d, self.rounds[r].X, self.rounds[r].coupling)

    def _drop_after(self, r: int) -> None:
        """Cancel the rounds submitted after round ``r``; clear what their evaluations cached."""
        futures = []
        for k in [k for k in self.rounds if k > r]:
            rd = self.rounds.pop(k)
            futures += rd.futures
            for g in rd.groups:  # evaluations may be running: clear after them, on their workers
                fire_and_forget(self.submit(_stash.forget, self.spec.solve, group=g, priority=-_URGENT))
        if futures:
            self.client.cancel(futures)

    # ------------------------------------------------------------------ the plain loop

    def sequential(self, start: int, X: list[Any], source) -> dict[int, Any]:
        """The plain loop from step ``start``: a chain of per-chunk tasks, one state passed along.

        ``source``: the last round's coupling (or the first decision), for the state before
        ``start``. Returns ``{chunk: future of (X, (evals, last))}``.
        """
        out: dict[int, Any] = {}
        before = source
        G = len(self.groups)
        j0 = next(j for j, (a, b) in enumerate(self.bounds) if a <= start < b)
        for j in range(j0, len(self.bounds)):
            a, b = self.bounds[j]
            g = j % G
            Xj = self.submit(tasks.chunk_of, X[g], j // G, group=g, priority=_URGENT) if j == j0 else None
            res = self.submit(
                tasks.sequential, self.chain_f, self.spec, j, a, b, max(a, start), Xj, before, group=g
            )
            out[j] = res
            before = self.submit(operator.getitem, res, 1, group=g, priority=_URGENT)
        return out
