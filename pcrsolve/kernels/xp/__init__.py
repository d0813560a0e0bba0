"""The kernels written against an array namespace ``xp`` (CuPy, NumPy, Array API).

Each function takes ``xp`` first; :func:`table` binds it. Whole PCR levels and whole
batches are single array operations; the only Python loops run over levels, chunks or
(in the sequential methods) rows, never over batch elements, and no value is pulled
back to the host inside them. See :mod:`pcrsolve.kernels` for the contract.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import KernelTable

__all__ = ["table"]


def table(xp: Any) -> KernelTable:
    """Return the xp kernels bound to the namespace ``xp``."""
    from . import block, check, recurrence, tridiagonal

    def bind(f):
        return functools.partial(f, xp)

    return KernelTable(
        tridiagonal={
            "sequential": bind(tridiagonal.thomas),
            "pcr": bind(tridiagonal.pcr),
            "hybrid": bind(tridiagonal.hybrid),
            "pivoting": bind(tridiagonal.gtsv),
        },
        tridiagonal_factor={
            "sequential": (bind(tridiagonal.thomas_factor), bind(tridiagonal.thomas_factor_solve)),
            "pcr": (bind(tridiagonal.pcr_factor), bind(tridiagonal.pcr_factor_solve)),
            "hybrid": (bind(tridiagonal.hybrid_factor), bind(tridiagonal.hybrid_factor_solve)),
            "pivoting": (bind(tridiagonal.gttrf), bind(tridiagonal.gttrs)),
        },
        block_tridiagonal={
            "sequential": bind(block.block_thomas),
            "pcr": bind(block.block_pcr),
            "hybrid": bind(block.block_hybrid),
        },
        block_tridiagonal_factor={
            "sequential": (bind(block.block_thomas_factor), bind(block.block_thomas_factor_solve)),
            "pcr": (bind(block.block_pcr_factor), bind(block.block_pcr_factor_solve)),
            "hybrid": (bind(block.block_hybrid_factor), bind(block.block_hybrid_factor_solve)),
        },
        recurrence_dense={
            "sequential": bind(recurrence.dense_sequential),
            "pcr": bind(recurrence.dense_pcr),
            "hybrid": bind(recurrence.dense_hybrid),
        },
        recurrence_diag={
            "sequential": bind(recurrence.diag_sequential),
            "pcr": bind(recurrence.diag_pcr),
            "hybrid": bind(recurrence.diag_hybrid),
        },
        all_finite=bind(check.all_finite),
        tridiagonal_backward_error=bind(check.tridiagonal_backward_error),
        block_backward_error=bind(check.block_backward_error),
    )
