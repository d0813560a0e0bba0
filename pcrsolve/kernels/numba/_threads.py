"""Loops over independent systems on Python threads, without compiling a parallel region.

A ``prange`` loop makes Numba compile a parallel region (a gufunc, its scheduler and the
parfor passes): a second or more for the region alone, paid by the first call of every new
signature, on top of the loop body. For a loop over independent systems nothing of that is
needed: every kernel is compiled with ``nogil=True``, so a serial kernel over a range of
systems ``[lo, hi)``, called from a few Python threads on disjoint ranges, uses the cores as
``prange`` would, and a first call compiles the serial kernel only (the one small inputs run
on the calling thread anyway).

The number of threads follows :func:`numba.get_num_threads`, so ``numba.set_num_threads`` and
``NUMBA_NUM_THREADS`` govern these loops as they govern ``prange``. Kernels whose parallel
phases depend on each other (PCR levels, the phases of the hybrid methods) keep ``prange``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba

__all__ = ["MIN_WORK", "split"]

#: Work (a rough count of flops) below which :func:`split` stays on the calling thread: waking
#: another thread costs tens of microseconds. Tests set it to 0 to exercise the threads.
MIN_WORK = 1 << 16

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the parent's worker threads do not exist: start a new pool there."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                workers = max(1, numba.config.NUMBA_NUM_THREADS - 1)
                _pool = ThreadPoolExecutor(workers, thread_name_prefix="pcrsolve")
    return _pool


def split(kernel: Callable[..., Any], total: int, *args: Any, work: float, align: int = 1) -> list[Any]:
    """Run ``kernel(*args, lo, hi)`` over ``[0, total)`` cut into one range per thread.

    Parameters
    ----------
    kernel : callable
        A ``nogil`` Numba kernel whose last two arguments are the range of systems it handles;
        the ranges are disjoint, so it must write only to their part of its outputs.
    total : int
        The number of systems.
    work : float
        The call's total work; below ``MIN_WORK`` (or with one thread) one call does it all.
    align : int, optional
        Range boundaries are multiples of ``align`` (a kernel that handles systems in groups).

    Returns
    -------
    list
        The kernel's return values, one per range, in order.
    """
    threads = min(numba.get_num_threads(), -(-total // align))
    if threads <= 1 or work < MIN_WORK:
        return [kernel(*args, 0, total)]
    groups = -(-total // align)
    bounds = [min(total, align * (groups * t // threads)) for t in range(threads + 1)]
    futures = [_executor().submit(kernel, *args, bounds[t], bounds[t + 1]) for t in range(1, threads)]
    first = kernel(*args, bounds[0], bounds[1])
    return [first, *(f.result() for f in futures)]
