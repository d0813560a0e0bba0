"""One parallel sweep of the chain solver: evaluate the chain, solve the linear step, update.

One sweep over the active steps ``[p, e)`` evaluates every step at once on the current
iterate, ``F_k = f_k(X_{k-1})``, forms the linear step ``dX_k = A_k dX_{k-1} + (F_k - X_k)``
with ``dX_{p-1} = 0`` and solves it with a recurrence kernel (dense for Newton, diagonal for
the quasi-Newton and Picard methods, nothing for Jacobi). Because ``X_{p-1}`` is exact,
``X_p`` becomes exact (it is set to ``F_p``). On NumPy states (the Numba backend) a sweep runs
block by block (:func:`sweep_blocked`); elsewhere it is a handful of whole-array operations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..linear._methods import choose
from ..linear._recurrence import recurrence_kernel
from ._blocks import block_recurrence
from ._eval import Evaluator
from ._policy import Options, threshold
from ._sequential import first_true

__all__ = ["block_steps", "evaluate", "linear_step", "sqnorm", "sweep", "to_kernel"]

# CPU sweeps (and chain_adjoint) run on blocks of steps whose dense Jacobians take about this
# many bytes (an L2 cache), and at least _MIN_BLOCK steps (the chain's per-call overhead).
_BLOCK_BYTES = 1 << 18
_MIN_BLOCK = 64
# A fused pass (no Jacobians) holds a handful of (block, *batch, m) arrays.
_FUSED_BLOCK_BYTES = 1 << 18


def sqnorm(xp, a) -> Any:
    """Squared 2-norms over the last axis (a real array); NaN/inf (or overflow) stay non-finite."""
    sq = xp.vecdot(a, a)
    return xp.real(sq) if xp.isdtype(sq.dtype, "complex floating") else sq


def to_kernel(xp, be, a, s: int, B: int, tail: tuple[int, ...]) -> Any:
    """Step-major ``(s, *batch, *tail)`` -> the kernels' batch-major ``(B, s, *tail)``."""
    a = xp.reshape(a, (s, B, *tail))
    return be.contiguous(xp.permute_dims(a, (1, 0, *range(2, 2 + len(tail)))))


def linear_step(be, opts: Options, A, R, s: int, batch: tuple[int, ...], m: int, z=None, method=None) -> Any:
    """Solve ``dX_k = A_k dX_{k-1} + R_k`` over ``s`` active steps from ``dX_{-1} = z``.

    ``z``: ``(B, m)`` with ``B = prod(batch)``, zeros when omitted (the state before the
    sweep is exact); a carry when a sweep is solved block by block. ``method``: the
    recurrence kernel, ``opts.recurrence_method`` when omitted.
    """
    xp = be.xp
    if opts.kind == "zero":
        return R
    B = math.prod(batch)
    if opts.kind == "block":  # (s, *batch, m/b, b, b): the block axis joins the batch
        return block_recurrence(be, A, R, z, method=method or opts.recurrence_method)
    if opts.kind == "identity":
        dX = xp.cumulative_sum(R, axis=0)
        return dX if z is None else dX + xp.reshape(z, (*batch, m))
    dense = opts.kind == "dense"
    Ak = to_kernel(xp, be, A, s, B, (m, m) if dense else (m,))
    Rk = to_kernel(xp, be, R, s, B, (m,))
    z = xp.zeros((B, m), dtype=R.dtype) if z is None else z
    dX = recurrence_kernel(be, Ak, Rk, z, dense=dense, method=method or opts.recurrence_method)
    dX = xp.permute_dims(dX, (1, 0, 2))
    return xp.reshape(dX, (s, *batch, m))


def evaluate(ev: Evaluator, be, opts: Options, X, x0, ks, a: int, b: int, carry=None, out=None):
    """Steps ``[a, b)`` at the iterate ``X``: step values and the linear step.

    ``F_k = f_k(X_{k-1})`` (``X_{-1} = x0``) and ``dX_k = A_k dX_{k-1} + (F_k - X_k)`` from
    ``dX_{a-1} = carry`` (``(B, m)`` with ``B = prod(batch)``; zeros when None). Returns
    ``(F, dX)``, each ``(b - a, *batch, m)``; on NumPy states ``out = (F, dX)`` are filled in
    place. On NumPy states the chain's fused pass runs when it has one (no Jacobians formed,
    see :meth:`Evaluator.fused`); otherwise ``linearize`` and a recurrence kernel.
    """
    xp, m, batch = be.xp, ev.m, ev.batch
    s, B = b - a, math.prod(batch)
    method = None
    if be.is_numba:
        fused = ev.fused(opts.kind)
        if fused is not None:
            F, dX = (
                out
                if out is not None
                else (np.empty((s, *batch, m), X.dtype), np.empty((s, *batch, m), X.dtype))
            )
            x_first = x0 if a == 0 else X[a - 1, ...]
            z = np.zeros((B, m), dtype=X.dtype) if carry is None else carry
            flat = (s, B, m)
            fused(
                np.reshape(X, (-1, B, m)),
                np.reshape(x_first, (B, m)),
                a,
                b,
                z,
                np.reshape(F, flat),
                np.reshape(dX, flat),
            )
            return F, dX
        # A copy (s m numbers, small against the Jacobians): defensive, a chain that writes
        # into x_prev cannot corrupt the iterate.
        Xprev = np.concatenate([x0[None, ...], X[: b - 1, ...]]) if a == 0 else X[a - 1 : b - 1, ...].copy()
        from ._fused import KIND_CODES, linear_block

        if opts.kind in KIND_CODES:  # the linear step in one pass, Jacobians read where they are
            Fb, A = ev.linearize(Xprev, ks[a:b], opts.kind)
            if out is None:
                out = (np.empty((s, *batch, m), X.dtype), np.empty((s, *batch, m), X.dtype))
            out[0][...] = Fb
            flat = (s, B, m)
            A = None if A is None else np.reshape(A, (*flat, m) if opts.kind == "dense" else flat)
            z = np.zeros((B, m), dtype=X.dtype) if carry is None else carry
            X3 = np.reshape(X, (-1, B, m))
            linear_block(A, np.reshape(out[0], flat), X3, a, z, opts.kind, np.reshape(out[1], flat))
            return out
        method = choose("recurrence", "auto", be, B, s)
    else:
        first = x0[None, ...] if a == 0 else X[a - 1 : a, ...]
        Xprev = xp.concat([first, X[a : b - 1, ...]], axis=0) if s > 1 else first
    F, A = ev.linearize(Xprev, ks[a:b], opts.kind)
    dX = linear_step(be, opts, A, F - X[a:b, ...], s, batch, m, carry, method)
    if out is None:
        return F, dX
    out[0][...] = F
    out[1][...] = dX
    return out


def sweep(ev: Evaluator, be, opts: Options, X, x0, ks, p: int, e: int, omega: float, prev: float | None):
    """One parallel sweep over ``[p, e)``: updates ``X[p:e]`` and returns device statistics.

    Returns ``(n_ok, max_err, f0_bad)`` as device arrays: the number of leading steps that
    converged (at least 1: step ``p`` is exact), the largest scaled update (``inf`` when
    non-finite values were held back), and per batch element whether ``f_p`` itself (the
    sequential chain) is not finite. ``prev`` is the previous sweep's largest update, from
    which the acceptance threshold is predicted (see :func:`threshold`).
    """
    if be.is_numba:
        return sweep_blocked(ev, be, opts, X, x0, ks, p, e, omega, prev)
    xp, batch = be.xp, ev.batch
    s = e - p
    Xa = X[p:e, ...]
    F, dX = evaluate(ev, be, opts, X, x0, ks, p, e)
    # Non-finite values (from f or J at a bad iterate, or an overflowing linear solve) poison
    # everything after them along the chain (NaN propagates through A); hold those positions
    # back, per batch element, so that no non-finite value ever enters the iterate. The
    # squared norms double as the finiteness test (NaN and inf propagate through them),
    # which saves a reduction over the short state axis.
    ndx = sqnorm(xp, dX)  # (s, *batch)
    poisoned = xp.cumulative_sum(xp.astype(~xp.isfinite(ndx), xp.int32), axis=0) > 0
    Xnew = Xa + omega * dX if omega != 1.0 else Xa + dX
    f0_ok = xp.isfinite(sqnorm(xp, F[0, ...]))
    # Step p follows an exact state: its value is f_p itself, undamped and bit-exact.
    Xnew = xp.concat([xp.where(f0_ok[..., None], F[0:1, ...], Xa[0:1, ...]), Xnew[1:, ...]], axis=0)
    nx = sqnorm(xp, Xnew)
    keep = poisoned | ~xp.isfinite(nx)
    keep = xp.concat([~f0_ok[None, ...], keep[1:, ...]], axis=0)
    X[p:e, ...] = xp.where(keep[..., None], Xa, Xnew)
    # The scaled Newton update ||dx|| / (1 + ||x||): an estimate of the forward error of the
    # old iterate, relative to the state's size.
    err = xp.where(keep | poisoned, xp.asarray(math.inf, dtype=ndx.dtype), xp.sqrt(ndx) / (1 + xp.sqrt(nx)))
    err = xp.max(xp.reshape(err, (s, -1)), axis=1) if batch else err  # worst batch element
    max_err = xp.max(err)
    over = err > threshold(xp, opts, max_err, prev)
    # Step p is exact whatever its update: never count it as unconverged.
    over = xp.concat([xp.zeros((1,), dtype=xp.bool), over[1:]], axis=0)
    return first_true(xp, over), max_err, xp.reshape(~f0_ok, (-1,))


def block_steps(
    batch: tuple[int, ...], m: int, itemsize: int, fused: bool = False, per_state: int | None = None
) -> int:
    """Steps per block of a CPU pass over a chain: about ``_BLOCK_BYTES`` of Jacobians, ``m``
    numbers per state entry (dense) unless ``per_state`` says otherwise (1 for a diagonal, ``b``
    for ``b x b`` blocks, 0 for none), or, for a fused pass (no Jacobians), about
    ``_FUSED_BLOCK_BYTES`` of states."""
    state = math.prod(batch) * m * itemsize
    if fused:
        return max(_MIN_BLOCK, _FUSED_BLOCK_BYTES // state)
    per_state = m if per_state is None else max(per_state, 1)  # (the states themselves, at least)
    return max(_MIN_BLOCK, _BLOCK_BYTES // (state * per_state))


def sweep_blocked(ev: Evaluator, be, opts: Options, X, x0, ks, p: int, e: int, omega: float, prev):
    """:func:`sweep` on NumPy states (Numba backend), block by block; host numbers out.

    The chain is evaluated and the linear step solved on blocks of consecutive steps, the
    linear step's last value carried from block to block (the same arithmetic as one
    sequential solve), so a block's Jacobians, and the chain's own temporaries, are
    consumed while they are in cache and the sweep never holds more than one block of
    them: memory O(block m^2) instead of O(s m^2), and on this class of CPU about half the
    time of one call over the whole sweep. The states are updated only after every block
    has been evaluated at the old iterate; the bookkeeping is fused into one Numba pass.
    """
    from ._fused import update

    m, batch = ev.m, ev.batch
    B, s = math.prod(batch), e - p
    c = block_steps(batch, m, X.dtype.itemsize, ev.fused(opts.kind) is not None, ev.jacobian_size(opts.kind))
    F = ev.scratch("F", (s, *batch, m))
    dX = ev.scratch("dX", (s, *batch, m))
    carry = None
    for a in range(p, e, c):
        b = min(e, a + c)
        evaluate(ev, be, opts, X, x0, ks, a, b, carry, out=(F[a - p : b - p], dX[a - p : b - p]))
        carry = np.reshape(dX[b - p - 1], (B, m))
    err, f0_ok = update(
        np.reshape(X, (X.shape[0], B, m)), p, np.reshape(F, (s, B, m)), np.reshape(dX, (s, B, m)), omega
    )
    max_err = float(err.max())
    over = np.flatnonzero(err[1:] > threshold(np, opts, max_err, prev))
    return (1 + int(over[0]) if over.size else s), max_err, ~f0_ok
