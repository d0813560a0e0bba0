"""pcrsolve: sequential computations solved in parallel.

Tridiagonal, block tridiagonal and bidiagonal systems and linear recurrences by
Parallel Cyclic Reduction, Thomas elimination and a partitioned hybrid; nonlinear
chains ``x_k = f_k(x_{k-1})`` by Newton's method over the whole chain (DeepPCR).
NumPy inputs run on Numba CPU kernels, CuPy and other Array-API inputs on kernels
written against their namespace.
"""

from importlib.metadata import PackageNotFoundError, version

from ._backend import use_backend
from ._chain import Chain, ChainSolution, FunctionChain, chain_adjoint, sequential_chain, solve_chain
from ._config import show_config
from ._errors import SingularMatrixError
from ._factorization import (
    BlockTridiagonalFactorization,
    TridiagonalFactorization,
    factor_block_tridiagonal,
    factor_tridiagonal,
)
from ._linear import (
    linear_recurrence,
    solve_bidiagonal,
    solve_block_bidiagonal,
    solve_block_tridiagonal,
    solve_tridiagonal,
)

try:
    __version__ = version("pcrsolve")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "BlockTridiagonalFactorization",
    "Chain",
    "ChainSolution",
    "FunctionChain",
    "SingularMatrixError",
    "TridiagonalFactorization",
    "__version__",
    "chain_adjoint",
    "factor_block_tridiagonal",
    "factor_tridiagonal",
    "linear_recurrence",
    "sequential_chain",
    "show_config",
    "solve_bidiagonal",
    "solve_block_bidiagonal",
    "solve_block_tridiagonal",
    "solve_chain",
    "solve_tridiagonal",
    "use_backend",
]
