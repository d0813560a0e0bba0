"""The client's side of a distributed chain solve: chunks, groups, rounds of tasks, the loop.

The steps are split into chunks, dealt round-robin to groups, one group per worker thread
(its home worker: tasks are asked to run there, and run elsewhere only if it is gone). One
sweep is a round of tasks (``G`` groups with a chunk still swept):

    evaluate (G) -> couple (1) -> complete (G) -> smalls (G) -> decide (1)

``3 G + 2`` tasks. The client fetches the decision, a few numbers, and nothing else. Rounds
are submitted one ahead: round ``r + 1`` goes to the scheduler while sweep ``r`` runs, so
no sweep waits for the client. Round ``r + 1`` normally waits for decision ``r`` (which
says where it starts). When the decisions so far forecast at least one more sweep after
``r``, round ``r + 1`` is instead evaluated as soon as the chunks of sweep ``r`` are
complete, from one step past sweep ``r``'s start (see :mod:`._chain_reduce`): a sweep then
costs three task latencies (evaluate, couple, complete) instead of five. In the
fixed-iteration mode every round starts one step further, known in advance.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, field
from typing import Any

from distributed import fire_and_forget

from ..chain._policy import Options, sweeps_needed
from ..chain._sequential import nonfinite_error
from . import _chain_reduce as reduce
from . import _chain_tasks as tasks
from . import _stash
from ._chain_data import Decision, Spec, Window

__all__ = ["Outcome", "Run", "new_solve_id"]

# Tasks off the evaluations' path run first on a worker (a completion's small part before
# the next round's evaluation on the same thread).
_URGENT = 10


def new_solve_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Round:
    lo: int | None  # evaluated from here ahead of the decision before it, or None
    start: int  # where the sweep starts when the decision before it is known (client view)
    groups: tuple[int, ...]
    evals: dict[int, Any]
    coupling: Any
    completes: dict[int, Any]
    smalls: dict[int, Any]
    decide: Any
    X: list[Any]  # every group's iterates after this round (futures or the initial data)


@dataclass
class Outcome:
    """How the loop ended: the last decision, the chunks' final futures, the fallback's."""

    decision: Decision
    X: list[Any]  # per group
    sequential: dict[int, Any] = field(default_factory=dict)  # chunk -> future of (X, small)
    start: int | None = None  # first step of the sequential loop, if it ran


class Run:
    """One distributed solve, seen from the client."""

    def __init__(self, client, chain_f, spec: Spec, bounds, n: int, width: int, x0, X0, start) -> None:
        self.client, self.chain_f, self.spec = client, chain_f, spec
        self.bounds, self.n, self.width = tuple(bounds), n, width
        self.x0 = x0
        self.start = start  # the first round's Decision (literal or future)
        info = client.scheduler_info()["workers"]
        threads = [w for w in sorted(info) for _ in range(max(1, info[w].get("nthreads", 1)))]
        G = max(1, min(len(bounds), len(threads)))
        self.homes = threads[:G] if threads else [None]
        self.groups = tuple(
            tuple((j, a, b) for j, (a, b) in enumerate(bounds) if j % G == g) for g in range(G)
        )
        self.X = list(X0) if X0 is not None else [None] * G
        self.rounds: dict[int, _Round] = {}
        self.tasks_per_round: dict[int, int] = {}

    # ------------------------------------------------------------------ submission

    def submit(self, func, *args, group: int | None = None, priority: int = 0):
        kwargs: dict[str, Any] = {"pure": False, "priority": priority}
        if group is not None and self.homes[group] is not None:
            kwargs.update(workers=[self.homes[group]], allow_other_workers=True)
        return self.client.submit(func, *args, **kwargs)

    def submit_round(self, r: int, lo: int, ahead: bool) -> None:
        """Round ``r``: evaluated from ``lo`` when ``ahead``, else where decision ``r-1`` says.

        ``lo`` is one step past the previous sweep's start (exact in the fixed mode and for
        the first round, where ``ahead`` is then always true).
        """
        n, width, spec = self.n, self.width, self.spec
        before = self.rounds.get(r - 1)
        source = before.coupling if before else self.start
        decision = before.decide if before else self.start
        if ahead:
            plan: Any = Window(lo, min(n, lo + width))
            hi = plan.hi
        else:
            plan = decision
            prev_start = before.start if before else lo
            hi = min(n, min(n, prev_start + width) + width)
        groups = tuple(
            g for g, chunks in enumerate(self.groups) if any(b > lo and a < hi for _, a, b in chunks)
        )
        evals = {
            g: self.submit(
                tasks.evaluate,
                self.chain_f,
                spec,
                r,
                self.groups[g],
                self.X[g],
                source,
                plan,
                n,
                width,
                group=g,
            )
            for g in groups
        }
        coupling = self.submit(
            reduce.couple,
            spec,
            n,
            width,
            self.bounds,
            lo if ahead else None,
            decision,
            source,
            *evals.values(),
            priority=_URGENT,
        )
        completes = {
            g: self.submit(
                tasks.complete,
                self.chain_f,
                spec,
                r,
                self.groups[g],
                self.X[g],
                source,
                plan,
                coupling,
                n,
                width,
                group=g,
                priority=_URGENT,
            )
            for g in groups
        }
        smalls = {g: self.submit(tasks.smalls_of, completes[g], group=g, priority=_URGENT) for g in groups}
        decide = self.submit(
            reduce.decide,
            spec,
            n,
            self._cap(),
            decision,
            coupling,
            *smalls.values(),
            group=0,
            priority=_URGENT,
        )
        for g in groups:
            self.X[g] = completes[g]
        self.rounds[r] = _Round(
            lo if ahead else None, lo, groups, evals, coupling, completes, smalls, decide, list(self.X)
        )
        self.tasks_per_round[r] = 3 * len(groups) + 2

    def _cap(self) -> int:
        opts = self.spec.opts
        return min(opts.max_iter, self.n) if opts.fixed else self.n

    # ------------------------------------------------------------------ the loop

    def _ahead(self, lo: int, residuals: tuple[float, ...], first: bool, warm: bool) -> bool:
        """Whether the next round may be evaluated ahead of the decision before it."""
        opts: Options = self.spec.opts
        if opts.fixed:
            return True
        if lo + self.width < self.n:  # a window that binds: its end depends on the decision
            return False
        if first:  # before any sweep: the first one converges only from a guess near the answer
            return not warm
        # At least two more sweeps forecast after the last decided one: the sweep running now is
        # not the last, so its successor's evaluations will be needed.
        return sweeps_needed(opts, list(residuals)) >= 2

    def _needed(self, r: int, lo: int) -> bool:
        opts = self.spec.opts
        limit = self._cap() if opts.fixed else (opts.max_iter if opts.max_iter is not None else self.n)
        return r <= limit and lo < self.n

    def loop(self, p1: int, warm: bool, on_sweep) -> Outcome:
        """Sweep from step ``p1`` until a decision ends it; ``on_sweep(decision)`` after each."""
        self.submit_round(1, p1, True)
        lo = p1 + 1
        if self._needed(2, lo):
            self.submit_round(2, lo, self._ahead(lo, (), True, warm))
        r = 1
        try:
            while True:
                d = self.rounds[r].decide.result()  # the one fetch per sweep
                on_sweep(d)
                if d.action == "error":
                    raise nonfinite_error(d.bad[0], self.spec.batch, d.bad[1])
                if d.action != "sweep":
                    break
                nxt = self.rounds[r + 1]
                start = reduce.start_of(d.q, nxt.lo, self.bounds)
                nxt.start = start
                lo = start + 1
                if self._needed(r + 2, lo):
                    self.submit_round(r + 2, lo, self._ahead(lo, d.residuals, False, warm))
                r += 1
        finally:
            self._drop_after(r)
        return Outcome(d, self.rounds[r].X)

    def _drop_after(self, r: int) -> None:
        """Cancel the rounds submitted after round ``r``; clear what their evaluations cached."""
        later = [k for k in self.rounds if k > r]
        futures = []
        for k in later:
            rd = self.rounds.pop(k)
            futures += [
                *rd.evals.values(),
                rd.coupling,
                *rd.completes.values(),
                *rd.smalls.values(),
                rd.decide,
            ]
            if rd.lo is not None:  # evaluated ahead: some evaluations may be running
                for g in rd.groups:
                    fire_and_forget(self.submit(_stash.forget, self.spec.solve, group=g, priority=-_URGENT))
        if futures:
            self.client.cancel(futures)

    # ------------------------------------------------------------------ the plain loop

    def sequential(self, start: int, X: list[Any], source) -> dict[int, Any]:
        """The plain loop from step ``start``: a chain of per-chunk tasks, one state passed along.

        ``source``: the last round's coupling (or the first decision), for the state before
        ``start``. Returns ``{chunk: future of (X, (evals, last))}``.
        """
        out = {}
        before = source
        j0 = next(j for j, (a, b) in enumerate(self.bounds) if a <= start < b)
        for j in range(j0, len(self.bounds)):
            a, b = self.bounds[j]
            g = j % len(self.groups)
            Xj = (
                self.submit(tasks.chunk_of, X[g], j // len(self.groups), group=g, priority=_URGENT)
                if j == j0
                else None
            )
            res = self.submit(
                tasks.sequential,
                self.chain_f,
                self.spec,
                j,
                a,
                b,
                max(a, start),
                Xj,
                before,
                group=g,
                priority=_URGENT,
            )
            out[j] = res
            before = self.submit(operator.getitem, res, 1, group=g, priority=_URGENT)
        return out
