"""Timing shared by benchmark suites: warm up, then time candidates in alternation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["interleaved", "median_ms", "median_ratio"]


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: bool = True) -> dict[str, np.ndarray]:
    """Seconds per call of every function, over ``rounds`` rounds that call each in turn.

    With ``warmup``, every function runs once first, untimed (Numba compilation or cache
    loading, first-call costs); alternating spreads a loaded machine's slow moments over all
    candidates.
    """
    for f in fns.values() if warmup else ():
        f()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: np.array(t) for name, t in times.items()}


def median_ms(times: dict[str, np.ndarray], name: str) -> float:
    """The median time of ``name`` in milliseconds."""
    return float(np.median(times[name]) * 1e3)


def median_ratio(times: dict[str, np.ndarray], name: str, baseline: str = "baseline") -> float:
    """The median over rounds of ``baseline / name`` (> 1: ``name`` is faster)."""
    return float(np.median(times[baseline] / times[name]))
