"""How chunk tasks call the Numba kernels: thread-safe, and without oversubscribing the cores.

Dask runs chunk tasks concurrently in its worker threads (the threaded scheduler and
``dask.distributed`` workers alike, about one thread per core). The Numba kernels are
themselves parallel (``prange``), so the policy is:

- A task off the main thread runs its kernels with **one Numba thread**: Dask already keeps
  every core busy with one chunk each, and a parallel kernel per task would start ``T``
  threads per core. On the main thread (the synchronous scheduler, one chunk at a time) the
  kernels keep all of Numba's threads. ``numba.set_num_threads`` is thread-local, so one task's
  setting never leaks into another's.
- Numba's ``workqueue`` threading layer (used when neither TBB nor OpenMP is available) is not
  thread-safe: two threads launching parallel kernels at once abort the process. Under that
  layer, and before Numba has picked a layer, kernel calls from chunk tasks take one process-wide
  lock. The ``tbb`` and ``omp`` layers are thread-safe and take no lock.

Every call into the single-machine solvers from a chunk task goes through :func:`kernel_slot`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["kernel_slot", "needs_lock"]

_LOCK = threading.Lock()
_SAFE_LAYERS = ("tbb", "omp")


def needs_lock() -> bool:
    """Whether parallel kernels must be serialised: the ``workqueue`` layer, or not started yet."""
    import numba

    try:
        return numba.threading_layer() not in _SAFE_LAYERS
    except ValueError:  # raised until the first parallel kernel has run: the layer is unknown
        return True


@contextlib.contextmanager
def kernel_slot() -> Iterator[None]:
    """Run the enclosed kernel calls as the policy above says (a no-op on the main thread)."""
    if threading.current_thread() is threading.main_thread():
        yield
        return
    import numba

    before = numba.get_num_threads()
    lock = _LOCK if needs_lock() else contextlib.nullcontext()
    with lock:
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(before)
