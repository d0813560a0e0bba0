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


def jit(func=None, *, parallel: bool = False):
    """Compile ``func`` with the project's Numba options.

    Parameters
    ----------
    func : callable, optional
        The kernel. When omitted, returns a decorator.
    parallel : bool, optional
        Enable ``prange`` loops. Use only where a loop over independent systems
        or chunks pays for the threading overhead.
    """
    decorator = numba.njit(parallel=parallel, **_OPTIONS)
    return decorator if func is None else decorator(func)
