"""Fused Numba passes of the chain solvers on NumPy states: sweep bookkeeping, adjoint blocks.

:func:`pcrsolve.chain._sweep.sweep` spends, on the CPU, more time in a dozen small NumPy
reductions over the short state axis than in the linear solve; this kernel does the same
work (norms, non-finite hold-back, update, scaled errors) in one pass over the sweep's
arrays. It is imported only when the backend is Numba, so ``import pcrsolve`` stays free of
Numba, and it follows the kernel contract: clean input, nothing raised.

:func:`adjoint_block` is the reverse recurrence of :func:`pcrsolve.chain_adjoint` on one
block, reading the transposed Jacobians where the chain put them (no layout copies).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import jit, prange

__all__ = ["KIND_CODES", "adjoint_block", "linear_block", "update"]

# The sweeps' linear steps the CPU pass handles (A_k = 0, I, diag J, J), as in _sweep.
KIND_CODES = {"zero": 0, "identity": 1, "diag": 2, "dense": 3}


@jit
def _update(X, p, F, dX, omega, err, f0_ok):  # pragma: no cover - compiled
    s, B, m = dX.shape
    for t in range(s):
        err[t] = 0.0
    for b in range(B):
        ok0 = True
        for i in range(m):
            if not np.isfinite(F[0, b, i]):
                ok0 = False
        f0_ok[b] = ok0
        poisoned = False
        for t in range(s):
            ndx = 0.0
            for i in range(m):
                a = abs(dX[t, b, i])
                ndx += a * a
            if not math.isfinite(ndx):
                poisoned = True  # NaN/inf propagate along the chain: hold back the rest
            keep = poisoned
            nx = 0.0
            if t == 0:
                # Step p follows an exact state: its value is f_p itself, bit-exact.
                keep = not ok0
                if ok0:
                    for i in range(m):
                        a = abs(F[0, b, i])
                        nx += a * a
                        X[p, b, i] = F[0, b, i]
            elif not poisoned:
                for i in range(m):
                    a = abs(X[p + t, b, i] + omega * dX[t, b, i])
                    nx += a * a
                if math.isfinite(nx):
                    for i in range(m):
                        X[p + t, b, i] += omega * dX[t, b, i]
                else:
                    keep = True
            if keep or poisoned:
                e = math.inf
            else:
                e = math.sqrt(ndx) / (1.0 + math.sqrt(nx))
            if e > err[t]:
                err[t] = e


def update(X, p: int, F, dX, omega: float) -> tuple[np.ndarray, np.ndarray]:
    """Apply a sweep's update to ``X[p : p+s]`` in place; return ``(err (s,), f0_ok (B,))``.

    ``X: (n, B, m)`` (a view of the states), ``F, dX: (s, B, m)``. ``err[t]`` is the largest
    scaled update ``||dx|| / (1 + ||x||)`` of step ``p+t`` over the batch (``inf`` where
    non-finite values were held back); ``f0_ok[b]`` whether ``f_p`` is finite for element b.
    """
    s, B = dX.shape[0], dX.shape[1]
    real = np.float32 if dX.dtype in (np.float32, np.complex64) else np.float64
    err = np.empty(s, dtype=real)
    f0_ok = np.empty(B, dtype=np.bool_)
    _update(X, p, F, dX, dX.dtype.type(omega), err, f0_ok)
    return err, f0_ok


@jit
def _linear_dense(A, F, X, a, carry, dX):  # pragma: no cover - compiled
    s, B, m = F.shape
    for j in range(B):
        for t in range(s):
            for i in range(m):
                acc = F[t, j, i] - X[a + t, j, i]
                for q in range(m):
                    acc += A[t, j, i, q] * (carry[j, q] if t == 0 else dX[t - 1, j, q])
                dX[t, j, i] = acc


@jit
def _linear_diag(A, F, X, a, carry, kind, dX):  # pragma: no cover - compiled
    s, B, m = F.shape
    for j in range(B):
        for t in range(s):
            for i in range(m):
                prev = carry[j, i] if t == 0 else dX[t - 1, j, i]
                r = F[t, j, i] - X[a + t, j, i]
                if kind == 2:
                    r += A[t, j, i] * prev
                elif kind == 1:
                    r += prev
                dX[t, j, i] = r


def linear_block(A, F, X, a: int, carry, kind: str, dX) -> None:
    """``dX[t] = A_t dX[t-1] + (F[t] - X[a+t])`` from ``dX[-1] = carry``, written into ``dX``.

    The linear step of one block of a CPU sweep, read where the chain put its Jacobians
    (step-major, no layout copies) and without forming the residual: ``A (s, B, m, m)``
    (``kind="dense"``) or its diagonals ``(s, B, m)`` (``"diag"``; ignored for ``"identity"``
    and ``"zero"``), ``F, dX (s, B, m)``, ``X (n, B, m)`` the states, ``carry (B, m)``.
    """
    if kind == "dense":
        _linear_dense(A, F, X, a, carry, dX)
    else:
        _linear_diag(F if A is None else A, F, X, a, carry, KIND_CODES[kind], dX)


@jit(parallel=True)
def _adjoint_block(JT, G, carry, adj, carry_out):  # pragma: no cover - compiled
    s, B, m = G.shape
    for b in prange(B):
        for i in range(m):
            adj[s - 1, b, i] = G[s - 1, b, i] + carry[b, i]
        for t in range(s - 2, -1, -1):
            for i in range(m):
                acc = G[t, b, i]
                for j in range(m):
                    acc += JT[t + 1, b, i, j] * adj[t + 1, b, j]
                adj[t, b, i] = acc
        for i in range(m):
            acc = 0.0 * G[0, b, i]
            for j in range(m):
                acc += JT[0, b, i, j] * adj[0, b, j]
            carry_out[b, i] = acc


def adjoint_block(JT, G, carry) -> tuple[np.ndarray, np.ndarray]:
    """One block of ``adj[t] = JT[t+1] @ adj[t+1] + G[t]``, ``adj[s-1] = G[s-1] + carry``.

    ``JT: (s, B, m, m)`` the transposed Jacobians ``J_a^T .. J_{b-1}^T`` of the block's
    steps (any strides), ``G: (s, B, m)``, ``carry: (B, m)`` (``J_b^T adj[b]`` from the
    block after it). Returns ``adj (s, B, m)`` and the next carry ``JT[0] @ adj[0]``.
    """
    adj = np.empty_like(G)
    carry_out = np.empty_like(carry)
    _adjoint_block(JT, G, carry, adj, carry_out)
    return adj, carry_out
