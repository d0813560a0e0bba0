"""Numba kernels of the dense-layer chains (MLP, ResNet) on the CPU.

Clean input assumed (see :mod:`pcrsolve.kernels`): C-contiguous arrays of one real floating
dtype, indices in range, nothing raised. Layout: ``W (L, m, m)``, ``b (L, m)``; states and
vectors ``(S, B, m)`` (step axis, flattened batch, features); ``k (S,)`` int64 step indices;
Jacobians ``(B, S, m, m)`` (batch-major, see :func:`_jacobian`).

The activation itself is *not* computed here: NumPy's SIMD ``tanh``/``exp`` are several times
faster than the scalar libm calls a Numba loop makes, so the adapters run
``affine`` (gathers ``W[k]`` in place, no copy) -> activation on whole arrays -> ``jacobian``.

The kernels of the chain methods are serial: at the sizes DeepPCR targets (m <= 64) one call
is too short for threads (4096 x 8 x 8: 113 µs serial, 77 µs with 2 threads on an idle
machine, and milliseconds when the cores were busy). The fused passes at the end (the
compiled loop, a sweep's evaluate-and-linear-step pass, the adjoint) do a whole solve's work
per call, so they come in a serial and a parallel twin (``_twins``), parallel over independent
chains (batch elements) or steps, chosen per call by the work (``_pick``).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit, prange
from ..kernels.numba.block import _twins

__all__ = [
    "ACT_CODES",
    "KIND_CODES",
    "TANH",
    "adjoint",
    "affine",
    "affine_shifted",
    "fused_linear",
    "fused_linear_halves",
    "jac_diag",
    "jacobian",
    "matvec",
    "sequential",
    "weight_grads",
]


def _affine(W, b, x, k, z):
    """``z[i, j] = W[k[i]] @ x[i, j] + b[k[i]]``; returns the number of out-of-range ``k``.

    Rows with ``k[i]`` outside ``[0, L)`` are skipped (left unwritten); the caller raises.
    """
    S, B, m = x.shape
    L = W.shape[0]
    bad = 0
    for i in range(S):
        l = k[i]
        if l < 0 or l >= L:
            bad += 1
            continue
        for j in range(B):
            for p in range(m):
                acc = b[l, p]
                for q in range(m):
                    acc += W[l, p, q] * x[i, j, q]
                z[i, j, p] = acc
    return bad


def _matvec(W, v, k, transpose, out):
    """``out[i, j] = W[k[i]] @ v[i, j]``, or ``W[k[i]].T @ v[i, j]`` when ``transpose``."""
    S, B, m = v.shape
    for i in range(S):
        l = k[i]
        for j in range(B):
            for p in range(m):
                acc = 0.0 * v[i, j, 0]
                if transpose:
                    for q in range(m):
                        acc += W[l, q, p] * v[i, j, q]
                else:
                    for q in range(m):
                        acc += W[l, p, q] * v[i, j, q]
                out[i, j, p] = acc


def _jacobian(W, k, d, residual, J):
    """``J[j, i] = diag(d[i, j]) @ W[k[i]]`` (``+ I`` when ``residual``); ``J`` is batch-major.

    ``J`` has shape ``(B, S, m, m)``: the layout of the linear-recurrence kernels, so the step-
    major view the adapters return (``J.transpose(1, 0, 2, 3)``) reaches them without a copy.
    """
    S, B, m = d.shape
    for i in range(S):
        l = k[i]
        for j in range(B):
            for p in range(m):
                dp = d[i, j, p]
                for q in range(m):
                    J[j, i, p, q] = dp * W[l, p, q]
                if residual:
                    J[j, i, p, p] += 1.0


def _jac_diag(W, k, d, residual, out):
    """The diagonal of :func:`_jacobian`'s result."""
    S, B, m = d.shape
    for i in range(S):
        l = k[i]
        for j in range(B):
            for p in range(m):
                out[i, j, p] = d[i, j, p] * W[l, p, p] + (1.0 if residual else 0.0)


def _weight_grads(P, delta, gW, gb):
    """``gW[l] = sum_j delta[l, j] ⊗ P[l, j]`` and ``gb[l] = sum_j delta[l, j]``."""
    L, B, m = P.shape
    for l in range(L):
        for p in range(m):
            gb[l, p] = 0.0
            for q in range(m):
                gW[l, p, q] = 0.0
        for j in range(B):
            for p in range(m):
                dp = delta[l, j, p]
                gb[l, p] += dp
                for q in range(m):
                    gW[l, p, q] += dp * P[l, j, q]


affine = jit(_affine)
matvec = jit(_matvec)
jacobian = jit(_jacobian)
jac_diag = jit(_jac_diag)
weight_grads = jit(_weight_grads)


# --------------------------------------------------------------------------------------------
# Fused passes: the sequential loop, a sweep's evaluate-and-linear-step pass, the adjoint
# --------------------------------------------------------------------------------------------
#
# Matrix-vector products run in "axpy" order (for each input feature, add a column times it to
# every output) over ``WT = W.transpose(0, 2, 1)`` (or ``W`` for ``W^T u``): the innermost loop
# then runs over contiguous memory with independent accumulators, which LLVM turns into SIMD
# without reassociating sums (no fastmath), and each output sums in the order of ``_affine``.
# ``prange`` loops run over independent chains (batch elements); see ``_twins``/``_pick``.

# Activation codes of the compiled loop (built-in activations only).
ACT_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "gelu": 3, "identity": 4}
# Linear-step kinds of the fused sweep pass, as in pcrsolve.chain (A_k = 0, I, diag J, J).
KIND_CODES = {"zero": 0, "identity": 1, "diag": 2, "dense": 3}

_SQRT1_2 = 0.7071067811865476


# tanh in arithmetic LLVM can vectorize (the C library's tanh is a scalar call, about 15 ns,
# which would dominate the compiled loop): for |x| < 0.625 the rational approximation of
# Cephes' tanh, else 1 - 2 / (exp(2|x|) + 1) with exp by Cody-Waite reduction, Cephes' Padé
# form of exp on [-ln2/2, ln2/2] and 2^n built from exact binary powers. Within 2 ulp of
# NumPy's tanh (the C library's is within 3), about 3 ns per element in loops of 32 and more.
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1, 2.0)
_LN2_HI, _LN2_LO, _INV_LN2 = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.4426950408889634


@jit(inline=True)
def _tanh(x):
    a = abs(x)
    z = a * a
    p0, p1, p2 = _TANH_P
    q1, q2, q3 = _TANH_Q
    small = a + a * z * ((p0 * z + p1) * z + p2) / (((z + q1) * z + q2) * z + q3)
    y = 2.0 * min(a, 22.0)  # tanh(22) rounds to 1
    n = np.floor(y * _INV_LN2 + 0.5)
    r = (y - n * _LN2_HI) - n * _LN2_LO
    rr = r * r
    e0, e1, e2 = _EXP_P
    f0, f1, f2, f3 = _EXP_Q
    px = r * ((e0 * rr + e1) * rr + e2)
    e = 1.0 + 2.0 * px / ((((f0 * rr + f1) * rr + f2) * rr + f3) - px)
    power = 2.0
    for _ in range(7):  # e *= 2^n, n in [0, 64], one binary digit of n at a time (exact)
        half = np.floor(n * 0.5)
        e = e * power if n - 2.0 * half > 0.0 else e
        power = power * power
        n = half
    t = small if a < 0.625 else 1.0 - 2.0 / (e + 1.0)
    return math.copysign(t if a == a else a, x)  # NaN stays NaN, -0.0 stays -0.0


@jit(inline=True)
def _activate(code, z, out):
    """``out = act(z)`` elementwise for a built-in activation code (the formulas of
    ``_activations``); one tight loop per activation, which LLVM vectorizes."""
    n = z.shape[0]
    if code == 0 and n >= 32:
        for k in range(n):
            out[k] = _tanh(z[k])
    elif code == 0:  # too short for SIMD: the C library's scalar tanh is the faster one
        for k in range(n):
            out[k] = math.tanh(z[k])
    elif code == 1:
        for k in range(n):
            out[k] = z[k] if z[k] > 0 else 0.0 * z[k]
    elif code == 2:
        for k in range(n):
            e = math.exp(-abs(z[k]))
            r = 1.0 / (1.0 + e)
            out[k] = r if z[k] >= 0 else e * r
    elif code == 3:
        for k in range(n):
            out[k] = z[k] * (0.5 * math.erfc(-z[k] * _SQRT1_2))
    else:
        for k in range(n):
            out[k] = z[k]


def _sequential(WT, b, x, start, stop, code, residual, h, chunks, out):
    """The loop ``x <- act(W_k x + b_k)`` (``x + h act(...)`` when ``residual``) for layers
    ``start .. stop-1`` from ``x (B, m)``; ``out (stop - start, B, m)``.

    The batch is cut into ``chunks`` run in parallel; inside a chunk every layer is applied to
    all its batch elements at once (each ``W_k`` read once per layer, one activation loop).
    """
    B, m = x.shape
    for c in prange(chunks):
        j0, j1 = (c * B) // chunks, ((c + 1) * B) // chunks
        nb = j1 - j0
        xc = np.empty(nb * m, dtype=out.dtype)
        z = np.empty(nb * m, dtype=out.dtype)
        act = np.empty(nb * m, dtype=out.dtype)
        for jj in range(nb):
            for i in range(m):
                xc[jj * m + i] = x[j0 + jj, i]
        for t in range(stop - start):
            l = start + t
            for jj in range(nb):
                o = jj * m
                for i in range(m):
                    z[o + i] = b[l, i]
                for q in range(m):
                    xq = xc[o + q]
                    for i in range(m):
                        z[o + i] += WT[l, q, i] * xq
            _activate(code, z, act)
            for jj in range(nb):
                o = jj * m
                for i in range(m):
                    xc[o + i] = xc[o + i] + h * act[o + i] if residual else act[o + i]
                    out[t, j0 + jj, i] = xc[o + i]


def _affine_shifted(WT, b, X, x_first, a, z):
    """``z[t] = W_{a+t} @ Xprev[t] + b_{a+t}``, ``Xprev[0] = x_first``, ``Xprev[t] = X[a+t-1]``.

    The pre-activations of one block of a sweep, read from the states in place. Parallel
    over the steps (they are independent: a sweep evaluates every step at the old iterate).
    """
    s, B, m = z.shape
    for t in prange(s):
        l = a + t
        for j in range(B):
            for i in range(m):
                z[t, j, i] = b[l, i]
            for q in range(m):
                xq = x_first[j, q] if t == 0 else X[a + t - 1, j, q]
                for i in range(m):
                    z[t, j, i] += WT[l, q, i] * xq


@jit(inline=True)
def _matvec(WT, l, v, w):
    """``w = W_l v`` in axpy order (``WT = W^T``; see the note above the fused passes)."""
    m = v.shape[0]
    for i in range(m):
        w[i] = 0.0
    for q in range(m):
        vq = v[q]
        for i in range(m):
            w[i] += WT[l, q, i] * vq


@jit(inline=True)
def _linear_map(kind, W, WT, dact, l, t, j, residual, v, w):
    """``w = A v`` for step ``l`` (row ``t`` of the block, batch element ``j``): ``dact[t, j] *
    (W_l v)`` (+ ``v`` when ``residual``) for ``kind`` 3 (dense), its diagonal for 2, ``v`` for
    1, 0 for 0."""
    m = v.shape[0]
    if kind == 3:
        _matvec(WT, l, v, w)
        for i in range(m):
            w[i] = dact[t, j, i] * w[i] + v[i] if residual else dact[t, j, i] * w[i]
    elif kind == 2:
        for i in range(m):
            g = dact[t, j, i] * W[l, i, i] + 1.0 if residual else dact[t, j, i] * W[l, i, i]
            w[i] = g * v[i]
    elif kind == 1:
        for i in range(m):
            w[i] = v[i]
    else:
        for i in range(m):
            w[i] = 0.0


@jit
def _fused_rows(W, WT, act, dact, X, x_first, a, lo, hi, j, v, w, kind, residual, h, F, dX):
    """Rows ``lo .. hi-1`` of a block for batch element ``j``, from ``dX[lo-1] = v`` (updated)."""
    m = v.shape[0]
    if kind == 3 and not residual:  # the MLP's Newton sweep: its own tight loop
        for t in range(lo, hi):
            l = a + t
            _matvec(WT, l, v, w)
            for i in range(m):
                f = act[t, j, i]
                F[t, j, i] = f
                v[i] = dact[t, j, i] * w[i] + (f - X[l, j, i])
                dX[t, j, i] = v[i]
        return
    for t in range(lo, hi):
        _linear_map(kind, W, WT, dact, a + t, t, j, residual, v, w)
        for i in range(m):
            if residual:
                xp = x_first[j, i] if t == 0 else X[a + t - 1, j, i]
                f = xp + h * act[t, j, i]
            else:
                f = act[t, j, i]
            F[t, j, i] = f
            v[i] = w[i] + (f - X[a + t, j, i])
            dX[t, j, i] = v[i]


def _fused_linear(W, WT, act, dact, X, x_first, a, carry, kind, residual, h, F, dX):
    """Step values and the linear step of one block, Jacobians never formed.

    ``F[t] = act[t]`` (``Xprev[t] + h act[t]`` when ``residual``) and
    ``dX[t] = A_t dX[t-1] + (F[t] - X[a+t])`` with ``dX[-1] = carry`` (``A_t``: see
    ``_linear_map``; ``dact`` already carries the factor ``h``). Parallel over the batch.
    """
    s, B, m = act.shape
    for j in prange(B):
        v = np.empty(m, dtype=dX.dtype)
        w = np.empty(m, dtype=dX.dtype)
        for i in range(m):
            v[i] = carry[j, i]
        _fused_rows(W, WT, act, dact, X, x_first, a, 0, s, j, v, w, kind, residual, h, F, dX)


def _fused_linear_halves(W, WT, act, dact, X, x_first, a, carry, kind, residual, h, F, dX):
    """:func:`_fused_linear` on two threads for few chains (the hybrid partition).

    Both halves of the block run at once, the second from a zero carry (its particular
    solution); then the second half adds its homogeneous solution ``A_t .. A_cut dX[cut-1]``
    (a matrix-vector product per step, against the full step's two). Work about 1.5x the
    loop's, time about 0.7x on two cores.
    """
    s, B, m = act.shape
    cut = s // 2
    for c in prange(2 * B):
        j = c % B
        second = c >= B
        v = np.zeros(m, dtype=dX.dtype)
        w = np.empty(m, dtype=dX.dtype)
        if not second:
            for i in range(m):
                v[i] = carry[j, i]
        lo, hi = (cut, s) if second else (0, cut)
        _fused_rows(W, WT, act, dact, X, x_first, a, lo, hi, j, v, w, kind, residual, h, F, dX)
    for j in range(B):
        u = np.empty(m, dtype=dX.dtype)
        w = np.empty(m, dtype=dX.dtype)
        for i in range(m):
            u[i] = dX[cut - 1, j, i]
        for t in range(cut, s):
            _linear_map(kind, W, WT, dact, a + t, t, j, residual, u, w)
            for i in range(m):
                u[i] = w[i]
                dX[t, j, i] += w[i]


def _adjoint(W, dact, G, residual, chunks, adj, delta, grad_x):
    """The reverse recurrence of the adjoint, Jacobians never formed.

    From the last layer down: ``adj[t] = G[t] + J_{t+1}^T adj[t+1]``, ``delta[t] = dact[t] *
    adj[t]`` and ``J_t^T adj[t] = W_t^T delta[t]`` (+ ``adj[t]`` when ``residual``);
    ``grad_x = J_0^T adj[0]``. ``dact`` carries the factor ``h``; ``delta`` is what the weight
    gradients need. ``G`` of one row is the gradient of the last layer only (zeros before);
    ``adj`` of one row is scratch (the adjoint states are not kept).
    The batch is cut into ``chunks`` run in parallel; inside a chunk the batch elements are
    the inner loop (independent chains side by side, each ``W_t`` read once per step).
    """
    L, B, m = delta.shape
    last_only = G.shape[0] == 1
    store = adj.shape[0] == L  # else adj is not wanted (one scratch row)
    for c in prange(chunks):
        j0, j1 = (c * B) // chunks, ((c + 1) * B) // chunks
        carry = np.zeros((j1 - j0, m), dtype=adj.dtype)  # J_{t+1}^T adj[t+1]
        for t in range(L - 1, -1, -1):
            for j in range(j0, j1):
                for i in range(m):
                    g = G[0, j, i] if t == L - 1 else 0.0
                    u = (g if last_only else G[t, j, i]) + carry[j - j0, i]
                    adj[t if store else 0, j, i] = u
                    delta[t, j, i] = dact[t, j, i] * u
                    carry[j - j0, i] = u if residual else 0.0
            for j in range(j0, j1):
                for p in range(m):
                    dp = delta[t, j, p]
                    for i in range(m):
                        carry[j - j0, i] += W[t, p, i] * dp
        for j in range(j0, j1):
            for i in range(m):
                grad_x[j, i] = carry[j - j0, i]


def _tanh_array(x, out):
    for i in range(x.size):
        out.flat[i] = _tanh(x.flat[i])


sequential = _twins(_sequential)
TANH = jit(_tanh_array)  # the compiled loop's tanh on arrays (for its tests)
affine_shifted = _twins(_affine_shifted)
fused_linear = _twins(_fused_linear)
fused_linear_halves = jit(_fused_linear_halves, parallel=True)
adjoint = _twins(_adjoint)
