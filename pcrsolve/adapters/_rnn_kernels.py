"""Numba kernels of the recurrent cells on the CPU: each cell's loop; the diagonal cells' gates.

Clean input assumed (see :mod:`pcrsolve.kernels`): C-contiguous arrays of one real floating
dtype, nothing raised. Layout: input projections ``P (T, B, G, w)`` (``U_g x_t + b_g`` for
the ``G`` gates), states ``(B, m)``, output ``out (stop - start, B, m)``; steps ``start ..
stop - 1`` are run from ``x0`` (the state before ``start``). Dense recurrent weights come
transposed (``WT[j, i] = W[i, j]``), so the inner loop of a matrix-vector product runs over
contiguous memory with independent accumulators (vectorized without reassociation). The
equations are those of :mod:`._cells`, the sigmoid included (``(1 + tanh(x/2)) / 2``).
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._kernels import _tanh

__all__ = [
    "_gru_diag_gates",
    "_matvec_t",
    "_tanh_all",
    "elman_loop",
    "gru_diag_cand",
    "gru_diag_jac",
    "gru_diag_loop",
    "gru_diag_pre",
    "gru_diag_value",
    "gru_loop",
    "lstm_diag_blocks",
    "lstm_diag_loop",
    "lstm_diag_mid",
    "lstm_diag_pre",
    "lstm_diag_value",
]


@jit(inline=True)
def _matvec_t(WT, v, out):  # pragma: no cover - compiled
    """``out = W @ v`` from ``WT = W.T`` (contiguous)."""
    n_in, n_out = WT.shape
    for i in range(n_out):
        out[i] = 0.0
    for j in range(n_in):
        vj = v[j]
        for i in range(n_out):
            out[i] += WT[j, i] * vj


@jit(inline=True)
def _tanh_all(v, n):  # pragma: no cover - compiled
    """``v[:n] = tanh(v[:n])`` in one loop LLVM vectorizes (see ``_kernels._tanh``)."""
    for k in range(n):
        v[k] = _tanh(v[k])


# The loops keep the step's state flat, ``h[b w + i]``, and evaluate each gate for the whole
# batch in one elementwise pass: the transcendental functions then run in one vectorized loop
# per gate and step (``_tanh``; the C library's scalar tanh cost about 5x more per element).


@jit
def elman_loop(x0, P, WT, start, stop, out):  # pragma: no cover - compiled
    B, w = x0.shape
    n = B * w
    h = x0.copy()
    pre = np.empty(n, dtype=x0.dtype)
    for t in range(start, stop):
        for b in range(B):
            _matvec_t(WT, h[b], pre[b * w : (b + 1) * w])
            for i in range(w):
                pre[b * w + i] += P[t, b, 0, i]
        _tanh_all(pre, n)
        for b in range(B):
            for i in range(w):
                h[b, i] = pre[b * w + i]
                out[t - start, b, i] = h[b, i]


@jit
def gru_loop(x0, P, WzrT, WcT, start, stop, out):  # pragma: no cover - compiled
    B, w = x0.shape
    n = B * w
    h = x0.copy()
    zr = np.empty(2 * n, dtype=x0.dtype)  # per b: the z and r pre-activations (2w)
    rh = np.empty(w, dtype=x0.dtype)
    c = np.empty(n, dtype=x0.dtype)
    for t in range(start, stop):
        for b in range(B):
            o = 2 * b * w
            _matvec_t(WzrT, h[b], zr[o : o + 2 * w])
            for i in range(w):
                zr[o + i] = 0.5 * (zr[o + i] + P[t, b, 0, i])
                zr[o + w + i] = 0.5 * (zr[o + w + i] + P[t, b, 1, i])
        _tanh_all(zr, 2 * n)
        for b in range(B):
            o = 2 * b * w
            for i in range(w):
                rh[i] = (0.5 * zr[o + w + i] + 0.5) * h[b, i]
            _matvec_t(WcT, rh, c[b * w : (b + 1) * w])
            for i in range(w):
                c[b * w + i] += P[t, b, 2, i]
        _tanh_all(c, n)
        for b in range(B):
            for i in range(w):
                z = 0.5 * zr[2 * b * w + i] + 0.5
                h[b, i] = h[b, i] + z * (c[b * w + i] - h[b, i])
                out[t - start, b, i] = h[b, i]


@jit(inline=True)
def _gru_diag_gates(a, P, t, h, zr, c):  # pragma: no cover - compiled
    """The gates of step ``t`` from the state ``h (B, w)`` before it, for the whole batch:
    ``zr`` = tanh of half the z and r pre-activations (``(2 B w,)``, z first), ``c`` = the
    candidate ``tanh(a_c r h + P_c)`` (``(B w,)``); shared by the loop and the reverse pass."""
    B, w = h.shape
    n = B * w
    for b in range(B):
        for i in range(w):
            zr[b * w + i] = 0.5 * (a[0, i] * h[b, i] + P[t, b, 0, i])
            zr[n + b * w + i] = 0.5 * (a[1, i] * h[b, i] + P[t, b, 1, i])
    _tanh_all(zr, 2 * n)
    for b in range(B):
        for i in range(w):
            r = 0.5 * zr[n + b * w + i] + 0.5
            c[b * w + i] = a[2, i] * (r * h[b, i]) + P[t, b, 2, i]
    _tanh_all(c, n)


@jit
def gru_diag_loop(x0, P, a, start, stop, out):  # pragma: no cover - compiled
    """``a (3, w)``: ``a_z, a_r, a_c``."""
    B, w = x0.shape
    n = B * w
    h = x0.copy()
    zr = np.empty(2 * n, dtype=x0.dtype)  # half the z, then the r pre-activations
    c = np.empty(n, dtype=x0.dtype)
    for t in range(start, stop):
        _gru_diag_gates(a, P, t, h, zr, c)
        for b in range(B):
            for i in range(w):
                z = 0.5 * zr[b * w + i] + 0.5
                h[b, i] = h[b, i] + z * (c[b * w + i] - h[b, i])
                out[t - start, b, i] = h[b, i]


@jit
def lstm_diag_loop(x0, P, a, start, stop, out):  # pragma: no cover - compiled
    """``a (5, w)``: ``a_f, a_z, a_o, p_f, p_o``; states ``[c; h]``."""
    B, m = x0.shape
    w = m // 2
    n = B * w
    x = x0.copy()
    fz = np.empty(2 * n, dtype=x0.dtype)  # half the f, then the z pre-activations
    oc = np.empty(2 * n, dtype=x0.dtype)  # half the o pre-activations, then c'
    for t in range(start, stop):
        for b in range(B):
            for i in range(w):
                c, h = x[b, i], x[b, w + i]
                fz[b * w + i] = 0.5 * (a[0, i] * h + a[3, i] * c + P[t, b, 0, i])
                fz[n + b * w + i] = a[1, i] * h + P[t, b, 1, i]
        _tanh_all(fz, 2 * n)
        for b in range(B):
            for i in range(w):
                f = 0.5 * fz[b * w + i] + 0.5
                z = fz[n + b * w + i]
                cn = z + f * (x[b, i] - z)
                x[b, i] = cn
                oc[b * w + i] = 0.5 * (a[2, i] * x[b, w + i] + a[4, i] * cn + P[t, b, 2, i])
                oc[n + b * w + i] = cn
        _tanh_all(oc, 2 * n)
        for b in range(B):
            for i in range(w):
                x[b, w + i] = (0.5 * oc[b * w + i] + 0.5) * oc[n + b * w + i]
                out[t - start, b, i] = x[b, i]
                out[t - start, b, w + i] = x[b, w + i]


# ------------------------------------------------------------------ gates of the diagonal cells
#
# One evaluation of a diagonal cell at rows ``x (s, B, m)``, steps ``kk (s,)``, is a few
# elementwise passes here with NumPy's (SIMD) ``tanh`` in between, on buffers the caller owns:
# the projections ``P[kk[t]]`` are read in place. See ``_rnn_numba.py`` for the sequence.


@jit
def gru_diag_pre(x, P, kk, a, zr):  # pragma: no cover - compiled
    """``zr[..., 0, :], zr[..., 1, :]``: half the z and r pre-activations (for the tanh form)."""
    s, B, w = x.shape
    for t in range(s):
        l = kk[t]
        for b in range(B):
            for i in range(w):
                zr[t, b, 0, i] = 0.5 * (a[0, i] * x[t, b, i] + P[l, b, 0, i])
                zr[t, b, 1, i] = 0.5 * (a[1, i] * x[t, b, i] + P[l, b, 1, i])


@jit
def gru_diag_cand(x, P, kk, a, zr, c):  # pragma: no cover - compiled
    """``zr`` (tanh of half the pre-activations) -> ``z, r`` in place; ``c``: candidate pre-activation."""
    s, B, w = x.shape
    for t in range(s):
        l = kk[t]
        for b in range(B):
            for i in range(w):
                z = 0.5 * zr[t, b, 0, i] + 0.5
                r = 0.5 * zr[t, b, 1, i] + 0.5
                zr[t, b, 0, i] = z
                zr[t, b, 1, i] = r
                c[t, b, i] = a[2, i] * (r * x[t, b, i]) + P[l, b, 2, i]


@jit
def gru_diag_value(x, zr, c, y):  # pragma: no cover - compiled
    s, B, w = x.shape
    for t in range(s):
        for b in range(B):
            for i in range(w):
                y[t, b, i] = x[t, b, i] + zr[t, b, 0, i] * (c[t, b, i] - x[t, b, i])


@jit
def gru_diag_jac(x, zr, c, a, J):  # pragma: no cover - compiled
    s, B, w = x.shape
    for t in range(s):
        for b in range(B):
            for i in range(w):
                h, z, r, ci = x[t, b, i], zr[t, b, 0, i], zr[t, b, 1, i], c[t, b, i]
                J[t, b, i] = (
                    (1.0 - z)
                    + (ci - h) * (z * (1.0 - z)) * a[0, i]
                    + z * (1.0 - ci * ci) * a[2, i] * (r + h * (r * (1.0 - r)) * a[1, i])
                )


@jit
def lstm_diag_pre(x, P, kk, a, fz):  # pragma: no cover - compiled
    """``fz``: half the f pre-activation, and the z pre-activation."""
    s, B, m = x.shape
    w = m // 2
    for t in range(s):
        l = kk[t]
        for b in range(B):
            for i in range(w):
                c, h = x[t, b, i], x[t, b, w + i]
                fz[t, b, 0, i] = 0.5 * (a[0, i] * h + a[3, i] * c + P[l, b, 0, i])
                fz[t, b, 1, i] = a[1, i] * h + P[l, b, 1, i]


@jit
def lstm_diag_mid(x, P, kk, a, fz, oc):  # pragma: no cover - compiled
    """``fz`` (tanh'd) -> ``f, z`` in place; ``oc``: half the o pre-activation, and ``c'``."""
    s, B, m = x.shape
    w = m // 2
    for t in range(s):
        l = kk[t]
        for b in range(B):
            for i in range(w):
                c, h = x[t, b, i], x[t, b, w + i]
                f = 0.5 * fz[t, b, 0, i] + 0.5
                z = fz[t, b, 1, i]
                fz[t, b, 0, i] = f
                cn = z + f * (c - z)
                oc[t, b, 0, i] = 0.5 * (a[2, i] * h + a[4, i] * cn + P[l, b, 2, i])
                oc[t, b, 1, i] = cn


@jit
def lstm_diag_value(cn, oq, y):  # pragma: no cover - compiled
    """``oq``: tanh of ``oc`` (half the o pre-activation, and ``c'``); ``y = [c'; o tanh(c')]``."""
    s, B, w = cn.shape
    for t in range(s):
        for b in range(B):
            for i in range(w):
                y[t, b, i] = cn[t, b, i]
                y[t, b, w + i] = (0.5 * oq[t, b, 0, i] + 0.5) * oq[t, b, 1, i]


@jit
def lstm_diag_blocks(x, fz, cn, oq, a, J):  # pragma: no cover - compiled
    """``J (s, B, w, 2, 2)``: ``[[dc'/dc, dc'/dh], [dh'/dc, dh'/dh]]`` per ``i`` (see ``_cells``)."""
    s, B, m = x.shape
    w = m // 2
    for t in range(s):
        for b in range(B):
            for i in range(w):
                c = x[t, b, i]
                f, z = fz[t, b, 0, i], fz[t, b, 1, i]
                o = 0.5 * oq[t, b, 0, i] + 0.5
                q = oq[t, b, 1, i]
                df = (c - z) * (f * (1.0 - f))
                dzz = (1.0 - f) * (1.0 - z * z)
                do = q * (o * (1.0 - o))
                gc = do * a[4, i] + o * (1.0 - q * q)
                Jcc = f + df * a[3, i]
                Jch = df * a[0, i] + dzz * a[1, i]
                J[t, b, i, 0, 0] = Jcc
                J[t, b, i, 0, 1] = Jch
                J[t, b, i, 1, 0] = gc * Jcc
                J[t, b, i, 1, 1] = do * a[2, i] + gc * Jch
