"""The dense-layer chain shared by :class:`~pcrsolve.adapters.MLP` and
:class:`~pcrsolve.adapters.ResNet`.

Step ``k`` maps ``x`` to ``act(W_k x + b_k)`` (MLP) or ``x + h act(W_k x + b_k)`` (ResNet); its
Jacobian is ``diag(act'(z)) W_k`` or ``I + h diag(act'(z)) W_k`` with ``z = W_k x + b_k``.

Two ways through every method, decided once per call by :func:`pcrsolve._backend.resolve`:

- ``"numba"`` backend (NumPy inputs): the Numba kernels of :mod:`._kernels` read ``W[k]`` in
  place (no gather copy), the activation runs on whole NumPy arrays (SIMD ``tanh``/``exp``).
- any other backend (``"numpy"``, CuPy, ``array_api_strict``, ...): Array-API code on ``xp``,
  with ``xp.take`` gathering the per-step parameters and one batched ``matmul``.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from .. import _backend
from ._activations import Activation, get_activation

__all__ = ["DenseChain"]


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


def _float_dtype(xp: Any, dtype: Any, name: str) -> Any:
    """The floating dtype arrays of ``dtype`` are computed in (ints -> float64, float16 -> float32)."""
    if xp.isdtype(dtype, "real floating"):
        return xp.float32 if dtype == getattr(xp, "float16", None) else dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        return xp.float64
    raise TypeError(
        f"`{name}` must have a real floating (or integer) dtype; got {dtype}. The adapters' "
        "activations (relu, sigmoid, ...) are defined for real numbers only."
    )


_KERNELS: Any = None


def _kernels():
    """The Numba kernel module (imported on first use: ``import pcrsolve`` stays Numba-free)."""
    global _KERNELS
    if _KERNELS is None:
        from . import _kernels as module

        _KERNELS = module
    return _KERNELS


class _Parts:
    """Pre-activation and activation of one call, in the layout the kernels use."""

    __slots__ = ("B", "W", "a", "batch", "be", "da", "dtype", "k", "s", "x3", "xp", "z")


class DenseChain:
    """Base of MLP and ResNet: parameters, validation and the chain methods.

    Subclasses set ``_residual`` (bool) and pass ``step_size``.
    """

    _residual = False
    _kind = "DenseChain"

    def __init__(
        self,
        weights: Any,
        biases: Any,
        activation: str | tuple[Any, Any] | Activation = "tanh",
        step_size: float = 1.0,
    ) -> None:
        be = _backend.resolve({"weights": weights, "biases": biases})
        W = be.asarray(weights)
        b = be.asarray(biases)
        xp = be.xp
        if W.ndim != 3 or W.shape[1] != W.shape[2]:
            raise ValueError(
                f"`weights` must have shape (L, m, m): one square m x m matrix per layer; got shape "
                f"{_shape(W)}. Layers that change the width cannot form a chain (pad them to a "
                "common width instead)."
            )
        L, m = int(W.shape[0]), int(W.shape[1])
        if _shape(b) != (L, m):
            raise ValueError(
                f"`biases` must have shape (L, m) = ({L}, {m}) to match `weights` of shape "
                f"{_shape(W)}; got shape {_shape(b)}."
            )
        wt = _float_dtype(xp, W.dtype, "weights")
        bt = _float_dtype(xp, b.dtype, "biases")
        dt = xp.result_type(wt, bt)
        # Copies (astype copies too): the network's parameters are those of its construction;
        # its caches of them (transposed, converted) could not see changes made in place.
        self._W = xp.astype(W, dt) if W.dtype != dt else xp.asarray(W, copy=True)
        self._b = xp.astype(b, dt) if b.dtype != dt else xp.asarray(b, copy=True)
        self._act = get_activation(activation)
        if isinstance(step_size, bool) or not isinstance(step_size, (int, float, np.floating, np.integer)):
            raise TypeError(f"`step_size` must be a real number; got {type(step_size).__name__}.")
        if not math.isfinite(float(step_size)):
            raise ValueError(f"`step_size` must be finite; got {step_size}.")
        self._h = float(step_size)
        self._L, self._m = L, m
        self._cache: dict[tuple[str, Any], tuple[Any, Any]] = {}
        self._dtypes: dict[Any, Any] = {}

    # ------------------------------------------------------------------ attributes

    @property
    def weights(self) -> Any:
        """(L, m, m) array: the layer matrices ``W_k``."""
        return self._W

    @property
    def biases(self) -> Any:
        """(L, m) array: the layer biases ``b_k``."""
        return self._b

    @property
    def activation(self) -> Activation:
        """The :class:`~pcrsolve.adapters.Activation` of every layer."""
        return self._act

    @property
    def n_steps(self) -> int:
        """Number of layers ``L`` (the chain's length)."""
        return self._L

    @property
    def width(self) -> int:
        """Number of features ``m``."""
        return self._m

    def __repr__(self) -> str:
        h = f", step_size={self._h}" if self._residual else ""
        return (
            f"{self._kind}(L={self._L}, m={self._m}, activation={self._act.name!r}{h}, dtype={self._W.dtype})"
        )

    # ------------------------------------------------------------------ internals

    def _params(self, be: _backend.Backend, dtype: Any) -> tuple[Any, Any]:
        """``(W, b)`` in ``be``'s library and ``dtype`` (C-contiguous for Numba), cached."""
        key = (be.name, dtype)
        hit = self._cache.get(key)
        if hit is None:
            W, b = be.asarray(self._W), be.asarray(self._b)
            if W.dtype != dtype:
                W, b = be.xp.astype(W, dtype), be.xp.astype(b, dtype)
            hit = (be.contiguous(W), be.contiguous(b))
            self._cache[key] = hit
        return hit

    def _dtype(self, xp: Any, dtype: Any) -> Any:
        """The dtype a call with states of ``dtype`` computes in (cached: ``isdtype`` is slow)."""
        hit = self._dtypes.get(dtype)
        if hit is None:
            hit = xp.result_type(_float_dtype(xp, dtype, "x_prev"), self._W.dtype)
            self._dtypes[dtype] = hit
        return hit

    def _prepare(self, x_prev: Any, k: Any, others: dict[str, Any] | None = None) -> _Parts:
        """Resolve the backend, check shapes, flatten the batch, pre-activate."""
        arrays = {"weights": self._W, "x_prev": x_prev}
        if others:
            arrays.update(others)
        be = _backend.resolve(arrays)
        xp = be.xp
        numba_path = be.is_numba
        x = np.asarray(x_prev) if numba_path else be.asarray(x_prev)
        m = self._m
        if x.ndim < 2 or x.shape[-1] != m:
            raise ValueError(
                f"`x_prev` must have shape (s, *batch, m) with m = {m} features; got shape {_shape(x)}."
            )
        s = int(x.shape[0])
        batch = tuple(int(d) for d in x.shape[1:-1])
        B = math.prod(batch)
        dtype = self._dtype(xp, x.dtype)
        p = _Parts()
        p.be, p.xp, p.s, p.batch, p.B, p.dtype = be, xp, s, batch, B, dtype
        W, b = self._params(be, dtype)
        p.W = W
        if numba_path:
            kk = np.ascontiguousarray(k, dtype=np.int64)
            if kk.shape != (s,):
                raise ValueError(f"`k` must have one index per step, shape ({s},); got shape {kk.shape}.")
            x3 = np.ascontiguousarray(x.reshape(s, B, m), dtype=dtype)
            z = np.empty((s, B, m), dtype=dtype)
            if _kernels().affine(W, b, x3, kk, z):
                raise ValueError(
                    f"`k` must hold step indices in [0, {self._L}); got values in [{kk.min()}, {kk.max()}]."
                )
        else:
            kk = xp.asarray(k)
            if _shape(kk) != (s,):
                raise ValueError(f"`k` must have one index per step, shape ({s},); got shape {_shape(kk)}.")
            x3 = xp.reshape(xp.astype(x, dtype) if x.dtype != dtype else x, (s, B, m))
            z = (
                xp.matmul(x3, xp.matrix_transpose(xp.take(W, kk, axis=0)))
                + xp.take(b, kk, axis=0)[:, None, :]
            )
        p.k, p.x3, p.z = kk, x3, z
        return p

    def _act_values(self, xp: Any, z: Any, need_derivative: bool, numba_path: bool) -> tuple[Any, Any]:
        """``(act(z), act'(z))`` (``act'`` times ``h`` for a ResNet; None unless needed).

        A custom activation's outputs are checked for shape (and, for the Numba kernels, made
        C-contiguous in the dtype of ``z``).
        """
        out = self._act._evaluate(xp, z, need_derivative)
        a, da = out if need_derivative else (out, None)
        if self._act.name == "custom":
            for what, arr in (("function", a), ("derivative", da)):
                if arr is not None and _shape(arr) != _shape(z):
                    raise ValueError(
                        f"the custom `activation` {what} must return an array of the shape of its "
                        f"input {_shape(z)}; got shape {_shape(arr)}."
                    )
            if numba_path:
                a = np.ascontiguousarray(a, dtype=z.dtype)
                da = None if da is None else np.ascontiguousarray(da, dtype=z.dtype)
        if da is not None and self._residual and self._h != 1.0:
            da = da * self._h
        return a, da

    def _activate(self, p: _Parts, need_derivative: bool) -> None:
        p.a, p.da = self._act_values(p.xp, p.z, need_derivative, p.be.is_numba)

    def _unflat(self, p: _Parts, y: Any, trailing: tuple[int, ...]) -> Any:
        shape = (p.s, *p.batch, *trailing)
        return y.reshape(shape) if p.be.is_numba else p.xp.reshape(y, shape)

    def _values(self, p: _Parts) -> Any:
        if not self._residual:
            return p.a
        return p.x3 + p.a if self._h == 1.0 else p.x3 + self._h * p.a

    def _jacobian(self, p: _Parts) -> Any:
        m = self._m
        if p.be.is_numba:
            # batch-major buffer, step-major view: the recurrence kernels read it without a copy
            J = np.empty((p.B, p.s, m, m), dtype=p.dtype)
            _kernels().jacobian(p.W, p.k, p.da, self._residual, J)
            return J.transpose(1, 0, 2, 3)
        xp = p.xp
        J = p.da[..., :, None] * xp.take(p.W, p.k, axis=0)[:, None, :, :]
        if self._residual:
            J = J + xp.eye(m, dtype=p.dtype, device=array_api_compat.device(J))
        return J

    def _vector(self, p: _Parts, v: Any, name: str) -> Any:
        """``v`` flattened like ``x_prev`` (shape (s, B, m)) in the call's dtype."""
        v = p.be.asarray(v)
        if _shape(v) != (p.s, *p.batch, self._m):
            raise ValueError(
                f"`{name}` must have the shape of `x_prev`, {(p.s, *p.batch, self._m)}; got shape "
                f"{_shape(v)}."
            )
        if p.be.is_numba:
            return np.ascontiguousarray(np.reshape(v, (p.s, p.B, self._m)), dtype=p.dtype)
        xp = p.xp
        return xp.reshape(xp.astype(v, p.dtype) if v.dtype != p.dtype else v, (p.s, p.B, self._m))

    # ------------------------------------------------------------------ Chain protocol

    def step(self, x_prev: Any, k: Any) -> Any:
        """Apply layers ``k`` to states ``x_prev``.

        Parameters
        ----------
        x_prev : (s, *batch, m) array
            Inputs of the layers (``states[k - 1]``, or ``x0`` for layer 0).
        k : (s,) int array
            Layer indices, in ``[0, L)``; in the array library of ``x_prev``.

        Returns
        -------
        (s, *batch, m) array
            ``f_k(x_prev)`` for every row.
        """
        p = self._prepare(x_prev, k)
        self._activate(p, need_derivative=False)
        return self._unflat(p, self._values(p), (self._m,))

    def linearize(self, x_prev: Any, k: Any) -> tuple[Any, Any]:
        """Step values and Jacobians together (one pre-activation pass).

        Returns
        -------
        f : (s, *batch, m) array
            As :meth:`step`.
        jac : (s, *batch, m, m) array
            As :meth:`jac`.
        """
        p = self._prepare(x_prev, k)
        self._activate(p, need_derivative=True)
        m = self._m
        return self._unflat(p, self._values(p), (m,)), self._unflat(p, self._jacobian(p), (m, m))

    def jac(self, x_prev: Any, k: Any) -> Any:
        """Jacobians ``d f_k / d x`` at ``x_prev``.

        Returns
        -------
        (s, *batch, m, m) array
            ``J[i, ..., p, q] = d f_k[p] / d x[q]``.
        """
        p = self._prepare(x_prev, k)
        self._activate(p, need_derivative=True)
        return self._unflat(p, self._jacobian(p), (self._m, self._m))

    def jac_diag(self, x_prev: Any, k: Any) -> Any:
        """The diagonals of :meth:`jac`, shape (s, *batch, m)."""
        p = self._prepare(x_prev, k)
        self._activate(p, need_derivative=True)
        if p.be.is_numba:
            out = np.empty((p.s, p.B, self._m), dtype=p.dtype)
            _kernels().jac_diag(p.W, p.k, p.da, self._residual, out)
        else:
            xp = p.xp
            diag = xp.take(
                xp.reshape(p.W, (self._L, self._m * self._m)),
                xp.arange(0, self._m * self._m, self._m + 1),
                axis=1,
            )
            out = p.da * xp.take(diag, p.k, axis=0)[:, None, :]
            if self._residual:
                out = out + 1.0
        return self._unflat(p, out, (self._m,))

    def jvp(self, x_prev: Any, k: Any, v: Any) -> Any:
        """Jacobian-vector products ``J v``, shape (s, *batch, m) like ``v``."""
        p = self._prepare(x_prev, k, {"v": v})
        self._activate(p, need_derivative=True)
        v3 = self._vector(p, v, "v")
        if p.be.is_numba:
            Wv = np.empty_like(v3)
            _kernels().matvec(p.W, v3, p.k, False, Wv)
        else:
            xp = p.xp
            Wv = xp.matmul(v3, xp.matrix_transpose(xp.take(p.W, p.k, axis=0)))
        out = p.da * Wv
        if self._residual:
            out = out + v3
        return self._unflat(p, out, (self._m,))

    def vjp(self, x_prev: Any, k: Any, u: Any) -> Any:
        """Vector-Jacobian products ``J^T u``, shape (s, *batch, m) like ``u``."""
        p = self._prepare(x_prev, k, {"u": u})
        self._activate(p, need_derivative=True)
        u3 = self._vector(p, u, "u")
        g = p.da * u3
        if p.be.is_numba:
            out = np.empty_like(u3)
            _kernels().matvec(p.W, np.ascontiguousarray(g), p.k, True, out)
        else:
            xp = p.xp
            out = xp.matmul(g, xp.take(p.W, p.k, axis=0))
        if self._residual:
            out = out + u3
        return self._unflat(p, out, (self._m,))

    def sequential(self, x_prev: Any, start: int, stop: int) -> Any:
        """Layers ``start .. stop-1`` one after the other: the plain loop, in one call.

        On NumPy inputs with a built-in activation this is one compiled pass (parallel over
        the batch), whose activation comes from the C library (results may differ from
        :meth:`step`'s in the last bit); for a wide batch or wide layers, and on other array
        libraries, a loop of whole-array operations per layer (NumPy's vectorized ``tanh`` and
        BLAS products then cost less than the compiled loop's scalar ones).

        Parameters
        ----------
        x_prev : (*batch, m) array
            The state before layer ``start`` (the network input for ``start = 0``).
        start, stop : int
            The layers to apply, ``0 <= start <= stop <= L``.

        Returns
        -------
        (stop - start, *batch, m) array
            The output of every layer ``start .. stop-1``.
        """
        from ._dense_fused import sequential

        return sequential(self, x_prev, start, stop)

    def _sequential_into(self, x_prev: Any, start: int, stop: int, out: Any) -> bool:
        """:meth:`sequential` writing the outputs into the solver's ``out`` (no copy of them);
        False where ``out`` does not fit (see ``_dense_fused.sequential``)."""
        from ._dense_fused import sequential

        return sequential(self, x_prev, start, stop, into=out) is not None

    def _fused_pass(self, kind: str, dtype: Any) -> Any:
        """The sweep pass of :mod:`pcrsolve.chain` without Jacobians (see ``_dense_fused``)."""
        from ._dense_fused import fused_pass

        return fused_pass(self, kind, dtype)

    def _fused_adjoint(self, dtype: Any) -> Any:
        """``run(x_first, X, G) -> (adj, grad_x)``: the adjoint pass without Jacobians, or None."""
        if np.dtype(dtype) not in (np.float32, np.float64) or self._dtype(np, np.dtype(dtype)) != dtype:
            return None
        from ._dense_fused import adjoint

        return lambda x_first, X, G: adjoint(self, x_first, X, G)[:2]

    # ------------------------------------------------------------------ whole-network helpers

    def _input(self, x: Any, name: str = "x", backend: str | None = None) -> tuple[_backend.Backend, Any]:
        be = _backend.resolve({"weights": self._W, name: x}, backend=backend)
        x = be.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self._m:
            raise ValueError(
                f"`{name}` must have shape (*batch, m) with m = {self._m} features (the width of "
                f"`weights`); got shape {_shape(x)}."
            )
        return be, x

    def forward(self, x: Any, **options: Any) -> Any:
        """Run the network on ``x`` by solving the chain with :func:`pcrsolve.solve_chain`.

        Parameters
        ----------
        x : (*batch, m) array_like
            Network input.
        **options
            Passed to :func:`pcrsolve.solve_chain` (``method``, ``tol``, ``max_iter``,
            ``window``, ``backend``, ...). With ``backend=``, the parameters are moved to that
            backend too (once, cached).

        Returns
        -------
        ChainSolution
            ``sol.states`` has shape ``(L, *batch, m)``: ``sol.states[k]`` is the output of layer
            ``k``; the network's output is ``sol.states[-1]``. Pass ``sol`` (or ``sol.states``)
            to :meth:`gradients`.
        """
        from ..chain import solve_chain

        backend = options.get("backend")
        _, x = self._input(x, backend=backend)
        if backend is None:
            return solve_chain(self, x, self._L, **options)
        with _backend.use_backend(backend):
            return solve_chain(self, x, self._L, **options)

    def gradients(self, x: Any, states: Any, grad_out: Any, **adjoint_options: Any) -> dict[str, Any]:
        """Gradients of a loss on the network's output, from one adjoint solve.

        Parameters
        ----------
        x : (*batch, m) array_like
            The network input given to :meth:`forward`.
        states : (L, *batch, m) array_like or ChainSolution
            The layer outputs (``sol.states``, or ``sol`` itself).
        grad_out : (*batch, m) array_like
            ``dLoss / d states[-1]``, the gradient of the loss with respect to the output.
        **adjoint_options
            Passed to :func:`pcrsolve.chain_adjoint` (e.g. ``method``).

        Returns
        -------
        dict
            ``"weights"`` (L, m, m) and ``"biases"`` (L, m): the parameter gradients, summed
            over the batch axes; ``"x"`` (*batch, m): the gradient with respect to the input.

        Notes
        -----
        :func:`pcrsolve.chain_adjoint` solves ``adj[k] = J_{k+1}^T adj[k+1]`` (``adj[L-1] =
        grad_out``) for every layer at once; then one batched product gives all parameter
        gradients: with ``delta_k = act'(z_k) * adj[k]`` (times ``h`` for a ResNet),
        ``dW_k = sum_batch delta_k x_{k-1}^T`` and ``db_k = sum_batch delta_k``.
        """
        from ..chain import chain_adjoint

        states = getattr(states, "states", states)
        be = _backend.resolve({"weights": self._W, "x": x, "states": states, "grad_out": grad_out})
        xp = be.xp
        _, x = self._input(x)
        states = be.asarray(states)
        grad_out = be.asarray(grad_out)
        L, m = self._L, self._m
        if _shape(states) != (L, *_shape(x)):
            raise ValueError(
                f"`states` must have shape (L, *batch, m) = {(L, *_shape(x))} (one state per layer, "
                f"for `x` of shape {_shape(x)}); got shape {_shape(states)}."
            )
        if _shape(grad_out) != _shape(x):
            raise ValueError(
                f"`grad_out` must have the shape of the network output, {_shape(x)}; got shape "
                f"{_shape(grad_out)}."
            )
        fused = self._gradients_fused(be, x, states, grad_out, adjoint_options)
        if fused is not None:
            return fused
        dev = array_api_compat.device(states)
        grad_out = xp.astype(grad_out, states.dtype) if grad_out.dtype != states.dtype else grad_out
        g = xp.concat([xp.zeros((L - 1, *_shape(x)), dtype=states.dtype, device=dev), grad_out[None, ...]])
        adj, grad_x = chain_adjoint(self, x, states, g, **adjoint_options)
        x_cast = xp.astype(x, states.dtype) if x.dtype != states.dtype else x
        prev = xp.concat([x_cast[None, ...], states[:-1, ...]])
        steps = xp.arange(L, dtype=xp.int64, device=dev)
        p = self._prepare(prev, steps)
        self._activate(p, need_derivative=True)
        delta = p.da * self._vector(p, adj, "adj")
        if be.is_numba:
            gW = np.empty((L, m, m), dtype=p.dtype)
            gb = np.empty((L, m), dtype=p.dtype)
            _kernels().weight_grads(p.x3, np.ascontiguousarray(delta), gW, gb)
        else:
            gW = xp.matmul(xp.matrix_transpose(delta), p.x3)
            gb = xp.sum(delta, axis=1)
        return {"weights": gW, "biases": gb, "x": grad_x}

    def _gradients_fused(self, be, x, states, grad_out, options: dict[str, Any]) -> dict[str, Any] | None:
        """:meth:`gradients` by the fused adjoint pass (NumPy, float states, the sequential
        adjoint method), or None: the general path then runs (and raises its errors, e.g. for
        non-finite states or an overflowing adjoint, which the fused pass hands over)."""
        if not be.is_numba or self._L == 0 or set(options) - {"method"}:
            return None
        if options.get("method", "auto") not in ("auto", "sequential"):
            return None
        dtype = states.dtype
        if dtype not in (np.float32, np.float64) or self._dtype(np, dtype) != dtype:
            return None
        from ._dense_fused import adjoint

        L, m = self._L, self._m
        batch = _shape(x)[:-1]
        B = math.prod(batch)
        X = np.ascontiguousarray(np.reshape(states, (L, B, m)))
        x2 = np.ascontiguousarray(np.reshape(x, (B, m)), dtype=dtype)
        g = np.ascontiguousarray(np.reshape(grad_out, (1, B, m)), dtype=dtype)
        _, grad_x, delta = adjoint(self, x2, X, g, keep_adj=False)
        # The weight gradients: one batched product (BLAS per layer), the layer inputs read in place.
        gW = np.empty((L, m, m), dtype=dtype)
        gW[0] = delta[0].T @ x2
        np.matmul(delta[1:].transpose(0, 2, 1), X[:-1], out=gW[1:])
        gb = delta.sum(axis=1)
        if not all(np.isfinite(a).all() for a in (grad_x, gW, gb)):  # non-finite delta shows here
            return None
        return {"weights": gW, "biases": gb, "x": np.reshape(grad_x, _shape(x))}
