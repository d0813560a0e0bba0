"""The linear layer: structured solvers, factorizations and the "auto"/fallback policy.

- :mod:`._tridiagonal` — the public shells of the tridiagonal and block tridiagonal solvers,
  and the breakdown and fallback checks of ``method="auto"``.
- :mod:`._recurrence` — linear recurrences and the bidiagonal solvers built on them.
- :mod:`._factorization` — factor once, solve for many right-hand sides.
- :mod:`._methods` — what ``method="auto"`` means per backend, structure and shape.
- :mod:`._fallback` — the pivoting banded LU used when a block elimination breaks down.

Every shell validates its inputs, resolves the backend once and calls a kernel from the
backend's table (:mod:`pcrsolve.kernels`).
"""

from ._factorization import (
    BlockTridiagonalFactorization,
    TridiagonalFactorization,
    factor_block_tridiagonal,
    factor_tridiagonal,
)
from ._recurrence import linear_recurrence, solve_bidiagonal, solve_block_bidiagonal
from ._tridiagonal import solve_block_tridiagonal, solve_tridiagonal

__all__ = [
    "BlockTridiagonalFactorization",
    "TridiagonalFactorization",
    "factor_block_tridiagonal",
    "factor_tridiagonal",
    "linear_recurrence",
    "solve_bidiagonal",
    "solve_block_bidiagonal",
    "solve_block_tridiagonal",
    "solve_tridiagonal",
]
