"""Block-diagonal Jacobians (``jac_blocks``): their layout, and recurrences with them.

A chain's ``jac_blocks(x_prev, k)`` returns ``(s, *batch, m/b, b, b)``: the Jacobian is
block diagonal after a permutation of the state, block ``i`` coupling the entries
``i, i + m/b, ..., i + (b-1) m/b`` (the state read as ``b`` stacked parts of ``m/b``
entries; ``blocks[..., i, p, q] = J[p m/b + i, q m/b + i]``). A state ``[c; h]`` of two
parts of width ``w`` thus has ``w`` blocks of size 2 coupling ``c_i`` and ``h_i`` (the
block matrix of diagonals of ParaRNN's LSTM cells); ``b = 1`` is a diagonal Jacobian and
``b = m`` a dense one.

A recurrence with such matrices is ``m/b`` independent recurrences of size ``b`` per batch
element: the block axis moves into the batch of the dense recurrence kernels.
"""

from __future__ import annotations

import math
from typing import Any

from ..linear._recurrence import recurrence_kernel

__all__ = ["block_recurrence", "from_blocks", "to_blocks"]


def to_blocks(xp: Any, v: Any, b: int) -> Any:
    """``v (..., m)`` by block, ``(..., m/b, b)``: entry ``p`` of block ``i`` is ``v[..., p m/b + i]``."""
    m = v.shape[-1]
    lead = tuple(v.shape[:-1])
    w = xp.reshape(v, (*lead, b, m // b))
    return xp.permute_dims(w, (*range(len(lead)), len(lead) + 1, len(lead)))


def from_blocks(xp: Any, w: Any) -> Any:
    """The inverse of :func:`to_blocks`: ``(..., m/b, b)`` -> ``(..., m)``."""
    lead = tuple(w.shape[:-2])
    nb, b = w.shape[-2], w.shape[-1]
    v = xp.permute_dims(w, (*range(len(lead)), len(lead) + 1, len(lead)))
    return xp.reshape(v, (*lead, nb * b))


def block_recurrence(be, A, R, z=None, *, method: str, reverse: bool = False, transpose: bool = False) -> Any:
    """Solve ``X_k = A_k X_{k-1} + R_k`` (``X_{k+1}`` when ``reverse``) for block-diagonal ``A_k``.

    Parameters
    ----------
    be : Backend
        The resolved backend.
    A : (s, *batch, m/b, b, b) array
        The blocks (see the module docstring for which entries block ``i`` couples).
    R : (s, *batch, m) array
        The inhomogeneous terms.
    z : (B, m) array, optional
        The state before the first step (after the last when ``reverse``), ``B =
        prod(batch)``; zeros when omitted.
    method : str
        The recurrence kernel (``"auto"``, ``"sequential"``, ``"pcr"``, ``"hybrid"``).
    reverse : bool, optional
        Run from the last step to the first.
    transpose : bool, optional
        Use the transposed blocks ``A_k^T`` (the adjoint recurrence).

    Returns
    -------
    X : (s, *batch, m) array
    """
    xp = be.xp
    s, m = R.shape[0], R.shape[-1]
    batch = tuple(R.shape[1:-1])
    B = math.prod(batch)
    nb, b = A.shape[-3], A.shape[-1]
    # (s, B, nb, b, b) -> kernel layout (B*nb, s, b, b): every block is its own system.
    Ak = xp.permute_dims(xp.reshape(A, (s, B, nb, b, b)), (1, 2, 0, 4, 3) if transpose else (1, 2, 0, 3, 4))
    Ak = be.contiguous(xp.reshape(Ak, (B * nb, s, b, b)))
    Rk = xp.permute_dims(to_blocks(xp, xp.reshape(R, (s, B, m)), b), (1, 2, 0, 3))
    Rk = be.contiguous(xp.reshape(Rk, (B * nb, s, b)))
    if z is None:
        zk = xp.zeros((B * nb, b), dtype=R.dtype)
    else:
        zk = be.contiguous(xp.reshape(to_blocks(xp, z, b), (B * nb, b)))
    X = recurrence_kernel(be, Ak, Rk, zk, dense=True, method=method, reverse=reverse)
    X = xp.permute_dims(xp.reshape(X, (B, nb, s, b)), (2, 0, 1, 3))  # (s, B, nb, b)
    return xp.reshape(from_blocks(xp, X), (s, *batch, m))
