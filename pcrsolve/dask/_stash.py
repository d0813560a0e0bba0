"""A worker-side cache that lets one task hand a large result to a later task of its chunk.

A Dask task has one result. The evaluation of a chunk has two: the chain's values and
Jacobians (large, needed only by the chunk's completion on the same worker) and a summary
(small, needed by the one task that solves the carries between chunks). Returning both would
cost a second task per chunk to split them; returning the large part to the carries task would
move it across the cluster. So the evaluation returns the summary and leaves the large part
here, keyed by the solve, the sweep and the chunk; the completion takes it.

The cache is only a cache: a completion that does not find its entry (it runs in another
process than the evaluation, or a worker was lost and Dask recomputed one of them) evaluates
the chunk again from its own arguments, which are the evaluation's. The tasks' results are
the same either way, so Dask may rerun or move any of them.

Entries of a solve older than the sweep before the newest one are dropped when a newer one
arrives, entries of all but the most recent solves are dropped, and :func:`forget` drops a
solve's entries (after a solve that raised, or whose evaluations made ahead were cancelled).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["forget", "put", "size", "take"]

# Solves whose entries are kept (the most recent ones): a solve whose client disappeared
# leaves at most one sweep of entries behind until this many newer solves have run.
_MAX_SOLVES = 4

_LOCK = threading.Lock()
_STORE: dict[tuple[str, int, int], Any] = {}
_SOLVES: list[str] = []  # most recent last


def put(solve: str, sweep: int, chunk: int, value: Any) -> None:
    """Keep ``value`` for chunk ``chunk`` of sweep ``sweep`` of solve ``solve``."""
    with _LOCK:
        if solve in _SOLVES:
            _SOLVES.remove(solve)
        _SOLVES.append(solve)
        stale = set(_SOLVES[:-_MAX_SOLVES])
        del _SOLVES[:-_MAX_SOLVES]
        for key in [k for k in _STORE if k[0] in stale or (k[0] == solve and k[1] < sweep - 1)]:
            del _STORE[key]
        _STORE[(solve, sweep, chunk)] = value


def take(solve: str, sweep: int, chunk: int) -> Any:
    """Remove and return the entry, or None when this process does not hold it."""
    with _LOCK:
        return _STORE.pop((solve, sweep, chunk), None)


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
