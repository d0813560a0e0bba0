"""Chains of order r, ``x_k = f_k(x_{k-1}, ..., x_{k-r})``, as first-order chains on a stacked state.

The stacked (companion) state ``X_k = (x_k, x_{k-1}, ..., x_{k-r+1})`` (size ``r m``; block ``j``
holds lag ``j``) obeys the first-order chain
``X_k = (f_k(X_{k-1}), X_{k-1}[0], ..., X_{k-1}[r-2])``, whose Jacobian is the block companion
matrix::

    C_k = [[J_{k,1}, J_{k,2}, ..., J_{k,r}],      J_{k,j} = df_k / dx_{k-j}
           [I,       0,       ..., 0      ],
           [0,       I,       ..., 0      ],
           ...
           [0,       ...,     I,       0  ]]

Newton's linear step of the order-r chain, ``dx_k = sum_j J_{k,j} dx_{k-j} + r_k`` (a block
lower-banded triangular system), is exactly ``dX_k = C_k dX_{k-1} + (r_k, 0, ..., 0)`` on a
consistent iterate (every copy of ``x_k`` equal), and stays consistent, so the shells hand the
stacked chain to the unchanged loop, recurrence kernels and adjoint. :class:`OrderChain` is that
chain; :func:`lift` builds it with the stacked initial state and the conversions of states. Its
plain loop (:meth:`OrderChain.sequential`) keeps a history of the last ``r`` states instead of
building a stacked state per step, and runs the user's own ``sequential`` hook when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._eval import check_output, has

__all__ = ["Lift", "OrderChain", "companion", "lift", "order_method", "stacked"]

# How the public methods act on an order-r chain: the loop's method and the stacked chain's mode.
# "band1" keeps only the lag-1 Jacobian (a quasi-Newton method); "picard" takes J_{k,1} = I and
# drops the skips, as the diagonal method does with a diagonal of ones.
_LOOP_METHOD = {
    "newton": ("newton", "full"),
    "band1": ("newton", "band1"),
    "diagonal": ("diagonal", "full"),
    "picard": ("diagonal", "picard"),
    "jacobi": ("jacobi", "full"),
    "sequential": ("sequential", "full"),
}


def order_method(method: str) -> tuple[str, str]:
    """``(loop method, stacked-chain mode)`` of a public method on a chain of order > 1."""
    if method not in _LOOP_METHOD:  # "block": the companion matrix is not block diagonal
        raise ValueError(
            f"method={method!r} is not available for chains of order > 1 (their stacked Jacobian is a "
            f"companion matrix); use one of {', '.join(map(repr, _LOOP_METHOD))}."
        )
    return _LOOP_METHOD[method]


def stacked(xp: Any, history: Any, S: Any) -> Any:
    """Consistent stacked states ``(s, *batch, r m)`` of the states ``S (s, *batch, m)`` that
    follow ``history (r, *batch, m)``, oldest first: row ``i`` is ``(x_i, x_{i-1}, ..., x_{i-r+1})``.
    """
    r, s = history.shape[0], S.shape[0]
    Y = xp.concat([history, S], axis=0)  # Y[t] = x_{t-r}
    return xp.concat([Y[r - j : r - j + s, ...] for j in range(r)], axis=-1)


def companion(xp: Any, blocks: list[Any]) -> Any:
    """The block companion matrix ``[[B_1 ... B_r], [I 0 ...], ..., [0 ... I 0]]``.

    ``blocks``: ``r`` arrays ``(..., m, m)``; returns ``(..., r m, r m)``.
    """
    top = xp.concat(blocks, axis=-1)
    r, m = len(blocks), blocks[0].shape[-1]
    if r == 1:
        return top
    shift = xp.eye((r - 1) * m, r * m, dtype=top.dtype)
    shift = xp.broadcast_to(shift, (*top.shape[:-2], (r - 1) * m, r * m))
    return xp.concat([top, shift], axis=-2)


class OrderChain:
    """An order-``r`` chain seen as a first-order chain on the stacked state ``(s, *batch, r m)``.

    Parameters
    ----------
    chain : Chain
        The user's chain of order ``r``: ``step(x_prev (s, r, *batch, m), k) -> (s, *batch, m)``
        with ``x_prev[:, j] = x_{k-1-j}``, and optionally ``jac -> (s, r, *batch, m, m)``,
        ``linearize -> (f, jac)``, ``jvp(x_prev, k, v (s, r, *batch, m)) -> (s, *batch, m)``,
        ``vjp(x_prev, k, u (s, *batch, m)) -> (s, r, *batch, m)``, ``jac_diag -> (s, r, *batch, m)``,
        ``sequential(x_prev (r, *batch, m), start, stop) -> (stop - start, *batch, m)``.
    r : int
        The order.
    xp, dtype, batch, m
        The states' namespace, dtype, batch shape and size.
    mode : {"full", "band1", "picard"}
        ``"full"``: the companion of every lag Jacobian; ``"band1"``: of ``J_{k,1}`` alone;
        ``"picard"``: a diagonal ``(1, ..., 1, 0, ..., 0)`` (``J_{k,1} = I``, no skips).
    """

    def __init__(self, chain: Any, r: int, xp: Any, dtype: Any, batch: tuple[int, ...], m: int, mode: str):
        self.user, self.r, self.mode = chain, r, mode
        self.xp, self.dtype, self.batch, self.m = xp, dtype, batch, m
        self._checked: set[str] = set()
        self.sequential = self._sequential  # always: the history loop beats stacked steps
        dense = mode in ("full", "band1")
        # Absent callbacks are None, so that the evaluator sees exactly what the user's chain offers.
        self.jac = self._jac if dense and has(chain, "jac") else None
        self.linearize = self._linearize if dense and has(chain, "linearize") else None
        self.jvp = self._jvp if dense and has(chain, "jvp") else None
        self.vjp = self._vjp if has(chain, "vjp") else None
        if mode == "picard":
            self.jac_diag = self._ones
        else:
            self.jac_diag = self._jac_diag if mode == "full" and has(chain, "jac_diag") else None

    # ------------------------------------------------------------------ layout

    def unstack(self, X: Any) -> Any:
        """``(s, *batch, r m)`` -> ``(s, r, *batch, m)``: lag ``j`` on axis 1."""
        xp, nb = self.xp, len(self.batch)
        Y = xp.reshape(X, (X.shape[0], *self.batch, self.r, self.m))
        return xp.permute_dims(Y, (0, nb + 1, *range(1, nb + 1), nb + 2))

    def restack(self, Y: Any) -> Any:
        """``(s, r, *batch, m)`` -> ``(s, *batch, r m)``."""
        xp, nb = self.xp, len(self.batch)
        Y = xp.permute_dims(Y, (0, *range(2, nb + 2), 1, nb + 2))
        return xp.reshape(Y, (Y.shape[0], *self.batch, self.r * self.m))

    def _check(self, name: str, out: Any, want: tuple[int, ...], layout: str, s: int | None) -> Any:
        """Check the first output of the user's callback ``name`` (later ones are trusted);
        ``s`` is the callback's number of steps, None for ``sequential`` (no step axis)."""
        if name in self._checked:
            return out
        hint = (
            f"With order {self.r}, x_prev[:, j] is x_(k-1-j) (the states before step k, newest first), "
            "and a Jacobian has one m x m block per lag."
        )
        given = (self.r, *self.batch, self.m)
        check_output(name, out, want, layout, self.dtype, given if s is None else (s, *given), hint)
        self._checked.add(name)
        return out

    def _f(self, f: Any, s: int, name: str = "step") -> Any:
        return self._check(name, f, (s, *self.batch, self.m), "(s, *batch, m)", s)

    def _lags(self, J: Any, s: int, name: str, layout: str) -> Any:
        return self._check(name, J, (s, self.r, *self.batch, self.m, self.m), layout, s)

    def _shifted(self, F: Any, X: Any) -> Any:
        """``(F, X[0], ..., X[r-2])``: the stacked step from the new state ``F``."""
        return self.xp.concat([F, X[..., : (self.r - 1) * self.m]], axis=-1)

    def _companion(self, J: Any) -> Any:
        xp = self.xp
        lags = [J[:, j, ...] for j in range(self.r)]
        if self.mode == "band1":
            lags = [lags[0]] + [xp.zeros_like(lags[0])] * (self.r - 1)
        return companion(xp, lags)

    # ------------------------------------------------------------------ the stacked chain

    def step(self, X: Any, k: Any) -> Any:
        """``X_k = (f_k(X_{k-1}), X_{k-1}[0], ..., X_{k-1}[r-2])``."""
        s = X.shape[0]
        return self._shifted(self._f(self.user.step(self.unstack(X), k), s), X)

    def _sequential(self, X: Any, start: int, stop: int) -> Any:
        """The plain loop over steps ``[start, stop)`` from the stacked state ``X (*batch, r m)``.

        The user's ``sequential`` hook when it has one (given the last ``r`` states, newest
        first, as ``step`` gets them without the step axis), else its ``step`` on a buffer of
        the last ``r`` states: per step a view of the buffer, no stacked state. Returns the
        stacked states ``(stop - start, *batch, r m)``.
        """
        xp, r, s = self.xp, self.r, stop - start
        lags = self.unstack(X[None, ...])[0, ...]  # (r, *batch, m): lag j = x_{start-1-j}
        if has(self.user, "sequential"):
            S = self.user.sequential(lags, start, stop)
            S = self._check("sequential", S, (s, *self.batch, self.m), "(stop - start, *batch, m)", None)
        else:
            # Newest first: Z[s - 1 - i] = x_{start+i} and Z[s + j] = x_{start-1-j}, so that step
            # i's x_prev (x_{start+i-1-j} for lag j) is the contiguous view Z[s - i : s - i + r].
            Z = xp.concat([xp.empty((s, *self.batch, self.m), dtype=self.dtype), lags], axis=0)
            ks = xp.arange(start, stop)
            step = self.user.step
            for i in range(s):
                out = step(Z[None, s - i : s - i + r, ...], ks[i : i + 1])
                Z[s - 1 - i, ...] = (self._f(out, 1) if i == 0 else out)[0, ...]
            S = xp.flip(Z[:s, ...], axis=0)
        return stacked(xp, xp.flip(lags, axis=0), S)

    def _jac(self, X: Any, k: Any) -> Any:
        s = X.shape[0]
        J = self._lags(self.user.jac(self.unstack(X), k), s, "jac", "(s, order, *batch, m, m)")
        return self._companion(J)

    def _linearize(self, X: Any, k: Any) -> tuple[Any, Any]:
        s = X.shape[0]
        f, J = self.user.linearize(self.unstack(X), k)
        f = self._f(f, s, "linearize")
        J = self._lags(J, s, "linearize", "(f, jac) with jac (s, order, *batch, m, m)")
        return self._shifted(f, X), self._companion(J)

    def _jvp(self, X: Any, k: Any, V: Any) -> Any:
        xp, m, s = self.xp, self.m, X.shape[0]
        T = V
        if self.mode == "band1":  # a tangent on the last state only
            T = xp.concat([V[..., :m], xp.zeros_like(V[..., m:])], axis=-1)
        jv = self._f(self.user.jvp(self.unstack(X), k, self.unstack(T)), s, "jvp")
        return self._shifted(jv, V)

    def _vjp(self, X: Any, k: Any, U: Any) -> Any:
        xp, m, s = self.xp, self.m, X.shape[0]
        W = self.user.vjp(self.unstack(X), k, U[..., :m])
        W = self._check("vjp", W, (s, self.r, *self.batch, m), "(s, order, *batch, m)", s)
        # C^T U: lag j receives J_{k,j+1}^T U[0] and, through the shift, U[j+1].
        return self.restack(W) + xp.concat([U[..., m:], xp.zeros_like(U[..., :m])], axis=-1)

    def _jac_diag(self, X: Any, k: Any) -> Any:
        xp, s = self.xp, X.shape[0]
        D = self._check(
            "jac_diag",
            self.user.jac_diag(self.unstack(X), k),
            (s, self.r, *self.batch, self.m),
            "(s, order, *batch, m)",
            s,
        )
        # The companion's diagonal: J_{k,1}'s in the first block, zeros on the shift.
        d = D[:, 0, ...]
        return xp.concat([d] + [xp.zeros_like(d)] * (self.r - 1), axis=-1)

    def _ones(self, X: Any, k: Any) -> Any:
        xp, m = self.xp, self.m
        own = xp.ones((*X.shape[:-1], m), dtype=self.dtype)
        return xp.concat([own, xp.zeros((*X.shape[:-1], (self.r - 1) * m), dtype=self.dtype)], axis=-1)


@dataclass
class Lift:
    """An order-r problem on the stacked state: the chain, ``x0``, and conversions of states."""

    chain: OrderChain
    x0: Any  # X_{-1} = (x_{-1}, ..., x_{-r}): (*batch, r m)
    template: Any  # one state, (*batch, m): what the user's states look like
    history: Any  # the user's x0, (r, *batch, m) = (x_{-r}, ..., x_{-1})

    def stack(self, S: Any) -> Any:
        """States ``(n, *batch, m)`` -> consistent stacked states ``(n, *batch, r m)``."""
        return stacked(self.chain.xp, self.history, S)

    def pad(self, G: Any) -> Any:
        """Cotangents ``(n, *batch, m)`` of the states -> of the stacked states (zeros on the lags)."""
        xp, r = self.chain.xp, self.chain.r
        return xp.concat([G] + [xp.zeros_like(G)] * (r - 1), axis=-1)

    def own(self, X: Any) -> Any:
        """Stacked states ``(n, *batch, r m)`` -> the states ``(n, *batch, m)``."""
        return X[..., : self.chain.m]

    def unstack_x0(self, g: Any) -> Any:
        """A stacked initial-state array ``(*batch, r m)`` -> ``(r, *batch, m)`` in ``x0``'s order."""
        ch = self.chain
        lags = ch.unstack(g[None, ...])[0, ...]  # (r, *batch, m), lag j = x_{-1-j}
        return ch.xp.flip(lags, axis=0)


def lift(be: Any, chain: Any, x0: Any, order: int, mode: str, where: str) -> Lift:
    """The stacked problem of a chain of order ``order > 1`` from ``x0 (order, *batch, m)``."""
    xp = be.xp
    if x0.ndim < 2 or x0.shape[0] != order:
        raise ValueError(
            f"`x0` of a chain of order {order} (passed to {where}) must have shape (order, *batch, m): "
            f"the {order} states before the first step, x0[i] = x_(i-{order}), oldest first; got shape "
            f"{tuple(x0.shape)}."
        )
    batch, m = tuple(x0.shape[1:-1]), x0.shape[-1]
    stacked = OrderChain(chain, order, xp, x0.dtype, batch, m, mode)
    X0 = xp.concat([x0[order - 1 - j, ...] for j in range(order)], axis=-1)
    return Lift(stacked, X0, x0[order - 1, ...], x0)
