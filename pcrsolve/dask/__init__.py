"""Scale-out on Dask: chunked structured solves and distributed chain sweeps.

Importing this subpackage imports Dask. The linear solvers take and return Dask arrays
(lazily); :func:`solve_chain` runs the chain solver's sweeps on a ``dask.distributed``
cluster.
"""

from ._chain import solve_chain
from ._recurrence import linear_recurrence, solve_bidiagonal, solve_block_bidiagonal
from ._tridiagonal import solve_block_tridiagonal, solve_tridiagonal

__all__ = [
    "linear_recurrence",
    "solve_bidiagonal",
    "solve_block_bidiagonal",
    "solve_block_tridiagonal",
    "solve_chain",
    "solve_tridiagonal",
]
