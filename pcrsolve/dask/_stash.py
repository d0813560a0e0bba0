"""A worker-side cache that lets one task hand a large result to a later task of its chunk.

A Dask task has one result. The evaluation of a chunk has two: the chain's values and
Jacobians (large, needed only by the chunk's completion on the same worker) and a summary
(small, needed by the one task that couples the chunks). Returning both would cost a second
task per chunk to split them; returning the large part to the coupling task would move it
across the cluster. So the evaluation returns the summary and leaves the large part here,
keyed by the solve, the round and the chunk; the completion takes it.

The cache is only a cache: a completion that does not find its entry (it runs in another
process than the evaluation, or a worker was lost and Dask recomputed one of them) evaluates
the chunk again from its own arguments, which are the evaluation's. The tasks' results are
the same either way, so Dask may rerun or move any of them.

Entries of a solve older than the round before the newest one are dropped when a newer one
arrives, entries of all but the most recent solves are dropped, and :func:`forget` drops a
solve's entries (after a run whose last round was cancelled).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["forget", "put", "size", "take"]

# Solves whose entries are kept (the most recent ones): a solve whose client disappeared
# leaves at most one round of entries behind until this many newer solves have run.
_MAX_SOLVES = 4

_LOCK = threading.Lock()
_STORE: dict[tuple[str, int, int], Any] = {}
_SOLVES: list[str] = []  # most recent last


def put(solve: str, round_: int, chunk: int, value: Any) -> None:
    """Keep ``value`` for chunk ``chunk`` of round ``round_`` of solve ``solve``."""
    with _LOCK:
        if solve in _SOLVES:
            _SOLVES.remove(solve)
        _SOLVES.append(solve)
        stale = set(_SOLVES[:-_MAX_SOLVES])
        del _SOLVES[:-_MAX_SOLVES]
        for key in [k for k in _STORE if k[0] in stale or (k[0] == solve and k[1] < round_ - 1)]:
            del _STORE[key]
        _STORE[(solve, round_, chunk)] = value


def take(solve: str, round_: int, chunk: int) -> Any:
    """Remove and return the entry, or None when this process does not hold it."""
    with _LOCK:
        return _STORE.pop((solve, round_, chunk), None)


def forget(solve: str) -> int:
    """Drop every entry of ``solve``; returns how many there were."""
    with _LOCK:
        keys = [k for k in _STORE if k[0] == solve]
        for key in keys:
            del _STORE[key]
        if solve in _SOLVES:
            _SOLVES.remove(solve)
        return len(keys)


def size() -> int:
    """The number of entries held (for tests)."""
    with _LOCK:
        return len(_STORE)
