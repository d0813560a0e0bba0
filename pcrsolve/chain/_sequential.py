"""The plain loop over a chain's steps, and locating the first non-finite step."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._eval import Evaluator, has

__all__ = ["first_true", "nonfinite_error", "raise_first_nonfinite", "run_sequential"]

# The loop checks finiteness once per block of this many steps (one host synchronisation
# per block instead of per step); a NaN is still located exactly.
_SEQ_BLOCK = 64


def first_true(xp, mask) -> Any:
    """Device int: number of leading False entries of a 1-D bool mask (its length if none)."""
    hits = xp.cumulative_sum(xp.astype(mask, xp.int32))
    return xp.sum(xp.astype(hits == 0, xp.int32))


def _where_batch(batch: tuple[int, ...], flat: int) -> str:
    if not batch:
        return ""
    return f" (batch element {tuple(int(i) for i in np.unravel_index(flat, batch))})"


def nonfinite_error(k: int, batch: tuple[int, ...], b: int) -> FloatingPointError:
    return FloatingPointError(
        f"the chain produced NaN or inf at step {k}{_where_batch(batch, b)} from finite states: the "
        "sequential loop itself is not finite there, so no solver can return finite states. Check "
        f"the step function and its parameters at step {k}."
    )


def raise_first_nonfinite(xp, block, start: int, batch: tuple[int, ...]) -> None:
    """Raise for the first non-finite step of ``block (c, *batch, m)`` (host sync: error path)."""
    c = block.shape[0]
    bad = ~xp.all(xp.reshape(xp.isfinite(block), (c, -1, block.shape[-1])), axis=-1)  # (c, B)
    step = int(first_true(xp, xp.any(bad, axis=1)))
    b = int(first_true(xp, bad[step, ...]))
    raise nonfinite_error(start + step, batch, b)


def run_sequential(ev: Evaluator, X: Any, x_prev: Any, ks: Any, start: int, stop: int) -> Any:
    """The plain loop: ``X[k] = f_k(X[k-1])`` for ``k`` in ``[start, stop)``, written into ``X``.

    ``x_prev`` is the state before ``start``, shape ``(1, *batch, m)``. The chain's own
    ``sequential`` hook runs the loop when it has one (one call), else ``step`` is called once
    per step. Raises :class:`FloatingPointError` naming the first non-finite step.
    """
    xp = ev.xp
    if start >= stop:
        return X
    if has(ev.chain, "sequential"):
        into = X[start:stop, ...]
        out = ev.sequential(x_prev[0, ...], start, stop, into)
        if not bool(xp.all(xp.isfinite(out))):
            raise_first_nonfinite(xp, out, start, ev.batch)
        if out is not into:
            X[start:stop, ...] = out
        return X
    x = x_prev
    if start < stop:  # the first call goes through the checks; the rest call the chain directly
        x = ev.step(x, ks[start : start + 1])
    step = ev.chain.step
    for c0 in range(start, stop, _SEQ_BLOCK):
        c1 = min(stop, c0 + _SEQ_BLOCK)
        outs = [x] if c0 == start else []
        for k in range(c0 + (c0 == start), c1):
            x = step(x, ks[k : k + 1])
            outs.append(x)
        ev.n_step_evals += len(outs) - (c0 == start)
        block = xp.concat(outs, axis=0)
        if not bool(xp.all(xp.isfinite(block))):
            raise_first_nonfinite(xp, block, c0, ev.batch)
        X[c0:c1, ...] = block
    return X
