"""Calling an autoregressive ``func`` and its derivatives: layout, checks, counts, Jacobians.

:func:`pcrsolve.solve_autoregressive` works on a canonical layout ``(*batch, n)`` (the sequence
axis last, the other axes in their order); :class:`Problem` converts to and from the user's
layout, is the one place ``func``, ``jac`` and ``jvp`` are called, checks what they return,
counts the calls, and assembles the Jacobian's window or band from ``jvp`` probes.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .. import _backend

__all__ = ["Problem"]

# jvp probes are passed in chunks of at most this many elements (tangents x array size).
_PROBE_ELEMENTS = 1 << 22


class Problem:
    """``func`` (with ``jac``, ``jvp``) bound to one solve.

    Parameters
    ----------
    func, jac, jvp : callable
        The user's callbacks (``jac``, ``jvp`` may be None).
    xp : module
        The array namespace.
    shape : tuple of int
        The user's array shape; ``axis`` (non-negative) is the sequence axis.
    axis : int
        The sequence axis of ``shape``.
    dtype : dtype
        The dtype every callback must return.
    """

    def __init__(self, func, jac, jvp, xp, shape: tuple[int, ...], axis: int, dtype) -> None:
        self.func, self.jac_fn, self.jvp_fn, self.xp, self.dtype = func, jac, jvp, xp, dtype
        self.shape, self.axis = shape, axis
        nd = len(shape)
        others = [i for i in range(nd) if i != axis]
        self.batch = tuple(shape[i] for i in others)
        self.n = shape[axis]
        perm = (*others, axis)
        self._to_canon = None if axis == nd - 1 else perm
        self._to_user = None if axis == nd - 1 else tuple(perm.index(i) for i in range(nd))
        self.n_evals = 0
        self.n_jac_evals = 0
        self.eval_time = 0.0  # seconds in func, jac and jvp
        self.t_call = math.inf  # the fastest call of func: one step of position-by-position sampling
        self._library_checked = False

    # ------------------------------------------------------------------ layout

    def to_user(self, X: Any, lead: int = 0) -> Any:
        """Canonical ``(*lead, *batch, n)`` -> the user's layout ``(*lead, *shape)``."""
        if self._to_user is None:
            return X
        return self.xp.permute_dims(X, (*range(lead), *(lead + i for i in self._to_user)))

    def to_canon(self, Y: Any, lead: int = 0) -> Any:
        """The user's layout -> canonical (inverse of :meth:`to_user`)."""
        if self._to_canon is None:
            return Y
        return self.xp.permute_dims(Y, (*range(lead), *(lead + i for i in self._to_canon)))

    def where_batch(self, flat: int) -> str:
        """`` (batch element (i, j))`` for a flat index into the batch axes, or ``""``."""
        if not self.batch:
            return ""
        idx, rest = [], flat
        for size in reversed(self.batch):
            idx.append(rest % size)
            rest //= size
        return f" (batch element {tuple(reversed(idx))})"

    # ------------------------------------------------------------------ checks

    def _check(self, name: str, out: Any, want: tuple[int, ...], layout: str) -> Any:
        shape = getattr(out, "shape", None)
        if shape is None or not hasattr(out, "dtype"):
            raise TypeError(
                f"`{name}` must return an array of the library of `x_init`, {layout}; got "
                f"{type(out).__name__}."
            )
        if not self._library_checked:
            got, want_lib = _backend._library(out), _backend._library(self.xp.zeros(()))
            if got != want_lib:
                raise TypeError(
                    f"`{name}` must return arrays of the library of `x_init` ({want_lib}); got a {got} "
                    "array. Write it with the array namespace of its argument, or pass backend=."
                )
            self._library_checked = True
        if tuple(shape) != want:
            raise ValueError(
                f"`{name}` must return shape {layout} = {want} for x_init of shape {self.shape}; got shape "
                f"{tuple(shape)}. It must keep the shape of its argument (the sequence along `axis`, every "
                "other axis a batch axis)."
            )
        if out.dtype != self.dtype:
            raise TypeError(
                f"`{name}` must return the dtype of its argument, {self.dtype}; got {out.dtype}. Cast its "
                f"parameters to {self.dtype}, or pass x_init of dtype {out.dtype}."
            )
        return out

    # ------------------------------------------------------------------ calls

    def f(self, X: Any) -> Any:
        """``func`` on a canonical iterate (a private copy: ``func`` cannot touch the iterate)."""
        t0 = time.perf_counter()
        out = self.func(self.to_user(self.xp.asarray(X, copy=True)))
        out = self.to_canon(self._check("func", out, self.shape, "x_init.shape"))
        dt = time.perf_counter() - t0  # a step of the loop: the call with its copy and checks
        self.eval_time += dt
        self.t_call = min(self.t_call, max(dt, 1e-9))
        self.n_evals += 1
        return out

    def jacobian(self, X: Any, p: int, e: int) -> Any:
        """The window ``[p, e)`` of the Jacobian, ``(*batch, s, s)``: from ``jac``, else ``s`` probes."""
        xp = self.xp
        if self.jac_fn is not None:
            t0 = time.perf_counter()
            J = self.jac_fn(self.to_user(xp.asarray(X, copy=True)))
            self.eval_time += time.perf_counter() - t0
            self.n_jac_evals += 1
            J = self._check("jac", J, (*self.batch, self.n, self.n), "(*batch, n, n)")
            return J[..., p:e, p:e]
        s, nb = e - p, len(self.batch)
        t = xp.reshape(xp.arange(self.n), (1, self.n))
        cols = []
        for q0, q1 in self._chunks(s):
            # Tangent q is the unit vector of position p + q (in every batch element at once).
            sel = xp.astype(t == xp.reshape(xp.arange(p + q0, p + q1), (-1, 1)), self.dtype)
            out = self._jvp(X, sel)  # (q, *batch, n): column p + q of each Jacobian
            cols.append(out[..., p:e])
        Jt = xp.concat(cols, axis=0) if len(cols) > 1 else cols[0]  # (s_cols, *batch, s_rows)
        return xp.permute_dims(Jt, (*range(1, nb + 1), nb + 1, 0))

    def bands(self, X: Any, p: int, e: int, r: int) -> Any:
        """Lags ``1..r`` of the window's Jacobian rows, ``(*batch, r, s)`` (zero before the window).

        ``band[..., l-1, t] = J[p+t, p+t-l]``. From ``jac``, else from ``r`` compressed ``jvp``
        probes (Curtis, Powell and Reid): probe ``c`` perturbs the window's positions ``t`` with
        ``t % r == c``; row ``t`` reads at most the ``r`` positions before it, which lie in
        distinct probes, so each probe returns one entry per row.
        """
        xp, s, nb = self.xp, e - p, len(self.batch)
        t = xp.arange(s)
        lag = xp.reshape(xp.arange(1, r + 1), (r, 1))
        valid = xp.reshape(t, (1, s)) >= lag  # (r, s)
        if self.jac_fn is not None:
            flat = xp.reshape(self.jacobian(X, p, e), (*self.batch, s * s))
            idx = xp.where(valid, xp.reshape(t, (1, s)) * (s + 1) - lag, 0)
        else:
            pos = xp.arange(self.n)
            probe = xp.reshape(xp.arange(r), (r, 1))
            inside = xp.reshape((pos >= p) & (pos < e), (1, self.n))
            sel = xp.astype(inside & (xp.reshape((pos - p) % r, (1, self.n)) == probe), self.dtype)
            out = self._jvp(X, sel)[..., p:e]  # (r, *batch, s)
            flat = xp.reshape(xp.permute_dims(out, (*range(1, nb + 1), 0, nb + 1)), (*self.batch, r * s))
            idx = xp.where(valid, ((xp.reshape(t, (1, s)) - lag) % r) * s + xp.reshape(t, (1, s)), 0)
        vals = xp.take(flat, xp.reshape(idx, (-1,)), axis=-1)
        vals = xp.reshape(vals, (*self.batch, r, s))
        return xp.where(valid, vals, xp.zeros((), dtype=self.dtype))

    def _chunks(self, q: int) -> list[tuple[int, int]]:
        size = max(1, _PROBE_ELEMENTS // max(1, math.prod(self.shape)))
        return [(a, min(q, a + size)) for a in range(0, q, size)]

    def _jvp(self, X: Any, sel: Any) -> Any:
        """``J v`` for tangents ``v[q] = sel[q]`` on every batch element: ``(q, *batch, n)`` canonical."""
        xp, q, nb = self.xp, sel.shape[0], len(self.batch)
        V = xp.reshape(sel, (q, *([1] * nb), self.n)) + xp.zeros((q, *self.batch, self.n), dtype=self.dtype)
        t0 = time.perf_counter()
        out = self.jvp_fn(self.to_user(xp.asarray(X, copy=True)), self.to_user(V, lead=1))
        self.eval_time += time.perf_counter() - t0
        self.n_jac_evals += q
        out = self._check("jvp", out, (q, *self.shape), "(q, *x_init.shape) for q tangents")
        return self.to_canon(out, lead=1)
