"""Kernels: the algorithms, on clean input, in two families with one contract.

``kernels.numba`` holds Numba CPU kernels (NumPy arrays only); ``kernels.xp`` holds the
same algorithms written against an array namespace ``xp`` (NumPy, CuPy, any Array-API
library), vectorized over whole PCR levels and over the batch. A backend gets its
functions from :func:`table`; the public shells never import a kernel module directly.

The contract every kernel keeps (``B`` = flattened batch, ``n`` = sequence length,
``m`` = block size; xp kernels take ``xp`` as their first argument, the rest is the same):

- Inputs are C-contiguous, of one dtype (float32, float64, complex64 or complex128),
  finite unless the caller said otherwise, already broadcast to the full batch, and
  never modified. Off-diagonals are padded to length ``n`` with **zeros** in the
  ignored corners (``dl[:, 0] == 0``, ``du[:, n-1] == 0``, ``L[:, 0] == 0``,
  ``U[:, n-1] == 0``). ``n`` may be 0 or 1 and ``B`` may be 0.
- Kernels never raise for numerical reasons. Solvers return ``(x, info)`` with
  ``info`` an int64 array of shape ``(B,)``: 0 when the elimination went through,
  ``r + 1`` when row (block row) ``r`` met a pivot that is zero, not finite, or tiny
  (``|p| <= eps * scale`` of its row); the shell decides whether to fall back or raise.
  For ``pivoting`` a nonzero ``info`` means the matrix is exactly singular, as in
  LAPACK ``?gtsv``. A kernel whose function has the attribute ``certifies_accuracy = True``
  also reports ``info = -(r + 1)`` when row ``r`` showed element growth large enough to
  spoil the backward error; ``method="auto"`` then skips its separate backward-error pass.
  A scalar tridiagonal solver with ``any_layout = True`` also takes off-diagonals in LAPACK
  layout, ``(B, n-1)``, and never reads the corners of padded ones (whatever they hold); the
  shell then passes the arrays as given, without zero-padded copies.

Signatures (``<m>`` is the method name):

``tridiagonal[<m>](dl, d, du, rhs) -> (x, info)``
    ``dl, d, du, rhs, x: (B, n)``; methods ``sequential``, ``pcr``, ``hybrid``, ``pivoting``.
``tridiagonal_factor[<m>] = (factor(dl, d, du) -> (factors, info), solve(factors, rhs) -> x)``
    ``factors`` is a tuple of arrays with the batch axis first (numba: the factors of the
    block methods are flattened to rows, ``(B*n, ...)``), batch ``B`` or 1 (then shared by
    every right-hand side); ``rhs, x: (B, n)``; every method of ``tridiagonal``. The matrix
    part is done once: a solve replays only the right-hand side's part (for ``pcr`` every
    level's multipliers are stored, O(n log n) memory). ``info`` as the solver's.
``block_tridiagonal[<m>](L, D, U, rhs) -> (x, info)``
    ``L, D, U: (B, n, m, m)``; ``rhs, x: (B, n, m)``; methods ``sequential``, ``pcr``, ``hybrid``.
``block_tridiagonal_factor[<m>] = (factor(L, D, U) -> (factors, info), solve(factors, rhs) -> x)``
    as ``tridiagonal_factor``, every method of ``block_tridiagonal``.
``recurrence_dense[<m>](A, b, x0) -> x``
    ``x[:, k] = A[:, k] @ x[:, k-1] + b[:, k]`` with ``x[:, -1] = x0``;
    ``A: (B, n, m, m)``, ``b, x: (B, n, m)``, ``x0: (B, m)``; methods ``sequential``, ``pcr``,
    ``hybrid``. Forward only: the shell flips the sequence axis for reverse recurrences.
    A kernel with ``invariant_A = True`` also takes a time-invariant ``A: (B, 1, m, m)``.
``recurrence_diag[<m>](A, b, x0) -> x``
    the same with a diagonal ``A: (B, n, m)`` (elementwise products; ``(B, 1, m)`` with
    ``invariant_A``).
``all_finite(a)``, ``tridiagonal_backward_error(dl, d, du, rhs, x) -> (B,)``,
``block_backward_error(L, D, U, rhs, x) -> (B,)``
    the checks behind ``check_finite`` and ``method="auto"`` (modules ``check``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["KernelTable", "table"]


@dataclass(frozen=True)
class KernelTable:
    """The kernels of one backend, by structure and method name."""

    tridiagonal: dict[str, Callable[..., Any]]
    tridiagonal_factor: dict[str, tuple[Callable[..., Any], Callable[..., Any]]]
    block_tridiagonal: dict[str, Callable[..., Any]]
    block_tridiagonal_factor: dict[str, tuple[Callable[..., Any], Callable[..., Any]]]
    recurrence_dense: dict[str, Callable[..., Any]]
    recurrence_diag: dict[str, Callable[..., Any]]
    all_finite: Callable[..., Any]
    tridiagonal_backward_error: Callable[..., Any]
    block_backward_error: Callable[..., Any]


def table(family: str, xp: Any = None) -> KernelTable:
    """Return the kernel table of ``family`` ("numba" or "xp"; the latter bound to ``xp``)."""
    if family == "numba":
        from .numba import table as numba_table

        return numba_table()
    from .xp import table as xp_table

    return xp_table(xp)
