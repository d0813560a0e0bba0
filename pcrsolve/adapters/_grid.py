"""The layers x time grid of a stacked RNN as one chain over time (Naumov 2017).

The state of step ``t`` stacks every layer's state, ``H_t = [x_{0,t}; ...; x_{k-1,t}]`` (width
``M = sum m_l``); one step evaluates the layers bottom-up, layer ``l`` reading its own state
``x_{l,t-1}`` and the output (hidden state) of layer ``l-1`` at the same step. The Jacobian
``dH_t / dH_{t-1}`` is block lower triangular over the layers; Newton's method on this chain
takes about as many iterations as one layer (the dependence between layers inside a step is
resolved exactly by the step itself), where layer-by-layer solves add theirs up.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _backend
from ._dense import _float_dtype, _shape
from ._rnn_layer import Layer
from ._rnn_validation import check_steps

__all__ = ["GridChain", "into_output"]


class _Pass:
    """One bottom-up evaluation: per layer its gates, new state and input projections."""

    __slots__ = ("B", "be", "ctxs", "dtype", "g", "s", "xp", "y")


class GridChain:
    """A :class:`pcrsolve.Chain` over time whose state stacks all layers of a stacked RNN.

    Parameters
    ----------
    layers : list of Layer
        The layers, bottom first; layer ``l > 0`` reads the hidden state of layer ``l-1``.
    first : RNN
        Layer 0 as an :class:`~pcrsolve.adapters.RNN` on the network's inputs (its cached
        input projections are layer 0's).
    """

    def __init__(self, layers: list[Layer], first: Any) -> None:
        self.layers, self.first = layers, first
        self.sizes = [layer.m for layer in layers]
        self.offsets = [0, *np.cumsum(self.sizes).tolist()]
        self.m = self.offsets[-1]
        self.batch = first._batch
        self.B = math.prod(self.batch)
        self.T = first.n_steps
        self.dtype = first._dtype

    # ------------------------------------------------------------------ internals

    def _split(self, H: Any) -> list[Any]:
        return [H[..., a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def _check(self, x: Any, name: str, lead: tuple[int, ...]) -> None:
        want = (*lead, *self.batch, self.m)
        if _shape(x) != want:
            raise ValueError(
                f"`{name}` must have shape {want}: the states of all layers stacked, (*batch, sum m_l) = "
                f"{(*self.batch, self.m)}; got shape {_shape(x)}."
            )

    def _forward(self, x_prev: Any, k: Any, others: dict[str, Any] | None = None) -> _Pass:
        be = _backend.resolve({"inputs": self.first.inputs, "x_prev": x_prev, **(others or {})})
        xp = np if be.is_numba else be.xp
        x = np.asarray(x_prev) if be.is_numba else be.asarray(x_prev)
        s = int(x.shape[0]) if x.ndim else 0
        self._check(x, "x_prev", (s,))
        dtype = xp.result_type(_float_dtype(xp, x.dtype, "x_prev"), self.dtype)
        x3 = xp.reshape(xp.astype(x, dtype) if x.dtype != dtype else x, (s, self.B, self.m))
        ctx0 = self.first._context(be, dtype)
        kk = check_steps(k, s, self.T) if be.is_numba else xp.asarray(k)
        P = ctx0.P[kk] if be.is_numba else xp.take(ctx0.P, kk, axis=0)
        p = _Pass()
        p.be, p.xp, p.s, p.B, p.dtype = be, xp, s, self.B, dtype
        p.ctxs, p.g, p.y = [], [], []
        for l, (layer, xl) in enumerate(zip(self.layers, self._split(x3))):
            ctx = layer.context(be, dtype)
            if l > 0:
                P = layer.project(xp, ctx, self.layers[l - 1].output(p.y[-1]))
            g = layer.cell.forward(xp, ctx.prm, xl, P)
            p.ctxs.append(ctx)
            p.g.append(g)
            p.y.append(layer.cell.value(xp, g))
        return p

    def _vector(self, p: _Pass, v: Any, name: str) -> Any:
        xp = p.xp
        v = np.asarray(v) if p.be.is_numba else p.be.asarray(v)
        self._check(v, name, (p.s,))
        return xp.reshape(xp.astype(v, p.dtype) if v.dtype != p.dtype else v, (p.s, self.B, self.m))

    def _tangents(self, p: _Pass, V: Any, expand: bool) -> Any:
        """``J V`` layer by layer: ``V (..., M)``; ``expand``: ``V`` has its own axis before the last."""
        xp, out, dy = p.xp, [], None
        for l, (layer, vl) in enumerate(zip(self.layers, self._split(V))):
            g = p.g[l]
            if expand:  # one more axis for the tangents, broadcast against the gates
                g = {key: a[..., None, :] for key, a in g.items()}
            dP = None
            if l > 0:
                d_in = self.layers[l - 1].output(dy)
                dP = xp.reshape(
                    xp.matmul(d_in, xp.matrix_transpose(p.ctxs[l].U)),
                    (*d_in.shape[:-1], layer.G, layer.width),
                )
            dy = layer.cell.jvp(xp, p.ctxs[l].prm, g, vl, dP)
            out.append(dy)
        return xp.concat(out, axis=-1)

    def _out(self, p: _Pass, y: Any, tail: tuple[int, ...]) -> Any:
        return p.xp.reshape(y, (p.s, *self.batch, *tail))

    # ------------------------------------------------------------------ Chain protocol

    def step(self, x_prev: Any, k: Any) -> Any:
        """All layers' new states, bottom-up: ``(s, *batch, M)``."""
        p = self._forward(x_prev, k)
        return self._out(p, p.xp.concat(p.y, axis=-1), (self.m,))

    def linearize(self, x_prev: Any, k: Any) -> tuple[Any, Any]:
        """The step and its dense, block lower-triangular Jacobian from one bottom-up pass."""
        p = self._forward(x_prev, k)
        xp = p.xp
        eye = xp.eye(self.m, dtype=p.dtype)  # all M tangents at once
        J = xp.matrix_transpose(self._tangents(p, eye, expand=True))
        return self._out(p, xp.concat(p.y, axis=-1), (self.m,)), self._out(p, J, (self.m, self.m))

    def jac(self, x_prev: Any, k: Any) -> Any:
        """Dense Jacobians ``dH_t / dH_{t-1}``, ``(s, *batch, M, M)``."""
        return self.linearize(x_prev, k)[1]

    def jvp(self, x_prev: Any, k: Any, v: Any) -> Any:
        """``J v``, ``(s, *batch, M)``."""
        p = self._forward(x_prev, k, {"v": v})
        return self._out(p, self._tangents(p, self._vector(p, v, "v"), expand=False), (self.m,))

    def vjp(self, x_prev: Any, k: Any, u: Any) -> Any:
        """``J^T u``, ``(s, *batch, M)``: the layers top-down."""
        p = self._forward(x_prev, k, {"u": u})
        xp = p.xp
        us = self._split(self._vector(p, u, "u"))
        out: list[Any] = [None] * len(self.layers)
        carry = None  # the cotangent of layer l's output from layer l+1
        for l in range(len(self.layers) - 1, -1, -1):
            layer, ul = self.layers[l], us[l]
            if carry is not None:
                ul = ul + into_output(xp, layer, carry)
            out[l], deltas = layer.cell.backward(xp, p.ctxs[l].prm, p.g[l], ul)
            D = xp.reshape(deltas, (*deltas.shape[:-2], layer.G * layer.width))
            carry = xp.matmul(D, p.ctxs[l].U)
        return self._out(p, xp.concat(out, axis=-1), (self.m,))

    def sequential(self, x_prev: Any, start: int, stop: int) -> Any:
        """The plain loop over steps ``start .. stop-1``, each layer's loop in turn: ``(n, *batch, M)``."""
        be = _backend.resolve({"inputs": self.first.inputs, "x_prev": x_prev})
        xp = np if be.is_numba else be.xp
        x = np.asarray(x_prev) if be.is_numba else be.asarray(x_prev)
        self._check(x, "x_prev", ())
        dtype = xp.result_type(_float_dtype(xp, x.dtype, "x_prev"), self.dtype)
        x2 = xp.reshape(xp.astype(x, dtype) if x.dtype != dtype else x, (self.B, self.m))
        P = self.first._context(be, dtype).P[start:stop, ...]
        ys = []
        for l, (layer, xl) in enumerate(zip(self.layers, self._split(x2))):
            ctx = layer.context(be, dtype)
            if l > 0:
                P = layer.project(xp, ctx, self.layers[l - 1].output(ys[-1]))
            ys.append(layer.loop(be, ctx, P, xl))
        return xp.reshape(xp.concat(ys, axis=-1), (stop - start, *self.batch, self.m))


def into_output(xp: Any, layer: Layer, c: Any) -> Any:
    """A cotangent of the layer's output (its ``h``) as one of its whole state."""
    if layer.m == layer.width:
        return c
    return xp.concat([xp.zeros((*c.shape[:-1], layer.m - layer.width), dtype=c.dtype), c], axis=-1)
