"""What ``method="auto"`` means, per backend, structure and shape.

The table (``B`` = number of systems, ``n`` = their length, ``T`` = Numba threads):

=====================  ================================  =============================
structure              ``numba`` (CPU)                   xp backends (CuPy, NumPy, ...)
=====================  ================================  =============================
scalar tridiagonal     ``sequential`` if ``B >= T`` or   ``pcr`` if ``n <= 1024``,
                       ``n < 65536``, else ``hybrid``    else ``hybrid``
block tridiagonal      ``sequential`` if ``B >= T`` or   ``pcr`` if ``n <= 1024``,
                       ``n < 4096``, else ``hybrid``     else ``hybrid``
recurrences,           ``sequential`` if ``B >= T`` or   ``pcr`` if ``n <= 1024``,
bidiagonal systems     ``n < 65536``, else ``hybrid``    else ``hybrid``
=====================  ================================  =============================

On the CPU the work-optimal methods win: with at least as many systems as threads, one
system per thread by Thomas elimination uses every core with O(n) work, and a single
long system is split into chunks (``hybrid``). On a GPU the O(n log n) work of PCR is
hidden by its O(log n) depth up to moderate ``n``; beyond that the hybrid's O(n) work pays.
"""

from __future__ import annotations

__all__ = ["choose"]

_LONG = {"tridiagonal": 65536, "block_tridiagonal": 4096, "recurrence": 65536}
_XP_PCR_MAX_N = 1024


def _threads() -> int:
    import numba

    return numba.get_num_threads()


def choose(structure: str, method: str, be, batch_size: int, n: int) -> str:
    """Resolve ``method`` (possibly ``"auto"``) to a kernel name for ``structure``."""
    if method != "auto":
        return method
    if be.is_numba:
        if batch_size >= _threads() or n < _LONG[structure]:
            return "sequential"
        return "hybrid"
    return "pcr" if n <= _XP_PCR_MAX_N else "hybrid"
