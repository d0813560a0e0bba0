"""What the tasks of a distributed chain solve hand each other: small, picklable records.

A round ``r`` (sweep ``r``) has, per group of chunks, an evaluation (:class:`Summary` per
chunk) and a completion (:class:`Packed`: the group's new iterates and a :class:`Small` per
chunk), and two small tasks: the coupling (:class:`Coupling`: where the sweep starts, the
carries between chunks, each chunk's new last state) and the decision (:class:`Decision`:
how far the converged prefix advanced, what comes next). Shapes: ``B = prod(batch)``; states
``(*batch, m)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import _backend
from ..chain._eval import Evaluator
from ..chain._policy import Options

__all__ = [
    "Coupling",
    "Decision",
    "Edge",
    "Evaluated",
    "Packed",
    "Small",
    "Spec",
    "Summary",
    "Window",
    "group_arrays",
]


@dataclass(frozen=True)
class Spec:
    """What every task needs to know about the solve (small, sent with each task)."""

    opts: Options  # without the callback: it stays on the client
    backend: str | None
    dtype: Any
    batch: tuple[int, ...]
    m: int
    solve: str  # the solve's id (keys of the worker-side cache)

    def evaluator(self, chain, x) -> tuple[Evaluator, Any]:
        be = _backend.resolve({"x": x}, self.backend)
        return Evaluator(chain, be.xp, self.dtype, self.batch, self.m), be

    @property
    def B(self) -> int:
        return math.prod(self.batch)


@dataclass(frozen=True)
class Window:
    """Steps ``[lo, hi)`` a round evaluates (chunks overlapping it)."""

    lo: int
    hi: int


@dataclass(frozen=True)
class Edge:
    """What a round's evaluations need from outside their chunks.

    ``last[j]``: chunk ``j``'s state after its last step, for the chunks the sweep before
    updated (and, with a first guess and a window, for chunks not swept yet); ``src``: the
    latest state before the first step no chunk holds yet (a chunk entering the window
    starts from it repeated); ``x0``: the state before step 0 (first round only); ``rows``:
    the exact first states the cost probe ran (first round only).
    """

    last: dict[int, Any]
    src: Any
    x0: Any = None
    rows: Any = None


@dataclass
class Evaluated:
    """A chunk's sweep after evaluation: kept on its worker (:mod:`._stash`) until completion."""

    X: Any  # the iterate evaluated at (a fresh one for a chunk entering the window)
    F: Any
    A: Any
    R: Any
    start: int  # the first step evaluated
    evals: tuple[int, int, float]  # step and Jacobian evaluations, evaluation seconds


@dataclass(frozen=True)
class Summary:
    """The small part of a chunk's evaluation, for the coupling task."""

    start: int
    phi: Any  # the chunk's transfer: (B, m, m) dense, (B, m) diagonal, (B, m/b, b, b) blocks, or None
    end: Any  # (B, m): the linear step's last value from zero
    bad: Any  # (B,) bool: non-finite values in the chunk's linear step from zero
    last: Any  # the chunk's state after its last step before this sweep
    f_last: Any  # the chain's value at the chunk's last step
    evals: tuple[int, int, float]


@dataclass(frozen=True)
class Small:
    """The small part of a chunk's completion, for the decision.

    The decision needs the largest scaled update of the sweep and the first step whose
    update exceeds a threshold that depends on it; a chunk sends its largest update and the
    steps where the running maximum of its updates rises (a few, not one per step).
    """

    active: bool  # updated in this sweep (else: evaluated ahead of a prefix that passed it)
    rows: int = 0  # active steps
    peak: float = 0.0  # largest scaled update (inf: non-finite values held back)
    rises: Any = None  # (k,) int: offsets in the chunk's active steps where the running max rises
    levels: Any = None  # (k,) float64: the running maximum there (the sweep's exact first step left out)
    f0_bad: Any = None  # (B,) bool for the sweep's first chunk (its first step not finite), else None
    evals: tuple[int, int, float] = (0, 0, 0.0)

    def first_over(self, threshold: float) -> int | None:
        """The first active step (offset) whose update exceeds ``threshold``, or None."""
        hit = np.flatnonzero(self.levels > threshold) if self.levels is not None else ()
        return int(self.rises[hit[0]]) if len(hit) else None


@dataclass
class Packed:
    """A completion's result: the group's iterates (None: not reached yet) and its smalls."""

    arrays: tuple[Any, ...]
    smalls: dict[int, Small]


@dataclass(frozen=True)
class Coupling:
    """One sweep's coupling of its chunks, from the chunks' summaries.

    ``carry[j] = (c, poison)``: the linear step's value before chunk ``j`` (``(B, m)``,
    None for the first active chunk) and the batch elements held back by non-finite values
    before it; ``tail[j] = (state, keep)``: chunk ``j``'s new last state and where it keeps
    the old one (the completion uses both, so that the next round's evaluation of chunk
    ``j + 1`` starts from exactly the state chunk ``j`` holds).
    """

    sweeping: bool
    p: int = 0
    e: int = 0
    omega: float = 1.0
    active: tuple[int, ...] = ()
    carry: dict[int, Any] = field(default_factory=dict)
    tail: dict[int, Any] = field(default_factory=dict)
    edge: Edge | None = None
    filled: int = 0  # steps [0, filled) hold an iterate after this sweep


@dataclass
class Decision:
    """The state of the solve after a sweep, and what comes next.

    ``action``: ``"sweep"`` (another sweep), ``"converged"``, ``"stop"`` (finish with the
    loop from ``q``; ``reason`` says why), ``"done"`` (the fixed sweeps ran), ``"error"``
    (the chain itself is not finite at step ``bad[0]``, batch element ``bad[1]``). ``q`` is
    the converged prefix: the next sweep starts there (at the chunk start at or before it,
    not before the last sweep's start plus one, when the next round was submitted ahead of
    this decision, see :func:`._chain_reduce.start_of`).
    """

    action: str
    q: int
    omega: float
    filled: int  # steps [0, filled) hold an iterate
    sweeps: int = 0
    iterations: int = 0
    trouble: int = 0
    damping: float = 1.0
    residuals: tuple[float, ...] = ()
    prefixes: tuple[int, ...] = ()
    sweep_times: tuple[float, ...] = ()
    first_eval: float = 0.0
    t_step: float | None = None
    counts: tuple[int, int] = (0, 0)
    window: tuple[int, int] = (0, 0)  # the sweep just decided
    reason: str | None = None
    bad: tuple[int, int] | None = None
    edge: Edge | None = None  # the first round's (before any sweep)

    def but(self, **changes) -> Decision:
        return replace(self, **changes)


def group_arrays(X: Any, k: int) -> tuple[Any, ...]:
    """A group's iterates from what its last task left (None: no chunk reached yet)."""
    if X is None:
        return (None,) * k
    return X.arrays if isinstance(X, Packed) else tuple(X)
