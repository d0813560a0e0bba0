"""The RNN's fused sweep pass: the private ``_fused_pass`` hook of :mod:`pcrsolve.chain`.

One block of a sweep of :func:`~pcrsolve.solve_chain` evaluates the cell at every step of
the block and solves the linear step ``dX_t = A_t dX_{t-1} + (F_t - X_t)`` without calling
the chain methods (no validation, no dispatch per call) and without storing ``A_t``:

- gru_diag, lstm_diag: the gates of the whole block in compiled passes with NumPy's SIMD
  ``tanh`` between them (:func:`._rnn_numba.gates`, the input projections read in place),
  then one compiled pass that forms the step values and runs the recurrence, computing each
  step's diagonal (or 2 x 2 blocks) from the gates as it goes;
- elman, gru: the gates by NumPy (the recurrent products of all the block's steps are one
  matrix product), then one compiled pass that runs the recurrence through the cell's
  ``J v`` (``O(m^2)`` per step; the dense Jacobian would cost ``O(m^3)`` for the GRU).

Kinds (the linear steps of :mod:`pcrsolve.chain`): ``"zero"`` and ``"identity"`` for every
cell; ``"diag"``, ``"block"`` and ``"dense"`` wherever they are the exact Jacobian (gru_diag:
all three; lstm_diag: ``"block"`` and ``"dense"``, and ``"diag"``, its ``J_cc`` and ``J_hh``);
``"dense"`` for elman and gru. Other kinds take the generic path (the chain methods and a
recurrence kernel), which is also the reference the tests hold these passes to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _backend
from . import _rnn_numba

__all__ = ["fused_pass"]

# The linear-step code of the kernels (see _rnn_sweep_kernels) per cell and kind.
_CODES = {
    "gru_diag": {"zero": 0, "identity": 1, "diag": 2, "block": 2, "dense": 2},
    "lstm_diag": {"zero": 0, "identity": 1, "diag": 2, "block": 3, "dense": 3},
    "elman": {"zero": 0, "identity": 1, "block": 3, "dense": 3},
    "gru": {"zero": 0, "identity": 1, "block": 3, "dense": 3},
}


def _kernels():
    from . import _rnn_sweep_kernels

    return _rnn_sweep_kernels


def applies(rnn: Any, dtype: Any) -> bool:
    """Whether the compiled passes serve NumPy states of ``dtype``: a real floating dtype that
    is the network's compute dtype (others take the generic path and its error messages)."""
    dtype = np.dtype(dtype)
    return dtype in (np.float32, np.float64) and rnn._compute_dtype(np, dtype) == dtype


def fused_pass(rnn: Any, kind: str, dtype: Any) -> Callable[..., None] | None:
    """The sweep pass of ``kind`` for NumPy states of ``dtype``, or None where it does not apply.

    The pass ``run(X, x_first, a, b, carry, F, dX)`` evaluates steps ``[a, b)`` at the states
    ``X (n, B, m)`` (the state before step ``a`` is ``x_first (B, m)``) and solves the linear
    step from ``dX[-1] = carry (B, m)``, writing ``F`` and ``dX`` (``(b - a, B, m)``).
    """
    cell = rnn._cell.name
    code = _CODES[cell].get(kind)
    if code is None or not applies(rnn, dtype):
        return None
    dtype = np.dtype(dtype)
    ctx = rnn._context(_backend.resolve({}, backend="numba"), dtype)
    T = rnn.n_steps
    work: dict[str, Any] = {}  # buffers reused by every block of every sweep of a solve

    def buffer(name: str, shape: tuple[int, ...]) -> Any:
        size = math.prod(shape)
        if name not in work or work[name].size < size:
            work[name] = np.empty(size, dtype=dtype)
        return work[name][:size].reshape(shape)

    evaluate = _EVALUATE[cell]

    def run(X, x_first, a: int, b: int, carry, F, dX) -> None:
        if b > T:
            raise ValueError(f"`k` must hold step indices in [0, {T}); got values in [{a}, {b - 1}].")
        s = b - a
        if a > 0 and x_first.ctypes.data == X[a - 1].ctypes.data:
            rows = X[a - 1 : b - 1]  # the solver's case: the states before the steps, in place
        else:
            rows = buffer("rows", (s, *X.shape[1:]))
            rows[0] = x_first
            rows[1:] = X[a : b - 1]
        evaluate(rnn._cell, ctx, rows, X, a, carry, code, F, dX, buffer)

    return run


def _gru_diag(cell, ctx, x, X, a, carry, code, F, dX, buffer) -> None:
    """The gates in compiled passes and NumPy's tanh, then the step values and the recurrence."""
    params = ctx.params.loop_args[0]
    kk = np.arange(a, a + x.shape[0], dtype=np.int64)
    _, zr, c = _rnn_numba.gates("gru_diag", x, ctx.P, kk, params, buffer)
    _kernels().gru_diag_sweep(x, zr, c, params, X, a, carry, code, F, dX)


def _lstm_diag(cell, ctx, x, X, a, carry, code, F, dX, buffer) -> None:
    params = ctx.params.loop_args[0]
    kk = np.arange(a, a + x.shape[0], dtype=np.int64)
    _, fz, cn, oq = _rnn_numba.gates("lstm_diag", x, ctx.P, kk, params, buffer)
    _kernels().lstm_diag_sweep(x, fz, cn, oq, params, X, a, carry, code, F, dX)


def _elman(cell, ctx, x, X, a, carry, code, F, dX, buffer) -> None:
    """``F = tanh(x W^T + P)``: the recurrent products of the whole block in one product."""
    s, B, m = x.shape
    WT = ctx.params.loop_args[0]
    np.matmul(x.reshape(s * B, m), WT, out=F.reshape(s * B, m))
    F += ctx.P[a : a + s, :, 0, :]
    np.tanh(F, out=F)
    if code == 3:
        _kernels().elman_linear(WT, 1.0 - F * F, F, X, a, carry, dX)
    else:
        _plain(F, X, a, carry, code, dX)


def _gru(cell, ctx, x, X, a, carry, code, F, dX, buffer) -> None:
    g = cell.forward(np, ctx.params.prm, x, ctx.P[a : a + x.shape[0]])
    F[...] = g["y"]
    if code == 3:
        gates = (g["h"], g["z"], g["r"], g["dz"], g["dc"], g["dr"])
        _kernels().gru_linear(*ctx.params.loop_args, *gates, F, X, a, carry, dX)
    else:
        _plain(F, X, a, carry, code, dX)


def _plain(F, X, a, carry, code, dX) -> None:
    """The linear step with ``A = I`` (code 1) or ``A = 0`` (code 0)."""
    from ..chain._fused import linear_block

    linear_block(None, F, X, a, carry, "identity" if code == 1 else "zero", dX)


_EVALUATE = {"gru_diag": _gru_diag, "lstm_diag": _lstm_diag, "elman": _elman, "gru": _gru}
