"""The public chain solvers: validate, resolve the backend once, run the loop, wrap.

:func:`solve_chain` hands validated arrays to the loop in :mod:`._loop` (which calls the
recurrence kernels directly); :func:`sequential_chain` runs the plain loop. Calls into the
user's chain go through :class:`._eval.Evaluator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import _backend, _validation
from . import _validation as check
from ._eval import Evaluator, has
from ._loop import solve
from ._order import lift, order_method
from ._policy import Options
from ._protocol import Chain, ChainSolution
from ._sequential import run_sequential

__all__ = ["CHAIN_METHODS", "auto_method", "sequential_chain", "solve_chain"]

CHAIN_METHODS = ("auto", "newton", "diagonal", "block", "picard", "jacobi", "sequential", "band1")
_KIND = {
    "newton": "dense",
    "band1": "dense",
    "diagonal": "diag",
    "block": "block",
    "picard": "identity",
    "jacobi": "zero",
}


def exact_method(chain: Chain) -> str | None:
    """The structured method a chain declares exact Newton (its private ``_exact_method``:
    ``"diagonal"`` for a diagonal Jacobian, ``"block"`` for a block-diagonal one), or None."""
    method = getattr(chain, "_exact_method", None)
    return method if method in ("diagonal", "block") else None


def auto_method(chain: Chain, fixed: bool) -> str | None:
    """The parallel method ``"auto"`` weighs against the loop: the structured method the chain
    declares exact Newton (:func:`exact_method`), else Newton when the chain gives dense
    Jacobians, else its block-diagonal or diagonal ones; None when it gives no Jacobians (in
    the fixed-iteration mode, which always sweeps: Jacobi)."""
    exact = exact_method(chain)
    if exact is not None:
        return exact
    if any(has(chain, n) for n in ("jac", "jvp", "linearize", "_fused_pass")):
        return "newton"
    if has(chain, "jac_blocks"):
        return "block"
    if has(chain, "jac_diag"):
        return "diagonal"
    return "jacobi" if fixed else None


# --------------------------------------------------------------------------- solvers


def solve_chain(
    chain: Chain,
    x0: Any,
    n_steps: int,
    *,
    method: str = "auto",
    x_init: Any = None,
    tol: float | None = None,
    max_iter: int | None = None,
    window: int | None = None,
    damping: float | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> ChainSolution:
    """Solve a chain ``x_k = f_k(x_{k-1})``, ``k = 0 .. n_steps-1``, for all states at once.

    The chain is one nonlinear system ``x_k - f_k(x_{k-1}) = 0`` (DeepPCR, Danieli et al.
    2023; also DEER, ParaRNN). Each parallel *sweep* evaluates every active step at once on
    the current iterate ``X``, ``F_k = f_k(X_{k-1})`` (``X_{-1} = x0``), and solves the
    linear recurrence ``dX_k = A_k dX_{k-1} + (F_k - X_k)`` in O(log n) depth (PCR) or by
    the work-optimal kernel on the CPU; then ``X += dX``. ``method`` chooses ``A_k``.

    Parameters
    ----------
    chain : Chain
        The chain: ``step`` and, depending on ``method``, derivatives (see :class:`Chain`
        and :class:`FunctionChain`).
    x0 : (*batch, m) array_like
        The state before the first step. Its array library decides the backend; integers
        promote to float64. For a chain of order ``r > 1`` (``chain.order``): ``(r, *batch,
        m)``, the ``r`` states before the first step, oldest first, ``x0[i] = x_{i-r}``.
    n_steps : int
        Number of steps ``n >= 0``.
    method : {"auto", "newton", "diagonal", "block", "picard", "jacobi", "sequential", "band1"}, optional
        ``"auto"`` (default): the faster exact route by the cost model (see Notes): the
        sequential loop, or Newton sweeps (``"diagonal"`` sweeps when the chain gives only
        ``jac_diag``, and ``"diagonal"`` or ``"block"`` sweeps for a chain whose Jacobian is
        diagonal or block diagonal, such as the structured cells of
        :class:`~pcrsolve.adapters.RNN`; always the loop when it gives no Jacobians, since the
        Jacobian-free methods converge only on special chains). The other values choose ``A_k`` of the
        linear step. ``"newton"``: the dense Jacobian (from ``linearize``, else ``jac``, else
        ``m`` ``jvp`` probes in one call); quadratic convergence, a linear chain in one
        iteration; Jacobian memory O(n m^2) (or O(window m^2)); on the CPU (NumPy states)
        O(block m^2), as sweeps run block by block, and none for the adapters, whose fused
        passes never form the Jacobians. ``"diagonal"``: its diagonal (``jac_diag``, else
        the diagonal of the dense one); memory O(n m). ``"block"``: its ``b x b`` diagonal
        blocks from ``jac_blocks`` (see :class:`Chain`): exact Newton when the Jacobian is
        block diagonal (ParaRNN's LSTM cells, ``b = 2``), at O(n m b^2) work and O(n m b)
        memory. ``"picard"``: the identity, suited to ``x + h g(x)`` chains (ODE solvers,
        diffusion samplers); needs only ``step``. ``"jacobi"``: zero, the fixed-point
        iteration ``X_k <- f_k(X_{k-1})``; needs only ``step``. ``"sequential"``: the plain
        loop (the chain's ``sequential`` hook when it has one). ``"band1"``: for chains of
        order ``r > 1``, Newton with the lag-1 Jacobians only (the skip connections'
        Jacobians dropped, see Notes); the same as ``"newton"`` for ``r = 1``. Which route
        ran, and why, is in ``route`` and ``route_reason`` of the result.
    x_init : (n_steps, *batch, m) array_like, optional
        A first guess of the states (a warm start); by default ``x0`` repeated (with a
        ``window``: each newly entering step starts from the latest state).
    tol : float, optional
        Convergence threshold on the scaled Newton update ``||dx_k|| / (1 + ||x_k||)``
        (2-norms over the state), an estimate of the forward error relative to the state's
        size, checked per step and per batch element. A step also counts as converged when
        the last two sweeps predict its remaining error within ``tol`` (quadratic
        convergence for Newton, the contraction rate for the other methods), which spares
        a sweep that would only confirm convergence. Default: ``eps**0.75`` of the dtype
        (1.8e-12 for float64, 6.4e-6 for float32). ``tol=0`` with ``max_iter=K`` is the
        fixed-iteration mode: exactly ``K`` sweeps (fewer only when ``K > n_steps``) with
        no host synchronisation inside the loop; the states are then the K-th iterate (the
        first ``K`` exact; with a ``window``, steps it never reached are run by the loop),
        and ``converged`` says whether the last update was within the default tolerance.
        ``tol=0`` without ``max_iter`` accepts only exact updates, so it ends with the loop's
        answer.
    max_iter : int, optional
        At most this many sweeps; if they do not converge, the remaining steps are run by
        the sequential loop (so the result is still the sequential one). Default: no
        count limit; the cost rules below bound the work.
    window : int, optional
        Sliding window (ParaDiGMS): sweep only steps ``[p, p + window)`` past the frozen
        prefix ``p``, sliding on as the prefix converges. Jacobian memory
        O(window m^2) instead of O(n m^2) (what matters on GPUs: CPU sweeps are blocked
        anyway).
    damping : float in (0, 1], optional
        Relaxation factor ``w`` of the update, ``X += w dX`` (default 1). The solver also
        halves it on its own after a sweep that met non-finite values without progress,
        and restores it after a clean sweep.
    callback : callable, optional
        Called after every sweep with a dict: ``iteration`` (sweep number, from 1),
        ``residual`` (its largest scaled update; a 0-d device array in fixed-iteration
        mode), ``prefix`` (converged steps), ``window`` (the swept ``(start, stop)``),
        ``damping``, ``n_step_evals``, ``n_jac_evals``.
    progress : bool, optional
        Show a tqdm bar over the converged steps when tqdm is importable, else print one
        line per sweep on stderr.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default ``x0`` (and ``x_init``) decide. The chain's callbacks
        receive arrays of that backend.

    Returns
    -------
    ChainSolution
        ``states (n_steps, *batch, m)``, ``converged``, ``iterations``, ``residuals``,
        ``status``, ``message``, ``n_step_evals``, ``n_jac_evals``.

    Raises
    ------
    FloatingPointError
        If the sequential chain itself produces NaN or inf (the message names the first
        such step): no solver can return finite states then.
    ValueError
        For a bad shape or option, or a method whose derivatives the chain lacks.
    TypeError
        For a chain without ``step``, a callback returning the wrong dtype, or options of
        the wrong type.

    Notes
    -----
    Guarantees. Step ``p`` after the frozen prefix follows an exact state, so a sweep sets
    it to ``f_p`` exactly: after ``i`` sweeps at least the first ``i`` states are exact,
    and the prefix of steps whose update is within ``tol`` (for every batch element) is
    frozen and never swept again. Non-finite values produced in a sweep (by ``f`` or ``J``
    at a poor iterate, or an overflowing linear solve) are held back from that position
    on, per batch element, so they never enter the iterate.

    Cost model (adaptive mode). The solver first runs the first steps (about ``n / 64``)
    with the sequential route, the chain's ``sequential`` hook when it has one, else one
    ``step`` call per step, in two timed calls: the slope gives ``t_seq``, the loop's cost per
    step, and these steps are exact. It then evaluates a sweep on (at most 64 of) those exact
    steps, carrying a fixed perturbation through their linear steps: this gives
    ``t_sweep``, a sweep's cost per step, and how a perturbation grows and turns per step,
    from which the number of sweeps is forecast (a contracting chain needs a few, a
    near-identity one, like an ODE integrator, a few more with its total drift, a chaotic or
    expanding one about as many as steps; the fitted rules are in the source,
    ``pcrsolve.chain._cost``). ``method="auto"`` runs the route predicted faster; an
    explicit parallel method runs its sweeps unless they are predicted to cost more than
    twice the loop. Every timing is taken twice (the faster counts), and the probe spends at
    most about 2% of the loop's time on the sweep evaluation.
    After every sweep the solver finishes the remaining steps ``[p, n)`` with the loop if (a)
    the sweeps so far, one more (at the fastest sweep time ``t_sweep`` seen) and the loop
    over the remaining steps would bring the whole solve past twice the loop,
    ``spent + t_sweep + (n - p) t_seq > 2 n t_seq``; or (b) from the second sweep on, once
    four sweeps have run or they have cost half the loop, the sweeps still needed
    (forecast from how fast the largest update shrinks, or from how fast the prefix
    advances) would take longer than the loop over the remaining steps,
    ``needed t_sweep > (n - p) t_seq``; or (c) three sweeps in a row met non-finite values
    without advancing past their exact first step (the update is halved after each). So the
    total stays within about twice the loop whatever the forecast, and within about twice
    the better route when the forecast is right. Timing makes the route and the switch
    point (not the answer, which is the sequential one within ``tol`` either way) vary
    between runs, most on a busy machine. The fixed-iteration mode (``tol=0`` with
    ``max_iter``) always sweeps (``"auto"``: Newton, or the diagonal method, or Jacobi for a
    chain without Jacobians) and times nothing.

    On NumPy inputs the linear steps run on the Numba kernels chosen by
    ``method="auto"`` of :func:`linear_recurrence` (the work-optimal loop on the CPU); on
    other backends on the PCR kernels.

    Chains of order ``r``. They are solved as first-order chains on the stacked state
    ``X_k = (x_k, x_{k-1}, ..., x_{k-r+1})`` (size ``r m``), whose Jacobian is the block
    companion matrix ``[[J_{k,1} ... J_{k,r}], [I 0 ...], ..., [0 ... I 0]]`` with ``J_{k,j} =
    df_k/dx_{k-j}``. ``"newton"``: this companion matrix, which makes each iteration exactly
    Newton's step on the block lower-banded system of the order-``r`` chain (memory O(n (r m)^2),
    on the CPU O(block (r m)^2)); ``"band1"``: ``J_{k,2..r}`` set to zero (quasi-Newton: the
    same cost per sweep, linear convergence, more iterations); ``"diagonal"``: the
    diagonal of ``J_{k,1}``, the older copies in the stacked state taken from the previous
    iterate; ``"picard"``: ``J_{k,1} = I`` likewise; ``"jacobi"``: zero (each state from the
    previous iterate's stacked state, whose lag-``j`` copy is ``j - 1`` sweeps old). Every
    method keeps the frozen-prefix guarantee: at most ``n`` sweeps. ``tol`` applies to the
    stacked state's update.

    See Also
    --------
    sequential_chain : The reference loop.
    chain_adjoint : Gradients through a solved chain.

    Examples
    --------
    A tanh network of 64 layers of width 4, one input:

    >>> import numpy as np, pcrsolve as pcr
    >>> rng = np.random.default_rng(0)
    >>> W = 0.3 * rng.standard_normal((64, 4, 4)); b = rng.standard_normal((64, 4))
    >>> def step(x, k):
    ...     return np.tanh(np.einsum("kij,kj->ki", W[k], x) + b[k])
    >>> def jac(x, k):
    ...     return (1 - step(x, k) ** 2)[:, :, None] * W[k]
    >>> sol = pcr.solve_chain(pcr.FunctionChain(step, jac=jac), np.zeros(4), 64)
    >>> sol.converged, sol.states.shape
    (True, (64, 4))
    >>> bool(np.allclose(sol.states, pcr.sequential_chain(pcr.FunctionChain(step), np.zeros(4), 64)))
    True
    """
    check.check_chain(chain, "solve_chain")
    order = check.order(chain)
    method = _validation.method(method, CHAIN_METHODS, "solve_chain")
    asked = method
    n = check.n_steps(n_steps)
    max_iter = check.optional_int(max_iter, "max_iter", 0)
    window = check.optional_int(window, "window", 1)
    tol_v = check.optional_float(tol, "tol", 0.0, math.inf, low_open=False)
    damping_v = check.optional_float(damping, "damping", 0.0, 1.0, low_open=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None; got {type(callback).__name__}.")
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be a bool; got {type(progress).__name__}.")
    check.needs(chain, method)

    be = _backend.resolve({"x0": x0, "x_init": x_init}, backend)
    xp = be.xp
    x = _validation._numeric(be, x0, "x0")
    dtype = _validation.result_dtype(
        xp, x, None if x_init is None else _validation._numeric(be, x_init, "x_init")
    )
    x = check.x0(be, x, dtype)
    dtype = x.dtype
    fixed = tol_v == 0.0 and max_iter is not None
    if method == "auto":
        method = auto_method(chain, fixed) or "sequential"
    public = method  # the route's name (an order-r chain's loop may run another method)
    exact = order == 1 and method == exact_method(chain)
    lifted = None
    if order > 1:  # solved as a first-order chain on the stacked state (see chain._order)
        method, mode = order_method(method)
        lifted = lift(be, chain, x, order, mode, "solve_chain")
    one = x if lifted is None else lifted.template
    if x_init is not None:
        X = xp.asarray(check.states_like(be, x_init, "x_init", n, one, "a guess of every state"), copy=True)
        X = X if lifted is None else lifted.stack(X)
        X = be.contiguous(X)  # the CPU kernels update the states through a reshaped view
    if lifted is not None:
        chain, x = lifted.chain, lifted.x0
    if x_init is None:
        X = xp.empty((n, *x.shape), dtype=dtype)
    ev = Evaluator(chain, xp, dtype, tuple(x.shape[:-1]), x.shape[-1])
    own = (lambda S: S) if lifted is None else lifted.own

    if n == 0:
        return ChainSolution(
            own(X),
            True,
            0,
            (),
            "converged",
            "nothing to solve (n_steps = 0).",
            0,
            0,
            "sequential",
            "n_steps = 0",
        )
    if method == "sequential":
        run_sequential(ev, X, x[None, ...], xp.arange(n), 0, n)
        why = (
            "method='sequential'"
            if asked == "sequential"
            else "auto: the chain gives no Jacobians (jac, jvp, linearize, jac_blocks or jac_diag), "
            "which the parallel methods auto weighs need; method='picard' or 'jacobi' sweeps with "
            "`step` alone"
        )
        return ChainSolution(
            own(X),
            True,
            0,
            (),
            "sequential",
            f"ran the {n} steps sequentially.",
            ev.n_step_evals,
            0,
            "sequential",
            why,
        )
    dtol = check.default_tol(xp, dtype)
    opts = Options(
        kind=_KIND[method],
        tol=dtol if tol_v is None else tol_v,
        fixed=fixed,
        max_iter=max_iter,
        window=window,
        damping=1.0 if damping_v is None else damping_v,
        callback=callback,
        progress=progress,
        default_tol=dtol,
        # The array-namespace path's kernel (CuPy: O(log n) depth); CPU sweeps pick theirs
        # per block (see chain._sweep.sweep_blocked).
        recurrence_method="pcr",
        method=public,
        auto=asked == "auto",
        exact=exact,
    )
    out = solve(ev, be, opts, x, X, n, have_init=x_init is not None)
    return ChainSolution(
        own(out.states),
        out.converged,
        int(out.iterations),
        tuple(float(r) for r in out.residuals),
        out.status,
        out.message,
        ev.n_step_evals,
        ev.n_jac_evals,
        out.route,
        out.route_reason,
    )


def sequential_chain(chain: Chain, x0: Any, n_steps: int) -> Any:
    """The reference loop: ``x_k = f_k(x_{k-1})`` one step at a time.

    Parameters
    ----------
    chain : Chain
        The chain: its ``sequential`` hook when it has one (one call for all steps), else
        ``step``, called with ``k`` of shape ``(1,)``.
    x0 : (*batch, m) array_like
        The state before the first step; its array library is the result's. For a chain of
        order ``r > 1``: ``(r, *batch, m)``, the ``r`` states before the first step, oldest
        first.
    n_steps : int
        Number of steps ``n >= 0``.

    Returns
    -------
    states : (n_steps, *batch, m) array
        ``states[k] = f_k(states[k-1])`` with ``states[-1] := x0``.

    Raises
    ------
    FloatingPointError
        If a step produces NaN or inf; the message names the first such step.

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> chain = pcr.FunctionChain(lambda x, k: 0.5 * x + k[:, None])
    >>> pcr.sequential_chain(chain, np.array([1.0]), 4)[:, 0]
    array([0.5   , 1.25  , 2.625 , 4.3125])
    """
    check.check_chain(chain, "sequential_chain")
    order = check.order(chain)
    n = check.n_steps(n_steps)
    be = _backend.resolve({"x0": x0})
    xp = be.xp
    x = check.x0(be, x0)
    lifted = None if order == 1 else lift(be, chain, x, order, "full", "sequential_chain")
    if lifted is not None:
        chain, x = lifted.chain, lifted.x0
    batch, m = tuple(x.shape[:-1]), x.shape[-1]
    X = xp.empty((n, *batch, m), dtype=x.dtype)
    ev = Evaluator(chain, xp, x.dtype, batch, m)
    X = run_sequential(ev, X, x[None, ...], xp.arange(n), 0, n)
    return X if lifted is None else lifted.own(X)
