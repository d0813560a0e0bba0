"""Numba kernels of the RNN sweeps' linear step: ``dX_t = A_t dX_{t-1} + (F_t - X_{a+t})``.

One block of a sweep of :func:`pcrsolve.solve_chain` on an RNN, after its gates were evaluated
(:mod:`._rnn_numba`, or NumPy for the dense cells): the step values ``F`` and the linear step
from ``dX_{-1} = carry``, with ``A_t`` applied from the gates directly, never stored (``m`` or
``4w`` numbers per step for the structured cells, ``m^2`` for the dense ones). ``code`` is the
linear step: 0 zero (Jacobi), 1 identity (Picard), 2 the diagonal (exact Newton for gru_diag;
``J_cc``, ``J_hh`` for lstm_diag), 3 the whole Jacobian (lstm_diag's 2 x 2 blocks; the dense
cells' ``J v`` from their weights).

Clean input assumed (see :mod:`pcrsolve.kernels`): C-contiguous arrays of one real floating
dtype, nothing raised. Layout: the states before the block's steps ``x (s, B, m)``, the states
``X (n, B, m)`` (step ``t`` of the block is ``X[a + t]``), ``carry (B, m)``, outputs ``F, dX (s,
B, m)``. The equations are those of :mod:`._cells`.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._rnn_kernels import _matvec_t

__all__ = ["elman_linear", "gru_diag_sweep", "gru_linear", "lstm_diag_sweep"]


@jit
def gru_diag_sweep(x, zr, c, a, X, a0, carry, code, F, dX):  # pragma: no cover - compiled
    """``zr (s, B, 2, m)``: ``z, r``; ``c (s, B, m)``: the candidate; ``a (3, m)``: ``a_z, a_r, a_c``."""
    s, B, m = x.shape
    for t in range(s):
        for b in range(B):
            for i in range(m):
                h, z, ci = x[t, b, i], zr[t, b, 0, i], c[t, b, i]
                f = h + z * (ci - h)
                F[t, b, i] = f
                d = f - X[a0 + t, b, i]
                if code > 0:
                    prev = carry[b, i] if t == 0 else dX[t - 1, b, i]
                    if code == 1:
                        d += prev
                    else:
                        r = zr[t, b, 1, i]
                        J = (
                            (1.0 - z)
                            + (ci - h) * (z * (1.0 - z)) * a[0, i]
                            + z * (1.0 - ci * ci) * a[2, i] * (r + h * (r * (1.0 - r)) * a[1, i])
                        )
                        d += J * prev
                dX[t, b, i] = d


@jit
def lstm_diag_sweep(x, fz, cn, oq, a, X, a0, carry, code, F, dX):  # pragma: no cover - compiled
    """``fz (s, B, 2, w)``: ``f, z``; ``cn (s, B, w)``: ``c'``; ``oq (s, B, 2, w)``: tanh of half
    the o pre-activation, and ``tanh(c')``; ``a (5, w)``: ``a_f, a_z, a_o, p_f, p_o``."""
    s, B, m = x.shape
    w = m // 2
    for t in range(s):
        for b in range(B):
            for i in range(w):
                c, cnew = x[t, b, i], cn[t, b, i]
                o = 0.5 * oq[t, b, 0, i] + 0.5
                q = oq[t, b, 1, i]
                F[t, b, i] = cnew
                F[t, b, w + i] = o * q
                dc = cnew - X[a0 + t, b, i]
                dh = o * q - X[a0 + t, b, w + i]
                if code > 0:
                    pc = carry[b, i] if t == 0 else dX[t - 1, b, i]
                    ph = carry[b, w + i] if t == 0 else dX[t - 1, b, w + i]
                    if code == 1:
                        dc += pc
                        dh += ph
                    else:
                        f, z = fz[t, b, 0, i], fz[t, b, 1, i]
                        df = (c - z) * (f * (1.0 - f))
                        do = q * (o * (1.0 - o))
                        gc = do * a[4, i] + o * (1.0 - q * q)
                        Jcc = f + df * a[3, i]
                        Jch = df * a[0, i] + (1.0 - f) * (1.0 - z * z) * a[1, i]
                        Jhh = do * a[2, i] + gc * Jch
                        if code == 2:
                            dc += Jcc * pc
                            dh += Jhh * ph
                        else:
                            dc += Jcc * pc + Jch * ph
                            dh += gc * Jcc * pc + Jhh * ph
                dX[t, b, i] = dc
                dX[t, b, w + i] = dh


@jit
def elman_linear(WT, d, F, X, a0, carry, dX):  # pragma: no cover - compiled
    """``dX_t = d_t * (W dX_{t-1}) + F_t - X_{a0+t}``: ``WT = W.T``, ``d = 1 - y^2 (s, B, m)``."""
    s, B, m = F.shape
    acc = np.empty(m, dtype=F.dtype)
    for t in range(s):
        for b in range(B):
            _matvec_t(WT, carry[b] if t == 0 else dX[t - 1, b], acc)
            for i in range(m):
                dX[t, b, i] = d[t, b, i] * acc[i] + (F[t, b, i] - X[a0 + t, b, i])


@jit
def gru_linear(WzrT, WcT, h, z, r, dz, dc, dr, F, X, a0, carry, dX):  # pragma: no cover - compiled
    """``dX_t = J_t dX_{t-1} + F_t - X_{a0+t}`` with ``J v`` of the dense GRU (``_cells._gru_jvp``):
    ``WzrT = [W_z; W_r].T (m, 2m)``, ``WcT = W_c.T``; the gates ``(s, B, m)`` each."""
    s, B, m = F.shape
    pzr = np.empty(2 * m, dtype=F.dtype)
    drh = np.empty(m, dtype=F.dtype)
    pc = np.empty(m, dtype=F.dtype)
    for t in range(s):
        for b in range(B):
            v = carry[b] if t == 0 else dX[t - 1, b]
            _matvec_t(WzrT, v, pzr)
            for i in range(m):
                drh[i] = dr[t, b, i] * pzr[m + i] * h[t, b, i] + r[t, b, i] * v[i]
            _matvec_t(WcT, drh, pc)
            for i in range(m):
                jv = (1.0 - z[t, b, i]) * v[i] + dz[t, b, i] * pzr[i] + dc[t, b, i] * pc[i]
                dX[t, b, i] = jv + (F[t, b, i] - X[a0 + t, b, i])
