"""The one place that fixes Numba's options for every kernel.

Importing this module imports Numba; only kernel modules import it, and only the
kernel table imports those, so ``import pcrsolve`` stays free of Numba.
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["jit", "prange"]

prange = numba.prange

# cache=True: compile once per machine; no fastmath: IEEE semantics are part of
# the numerical contract (tiny-pivot detection, NaN checks); error_model="numpy":
# division by zero gives inf/NaN (detected by the shell) instead of raising.
_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def jit(func=None, *, parallel: bool = False, inline: bool = False):
    """Compile ``func`` with the project's Numba options.

    Parameters
    ----------
    func : callable, optional
        The kernel. When omitted, returns a decorator.
    parallel : bool, optional
        Enable ``prange`` loops. Use only where a loop over independent systems
        or chunks pays for the threading overhead.
    inline : bool, optional
        Inline the function into its callers at Numba's level (small helpers in hot
        loops: Numba does not inline calls between compiled functions by itself).
    """
    decorator = numba.njit(parallel=parallel, inline="always" if inline else "never", **_OPTIONS)
    return decorator if func is None else decorator(func)
