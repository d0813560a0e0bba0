"""The demo's table row and its timing: medians of interleaved repetitions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Row", "first_call", "interleaved", "relerr"]


@dataclass
class Row:
    """One line of the demo table."""

    case: str
    size: str
    reference: str
    error: float  # max |x - x_ref| / max |x_ref| (relative) or max |x - x_ref| (chains)
    t_reference: float  # median seconds
    t_pcrsolve: float  # median seconds
    warmup: float = 0.0  # seconds of the first pcrsolve call (compilation included)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.t_reference / self.t_pcrsolve if self.t_pcrsolve > 0 else float("inf")


def interleaved(
    baseline: Callable[[], Any], candidate: Callable[[], Any], rounds: int
) -> tuple[float, float]:
    """Median seconds of ``baseline`` and ``candidate``, timed in alternation ``rounds`` times."""
    tb, tc = [], []
    for _ in range(max(1, rounds)):
        t = time.perf_counter()
        baseline()
        tb.append(time.perf_counter() - t)
        t = time.perf_counter()
        candidate()
        tc.append(time.perf_counter() - t)
    return float(np.median(tb)), float(np.median(tc))


def first_call(f: Callable[[], Any]) -> tuple[Any, float]:
    """``(f(), seconds)``: the first call, compilation included."""
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def relerr(x, ref) -> float:
    """``max |x - ref| / max |ref|`` (0 for empty arrays)."""
    scale = float(np.max(np.abs(ref))) if np.size(ref) else 1.0
    return float(np.max(np.abs(np.asarray(x) - ref))) / (scale or 1.0) if np.size(ref) else 0.0
