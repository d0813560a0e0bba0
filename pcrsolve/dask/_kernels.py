"""The one Numba kernel of the chunked solves: the interface values of tridiagonal chunks.

Everything else a chunk task computes runs on the single-machine kernels.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, prange
from ..kernels.numba.tridiagonal import GROWTH_LIMIT, _bad, _consts, _div

__all__ = ["tridiagonal_tips"]


@jit
def _tips_system(dl, d, du, r, a, c, eps, one, nan, out):
    """Corner values of ``T^-1 [r, a e_1, c e_L]`` of one chunk ``T``; returns info.

    ``dl``, ``du`` padded with zero corners. A forward (LU) elimination gives the last row
    of each solution, a backward (UL) elimination the first; nothing but scalars is stored.
    ``out`` (2, 3): rows first/last, columns ``y = T^-1 r``, ``v = T^-1 a e_1``,
    ``w = T^-1 c e_L``. info as :func:`~pcrsolve.kernels.numba.tridiagonal.thomas`: the
    first bad pivot ``r + 1`` (of either elimination), else ``-(r + 1)`` for element growth.
    """
    n = d.shape[0]
    bad = 0
    grown = 0
    p = d[0]
    if _bad(p, abs(d[0]) + abs(du[0]), eps):
        bad = 1
    inv = _div(one, p, nan)
    cp = du[0] * inv
    y = r[0] * inv
    v = inv
    for i in range(1, n):
        ai = dl[i]
        t = ai * cp
        p = d[i] - t
        scale = abs(ai) + abs(d[i]) + abs(du[i])
        if bad == 0 and _bad(p, scale, eps):
            bad = i + 1
        if grown == 0 and abs(t) > GROWTH_LIMIT * scale:
            grown = i + 1
        inv = _div(one, p, nan)
        cp = du[i] * inv
        y = (r[i] - ai * y) * inv
        v = -(ai * v) * inv
    out[1, 0] = y
    out[1, 1] = a * v
    out[1, 2] = c * inv
    q = d[n - 1]
    if bad == 0 and _bad(q, abs(d[n - 1]) + abs(dl[n - 1]), eps):
        bad = n
    inv = _div(one, q, nan)
    ca = dl[n - 1] * inv
    y = r[n - 1] * inv
    w = inv
    for i in range(n - 2, -1, -1):
        ci = du[i]
        t = ci * ca
        q = d[i] - t
        scale = abs(dl[i]) + abs(d[i]) + abs(ci)
        if bad == 0 and _bad(q, scale, eps):
            bad = i + 1
        if grown == 0 and abs(t) > GROWTH_LIMIT * scale:
            grown = i + 1
        inv = _div(one, q, nan)
        ca = dl[i] * inv
        y = (r[i] - ci * y) * inv
        w = -(ci * w) * inv
    out[0, 0] = y
    out[0, 1] = a * inv
    out[0, 2] = c * w
    return bad if bad else -grown


@jit(parallel=True)
def _tips_kernel(dl, d, du, rhs, a, c, eps, one, nan, out, info):
    for k in prange(d.shape[0]):
        info[k] = _tips_system(dl[k], d[k], du[k], rhs[k], a[k], c[k], eps, one, nan, out[k])


def tridiagonal_tips(dl, d, du, rhs, a, c):
    """Interface values of ``B`` chunks: ``(out (B, 2, 3), info (B,))``, see :func:`_tips_system`.

    ``dl, d, du, rhs``: (B, L), ``L >= 1``, padded with zero corners; ``a``, ``c``: (B,) the
    couplings of the chunk's first row to the row before and of its last row to the row after.
    """
    nb = d.shape[0]
    out = np.empty((nb, 2, 3), dtype=d.dtype)
    info = np.zeros(nb, dtype=np.int64)
    if nb:
        _tips_kernel(dl, d, du, rhs, a, c, *_consts(d.dtype), out, info)
    return out, info
