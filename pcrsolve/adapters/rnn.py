"""Recurrent networks over time as chains: ``h_t = cell(h_{t-1}, x_t)``, ``t = 0 .. T-1``."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from .. import _backend
from . import _rnn_numba
from ._dense import _float_dtype, _shape
from ._rnn_layer import Layer, Params
from ._rnn_validation import check_rnn, check_steps

__all__ = ["RNN"]


class _Context:
    """A layer's parameters and the input projections ``P (T, B, G, w)`` in one backend and dtype."""

    __slots__ = ("P", "params", "prm")

    def __init__(self, params: Params, P: Any) -> None:
        self.params, self.prm, self.P = params, params.prm, P


class _Call:
    """One evaluation: backend, namespace, sizes, parameters and the cell's intermediates.

    ``fast``: ``g`` holds the compiled gates of a diagonal cell (:mod:`._rnn_numba`) instead
    of the dict of :meth:`Cell.forward`.
    """

    __slots__ = ("B", "be", "ctx", "dtype", "fast", "g", "s", "xp")


class RNN:
    r"""A recurrent network over time as a chain ``h_t = f(h_{t-1}, x_t)``, ``t = 0 .. T-1``.

    The states are the hidden states ``states[t] = h_t`` (``states[-1] := h0``), shape
    ``(T, *batch, m)``. :meth:`forward` computes all of them by the faster of two exact routes:
    Newton's method over time (DEER, ParaRNN), which solves for all steps at once, or the
    compiled loop; :meth:`gradients` back-propagates a loss on all of them through one adjoint
    solve. With ``s`` the logistic sigmoid and ``*`` elementwise products, the cells are:

    ``"elman"``: ``h' = tanh(W h + U x + b)``. Dense Jacobian.

    ``"gru"``: ``z = s(W_z h + U_z x + b_z)``, ``r = s(W_r h + U_r x + b_r)``,
    ``c = tanh(W_c (r*h) + U_c x + b_c)``, ``h' = (1-z)*h + z*c``. Dense Jacobian.

    ``"gru_diag"`` (ParaGRU): the GRU with diagonal recurrent weights ``a_z, a_r, a_c`` in
    place of ``W_z, W_r, W_c``. Diagonal Jacobian: ``method="diagonal"`` is exact Newton.

    ``"lstm_diag"`` (ParaLSTM: coupled input and forget gates, peepholes ``p_f, p_o``), state
    ``[c; h]`` of width ``m = 2w``: ``f = s(a_f*h + U_f x + p_f*c + b_f)``,
    ``z = tanh(a_z*h + U_z x + b_z)``, ``c' = f*c + (1-f)*z``,
    ``o = s(a_o*h + U_o x + p_o*c' + b_o)``, ``h' = o*tanh(c')``. Its Jacobian is ``w``
    independent 2 x 2 blocks, block ``i`` coupling ``c_i`` and ``h_i`` (:meth:`jac_blocks`):
    ``method="block"`` is exact Newton.

    Parameters
    ----------
    cell : {"elman", "gru", "gru_diag", "lstm_diag"}
        The cell.
    params : dict of str to array_like
        Exactly the cell's parameters: ``W (w, w)``, ``U (w, d_in)``, ``b (w,)`` (elman);
        ``W_z, W_r, W_c (w, w)``, ``U_z, U_r, U_c (w, d_in)``, ``b_z, b_r, b_c (w,)``
        (gru); ``a_z, a_r, a_c (w,)`` and the same ``U_*``, ``b_*`` (gru_diag);
        ``a_f, a_z, a_o, p_f, p_o, b_f, b_z, b_o (w,)``, ``U_f, U_z, U_o (w, d_in)``
        (lstm_diag).
    inputs : (T, *batch, d_in) array_like
        The input sequence, step-major. The input projections ``U x_t + b`` of all steps
        are computed once, in one matrix product.
    h0 : (*batch, m) array_like, optional
        The initial state (``[c0; h0]`` for lstm_diag); zeros when omitted.

    Attributes
    ----------
    cell : str
    params : dict of str to array
        The parameters, in the library and dtype of the computation (a real floating dtype:
        integers become float64; float32 only when every input is float32). They, ``inputs``
        and ``h0`` are copies made when the RNN is built: changing the arrays passed in does
        not change it (after an update, build a new one).
    inputs : array
        ``(T, *batch, d_in)``, the input sequence.
    h0 : array
        ``(*batch, m)``, the initial state.
    n_steps : int
        ``T``.
    width : int
        ``w``, the hidden width.
    state_size : int
        ``m``: ``w``, or ``2w`` for lstm_diag.
    method : str
        The :func:`~pcrsolve.solve_chain` method that is exact Newton for the cell (the one
        :meth:`forward`'s ``"auto"`` weighs against the loop): ``"newton"`` (elman, gru),
        ``"diagonal"`` (gru_diag) or ``"block"`` (lstm_diag).

    Raises
    ------
    ValueError
        For an unknown cell, missing or unexpected parameter names, shapes that do not
        match, or NaN/inf in the parameters or inputs.
    TypeError
        For parameters or inputs that are complex or not arrays, from different array
        libraries, or ``params`` that is not a dict.

    Notes
    -----
    The chain methods (:meth:`step`, :meth:`jac`, :meth:`jac_diag`, :meth:`jac_blocks`,
    :meth:`jvp`, :meth:`vjp`, :meth:`linearize`) are vectorized over the step axis and use
    the cell's closed-form derivatives, one evaluation of its gates each; structured cells
    never form a dense ``m x m`` matrix except in :meth:`jac` and :meth:`linearize`.
    :meth:`sequential` is the plain loop, compiled (Numba) on NumPy arrays. On NumPy inputs
    the matrix products run on BLAS and the loop on Numba; the solver's sweeps run in fused
    compiled passes that never store a Jacobian (a sweep's evaluation and linear step in one
    pass per block of steps; the dense cells' linear step through ``J v``), and
    :meth:`gradients` in one compiled reverse pass. On other array libraries (CuPy,
    ``array_api_strict``, ...) everything is Array-API code. The sigmoid is computed as
    ``(1 + tanh(x/2)) / 2``; the compiled passes evaluate ``tanh`` in vectorized arithmetic
    (within 2 ulp of NumPy's).

    Examples
    --------
    A ParaGRU of width 8 over 500 steps, two sequences:

    >>> import numpy as np
    >>> from pcrsolve.adapters import RNN
    >>> rng = np.random.default_rng(0)
    >>> w, d_in, T = 8, 3, 500
    >>> params = {f"a_{g}": rng.uniform(-0.5, 0.5, w) for g in "zrc"}
    >>> params |= {f"U_{g}": rng.standard_normal((w, d_in)) / 2 for g in "zrc"}
    >>> params |= {f"b_{g}": np.zeros(w) for g in "zrc"}
    >>> rnn = RNN("gru_diag", params, rng.standard_normal((T, 2, d_in)))
    >>> sol = rnn.forward()                 # the faster route: Newton over time, or the loop
    >>> sol.converged, sol.states.shape
    (True, (500, 2, 8))
    >>> bool(np.allclose(sol.states, rnn.sequential(rnn.h0, 0, T)))  # the plain loop
    True
    >>> fixed = rnn.forward(tol=0, max_iter=6)  # six sweeps, never switching to the loop
    >>> int(sum(r > 1e-12 for r in fixed.residuals))  # sweeps that still moved a state
    4
    >>> g = rnn.gradients(sol, np.ones((T, 2, w)))   # d sum(states) / d everything
    >>> g["U_z"].shape, g["inputs"].shape, g["h0"].shape
    ((8, 3), (500, 2, 3), (2, 8))
    """

    def __init__(self, cell: str, params: dict[str, Any], inputs: Any, *, h0: Any = None) -> None:
        a = check_rnn(cell, params, inputs, h0)
        self._layer = Layer(a.cell, a.params, a.width, a.d_in)
        self._cell = a.cell
        self._params = a.params
        self._inputs = a.inputs
        self._h0 = a.h0
        self._T, self._batch, self._w, self._d_in, self._m = a.T, a.batch, a.width, a.d_in, a.m
        self._B = math.prod(a.batch)
        self._dtype = a.inputs.dtype
        self._cache: dict[tuple[str, Any], _Context] = {}
        self._dtypes: dict[Any, Any] = {}
        # The last compiled evaluation (x_prev, k, gates): solvers ask for the step and then
        # its Jacobian at the same arguments; compared by value, so it is never stale.
        self._memo: tuple[Any, Any, Any, Any] | None = None

    # ------------------------------------------------------------------ attributes

    @property
    def cell(self) -> str:
        """The cell's name."""
        return self._cell.name

    @property
    def params(self) -> dict[str, Any]:
        """The parameters by name (a new dict; the arrays are the adapter's own)."""
        return dict(self._params)

    @property
    def inputs(self) -> Any:
        """``(T, *batch, d_in)`` array: the input sequence."""
        return self._inputs

    @property
    def h0(self) -> Any:
        """``(*batch, m)`` array: the initial state."""
        return self._h0

    @property
    def n_steps(self) -> int:
        """``T``, the number of steps (the chain's length)."""
        return self._T

    @property
    def width(self) -> int:
        """``w``, the hidden width."""
        return self._w

    @property
    def state_size(self) -> int:
        """``m``, the state size: ``w``, or ``2w`` for lstm_diag (``[c; h]``)."""
        return self._m

    @property
    def method(self) -> str:
        """The :func:`~pcrsolve.solve_chain` method that is exact Newton for this cell."""
        return self._cell.method

    @property
    def _exact_method(self) -> str:
        # Tells solve_chain's "auto" which structured method is exact Newton (see exact_method).
        return self._cell.method

    def __repr__(self) -> str:
        return (
            f"RNN({self._cell.name!r}, T={self._T}, batch={self._batch}, width={self._w}, "
            f"d_in={self._d_in}, dtype={self._dtype})"
        )

    # ------------------------------------------------------------------ internals

    def _context(self, be, dtype) -> _Context:
        """Parameters and projections ``P (T, B, G, w)`` in ``be`` and ``dtype``, cached."""
        key = (be.name, dtype)
        ctx = self._cache.get(key)
        if ctx is None:
            xp = np if be.is_numba else be.xp
            params = self._layer.context(be, dtype)
            X = be.asarray(self._inputs)
            X = xp.reshape(xp.astype(X, dtype) if X.dtype != dtype else X, (self._T, self._B, self._d_in))
            # All steps' input projections in one product (ParaRNN's Bxpb).
            ctx = _Context(params, be.contiguous(self._layer.project(xp, params, X)))
            self._cache[key] = ctx
        return ctx

    def _compute_dtype(self, xp, dtype) -> Any:
        hit = self._dtypes.get(dtype)
        if hit is None:
            hit = xp.result_type(_float_dtype(xp, dtype, "x_prev"), self._dtype)
            self._dtypes[dtype] = hit
        return hit

    def _states(self, x, name: str, lead: tuple[int, ...], axis: str = "s") -> None:
        """Check ``x`` against ``(*lead, *batch, m)`` (``lead``: ``()`` or ``(n,)``, ``n`` named ``axis``)."""
        if _shape(x) != (*lead, *self._batch, self._m):
            layout = f"({axis}, *batch, m)" if lead else "(*batch, m)"
            T = f" and T = {self._T}" if axis == "T" else ""
            raise ValueError(
                f"`{name}` must have shape {layout} with (*batch, m) = {(*self._batch, self._m)} (the batch "
                f"axes of `inputs` and the state size){T}; got shape {_shape(x)}."
            )

    def _prepare(
        self, x_prev: Any, k: Any, others: dict[str, Any] | None = None, fast: bool = False
    ) -> _Call:
        """Resolve the backend, check shapes, gather the projections, evaluate the gates.

        ``fast``: on NumPy arrays, evaluate a diagonal cell by its compiled passes.
        """
        be = _backend.resolve({"inputs": self._inputs, "x_prev": x_prev, **(others or {})})
        numba_path = be.is_numba
        xp = np if numba_path else be.xp
        x = np.asarray(x_prev) if numba_path else be.asarray(x_prev)
        s = int(x.shape[0]) if x.ndim else 0
        self._states(x, "x_prev", (s,))
        dtype = self._compute_dtype(xp, x.dtype)
        ctx = self._context(be, dtype)
        c = _Call()
        c.be, c.xp, c.s, c.B, c.dtype, c.ctx, c.fast = be, xp, s, self._B, dtype, ctx, False
        x3 = xp.reshape(xp.astype(x, dtype) if x.dtype != dtype else x, (s, self._B, self._m))
        if numba_path:
            kk = check_steps(k, s, self._T)
            if fast and self._cell.block in (1, 2):
                c.fast = True
                c.g = self._fast_gates(
                    ctx, np.ascontiguousarray(x3), np.ascontiguousarray(kk, dtype=np.int64)
                )
                return c
            # The solvers pass consecutive steps: read their projections in place.
            contiguous = s > 0 and kk[-1] - kk[0] == s - 1 and (s < 3 or bool(np.all(np.diff(kk) == 1)))
            P = ctx.P[kk[0] : kk[0] + s] if contiguous else ctx.P[kk]
        else:
            kk = xp.asarray(k)
            if _shape(kk) != (s,):
                raise ValueError(
                    f"`k` must hold one step index per step, shape ({s},); got shape {_shape(kk)}."
                )
            P = xp.take(ctx.P, kk, axis=0)
        c.g = self._cell.forward(xp, ctx.prm, x3, P)
        return c

    def _fast_gates(self, ctx: _Context, x3: Any, kk: Any) -> Any:
        memo = self._memo
        if (
            memo is not None
            and memo[3] is ctx
            and memo[0].shape == x3.shape
            and np.array_equal(memo[1], kk)
            and np.array_equal(memo[0], x3)
        ):
            return memo[2]
        g = _rnn_numba.gates(self._cell.name, x3, ctx.P, kk, ctx.params.loop_args[0])
        self._memo = (x3.copy(), kk.copy(), g, ctx)
        return g

    def _vector(self, c: _Call, v: Any, name: str) -> Any:
        """``v`` checked against ``x_prev``'s shape, flattened to ``(s, B, m)`` in the call's dtype."""
        xp = c.xp
        v = np.asarray(v) if c.be.is_numba else c.be.asarray(v)
        self._states(v, name, (c.s,))
        return xp.reshape(xp.astype(v, c.dtype) if v.dtype != c.dtype else v, (c.s, c.B, self._m))

    def _out(self, c: _Call, y: Any, tail: tuple[int, ...]) -> Any:
        return c.xp.reshape(y, (c.s, *self._batch, *tail))

    # ------------------------------------------------------------------ Chain protocol

    def step(self, x_prev: Any, k: Any) -> Any:
        """One step of the cell for every row.

        Parameters
        ----------
        x_prev : (s, *batch, m) array
            The states before steps ``k`` (``h0`` for step 0).
        k : (s,) int array
            Step indices in ``[0, T)``, in the array library of ``x_prev``.

        Returns
        -------
        (s, *batch, m) array
            ``f_k(x_prev)``: the new states.
        """
        c = self._prepare(x_prev, k, fast=True)
        if c.fast:
            return self._out(c, _rnn_numba.value(self._cell.name, c.g), (self._m,))
        return self._out(c, self._cell.value(c.xp, c.g), (self._m,))

    def jac(self, x_prev: Any, k: Any) -> Any:
        """Dense Jacobians ``d f_k / d x``, shape ``(s, *batch, m, m)`` (O(w^3) per row for "gru")."""
        c = self._prepare(x_prev, k)
        return self._out(c, self._cell.jac(c.xp, c.ctx.prm, c.g), (self._m, self._m))

    def jac_diag(self, x_prev: Any, k: Any) -> Any:
        """The Jacobians' diagonals, shape ``(s, *batch, m)`` (the whole Jacobian for "gru_diag")."""
        c = self._prepare(x_prev, k, fast=True)
        if c.fast:
            J = _rnn_numba.jac_diag(self._cell.name, c.g, c.ctx.params.loop_args[0])
            return self._out(c, J, (self._m,))
        return self._out(c, self._cell.jac_diag(c.xp, c.ctx.prm, c.g), (self._m,))

    def jac_blocks(self, x_prev: Any, k: Any) -> Any:
        """Block-diagonal Jacobians ``(s, *batch, m/b, b, b)`` for ``method="block"``.

        ``b = 2`` for "lstm_diag" (block ``i`` couples ``c_i`` and ``h_i``, entries ``i`` and
        ``w + i``: ``[[dc'/dc, dc'/dh], [dh'/dc, dh'/dh]]``), ``b = 1`` for "gru_diag" and
        ``b = m`` (one dense block) for "elman" and "gru".
        """
        c = self._prepare(x_prev, k, fast=True)
        if c.fast:
            out = _rnn_numba.jac_blocks(self._cell.name, c.g, c.ctx.params.loop_args[0])
        else:
            out = self._cell.jac_blocks(c.xp, c.ctx.prm, c.g)
        return self._out(c, out, tuple(out.shape[2:]))

    def jvp(self, x_prev: Any, k: Any, v: Any) -> Any:
        """Jacobian-vector products ``J v``, shape ``(s, *batch, m)`` like ``v``."""
        c = self._prepare(x_prev, k, {"v": v})
        out = self._cell.jvp(c.xp, c.ctx.prm, c.g, self._vector(c, v, "v"))
        return self._out(c, out, (self._m,))

    def vjp(self, x_prev: Any, k: Any, u: Any) -> Any:
        """Vector-Jacobian products ``J^T u``, shape ``(s, *batch, m)`` like ``u``."""
        c = self._prepare(x_prev, k, {"u": u})
        out, _ = self._cell.backward(c.xp, c.ctx.prm, c.g, self._vector(c, u, "u"))
        return self._out(c, out, (self._m,))

    def linearize(self, x_prev: Any, k: Any) -> tuple[Any, Any]:
        """Step values and dense Jacobians from one evaluation of the gates.

        Returns
        -------
        f : (s, *batch, m) array
            As :meth:`step`.
        jac : (s, *batch, m, m) array
            As :meth:`jac`.
        """
        c = self._prepare(x_prev, k)
        f = self._cell.value(c.xp, c.g)
        return self._out(c, f, (self._m,)), self._out(c, self._cell.jac(c.xp, c.ctx.prm, c.g), (self._m,) * 2)

    def sequential(self, x_prev: Any, start: int, stop: int) -> Any:
        """The plain loop over steps ``start .. stop-1`` from ``x_prev``, in one call.

        Parameters
        ----------
        x_prev : (*batch, m) array
            The state before step ``start``.
        start, stop : int
            ``0 <= start <= stop <= T``.

        Returns
        -------
        (stop - start, *batch, m) array
            The states after steps ``start .. stop-1``. On NumPy arrays one compiled (Numba)
            pass; elsewhere a loop of single steps.
        """
        be = _backend.resolve({"inputs": self._inputs, "x_prev": x_prev})
        numba_path = be.is_numba
        xp = np if numba_path else be.xp
        x = np.asarray(x_prev) if numba_path else be.asarray(x_prev)
        self._states(x, "x_prev", ())
        for name, v in (("start", start), ("stop", stop)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"`{name}` must be an int; got {type(v).__name__}.")
        if not 0 <= start <= stop <= self._T:
            raise ValueError(
                f"`start` and `stop` must satisfy 0 <= start <= stop <= T = {self._T}; got {start}, {stop}."
            )
        dtype = self._compute_dtype(xp, x.dtype)
        ctx = self._context(be, dtype)
        x2 = xp.reshape(xp.astype(x, dtype) if x.dtype != dtype else x, (self._B, self._m))
        y = self._layer.loop(be, ctx.params, ctx.P[start:stop, ...], x2)
        return xp.reshape(y, (stop - start, *self._batch, self._m))

    def _fused_pass(self, kind: str, dtype: Any) -> Any:
        """The sweep pass of :mod:`pcrsolve.chain` without Jacobians (see ``_rnn_fused``)."""
        from ._rnn_fused import fused_pass

        return fused_pass(self, kind, dtype)

    def _fused_adjoint(self, dtype: Any) -> Any:
        """``run(x_first, X, G) -> (adj, grad_x)`` for :func:`~pcrsolve.chain_adjoint`: the
        compiled reverse pass of :meth:`gradients` (no Jacobians formed), or None."""
        from ._rnn_fused import applies

        if not applies(self, dtype):
            return None
        ctx = self._context(_backend.resolve({}, backend="numba"), np.dtype(dtype))

        def run(x_first: Any, X: Any, G: Any) -> tuple[Any, Any]:
            n = X.shape[0]
            if n > self._T:  # as the chain methods say it
                raise ValueError(f"`k` must hold step indices in [0, {self._T}); got values in [0, {n - 1}].")
            _, carry, _, adj = self._layer.backward_compiled(ctx.params, x_first, X, ctx.P, G, keep_adj=True)
            return adj, carry

        return run

    # ------------------------------------------------------------------ whole-sequence helpers

    def forward(self, **options: Any) -> Any:
        """Run the network over all steps by solving the chain with :func:`pcrsolve.solve_chain`.

        Parameters
        ----------
        **options
            Passed to :func:`pcrsolve.solve_chain` (``method``, ``tol``, ``max_iter``,
            ``window``, ``x_init``, ``backend``, ...). ``method`` defaults to ``"auto"``: the
            cost model measures the compiled loop (:meth:`sequential`) and a sweep of the
            cell's exact Newton method (:attr:`method`) on the first steps and runs the route
            it predicts faster (``sol.route`` says which, ``sol.route_reason`` why). Sweeps
            start from ParaRNN's first guess unless ``x_init`` is given: every step taken from
            the last exact state (``h0`` at first), ``f_t(h_{p-1})``, one vectorized
            evaluation that usually saves a Newton iteration. With ``backend=``, the
            parameters are moved there (once, cached).

        Returns
        -------
        ChainSolution
            ``sol.states`` has shape ``(T, *batch, m)``: ``sol.states[t] = h_t``. Pass ``sol``
            (or ``sol.states``) to :meth:`gradients`.
        """
        from ..chain import solve_chain

        options.setdefault("method", "auto")
        backend = options.get("backend")
        with _backend.use_backend(backend) if backend is not None else contextlib.nullcontext():
            return solve_chain(self, self._h0, self._T, **options)

    def _initial_guess(self, x_prev: Any, start: int, stop: int) -> Any:
        """``f_t(x_prev)`` for ``t`` in ``[start, stop)``, ``(stop - start, *batch, m)``: the sweeps'
        first guess (the private hook of :meth:`pcrsolve.chain._eval.Evaluator.guess`); None for
        states of another dtype than the computation's (the solver's checks then speak)."""
        be = _backend.resolve({"inputs": self._inputs, "x_prev": x_prev})
        xp = np if be.is_numba else be.xp
        x = np.asarray(x_prev) if be.is_numba else be.asarray(x_prev)
        if x.dtype != self._compute_dtype(xp, x.dtype):
            return None
        ctx = self._context(be, x.dtype)
        s, B, m = stop - start, self._B, self._m
        X = xp.broadcast_to(xp.reshape(x, (1, B, m)), (s, B, m))
        if be.is_numba and self._cell.block in (1, 2):  # the compiled evaluation
            kk = np.arange(start, stop, dtype=np.int64)
            g = _rnn_numba.gates(self._cell.name, np.ascontiguousarray(X), ctx.P, kk, ctx.params.loop_args[0])
            y = _rnn_numba.value(self._cell.name, g)
        else:
            y = self._cell.value(xp, self._cell.forward(xp, ctx.prm, X, ctx.P[start:stop, ...]))
        return xp.reshape(y, (s, *self._batch, m))

    def gradients(self, states: Any, grad_states: Any) -> dict[str, Any]:
        """Gradients of a loss on all hidden states, from one adjoint solve.

        Parameters
        ----------
        states : (T, *batch, m) array_like or ChainSolution
            The hidden states (``sol.states``, or ``sol`` itself).
        grad_states : (T, *batch, m) array_like
            ``dLoss / d states[t]`` for every step.

        Returns
        -------
        dict
            One entry per parameter name, shaped like the parameter (summed over steps and
            batch); ``"inputs"`` (T, *batch, d_in) and ``"h0"`` (*batch, m): the gradients
            with respect to the inputs and the initial state.

        Raises
        ------
        ValueError
            If the shapes do not match the network.
        FloatingPointError
            If the adjoint overflows (the network amplifies perturbations too strongly for
            the dtype).

        Notes
        -----
        The adjoint ``adj[t] = g[t] + J_{t+1}^T adj[t+1]`` is one reverse linear recurrence
        with the cell's structured Jacobians (diagonal for "gru_diag", 2 x 2 blocks for
        "lstm_diag", dense otherwise, through :func:`pcrsolve.chain_adjoint`); one vectorized
        backward pass of the gates then gives the deltas ``dLoss/d(pre-activation)`` of every
        step. On NumPy arrays every cell does both in one compiled reverse pass instead (the
        same arithmetic, step by step: on a CPU the sequential pass is the work-optimal one;
        the dense cells' gates come from one vectorized evaluation, and the pass multiplies by
        the recurrent weights, ``O(w^2)`` per step, instead of forming Jacobians). Every other
        gradient is then one product over all steps and batch elements:
        ``dU_g = sum delta_g x^T``, ``db_g = sum delta_g``, the recurrent weights likewise
        against ``h_{t-1}`` (``r*h_{t-1}`` for ``W_c``, ``a_c``), and the inputs' gradient
        ``sum_g U_g^T delta_g``.
        """
        states = getattr(states, "states", states)
        be = _backend.resolve({"inputs": self._inputs, "states": states, "grad_states": grad_states})
        numba_path = be.is_numba
        xp = np if numba_path else be.xp
        S = np.asarray(states) if numba_path else be.asarray(states)
        Gs = np.asarray(grad_states) if numba_path else be.asarray(grad_states)
        self._states(S, "states", (self._T,), "T")
        self._states(Gs, "grad_states", (self._T,), "T")
        dtype = xp.result_type(self._compute_dtype(xp, S.dtype), _float_dtype(xp, Gs.dtype, "grad_states"))
        ctx = self._context(be, dtype)
        T, B, m, cell = self._T, self._B, self._m, self._cell
        out = {n: xp.zeros(tuple(v.shape), dtype=dtype) for n, v in self._params.items()}
        h0 = be.asarray(self._h0)
        h0 = xp.astype(h0, dtype) if h0.dtype != dtype else h0
        out["inputs"] = xp.zeros((T, *self._batch, self._d_in), dtype=dtype)
        out["h0"] = xp.zeros((*self._batch, m), dtype=dtype)
        if T == 0:
            return out
        S3 = xp.reshape(xp.astype(S, dtype) if S.dtype != dtype else S, (T, B, m))
        G3 = xp.reshape(xp.astype(Gs, dtype) if Gs.dtype != dtype else Gs, (T, B, m))
        h0_2 = xp.reshape(h0, (B, m))
        if numba_path:  # one compiled reverse pass
            deltas, dh0, recurrent, _ = self._layer.backward_compiled(ctx.params, h0_2, S3, ctx.P, G3)
            finite = bool(np.all(np.isfinite(dh0))) and bool(np.all(np.isfinite(deltas)))
        else:  # one reverse linear recurrence with the structured Jacobians, then the gates' deltas
            Xprev = xp.concat([h0_2[None, ...], S3[: T - 1, ...]], axis=0)
            g = cell.forward(xp, ctx.prm, Xprev, ctx.P)
            adj = self._layer.adjoint(be, ctx.params, g, G3, lambda: self._dense_adjoint(xp, h0, S, Gs))
            finite = bool(xp.all(xp.isfinite(adj)))
            vjp, deltas = cell.backward(xp, ctx.prm, g, adj)
            dh0 = vjp[0, ...]
            recurrent = cell.recurrent_grads(xp, g, deltas)
        if not finite:
            raise FloatingPointError(
                "the RNN adjoint overflowed: it is not finite although the inputs are; the network "
                "amplifies perturbations too strongly for the dtype (use float64, or shorten the sequence)."
            )
        X = xp.astype(be.asarray(self._inputs), dtype)
        out.update(
            self._layer.param_grads(xp, ctx.params, deltas, xp.reshape(X, (T, B, self._d_in)), recurrent)
        )
        out["inputs"] = xp.reshape(out["inputs"], (T, *self._batch, self._d_in))
        out["h0"] = xp.reshape(dh0, (*self._batch, m))
        return out

    def _dense_adjoint(self, xp, h0, S, Gs) -> Any:
        from ..chain import chain_adjoint

        adj, _ = chain_adjoint(self, h0, S, Gs)
        return xp.reshape(adj, (self._T, self._B, self._m))
