"""One recurrent layer: a cell with its parameters, in any backend and dtype.

:class:`Layer` is what :class:`~pcrsolve.adapters.RNN` and
:class:`~pcrsolve.adapters.StackedRNN` share: the parameters cast per backend and dtype
(cached), the input projections ``U x + b`` of many inputs in one product, the plain loop
(compiled on NumPy arrays), the structured adjoint recurrence and the parameter gradients as
batched products.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._cells import Cell

__all__ = ["Layer", "Params"]


class Params:
    """A layer's parameters in one backend and dtype.

    ``prm`` by name (plus ``W_zr``, ``W_z`` and ``W_r`` stacked, for "gru"), ``U (G w, d_in)``
    and ``b (G w,)`` of all gates stacked, and ``loop_args``: the recurrent parameters in the
    layout of the Numba kernels (NumPy arrays only).
    """

    __slots__ = ("U", "b", "loop_args", "prm")


class Layer:
    """A cell and its validated parameters (arrays of one library and one real floating dtype)."""

    def __init__(self, cell: Cell, params: dict[str, Any], width: int, d_in: int) -> None:
        self.cell, self.params, self.width, self.d_in = cell, params, width, d_in
        self.m = cell.parts * width
        self.G = len(cell.gates)
        self._cache: dict[tuple[str, Any], Params] = {}

    def output(self, states: Any) -> Any:
        """The layer's output, the hidden state ``h`` (the second half of ``[c; h]`` for lstm_diag)."""
        return states[..., self.m - self.width :]

    def context(self, be, dtype) -> Params:
        """The parameters in ``be`` and ``dtype``, cached."""
        key = (be.name, dtype)
        ctx = self._cache.get(key)
        if ctx is not None:
            return ctx
        xp = np if be.is_numba else be.xp

        def conv(a):
            a = be.asarray(a)
            return be.contiguous(xp.astype(a, dtype) if a.dtype != dtype else a)

        cell = self.cell
        prm = {n: conv(v) for n, v in self.params.items()}
        if cell.name == "gru":
            prm["W_zr"] = be.contiguous(xp.concat([prm["W_z"], prm["W_r"]], axis=0))
        ctx = Params()
        ctx.prm = prm
        ctx.U = be.contiguous(xp.concat([prm[n] for n in cell.input_names], axis=0))
        ctx.b = xp.concat([prm[n] for n in cell.bias_names], axis=0)
        ctx.loop_args = self._loop_args(prm) if be.is_numba else None
        self._cache[key] = ctx
        return ctx

    def _loop_args(self, prm) -> tuple[Any, ...]:
        name = self.cell.name
        if name == "elman":
            return (np.ascontiguousarray(prm["W"].T),)
        if name == "gru":
            return (np.ascontiguousarray(prm["W_zr"].T), np.ascontiguousarray(prm["W_c"].T))
        return (np.ascontiguousarray(np.stack([prm[n] for n in self.cell.recurrent])),)

    def project(self, xp: Any, ctx: Params, X: Any) -> Any:
        """``U_g x + b_g`` for inputs ``X (..., d_in)``: ``(..., G, w)``, one matrix product."""
        lead = tuple(X.shape[:-1])
        P = xp.matmul(xp.reshape(X, (math.prod(lead), self.d_in)), xp.matrix_transpose(ctx.U))
        if isinstance(P, np.ndarray):
            P += ctx.b  # in place: the projections of a long sequence are large (page faults)
        else:
            P = P + ctx.b
        return xp.reshape(P, (*lead, self.G, self.width))

    def loop(self, be, ctx: Params, P: Any, x0: Any) -> Any:
        """The plain loop over ``P (n, B, G, w)`` from ``x0 (B, m)``: states ``(n, B, m)``."""
        n, B = P.shape[0], P.shape[1]
        if be.is_numba:
            from . import _rnn_kernels

            out = np.empty((n, B, self.m), dtype=P.dtype)
            loop = getattr(_rnn_kernels, f"{self.cell.name}_loop")
            loop(np.ascontiguousarray(x0), np.ascontiguousarray(P), *ctx.loop_args, 0, n, out)
            return out
        xp = be.xp
        outs, h = [], x0[None, ...]
        for t in range(n):
            h = self.cell.value(xp, self.cell.forward(xp, ctx.prm, h, P[t : t + 1, ...]))
            outs.append(h)
        return xp.concat(outs, axis=0) if outs else xp.zeros((0, B, self.m), dtype=P.dtype)

    def adjoint(self, be, ctx: Params, g: dict[str, Any], G3: Any, dense_adjoint) -> Any:
        """``adj (T, B, m)`` with ``adj[t] = G3[t] + J_{t+1}^T adj[t+1]``, from the gates ``g``.

        Structured cells: one reverse recurrence with their diagonal or 2 x 2-block Jacobians
        (never a dense ``m x m`` matrix). Dense cells: ``dense_adjoint()``, the chain solver's
        adjoint with dense Jacobians.
        """
        from ..chain._blocks import block_recurrence
        from ..linear._recurrence import recurrence_kernel

        cell = self.cell
        if cell.block is None:
            return dense_adjoint()
        xp = np if be.is_numba else be.xp
        B, m = G3.shape[1], G3.shape[2]
        # adj[t] = J_{t+1}^T adj[t+1] + g[t]: a reverse recurrence with A[t] = J_{t+1}^T, A[T-1] = 0.
        if cell.block == 1:
            J = cell.jac_diag(xp, ctx.prm, g)
            A = xp.concat([J[1:, ...], xp.zeros((1, B, m), dtype=J.dtype)], axis=0)
            Ak = be.contiguous(xp.permute_dims(A, (1, 0, 2)))
            Gk = be.contiguous(xp.permute_dims(G3, (1, 0, 2)))
            zero = xp.zeros((B, m), dtype=J.dtype)
            adj = recurrence_kernel(be, Ak, Gk, zero, dense=False, method="auto", reverse=True)
            return xp.permute_dims(adj, (1, 0, 2))
        J = cell.jac_blocks(xp, ctx.prm, g)
        A = xp.concat([J[1:, ...], xp.zeros((1, *J.shape[1:]), dtype=J.dtype)], axis=0)
        return block_recurrence(be, A, G3, method="auto", reverse=True, transpose=True)

    def backward_compiled(
        self, ctx: Params, x0: Any, S: Any, P: Any, G: Any, keep_adj: bool = False
    ) -> tuple[Any, Any, dict[str, Any], Any]:
        """Back-propagation in one compiled reverse pass (NumPy arrays, any cell).

        ``x0 (B, m)``, states ``S (T, B, m)``, projections ``P (T, B, G, w)`` (at least ``T``
        rows), cotangents ``G (T, B, m)``. Returns the gate deltas ``(T, B, G, w)``,
        ``dLoss/dx0 (B, m)``, the recurrent parameters' gradients and, with ``keep_adj``, the
        adjoint ``(T, B, m)`` (else None). The diagonal cells recompute their gates in the
        pass and accumulate the recurrent gradients there; the dense cells' gates come from
        one vectorized evaluation (matrix products), their recurrent gradients are products
        after the pass.
        """
        from . import _rnn_backward_kernels as K

        T, B = S.shape[0], S.shape[1]
        c = np.ascontiguousarray
        x0, S, G, P = c(x0), c(S), c(G), c(P[:T])
        deltas = np.empty((T, B, self.G, self.width), dtype=S.dtype)
        carry = np.empty((B, self.m), dtype=S.dtype)
        adj = np.empty((T if keep_adj else 0, B, self.m), dtype=S.dtype)
        cell, prm = self.cell, ctx.prm
        if cell.block is not None:
            agrad = np.empty((len(cell.recurrent), self.width), dtype=S.dtype)
            kernel = getattr(K, f"{cell.name}_backward")
            kernel(x0, S, P, ctx.loop_args[0], G, deltas, carry, agrad, adj)
            recurrent = {name: agrad[i] for i, name in enumerate(cell.recurrent)}
        else:
            g = cell.forward(np, prm, np.concatenate([x0[None, ...], S[: T - 1]]), P)
            if cell.name == "elman":
                K.elman_backward(prm["W"], g["d"], G, deltas, carry, adj)
            else:
                gates = [c(g[n]) for n in ("h", "z", "r", "dz", "dc", "dr")]
                K.gru_backward(prm["W_zr"], prm["W_c"], *gates, G, deltas, carry, adj)
            recurrent = cell.recurrent_grads(np, g, deltas)
        return deltas, carry, recurrent, (adj if keep_adj else None)

    def param_grads(
        self, xp: Any, ctx: Params, deltas: Any, X: Any, recurrent: dict[str, Any]
    ) -> dict[str, Any]:
        """All parameter gradients and the inputs' from the gate deltas ``(T, B, G, w)``.

        Each is one product over all steps and batch elements (LayerPipe's split: they need
        only the deltas): ``dU_g = sum delta_g x^T``, ``db_g = sum delta_g`` and ``"inputs" =
        sum_g U_g^T delta_g`` (shape ``(T, B, d_in)``); ``recurrent`` (the recurrent
        parameters' gradients, e.g. from :meth:`Cell.recurrent_grads`) is passed through.
        """
        T, B = deltas.shape[0], deltas.shape[1]
        w = self.width
        D = xp.reshape(deltas, (T * B, self.G * w))
        dU = xp.matmul(xp.matrix_transpose(D), xp.reshape(X, (T * B, self.d_in)))
        db = xp.sum(D, axis=0)
        out: dict[str, Any] = {}
        for i, (nu, nb) in enumerate(zip(self.cell.input_names, self.cell.bias_names)):
            out[nu] = dU[i * w : (i + 1) * w, ...]
            out[nb] = db[i * w : (i + 1) * w]
        out.update(recurrent)
        out["inputs"] = xp.reshape(xp.matmul(D, ctx.U), (T, B, self.d_in))
        return out
