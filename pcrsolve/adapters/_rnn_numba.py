"""The diagonal cells (gru_diag, lstm_diag) on NumPy arrays: gates in Numba passes, tanh by NumPy.

The step and the structured Jacobian of a diagonal cell are elementwise; what costs is the
transcendental functions. NumPy's SIMD ``tanh`` is several times faster than the scalar libm
call a Numba loop makes, so one evaluation is: a compiled pass for the pre-activations (the
input projections read in place), ``np.tanh`` on the whole buffer, a compiled pass for the next
gate, ``np.tanh``, and a last compiled pass for the values or the Jacobian. The equations are
those of :mod:`._cells` (which the tests check these against).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["gates", "jac_blocks", "jac_diag", "value"]


_K: Any = None


def _k():
    """The kernel module, imported on first use (``import pcrsolve`` stays Numba-free)."""
    global _K
    if _K is None:
        from . import _rnn_kernels

        _K = _rnn_kernels
    return _K


def _empty(dtype: Any) -> Callable[[str, tuple[int, ...]], Any]:
    return lambda name, shape: np.empty(shape, dtype=dtype)


def gates(
    cell: str, x: Any, P: Any, kk: Any, a: Any, buffer: Callable[[str, tuple[int, ...]], Any] | None = None
) -> tuple[Any, ...]:
    """The gates at rows ``x (s, B, m)`` (C-contiguous), steps ``kk (s,)`` int64.

    ``buffer(name, shape)``: where to put them (arrays of ``x``'s dtype; a sweep reuses its
    buffers from block to block), new arrays when omitted.
    """
    K = _k()
    s, B, m = x.shape
    buffer = buffer or _empty(x.dtype)
    if cell == "gru_diag":
        zr = buffer("zr", (s, B, 2, m))
        K.gru_diag_pre(x, P, kk, a, zr)
        np.tanh(zr, out=zr)
        c = buffer("c", (s, B, m))
        K.gru_diag_cand(x, P, kk, a, zr, c)
        np.tanh(c, out=c)
        return x, zr, c
    w = m // 2
    fz = buffer("fz", (s, B, 2, w))
    K.lstm_diag_pre(x, P, kk, a, fz)
    np.tanh(fz, out=fz)
    oc = buffer("oc", (s, B, 2, w))
    K.lstm_diag_mid(x, P, kk, a, fz, oc)
    cn = buffer("cn", (s, B, w))
    cn[...] = oc[:, :, 1, :]
    np.tanh(oc, out=oc)  # -> tanh of half the o pre-activation, and tanh(c')
    return x, fz, cn, oc


def value(cell: str, g: tuple[Any, ...]) -> Any:
    """The new states ``(s, B, m)``."""
    y = np.empty_like(g[0])
    if cell == "gru_diag":
        _k().gru_diag_value(g[0], g[1], g[2], y)
    else:
        _k().lstm_diag_value(g[2], g[3], y)
    return y


def jac_blocks(cell: str, g: tuple[Any, ...], a: Any) -> Any:
    """``(s, B, m, 1, 1)`` (gru_diag) or ``(s, B, w, 2, 2)`` (lstm_diag)."""
    if cell == "gru_diag":
        return jac_diag(cell, g, a)[..., None, None]
    s, B, m = g[0].shape
    J = np.empty((s, B, m // 2, 2, 2), dtype=g[0].dtype)
    _k().lstm_diag_blocks(g[0], g[1], g[2], g[3], a, J)
    return J


def jac_diag(cell: str, g: tuple[Any, ...], a: Any) -> Any:
    """The Jacobians' diagonals ``(s, B, m)``."""
    if cell == "gru_diag":
        J = np.empty_like(g[0])
        _k().gru_diag_jac(g[0], g[1], g[2], a, J)
        return J
    blk = jac_blocks(cell, g, a)
    return np.concatenate([blk[..., 0, 0], blk[..., 1, 1]], axis=-1)
