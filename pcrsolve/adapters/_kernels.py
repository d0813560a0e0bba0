"""Numba kernels of the dense-layer chains (MLP, ResNet) on the CPU.

Clean input assumed (see :mod:`pcrsolve.kernels`): C-contiguous arrays of one real floating
dtype, indices in range, nothing raised. Layout: ``W (L, m, m)``, ``b (L, m)``; states and
vectors ``(S, B, m)`` (step axis, flattened batch, features); ``k (S,)`` int64 step indices;
Jacobians ``(B, S, m, m)`` (batch-major, see :func:`_jacobian`).

The activation itself is *not* computed here: NumPy's SIMD ``tanh``/``exp`` are several times
faster than the scalar libm calls a Numba loop makes, so the adapters run
``affine`` (gathers ``W[k]`` in place, no copy) -> activation on whole arrays -> ``jacobian``.

The kernels are serial: the adapters' hot path is memory-bound at the sizes DeepPCR targets
(m <= 64), and on a small shared CPU ``parallel=True`` gained less than its thread wake-up cost
in measurements (4096 x 8 x 8: 113 µs serial, 77 µs with 2 threads on an idle machine, and
milliseconds when the cores were busy). Parallelism across steps lives in the linear solver.
"""

from __future__ import annotations

from .._jit import jit

__all__ = ["affine", "jac_diag", "jacobian", "matvec", "weight_grads"]


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
