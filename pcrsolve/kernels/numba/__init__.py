"""Numba CPU kernels (NumPy arrays only). See :mod:`pcrsolve.kernels` for the contract.

Kernels compile on first use, one signature (dtype, layout) at a time, and are cached on disk
(``cache=True``): importing a module or building the table compiles nothing. A first call
compiles only what it runs, so the code is arranged to keep that small: a loop over
independent systems is a serial kernel over a range of systems, run on Python threads
(:mod:`._threads`) rather than in a ``prange`` region, whose compilation alone costs seconds;
small inputs never start a thread; the pivoting fallback of ``method="auto"`` compiles only
when a fallback happens, and its backward-error check only for methods that do not certify
their accuracy themselves (Thomas does). Modules: ``tridiagonal``, ``pivoting``,
``block`` (solvers and the sequential factorizations), ``tridiagonal_factor`` and
``block_factor`` (PCR and hybrid factorizations), ``recurrence``, ``check``.
"""

from __future__ import annotations

import functools

from .. import KernelTable

__all__ = ["table"]


@functools.cache
def table() -> KernelTable:
    """Import the kernel modules (compiling or loading cached code) and list them."""
    from . import block, block_factor, check, pivoting, recurrence, tridiagonal, tridiagonal_factor

    return KernelTable(
        tridiagonal={
            "sequential": tridiagonal.thomas,
            "pcr": tridiagonal.pcr,
            "hybrid": tridiagonal.hybrid,
            "pivoting": pivoting.gtsv,
        },
        tridiagonal_factor={
            "sequential": (tridiagonal.thomas_factor, tridiagonal.thomas_factor_solve),
            "pcr": (tridiagonal_factor.pcr_factor, tridiagonal_factor.pcr_factor_solve),
            "hybrid": (tridiagonal_factor.hybrid_factor, tridiagonal_factor.hybrid_factor_solve),
            "pivoting": (pivoting.gttrf, pivoting.gttrs),
        },
        block_tridiagonal={
            "sequential": block.block_thomas,
            "pcr": block.block_pcr,
            "hybrid": block.block_hybrid,
        },
        block_tridiagonal_factor={
            "sequential": (block.block_thomas_factor, block.block_thomas_factor_solve),
            "pcr": (block_factor.block_pcr_factor, block_factor.block_pcr_factor_solve),
            "hybrid": (block_factor.block_hybrid_factor, block_factor.block_hybrid_factor_solve),
        },
        recurrence_dense={
            "sequential": recurrence.dense_sequential,
            "pcr": recurrence.dense_pcr,
            "hybrid": recurrence.dense_hybrid,
        },
        recurrence_diag={
            "sequential": recurrence.diag_sequential,
            "pcr": recurrence.diag_pcr,
            "hybrid": recurrence.diag_hybrid,
        },
        all_finite=check.all_finite,
        tridiagonal_backward_error=check.tridiagonal_backward_error,
        block_backward_error=check.block_backward_error,
    )
