"""What a chain is: the :class:`Chain` protocol, :class:`FunctionChain`, and :class:`ChainSolution`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._validation import order_value

__all__ = ["Chain", "ChainSolution", "FunctionChain"]


@runtime_checkable
class Chain(Protocol):
    """A chain ``x_k = f_k(x_{k-1})``, ``k = 0 .. n-1``, evaluated many steps at a time.

    Only ``step`` is required. A chain may also define any of the optional methods below;
    a solver uses the ones its method needs (see :func:`solve_chain`). Each receives
    ``x_prev : (s, *batch, m)``, the states before steps ``k : (s,)`` (an integer array
    of step indices in the same array library as ``x_prev``, so a GPU chain can gather
    its per-step parameters on the device), and is vectorized over the leading axis:
    row ``i`` belongs to step ``k[i]``. Outputs keep the dtype of ``x_prev``. Callbacks
    must not write into ``x_prev`` or ``k`` (the solvers may pass their own states); the
    caller's ``x0`` is safe either way, the chain only ever sees a copy of it.

    - ``jac(x_prev, k) -> (s, *batch, m, m)``: the dense Jacobian ``df_k/dx``.
    - ``jac_diag(x_prev, k) -> (s, *batch, m)``: its diagonal.
    - ``jac_blocks(x_prev, k) -> (s, *batch, m/b, b, b)``: a block-diagonal Jacobian, for
      ``method="block"``; ``b`` (any divisor of ``m``) is the chain's choice. Block ``i``
      couples the state entries ``i, i + m/b, ..., i + (b-1) m/b`` (the state read as ``b``
      stacked parts of ``m/b`` entries): ``blocks[..., i, p, q] = J[p m/b + i, q m/b + i]``.
      For a state ``[c; h]`` of two parts of width ``w`` that is ``w`` blocks of size 2,
      each coupling ``c_i`` and ``h_i`` (a 2 x 2 block matrix of diagonals); ``b = 1`` is a
      diagonal Jacobian, ``b = m`` a dense one.
    - ``jvp(x_prev, k, v) -> (s, *batch, m)``: ``J v``.
    - ``vjp(x_prev, k, u) -> (s, *batch, m)``: ``J^T u``.
    - ``linearize(x_prev, k) -> (f, jac)``: step and dense Jacobian together, when fusing
      them is cheaper; preferred over ``step`` + ``jac`` by the Newton method.
    - ``sequential(x_prev, start, stop) -> (stop - start, *batch, m)``: the plain loop over
      steps ``start .. stop-1`` from the state ``x_prev : (*batch, m)`` before ``start``, in
      one call (no leading step axis on ``x_prev``). When present, :func:`sequential_chain`,
      ``method="sequential"`` and every fallback of :func:`solve_chain` run it instead of
      calling ``step`` once per step, and the cost model times it as the sequential route:
      give it when you have a faster loop than one ``step`` call per step (a compiled one,
      or your own tight loop).

    A chain may also have an attribute ``order`` (an int, 1 when absent): a chain of order
    ``r`` has skip connections, ``x_k = f_k(x_{k-1}, ..., x_{k-r})``. Its callbacks then
    receive the last ``r`` states, ``x_prev : (s, r, *batch, m)`` with ``x_prev[:, j] =
    x_{k-1-j}``; ``jac`` returns one Jacobian per lag, ``(s, r, *batch, m, m)`` with
    ``jac[:, j] = df_k/dx_{k-1-j}`` (and ``linearize`` its pair), ``jvp(x_prev, k, v)`` takes a
    tangent of every lag, ``v : (s, r, *batch, m)``, ``vjp(x_prev, k, u)`` returns one cotangent
    per lag, ``(s, r, *batch, m)``, ``jac_diag`` the diagonal of each lag's Jacobian,
    ``(s, r, *batch, m)``, and ``sequential(x_prev, start, stop)`` gets the ``r`` states before
    ``start`` in the same order, ``x_prev : (r, *batch, m)``; ``x0`` holds the ``r`` states
    before the first step (oldest first).

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> class Halving:
    ...     def step(self, x_prev, k):
    ...         return 0.5 * x_prev + 1.0
    >>> isinstance(Halving(), pcr.Chain)
    True
    """

    def step(self, x_prev: Any, k: Any) -> Any:
        """``f_k(x_prev)`` for every row: ``(s, *batch, m)``."""
        ...


class FunctionChain:
    """A :class:`Chain` made of functions.

    Parameters
    ----------
    step : callable ``(x_prev, k) -> (s, *batch, m)``
        The steps ``f_k``, vectorized over the leading axis (see :class:`Chain`).
    jac : callable ``(x_prev, k) -> (s, *batch, m, m)``, optional
        Dense Jacobians; needed (or ``jvp``) by ``method="newton"``.
    jac_diag : callable ``(x_prev, k) -> (s, *batch, m)``, optional
        Diagonals of the Jacobians, for ``method="diagonal"``.
    jac_blocks : callable ``(x_prev, k) -> (s, *batch, m/b, b, b)``, optional
        Block-diagonal Jacobians, for ``method="block"`` (see :class:`Chain` for the layout).
    jvp : callable ``(x_prev, k, v) -> (s, *batch, m)``, optional
        Jacobian-vector products; ``m`` of them (in one call) replace ``jac``.
    vjp : callable ``(x_prev, k, u) -> (s, *batch, m)``, optional
        Vector-Jacobian products ``J^T u``, for :func:`chain_adjoint`.
    sequential : callable ``(x_prev, start, stop) -> (stop - start, *batch, m)``, optional
        Your own loop over steps ``start .. stop-1`` from ``x_prev : (*batch, m)`` (see
        :class:`Chain`); the solvers use it for every sequential run.
    order : int, optional
        ``r >= 1`` (default 1): the chain ``x_k = f_k(x_{k-1}, ..., x_{k-r})`` reads the last
        ``r`` states (skip connections). The callbacks then take ``x_prev (s, r, *batch, m)``
        with ``x_prev[:, j] = x_{k-1-j}``, ``jac`` returns ``(s, r, *batch, m, m)`` (one
        Jacobian per lag), ``jvp`` takes ``v (s, r, *batch, m)``, ``vjp`` and ``jac_diag``
        return ``(s, r, *batch, m)``; the solvers take ``x0 (r, *batch, m) = (x_{-r}, ...,
        x_{-1})`` (see :class:`Chain`).

    Raises
    ------
    TypeError
        If ``step`` or a given derivative is not callable, or ``order`` is not an int.
    ValueError
        If ``order < 1``.

    Examples
    --------
    A scalar map ``x_k = cos(x_{k-1})`` with its derivative:

    >>> import numpy as np, pcrsolve as pcr
    >>> chain = pcr.FunctionChain(
    ...     lambda x, k: np.cos(x), jac=lambda x, k: -np.sin(x)[..., None]
    ... )
    >>> sol = pcr.solve_chain(chain, np.array([1.0]), 100)
    >>> round(float(sol.states[-1, 0]), 6)  # the fixed point of cos
    0.739085

    A chain of order 2, the Fibonacci recurrence ``x_k = x_{k-1} + x_{k-2}``:

    >>> fib = pcr.FunctionChain(lambda x, k: x[:, 0] + x[:, 1], order=2)
    >>> pcr.sequential_chain(fib, np.array([[0.0], [1.0]]), 6)[:, 0]
    array([ 1.,  2.,  3.,  5.,  8., 13.])
    """

    def __init__(
        self,
        step: Callable[[Any, Any], Any],
        *,
        jac: Callable[[Any, Any], Any] | None = None,
        jac_diag: Callable[[Any, Any], Any] | None = None,
        jac_blocks: Callable[[Any, Any], Any] | None = None,
        jvp: Callable[[Any, Any, Any], Any] | None = None,
        vjp: Callable[[Any, Any, Any], Any] | None = None,
        sequential: Callable[[Any, int, int], Any] | None = None,
        order: int = 1,
    ) -> None:
        given = {
            "step": step,
            "jac": jac,
            "jac_diag": jac_diag,
            "jac_blocks": jac_blocks,
            "jvp": jvp,
            "vjp": vjp,
            "sequential": sequential,
        }
        for name, f in given.items():
            if (f is not None or name == "step") and not callable(f):
                raise TypeError(f"FunctionChain: `{name}` must be callable; got {type(f).__name__}.")
        self.order = order_value(order, "order")
        self.step = step
        self.jac = jac
        self.jac_diag = jac_diag
        self.jac_blocks = jac_blocks
        self.jvp = jvp
        self.vjp = vjp
        self.sequential = sequential

    def __repr__(self) -> str:
        names = ("jac", "jac_diag", "jac_blocks", "jvp", "vjp", "sequential")
        given = [n for n in names if getattr(self, n) is not None]
        order = f", order={self.order}" if self.order != 1 else ""
        return f"FunctionChain(step{''.join(', ' + n for n in given)}{order})"


@dataclass(frozen=True)
class ChainSolution:
    """The result of :func:`solve_chain`.

    Attributes
    ----------
    states : (n_steps, *batch, m) array
        ``states[k] = f_k(states[k-1])`` with ``states[-1] := x0`` (``x0`` is not included),
        in the array library of ``x0``.
    converged : bool
        Whether ``states`` is the sequential result within ``tol``. Always true unless a
        fixed-iteration run (``tol=0`` with ``max_iter``) ended with an update above the
        dtype's default tolerance.
    iterations : int
        Parallel sweeps that changed some state by more than ``tol``. A sweep that only
        confirmed convergence (all its updates within ``tol``) is not counted, so a linear
        chain reports 1 and a warm start from the answer 0. In a fixed-iteration run, the
        number of sweeps.
    residuals : tuple of float
        Per sweep (including confirming ones, so ``len(residuals) >= iterations``), the
        largest scaled update ``||dx_k|| / (1 + ||x_k||)`` (2-norms) over the active steps and
        batch elements (``inf`` when non-finite values were held back).
    status : {"converged", "sequential", "max_iter"}
        ``"converged"``: every step converged in parallel sweeps. ``"sequential"``: the
        remaining steps were finished by the plain loop (``method="sequential"``, or the
        parallel solve did not pay; ``message`` says why and from which step).
        ``"max_iter"``: a fixed-iteration run whose last update exceeds the default
        tolerance.
    message : str
        A human-readable account of how the solve ended.
    n_step_evals : int
        Evaluations of single steps ``f_k`` (a call on ``s`` steps counts ``s``; batch
        elements are not counted separately).
    n_jac_evals : int
        Single-step Jacobian evaluations (dense, diagonal, or assembled from ``m`` probes;
        each counts once per step).
    route : {"sequential", "newton", "diagonal", "picard", "jacobi"}
        The route the solve took: ``"sequential"``, the plain loop for every step (the
        chain's ``sequential`` hook when it has one), or the method whose parallel sweeps
        ran; ``status`` then says whether the sweeps converged or the loop finished the
        rest after them.
    route_reason : str
        Why that route: the ``method`` asked for, or for ``method="auto"`` the cost model's
        prediction (the time per step of the loop and of a sweep, measured on the first
        steps, the expected number of sweeps, and both predicted totals).
    """

    states: Any
    converged: bool
    iterations: int
    residuals: tuple[float, ...]
    status: str
    message: str
    n_step_evals: int
    n_jac_evals: int
    route: str = ""
    route_reason: str = ""
