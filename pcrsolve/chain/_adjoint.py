"""``chain_adjoint``: back-propagation through a chain as one reverse linear recurrence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _backend, _validation
from ..linear._methods import choose
from ..linear._recurrence import recurrence_kernel
from . import _validation as check
from ._eval import Evaluator, has
from ._order import lift
from ._sweep import block_steps, to_kernel

__all__ = ["ADJOINT_METHODS", "chain_adjoint"]

ADJOINT_METHODS = ("auto", "sequential", "pcr", "hybrid")


def chain_adjoint(
    chain: Any, x0: Any, states: Any, grad_states: Any, *, method: str = "auto"
) -> tuple[Any, Any]:
    """Back-propagate through a chain: all cotangents in one reverse linear recurrence.

    With ``J_k = df_k/dx`` at ``states[k-1]`` (``states[-1] := x0``)::

        adj[n-1] = g[n-1];   adj[k] = g[k] + J_{k+1}^T adj[k+1];   grad_x0 = J_0^T adj[0]

    so ``adj[k]`` is the gradient of ``sum_j <g[j], states[j]>`` with respect to
    ``states[k]`` (counting its influence on later states) and ``grad_x0`` the gradient
    with respect to ``x0``. Exact whatever method produced ``states``. For a chain of order
    ``r`` (``J_{k,j} = df_k/dx_{k-j}``), ``adj[k] = g[k] + sum_j J_{k+j,j}^T adj[k+j]`` and
    ``grad_x0[r-i]`` is the gradient with respect to ``x_{-i}``, computed as the adjoint of
    the stacked first-order chain (see :func:`solve_chain`).

    Parameters
    ----------
    chain : Chain
        The chain, with ``jac`` (transposed here), ``linearize``, or ``vjp`` (``m`` probes in
        one call assemble ``J^T``).
    x0 : (*batch, m) array_like
        The initial state; for a chain of order ``r > 1``, ``(r, *batch, m)``, the ``r``
        states before the first step, oldest first.
    states : (n, *batch, m) array_like
        The solved states, e.g. ``solve_chain(...).states``.
    grad_states : (n, *batch, m) array_like
        ``g``: the gradient of the loss with respect to each state.
    method : {"auto", "sequential", "pcr", "hybrid"}, optional
        Method of the reverse linear recurrence, as in :func:`linear_recurrence`.

    Returns
    -------
    adj : (n, *batch, m) array
        The adjoint states.
    grad_x0 : (*batch, m) array
        The gradient with respect to ``x0`` (``(r, *batch, m)`` for a chain of order ``r``:
        one gradient per initial state).

    Raises
    ------
    ValueError
        For mismatched shapes, an unknown method, or a chain without ``jac``, ``linearize``
        or ``vjp``.
    FloatingPointError
        If the adjoint overflows although the inputs are finite.

    Notes
    -----
    Real chains are the target. For complex states the Jacobian from ``jac`` is
    transposed without conjugation and ``vjp`` is used as given, so the result follows the
    convention of the chain's own ``vjp`` (or the holomorphic one for ``jac``).

    Examples
    --------
    A linear chain ``x_k = 0.5 x_{k-1}``: the gradient of ``x_2`` with respect to ``x0``
    is ``0.5**3``.

    >>> import numpy as np, pcrsolve as pcr
    >>> chain = pcr.FunctionChain(
    ...     lambda x, k: 0.5 * x, jac=lambda x, k: np.full((len(k), 1, 1), 0.5)
    ... )
    >>> x0 = np.array([1.0]); states = pcr.sequential_chain(chain, x0, 3)
    >>> adj, gx0 = pcr.chain_adjoint(chain, x0, states, np.array([[0.0], [0.0], [1.0]]))
    >>> adj[:, 0], gx0
    (array([0.25, 0.5 , 1.  ]), array([0.125]))
    """
    check.check_chain(chain, "chain_adjoint")
    order = check.order(chain)
    method = _validation.method(method, ADJOINT_METHODS, "chain_adjoint")
    if not any(has(chain, n) for n in ("jac", "vjp", "linearize")):
        raise ValueError(
            "chain_adjoint needs the chain's Jacobians: give `jac(x_prev, k)` (transposed here), "
            "`vjp(x_prev, k, u)` or `linearize(x_prev, k)`, e.g. FunctionChain(step, vjp=...)."
        )
    be = _backend.resolve({"x0": x0, "states": states, "grad_states": grad_states})
    xp = be.xp
    parts = {
        k: _validation._numeric(be, a, k)
        for k, a in (("x0", x0), ("states", states), ("grad_states", grad_states))
    }
    dtype = _validation.result_dtype(xp, *parts.values())
    x = check.x0(be, parts["x0"], dtype)
    dtype = x.dtype
    # A chain of order r > 1 is back-propagated as a first-order chain on the stacked state.
    lifted = None if order == 1 else lift(be, chain, x, order, "full", "chain_adjoint")
    one = x if lifted is None else lifted.template
    if parts["states"].ndim != one.ndim + 1:
        raise ValueError(
            f"`states` must have shape (n, *batch, m) with (*batch, m) = {tuple(one.shape)} from `x0`; "
            f"got shape {tuple(parts['states'].shape)}."
        )
    n = parts["states"].shape[0]
    S = check.states_like(be, parts["states"], "states", n, one, "the solved states")
    G = check.states_like(be, parts["grad_states"], "grad_states", n, one, "one gradient per state")
    if n == 0:
        return xp.zeros((0, *one.shape), dtype=dtype), xp.zeros(x.shape, dtype=dtype)
    if lifted is not None:
        chain, x, S, G = lifted.chain, lifted.x0, lifted.stack(S), lifted.pad(G)
    batch, m = tuple(x.shape[:-1]), x.shape[-1]
    ev = Evaluator(chain, xp, dtype, batch, m)
    ks = xp.arange(n)
    B = math.prod(batch)
    fused = _fused(chain, dtype) if be.is_numba and method in ("auto", "sequential") else None
    if fused is not None:  # the chain's own pass (the adapters): no Jacobians formed
        flat = (n, B, m)
        adj, grad_x0 = fused(np.reshape(x, (B, m)), _contiguous(S, flat), _contiguous(G, flat))
        adj, grad_x0 = np.reshape(adj, G.shape), np.reshape(grad_x0, x.shape)
    else:
        Xprev = xp.concat([x[None, ...], S[: n - 1, ...]], axis=0)
        if be.is_numba and choose("recurrence", method, be, B, n) == "sequential":
            adj, grad_x0 = _blocked(ev, Xprev, G, ks)
        else:
            adj, grad_x0 = _whole(ev, be, x, Xprev, G, ks, method)
    if not (bool(xp.all(xp.isfinite(adj))) and bool(xp.all(xp.isfinite(grad_x0)))):
        raise FloatingPointError(
            "the chain adjoint overflowed: it is not finite although the inputs are; the chain "
            "amplifies perturbations too strongly for the dtype (use float64, or shorten the chain)."
        )
    if lifted is not None:
        return lifted.own(adj), lifted.unstack_x0(grad_x0)
    return adj, grad_x0


def _fused(chain: Any, dtype: Any) -> Any:
    """The chain's private ``_fused_adjoint(dtype)`` pass, ``run(x0 (B, m), states (n, B, m),
    G (n, B, m)) -> (adj, grad_x0)``, or None (see :meth:`Evaluator.fused` for the sweeps)."""
    get = getattr(chain, "_fused_adjoint", None)
    return get(dtype) if callable(get) else None


def _contiguous(a, shape: tuple[int, ...]):
    """``a`` as a C-contiguous array of ``shape`` (a view when it is one)."""
    return np.ascontiguousarray(np.reshape(a, shape))


def _whole(ev: Evaluator, be, x, Xprev, G, ks, method: str) -> tuple[Any, Any]:
    """All transposed Jacobians at once, then one reverse recurrence (PCR/hybrid, any backend)."""
    xp, batch, m, n = be.xp, ev.batch, ev.m, G.shape[0]
    B = math.prod(batch)
    use_vjp = not (has(ev.chain, "jac") or has(ev.chain, "linearize"))
    if use_vjp:
        JT0 = None
        rest = ev._probe("vjp", Xprev[1:, ...], ks[1:]) if n > 1 else None
    else:
        JT = ev.jac_transposed(Xprev, ks)
        JT0, rest = JT[0, ...], JT[1:, ...]
    # adj[k] = J_{k+1}^T adj[k+1] + g[k]: a reverse recurrence with A[k] = J_{k+1}^T and
    # A[n-1] = 0 (it multiplies adj[n] = 0).
    zero = xp.zeros((1, *batch, m, m), dtype=G.dtype)
    A = zero if rest is None else xp.concat([rest, zero], axis=0)
    adj = recurrence_kernel(
        be,
        to_kernel(xp, be, A, n, B, (m, m)),
        to_kernel(xp, be, G, n, B, (m,)),
        xp.zeros((B, m), dtype=G.dtype),
        dense=True,
        method=method,
        reverse=True,
    )
    adj = xp.reshape(xp.permute_dims(adj, (1, 0, 2)), (n, *batch, m))
    if JT0 is not None:
        grad_x0 = xp.matmul(JT0, adj[0, ..., None])[..., 0]
    else:
        grad_x0 = ev.vjp_or_jt(x[None, ...], ks[0:1], adj[0:1, ...], None)[0, ...]
    return adj, grad_x0


def _blocked(ev: Evaluator, Xprev, G, ks) -> tuple[Any, Any]:
    """The sequential reverse recurrence on NumPy arrays, block by block from the end.

    Each block ``[a, b)`` evaluates its own transposed Jacobians ``J_a^T .. J_{b-1}^T`` and
    receives from the block after it the carry ``J_b^T adj[b]``, so no more than one block
    of ``(s, *batch, m, m)`` Jacobians is ever held (memory O(block m^2), in cache) and the
    arithmetic is that of one sequential solve. The last carry is ``grad_x0 = J_0^T adj[0]``.
    """
    from ._fused import adjoint_block

    batch, m, n = ev.batch, ev.m, G.shape[0]
    B = math.prod(batch)
    c = block_steps(batch, m, G.dtype.itemsize)
    adj = np.empty((n, B, m), dtype=G.dtype)
    G3 = np.reshape(G, (n, B, m))
    carry = np.zeros((B, m), dtype=G.dtype)  # J_b^T adj[b]; adj[n] = 0
    for b in range(n, 0, -c):
        a = max(0, b - c)
        JT = ev.jac_transposed(Xprev[a:b, ...], ks[a:b])  # J_a^T .. J_{b-1}^T
        adj[a:b], carry = adjoint_block(np.reshape(JT, (b - a, B, m, m)), G3[a:b], carry)
    return np.reshape(adj, G.shape), np.reshape(carry, G.shape[1:])
