"""pcrsolve: sequential computations solved in parallel.

Tridiagonal, block tridiagonal and bidiagonal systems and linear recurrences by
Parallel Cyclic Reduction, Thomas elimination and a partitioned hybrid
(:mod:`pcrsolve.linear`); nonlinear chains ``x_k = f_k(x_{k-1})`` by Newton's method over
the whole chain, DeepPCR (:mod:`pcrsolve.chain`). NumPy inputs run on Numba CPU kernels,
CuPy and other Array-API inputs on kernels written against their namespace
(:mod:`pcrsolve.kernels`). Ready-made chains live in :mod:`pcrsolve.adapters`, loaded on
first access like every subpackage that pulls in more than NumPy.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._backend import use_backend
from ._config import show_config
from ._errors import SingularMatrixError
from .chain import (
    AutoregressiveSolution,
    Chain,
    ChainSolution,
    FunctionChain,
    chain_adjoint,
    sequential_chain,
    solve_autoregressive,
    solve_chain,
)
from .linear import (
    BlockTridiagonalFactorization,
    TridiagonalFactorization,
    factor_block_tridiagonal,
    factor_tridiagonal,
    linear_recurrence,
    solve_bidiagonal,
    solve_block_bidiagonal,
    solve_block_tridiagonal,
    solve_tridiagonal,
)

__all__ = [
    "AutoregressiveSolution",
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
    "solve_autoregressive",
    "solve_bidiagonal",
    "solve_block_bidiagonal",
    "solve_block_tridiagonal",
    "solve_chain",
    "solve_tridiagonal",
    "use_backend",
]

# Imported on first attribute access (PEP 562): they load Numba kernels or optional libraries.
_LAZY_SUBPACKAGES = ("adapters", "dask", "kernels")


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name == "__version__":
        # importlib.metadata costs tens of milliseconds: only when asked for.
        from ._config import package_version

        version = package_version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_LAZY_SUBPACKAGES})
