"""Numba kernels of RNN back-propagation on the CPU: one reverse pass over the steps per cell.

At step ``t`` (from the last) the cotangent of the new state is ``u = G[t] + carry`` (the
adjoint ``adj[t]``, written when ``adj`` has ``T`` rows); it is propagated to the gates'
pre-activations (``deltas[t]``, from which every parameter gradient is a product) and to the
state before the step (the next ``carry``, ``J_t^T u``). The last carry is ``dLoss/dx0``.

- gru_diag, lstm_diag: the gates are recomputed from the state before each step (``S[t-1]``,
  ``x0`` for ``t = 0``), for the whole batch at once with the vectorized tanh of the loops,
  and the recurrent parameters' gradients are accumulated in the same pass (``agrad``).
- elman, gru: the gates of all steps come in (computed by NumPy in matrix products); the
  pass does the matrix-vector products with the recurrent weights ``W`` as stored
  (``W^T v`` in the loops' axpy order), ``O(w^2)`` per step instead of a dense Jacobian's
  ``O(w^3)`` (GRU).

Clean input assumed (see :mod:`pcrsolve.kernels`): C-contiguous arrays of one real floating
dtype, nothing raised. Layout: states ``S (T, B, m)``, projections ``P (T, B, G, w)``,
cotangents ``G (T, B, m)``, ``deltas (T, B, G, w)``, ``carry (B, m)``, ``adj (T or 0, B, m)``.
The equations are those of :mod:`._cells`.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._rnn_kernels import _gru_diag_gates, _matvec_t, _tanh_all

__all__ = ["elman_backward", "gru_backward", "gru_diag_backward", "lstm_diag_backward"]


@jit
def gru_diag_backward(x0, S, P, a, G, deltas, carry, agrad, adj):  # pragma: no cover - compiled
    """``deltas``: d/d(z, r, c pre-activations); ``agrad (3, w)``: ``a_z, a_r, a_c``."""
    T, B, w = S.shape
    n = B * w
    keep = adj.shape[0] > 0
    zr = np.empty(2 * n, dtype=S.dtype)
    c = np.empty(n, dtype=S.dtype)
    carry[...] = 0.0
    agrad[...] = 0.0
    for t in range(T - 1, -1, -1):
        hs = S[t - 1] if t > 0 else x0
        _gru_diag_gates(a, P, t, hs, zr, c)
        for b in range(B):
            for i in range(w):
                h = hs[b, i]
                z = 0.5 * zr[b * w + i] + 0.5
                r = 0.5 * zr[n + b * w + i] + 0.5
                ci = c[b * w + i]
                u = G[t, b, i] + carry[b, i]
                if keep:
                    adj[t, b, i] = u
                d_z = u * (ci - h) * (z * (1.0 - z))
                d_c = u * z * (1.0 - ci * ci)
                g_rh = a[2, i] * d_c
                d_r = g_rh * h * (r * (1.0 - r))
                carry[b, i] = u * (1.0 - z) + g_rh * r + a[0, i] * d_z + a[1, i] * d_r
                deltas[t, b, 0, i] = d_z
                deltas[t, b, 1, i] = d_r
                deltas[t, b, 2, i] = d_c
                agrad[0, i] += d_z * h
                agrad[1, i] += d_r * h
                agrad[2, i] += d_c * (r * h)


@jit
def lstm_diag_backward(x0, S, P, a, G, deltas, carry, agrad, adj):  # pragma: no cover - compiled
    """``deltas``: d/d(f, z, o pre-activations); ``agrad (5, w)``: ``a_f, a_z, a_o, p_f, p_o``."""
    T, B, m = S.shape
    w = m // 2
    n = B * w
    keep = adj.shape[0] > 0
    fz = np.empty(2 * n, dtype=S.dtype)  # half the f, then the z pre-activations
    oc = np.empty(2 * n, dtype=S.dtype)  # half the o pre-activations, then c'
    carry[...] = 0.0
    agrad[...] = 0.0
    for t in range(T - 1, -1, -1):
        xs = S[t - 1] if t > 0 else x0
        for b in range(B):
            for i in range(w):
                c, h = xs[b, i], xs[b, w + i]
                fz[b * w + i] = 0.5 * (a[0, i] * h + a[3, i] * c + P[t, b, 0, i])
                fz[n + b * w + i] = a[1, i] * h + P[t, b, 1, i]
        _tanh_all(fz, 2 * n)
        for b in range(B):
            for i in range(w):
                f = 0.5 * fz[b * w + i] + 0.5
                z = fz[n + b * w + i]
                cn = z + f * (xs[b, i] - z)
                oc[b * w + i] = 0.5 * (a[2, i] * xs[b, w + i] + a[4, i] * cn + P[t, b, 2, i])
                oc[n + b * w + i] = cn
        _tanh_all(oc, 2 * n)
        for b in range(B):
            for i in range(w):
                c, h = xs[b, i], xs[b, w + i]
                f = 0.5 * fz[b * w + i] + 0.5
                z = fz[n + b * w + i]
                cn = z + f * (c - z)
                o = 0.5 * oc[b * w + i] + 0.5
                q = oc[n + b * w + i]
                uc = G[t, b, i] + carry[b, i]
                uh = G[t, b, w + i] + carry[b, w + i]
                if keep:
                    adj[t, b, i] = uc
                    adj[t, b, w + i] = uh
                d_o = uh * q * (o * (1.0 - o))
                g_cn = uc + uh * o * (1.0 - q * q) + d_o * a[4, i]
                d_f = g_cn * (c - z) * (f * (1.0 - f))
                d_z = g_cn * (1.0 - f) * (1.0 - z * z)
                carry[b, i] = g_cn * f + d_f * a[3, i]
                carry[b, w + i] = d_f * a[0, i] + d_z * a[1, i] + d_o * a[2, i]
                deltas[t, b, 0, i] = d_f
                deltas[t, b, 1, i] = d_z
                deltas[t, b, 2, i] = d_o
                agrad[0, i] += d_f * h
                agrad[1, i] += d_z * h
                agrad[2, i] += d_o * h
                agrad[3, i] += d_f * c
                agrad[4, i] += d_o * cn


@jit
def elman_backward(W, d, G, deltas, carry, adj):  # pragma: no cover - compiled
    """``d = 1 - y^2 (T, B, w)``; ``deltas (T, B, 1, w)``; ``W^T delta`` from ``W (w, w)``."""
    T, B, w = G.shape
    keep = adj.shape[0] > 0
    carry[...] = 0.0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for i in range(w):
                u = G[t, b, i] + carry[b, i]
                if keep:
                    adj[t, b, i] = u
                deltas[t, b, 0, i] = u * d[t, b, i]
            _matvec_t(W, deltas[t, b, 0], carry[b])


@jit
def gru_backward(Wzr, Wc, h, z, r, dz, dc, dr, G, deltas, carry, adj):  # pragma: no cover - compiled
    """The gates ``(T, B, w)`` each (``_cells._gru_forward``); ``deltas``: d/d(z, r, c
    pre-activations); ``Wzr = [W_z; W_r] (2w, w)``, ``Wc (w, w)``."""
    T, B, w = G.shape
    keep = adj.shape[0] > 0
    u = np.empty(w, dtype=G.dtype)
    dzr = np.empty(2 * w, dtype=G.dtype)
    g_rh = np.empty(w, dtype=G.dtype)
    back = np.empty(w, dtype=G.dtype)
    carry[...] = 0.0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for i in range(w):
                u[i] = G[t, b, i] + carry[b, i]
                if keep:
                    adj[t, b, i] = u[i]
                dzr[i] = u[i] * dz[t, b, i]
                deltas[t, b, 2, i] = u[i] * dc[t, b, i]
            _matvec_t(Wc, deltas[t, b, 2], g_rh)  # W_c^T d_c
            for i in range(w):
                dzr[w + i] = g_rh[i] * h[t, b, i] * dr[t, b, i]
                deltas[t, b, 0, i] = dzr[i]
                deltas[t, b, 1, i] = dzr[w + i]
            _matvec_t(Wzr, dzr, back)  # W_z^T d_z + W_r^T d_r
            for i in range(w):
                carry[b, i] = u[i] * (1.0 - z[t, b, i]) + g_rh[i] * r[t, b, i] + back[i]
