"""Random test systems (NumPy arrays), padded layout unless stated otherwise."""

from __future__ import annotations

import numpy as np

DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


def _random(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def tridiagonal(rng, batch, n, dtype, dominance=3.0):
    """Diagonally dominant ``(dl, d, du, rhs)`` of shape ``(*batch, n)``, zero corners.

    ``dominance=None`` gives a random, generally non-dominant system.
    """
    shape = (*batch, n)
    dl, du, rhs = (_random(rng, shape, dtype) for _ in range(3))
    d = _random(rng, shape, dtype)
    if dominance is not None:
        d = (d / np.maximum(np.abs(d), 1e-3) * (np.abs(dl) + np.abs(du) + dominance)).astype(dtype)
    if n:
        dl[..., 0] = 0
        du[..., -1] = 0
    return dl, d, du, rhs


def block_tridiagonal(rng, batch, n, m, dtype, dominance=3.0):
    """Block diagonally dominant ``(L, D, U, rhs)``; ``L, D, U: (*batch, n, m, m)``."""
    shape = (*batch, n, m, m)
    L, D, U = (_random(rng, shape, dtype) for _ in range(3))
    if dominance is not None:
        row = np.abs(L).sum(-1) + np.abs(U).sum(-1) + np.abs(D).sum(-1) + dominance
        D = D + np.eye(m) * row[..., None]
        D = D.astype(dtype)
    if n:
        L[..., 0, :, :] = 0
        U[..., -1, :, :] = 0
    return L, D, U, _random(rng, (*batch, n, m), dtype)


def recurrence(rng, batch, n, m, dtype, dense=True, radius=0.9):
    """A contracting recurrence ``(A, b, x0)``: ``A`` of spectral norm about ``radius``."""
    if dense:
        A = _random(rng, (*batch, n, m, m), dtype) * (radius / (2 * np.sqrt(m)))
    else:
        A = _random(rng, (*batch, n, m), dtype) * (radius / 2)
    return A.astype(dtype), _random(rng, (*batch, n, m), dtype), _random(rng, (*batch, m), dtype)


def element_growth():
    """``(dl, d, du, rhs, x_true)``, LAPACK layout: a small but not tiny first pivot, so no
    breakdown, yet elimination without pivoting (Thomas) loses ~8 digits to element growth."""
    n = 6
    d = np.array([1e-9, 1.0, 1.0, 1.0, 1.0, 1.0])
    dl, du = np.ones(n - 1), np.ones(n - 1)
    x_true = np.linspace(1.0, 2.0, n)
    rhs = d * x_true
    rhs[1:] += dl * x_true[:-1]
    rhs[:-1] += du * x_true[1:]
    return dl, d, du, rhs, x_true


def eps(dtype):
    return np.finfo(dtype).eps


def tolerance(dtype, n=1):
    """A forward-error tolerance for well-conditioned systems of size ``n``."""
    return 64 * eps(dtype) * max(1.0, np.log2(max(n, 2)))
