"""The chain layer: nonlinear chains ``x_k = f_k(x_{k-1})`` solved in parallel (DeepPCR).

- :mod:`._protocol` — the :class:`Chain` protocol, :class:`FunctionChain`, :class:`ChainSolution`.
- :mod:`._solve` — the public shells :func:`solve_chain` and :func:`sequential_chain`.
- :mod:`._loop` — the sweeps-then-fallback driver; :mod:`._sweep` — one parallel sweep;
  :mod:`._policy` — acceptance thresholds and the cost rules that decide when to stop sweeping.
- :mod:`._sequential` — the plain loop and locating the first non-finite step.
- :mod:`._eval` — the one place user callbacks are called (checks, counts, Jacobian assembly).
- :mod:`._adjoint` — :func:`chain_adjoint`, back-propagation as one reverse recurrence.
- :mod:`._fused` — Numba passes fusing the per-sweep bookkeeping and the blocked adjoint.
- :mod:`._order` — chains of order r (skip connections) as first-order chains on a stacked state.
- :mod:`._autoregressive` — :func:`solve_autoregressive`, triangular fixed points ``x = func(x)``
  (autoregressive sampling); :mod:`._ar_loop`, :mod:`._ar_sweep`, :mod:`._ar_eval` its loop,
  sweeps and calls into ``func``.
- :mod:`._progress` — the progress bar; :mod:`._validation` — argument checks.
"""

from ._adjoint import chain_adjoint
from ._autoregressive import AutoregressiveSolution, solve_autoregressive
from ._protocol import Chain, ChainSolution, FunctionChain
from ._solve import sequential_chain, solve_chain

__all__ = [
    "AutoregressiveSolution",
    "Chain",
    "ChainSolution",
    "FunctionChain",
    "chain_adjoint",
    "sequential_chain",
    "solve_autoregressive",
    "solve_chain",
]
