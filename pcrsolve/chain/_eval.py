"""Calling a chain: its step, its Jacobians in the form a method needs, checks and counts.

:class:`Evaluator` is the one place the chain solver touches user callbacks. It checks the
shape and dtype of each callback's first output (later calls are trusted, so the loop does
no re-validation), counts step and Jacobian evaluations, and builds Jacobians the chain
does not give directly: dense ones from ``m`` ``jvp`` (or ``vjp``) probes stacked along the
step axis, so all probes of all steps are one call, and diagonals from dense ones.
"""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = ["CALLBACKS", "Evaluator", "check_output", "has"]

CALLBACKS = ("step", "jac", "jac_diag", "jac_blocks", "jvp", "vjp", "linearize", "sequential")


def has(chain: Any, name: str) -> bool:
    """Whether ``chain`` offers callback ``name`` (a ``None`` attribute counts as absent)."""
    return callable(getattr(chain, name, None))


def _shape(a: Any) -> tuple[int, ...] | None:
    shape = getattr(a, "shape", None)
    return None if shape is None else tuple(shape)


_HINT = "Step functions are vectorized over the leading step axis: x_prev[i] is the state before step k[i]."


def check_output(
    name: str, out: Any, want: tuple[int, ...], layout: str, dtype: Any, x_prev: tuple[int, ...], hint: str
) -> Any:
    """Raise unless callback ``name`` returned an array of shape ``want`` and dtype ``dtype``.

    ``layout`` spells the expected shape, ``x_prev`` is the shape the callback was given, and
    ``hint`` follows a shape error (how the callbacks are vectorized).
    """
    got = _shape(out)
    if got is None or not hasattr(out, "dtype"):
        raise TypeError(
            f"`chain.{name}` must return an array of the states' library, {layout}; got {type(out).__name__}."
        )
    if got != want:
        raise ValueError(
            f"`chain.{name}` must return shape {layout} = {want} for x_prev of shape {x_prev}; got shape "
            f"{got}. {hint}"
        )
    if out.dtype != dtype:
        raise TypeError(
            f"`chain.{name}` must return the states' dtype {dtype}; got {out.dtype}. Keep the dtype of "
            f"x_prev (e.g. cast the chain's parameters to {dtype}), or pass x0 of dtype {out.dtype}."
        )
    return out


class Evaluator:
    """A chain bound to one solve: array namespace, state dtype, batch shape and counters.

    Parameters
    ----------
    chain : Chain
        The chain.
    xp : module
        The array namespace of the states.
    dtype : dtype
        The state dtype; every callback must return it.
    batch : tuple of int
        The batch shape of the states ``(*batch, m)``.
    m : int
        The state size.
    """

    def __init__(self, chain: Any, xp: Any, dtype: Any, batch: tuple[int, ...], m: int) -> None:
        self.chain, self.xp, self.dtype, self.batch, self.m = chain, xp, dtype, batch, m
        self.n_step_evals = 0
        self.eval_time = 0.0  # seconds spent in linearize, all calls
        self.n_jac_evals = 0
        self._checked: set[str] = set()
        self._block: int | None = None  # the size of the blocks of jac_blocks, once seen
        self._fused: dict[str, Any] = {}
        self._scratch: dict[str, Any] = {}

    # ------------------------------------------------------------------ checks

    def _check(
        self,
        name: str,
        out: Any,
        s: int,
        tail: tuple[int, ...],
        layout: str,
        hint: str | None = None,
        x_prev: tuple[int, ...] | None = None,
    ) -> Any:
        """Check the first output of callback ``name``: shape ``(s, *batch, *tail)`` and dtype."""
        if name in self._checked:
            return out
        x_prev = (s, *self.batch, self.m) if x_prev is None else x_prev
        check_output(name, out, (s, *self.batch, *tail), layout, self.dtype, x_prev, hint or _HINT)
        self._checked.add(name)
        return out

    def scratch(self, name: str, shape: tuple[int, ...]) -> Any:
        """A work array of ``shape`` in the states' dtype, reused by the sweeps of one solve.

        NumPy states only. Fresh large temporaries in every sweep cost page faults (the C
        library returns freed large blocks to the system), as much as the sweep's arithmetic.
        """
        import numpy as np

        size = math.prod(shape)
        buf = self._scratch.get(name)
        if buf is None or buf.size < size:
            buf = self._scratch[name] = np.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)

    # ------------------------------------------------------------------ evaluations

    def step(self, x_prev: Any, k: Any) -> Any:
        """``f_k(x_prev)``: ``(s, *batch, m)``."""
        s = x_prev.shape[0]
        out = self.chain.step(x_prev, k)
        self.n_step_evals += s
        return self._check("step", out, s, (self.m,), "(s, *batch, m)")

    def sequential(self, x_prev: Any, start: int, stop: int, into: Any = None) -> Any:
        """The chain's own loop over steps ``[start, stop)`` from ``x_prev (*batch, m)``.

        Returns ``(stop - start, *batch, m)``; shape and dtype are checked on the first call,
        finiteness by the caller (:func:`._sequential.run_sequential`). With ``into`` (the
        solver's states for those steps), a chain with the private hook
        ``_sequential_into(x_prev, start, stop, out) -> bool`` (the adapters) may write them
        there instead, returning ``into``: a state array as large as the chain is then not
        copied once more.
        """
        s = stop - start
        write = getattr(self.chain, "_sequential_into", None)
        if into is not None and write is not None and write(x_prev, start, stop, into):
            self.n_step_evals += s
            return into
        out = self.chain.sequential(x_prev, start, stop)
        self.n_step_evals += s
        return self._check(
            "sequential",
            out,
            s,
            (self.m,),
            "(stop - start, *batch, m)",
            f"It returns the state after each of steps {start}..{stop - 1}, the one after step "
            "`start` first.",
            (*self.batch, self.m),
        )

    def guess(self, x_prev: Any, start: int, stop: int) -> Any:
        """The chain's first guess of states ``[start, stop)`` from the exact state ``x_prev``
        before them, or None (the solver then repeats ``x_prev``).

        A chain may offer a private ``_initial_guess(x_prev, start, stop)`` returning ``(stop -
        start, *batch, m)``: the RNN adapters give ``f_t(x_prev)`` for every step ``t``
        (ParaRNN's first guess, one vectorized evaluation, which usually saves a Newton
        iteration). It is asked only when sweeps run (after the route is chosen), and only
        for steps without an iterate yet (not with the caller's ``x_init``); it may return
        None (no guess for these states).
        """
        get = getattr(self.chain, "_initial_guess", None)
        out = get(x_prev, start, stop) if callable(get) else None
        if out is None:  # no hook, or none for these states
            return None
        s = stop - start
        self.n_step_evals += s
        layout = "(stop - start, *batch, m)"
        return self._check("_initial_guess", out, s, (self.m,), layout, None, (*self.batch, self.m))

    def jac(self, x_prev: Any, k: Any) -> Any:
        """Dense Jacobians ``(s, *batch, m, m)`` from ``jac``, else from ``m`` ``jvp`` probes."""
        s = x_prev.shape[0]
        self.n_jac_evals += s
        if has(self.chain, "jac"):
            out = self.chain.jac(x_prev, k)
            return self._check("jac", out, s, (self.m, self.m), "(s, *batch, m, m)")
        return self._probe("jvp", x_prev, k)

    def jac_transposed(self, x_prev: Any, k: Any) -> Any:
        """``J^T``, ``(s, *batch, m, m)``: transposed ``jac``, else ``m`` ``vjp`` probes."""
        xp = self.xp
        s = x_prev.shape[0]
        self.n_jac_evals += s
        if has(self.chain, "jac"):
            out = self._check("jac", self.chain.jac(x_prev, k), s, (self.m, self.m), "(s, *batch, m, m)")
            return xp.matrix_transpose(out)
        if has(self.chain, "linearize"):
            _, out = self.chain.linearize(x_prev, k)
            out = self._check("linearize", out, s, (self.m, self.m), "(f, jac) with jac (s, *batch, m, m)")
            return xp.matrix_transpose(out)
        return self._probe("vjp", x_prev, k)

    def _probe(self, name: str, x_prev: Any, k: Any) -> Any:
        """Assemble ``J`` (``name="jvp"``) or ``J^T`` (``"vjp"``) from ``m`` probes in one call.

        The probes are stacked along the step axis (probe ``j`` of step ``t`` is row
        ``j*s + t``), which every vectorized chain accepts, so there is one callback call
        and no loop over ``m``. Output row ``j*s + t`` is ``J_t e_j`` (column ``j``) for jvp
        and ``J_t^T e_j`` (column ``j`` of ``J^T``) for vjp; moving the probe axis last
        gives ``J`` respectively ``J^T``.
        """
        xp, m, s, nb = self.xp, self.m, x_prev.shape[0], len(self.batch)
        xr = xp.concat([x_prev] * m, axis=0)
        kr = xp.concat([k] * m, axis=0)
        eye = xp.eye(m, dtype=self.dtype)
        v = xp.broadcast_to(xp.reshape(eye, (m, 1, *([1] * nb), m)), (m, s, *self.batch, m))
        v = xp.reshape(v, (m * s, *self.batch, m))
        out = getattr(self.chain, name)(xr, kr, v)
        out = self._check(name, out, m * s, (m,), "(s, *batch, m)")
        out = xp.reshape(out, (m, s, *self.batch, m))
        return xp.permute_dims(out, (*range(1, nb + 3), 0))

    def jac_blocks(self, x_prev: Any, k: Any) -> Any:
        """Block-diagonal Jacobians ``(s, *batch, m/b, b, b)`` from the chain's ``jac_blocks``.

        The block size ``b`` is the chain's choice (any divisor of ``m``); see
        :mod:`._blocks` for the entries each block couples.
        """
        s = x_prev.shape[0]
        self.n_jac_evals += s
        out = self.chain.jac_blocks(x_prev, k)
        got = _shape(out) or ()
        # The block size is the chain's choice: read it off the output (b = 1 if unusable).
        b = got[-1] if got and got[-1] > 0 and self.m % got[-1] == 0 else 1
        out = self._check("jac_blocks", out, s, (self.m // b, b, b), "(s, *batch, m/b, b, b)")
        self._block = b
        return out

    def jacobian_size(self, kind: str) -> int | None:
        """Numbers per state entry of the linear step of ``kind``: ``m`` (dense), the block
        size (block, once ``jac_blocks`` was called; None before), 1 (diagonal), 0 (none)."""
        return {"dense": self.m, "block": self._block, "diag": 1}.get(kind, 0)

    def vjp_or_jt(self, x_prev: Any, k: Any, u: Any, jt: Any | None) -> Any:
        """``J^T u`` for one batch of steps: from ``vjp`` if given, else from ``jt`` (J^T)."""
        xp = self.xp
        if jt is not None:
            return xp.matmul(jt, u[..., None])[..., 0]
        out = self.chain.vjp(x_prev, k, u)
        return self._check("vjp", out, x_prev.shape[0], (self.m,), "(s, *batch, m)")

    def fused(self, kind: str) -> Any:
        """The chain's fused sweep pass for ``kind`` on NumPy states, or None (cached per kind).

        A chain may offer a private ``_fused_pass(kind, dtype)`` returning ``run(X, x_first,
        a, b, carry, F, dX)`` (or None where it does not apply): one block of a sweep, step
        values and linear step together, without forming Jacobians (see
        :func:`._sweep.evaluate`). The adapters do; the generic path (``linearize`` and a
        recurrence kernel) is the reference their tests compare against.
        """
        if kind in self._fused:
            return self._fused[kind]
        get = getattr(self.chain, "_fused_pass", None)
        run = get(kind, self.dtype) if callable(get) else None
        wrapped = None
        if run is not None:
            jac = kind not in ("zero", "identity")

            def wrapped(X, x_first, a, b, carry, F, dX):
                t0 = time.perf_counter()
                run(X, x_first, a, b, carry, F, dX)
                self.eval_time += time.perf_counter() - t0
                self.n_step_evals += b - a
                self.n_jac_evals += (b - a) if jac else 0

        self._fused[kind] = wrapped
        return wrapped

    def linearize(self, x_prev: Any, k: Any, kind: str) -> tuple[Any, Any]:
        """``(f, A)`` for one sweep: ``A`` dense (``kind="dense"``), diagonal, blocks or ``None``.

        Dense: the chain's ``linearize`` when it has one (fused, cheaper), else ``step`` and
        ``jac`` (or ``jvp`` probes). Diagonal: ``jac_diag``, else the diagonal of the dense
        Jacobian. Blocks (``kind="block"``): ``jac_blocks``. Other kinds (identity, zero) need
        no Jacobian. The wall time of the call is added to ``eval_time``.
        """
        t0 = time.perf_counter()
        out = self._linearize(x_prev, k, kind)
        self.eval_time += time.perf_counter() - t0
        return out

    def _linearize(self, x_prev: Any, k: Any, kind: str) -> tuple[Any, Any]:
        xp, s, m = self.xp, x_prev.shape[0], self.m
        if kind == "block":
            return self.step(x_prev, k), self.jac_blocks(x_prev, k)
        if kind not in ("dense", "diag"):
            return self.step(x_prev, k), None
        if kind == "diag" and has(self.chain, "jac_diag"):
            f = self.step(x_prev, k)
            self.n_jac_evals += s
            d = self._check("jac_diag", self.chain.jac_diag(x_prev, k), s, (m,), "(s, *batch, m)")
            return f, d
        if has(self.chain, "linearize"):
            f, J = self.chain.linearize(x_prev, k)
            self.n_step_evals += s
            self.n_jac_evals += s
            f = self._check("step", f, s, (m,), "(f, jac) with f (s, *batch, m)")
            J = self._check("linearize", J, s, (m, m), "(f, jac) with jac (s, *batch, m, m)")
        else:
            f = self.step(x_prev, k)
            J = self.jac(x_prev, k)
        if kind == "diag":
            J = xp.sum(J * xp.eye(m, dtype=self.dtype), axis=-1)
        return f, J
