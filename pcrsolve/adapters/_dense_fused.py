"""The fast paths of the dense-layer chains (MLP, ResNet): whole loops and passes in one call.

- :func:`sequential` — the chain's ``sequential`` hook: the plain loop over layers. On NumPy
  states with a built-in activation one compiled pass (parallel over the batch) unless the
  batch is wide enough for NumPy's vectorized activation to win; otherwise a loop of
  whole-array operations per layer on the states' array library.
- :func:`fused_pass` — the private ``_fused_pass`` hook of :mod:`pcrsolve.chain`: one
  block of a sweep (step values and the linear step ``dX_k = A_k dX_{k-1} + F_k - X_k``)
  without forming the Jacobians ``diag(act'(z)) W_k``: pre-activations (compiled, parallel
  over steps), the activation on the whole block (NumPy's SIMD ``tanh``/``exp``, several
  times faster than a compiled loop's scalar calls), then the recurrence (compiled).
- :func:`adjoint` — the reverse recurrence of the adjoint from ``J^T u = W^T (act'(z) * u)``
  (+ ``u``), likewise without Jacobians; it also returns ``delta_k = act'(z_k) * adj_k``,
  from which the weight gradients are one batched product.

Everything here assumes validated NumPy arrays in the chain's compute dtype, except the
public-facing checks of :func:`sequential` (it is called by users through the Chain protocol).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _backend

__all__ = ["PARALLEL_MIN_WORK", "adjoint", "bounds", "fused_pass", "sequential"]


def bounds(start: Any, stop: Any, L: int, what: str = "layers") -> tuple[int, int]:
    try:
        a, b = operator.index(start), operator.index(stop)
    except TypeError:
        raise TypeError(
            f"`start` and `stop` must be ints; got {type(start).__name__} and {type(stop).__name__}."
        ) from None
    if not 0 <= a <= b <= L:
        raise ValueError(
            f"`start` and `stop` must satisfy 0 <= start <= stop <= {L} (the chain has {L} {what}); got {a} "
            f"and {b}."
        )
    return a, b


def _kernels():
    from . import _kernels as module

    return module


# Work (flops) from which a pass runs on every thread. Starting a parallel region costs tens of
# microseconds on an idle machine and milliseconds when other processes keep the cores busy
# (measured: a 60 us pass took 4-12 ms in parallel then), so only long passes share. Tests set
# it to 0 to exercise the parallel code on small inputs.
PARALLEL_MIN_WORK = 1 << 21
# Threads from which the parallel twins run at all. Numba's code for a parallel loop body ran
# 1.6-2x slower per thread than the serial twin's here (the fused sweep pass of a 65536-layer
# MLP: 8.7 ms against 4.5 ms on one thread), and on a 2-core virtual machine two threads did
# not overlap enough to recover it (the hybrid split: 7.8 ms; a ResNet training step: 40 ms
# against 21 ms serial): on two cores the serial passes are the faster ones.
_MIN_THREADS = 3
# The hybrid partition of a chain across two threads needs halves at least this long.
_MIN_HALF = 64


def _threads() -> int:
    """The threads a parallel pass may use: 1 (the serial passes) below ``_MIN_THREADS``.

    Numba's thread count, fewer when the machine has no idle core for them: on an
    oversubscribed machine (1-minute load average near the core count) a parallel region
    waits for threads the OS does not schedule.
    """
    import os

    import numba

    threads = int(numba.get_num_threads())
    try:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        idle = threads
    usable = max(1, min(threads, int(idle + 1.0)))
    return usable if usable >= _MIN_THREADS else 1


def _pick(twins: Any, tasks: int, work: int) -> Any:
    """The parallel twin when there are several tasks, enough work and free cores, else the serial."""
    return twins[0] if tasks > 1 and work >= PARALLEL_MIN_WORK and _threads() > 1 else twins[1]


def _transposed(chain: Any, dtype: Any) -> Any:
    """``W.transpose(0, 2, 1)``, C-contiguous in ``dtype`` (cached): the kernels' axpy layout."""
    key = ("transposed", dtype)
    hit = chain._cache.get(key)
    if hit is None:
        W, _ = chain._params(_backend.resolve({}, backend="numba"), dtype)
        hit = (np.ascontiguousarray(W.transpose(0, 2, 1)), None)
        chain._cache[key] = hit
    return hit[0]


# Nanoseconds per element of a compiled loop's activation (tanh: the vectorizable one of
# _kernels; sigmoid, gelu: the C library's exp, erfc), against about 1.5 ns in NumPy's
# vectorized loops plus about 3 us per call (one layer of whole-array operations); and per
# multiply-add of a layer's product, about 0.35 ns more in the compiled loop than in BLAS
# (batch 32, width 16-32). Measured on an AMD EPYC (Zen 4); the choice only moves the time.
_ACT_NS = {"tanh": 3.0, "sigmoid": 8.0, "gelu": 20.0, "relu": 0.0, "identity": 0.0}
_LAYER_CALL_NS = 3000.0
_FMA_EXTRA_NS = 0.35


def _compiled_pays(act: str, B: int, m: int) -> bool:
    """Whether the compiled loop beats a loop of whole-array operations (BLAS products) per
    layer: for a wide batch or a wide layer its scalar activation calls and products cost
    more than NumPy's vectorized ones plus a layer's call overhead."""
    ns = _ACT_NS.get(act)
    return ns is not None and B * m * (max(ns - 1.5, 0.0) + _FMA_EXTRA_NS * m) <= _LAYER_CALL_NS


def sequential(chain: Any, x_prev: Any, start: Any, stop: Any, into: Any = None) -> Any:
    """Layers ``start .. stop-1`` applied one after the other to ``x_prev (*batch, m)``.

    Returns ``(stop - start, *batch, m)``: the output of every layer, in the library of
    ``x_prev``. With ``into`` (a solver's states for those layers) the outputs are written
    there and ``into`` is returned, or None when ``into`` does not fit (not a C-contiguous
    NumPy array of that shape in the chain's compute dtype for ``x_prev``): the caller then
    calls without it.
    """
    L, m = chain._L, chain._m
    a, b = bounds(start, stop, L)
    be = _backend.resolve({"weights": chain._W, "x_prev": x_prev})
    xp = be.xp
    x = be.asarray(x_prev)
    if x.ndim < 1 or x.shape[-1] != m:
        raise ValueError(
            f"`x_prev` must have shape (*batch, m) with m = {m} features (the state before layer "
            f"`start`); got shape {tuple(x.shape)}."
        )
    batch = tuple(int(d) for d in x.shape[:-1])
    dtype = chain._dtype(xp, x.dtype)
    s = b - a
    if into is not None and not (
        be.is_cpu_numpy
        and isinstance(into, np.ndarray)
        and into.dtype == dtype
        and into.shape == (s, *batch, m)
        and into.flags.c_contiguous
    ):
        return None
    K = _kernels() if be.is_numba else None
    if K is not None and _compiled_pays(chain._act.name, math.prod(batch), m):
        _, bias = chain._params(be, dtype)
        B = math.prod(batch)
        x2 = np.ascontiguousarray(np.reshape(x, (B, m)), dtype=dtype)
        out = np.empty((s, B, m), dtype=dtype) if into is None else np.reshape(into, (s, B, m))
        chunks = min(B, _threads()) if B > 1 and s * B * m * m >= PARALLEL_MIN_WORK else 1
        K.sequential[0 if chunks > 1 else 1](
            _transposed(chain, dtype),
            bias,
            x2,
            a,
            b,
            K.ACT_CODES[chain._act.name],
            chain._residual,
            chain._h,
            chunks,
            out,
        )
        return out.reshape((s, *batch, m)) if into is None else into
    # Wide batches, custom activations, other array libraries: whole-array operations per layer.
    W, bias = chain._params(be, dtype)
    x = xp.astype(x, dtype) if x.dtype != dtype else x
    h, residual = chain._h, chain._residual
    if be.is_cpu_numpy:  # NumPy: plain operators (no namespace wrappers), states written in place
        out = np.empty((s, *batch, m), dtype=dtype) if into is None else into
        for k in range(a, b):
            act, _ = chain._act_values(np, x @ W[k].T + bias[k], False, be.is_numba)
            x = out[k - a] = x + h * act if residual else act
        return out
    outs = []
    for k in range(a, b):
        act, _ = chain._act_values(
            xp, xp.matmul(x, xp.matrix_transpose(W[k, ...])) + bias[k, ...], False, False
        )
        x = x + h * act if residual else act
        outs.append(x)
    return xp.stack(outs) if outs else xp.zeros((0, *batch, m), dtype=dtype)


def fused_pass(chain: Any, kind: str, dtype: Any) -> Callable[..., None] | None:
    """The sweep pass of ``kind`` for NumPy states of ``dtype``, or None where it does not apply.

    The pass ``run(X, x_first, a, b, carry, F, dX)`` evaluates steps ``[a, b)`` at the states
    ``X (n, B, m)`` (the state before step ``a`` is ``x_first (B, m)``) and solves the linear
    step from ``dX[-1] = carry (B, m)``, writing ``F`` and ``dX`` (``(b - a, B, m)``).
    """
    if np.dtype(dtype) not in (np.float32, np.float64) or chain._dtype(np, np.dtype(dtype)) != dtype:
        return None  # other dtypes take the generic path (and its error messages)
    K = _kernels()
    if kind not in K.KIND_CODES:
        return None
    be = _backend.resolve({}, backend="numba")
    W, bias = chain._params(be, dtype)
    WT = _transposed(chain, dtype)
    code, L = K.KIND_CODES[kind], chain._L
    need = kind in ("diag", "dense")

    work: dict[str, Any] = {}  # arrays reused from call to call (a solve's sweeps): fresh
    # large temporaries cost page faults on every sweep (measured: 2x a sweep's time)

    def buffer(name: str, shape: tuple[int, ...]) -> Any:
        size = math.prod(shape)
        if name not in work or work[name].size < size:
            work[name] = np.empty(size, dtype=dtype)
        return work[name][:size].reshape(shape)

    def run(X, x_first, a: int, b: int, carry, F, dX) -> None:
        if b > L:
            raise ValueError(f"`k` must hold step indices in [0, {L}); got values in [{a}, {b - 1}].")
        s, B, m = F.shape
        z = buffer("z", (s, B, m))
        _pick(K.affine_shifted, s, s * B * m * m)(WT, bias, X, x_first, a, z)
        act, dact = _activate(chain, z, buffer("act", z.shape), buffer("dact", z.shape), need)
        kernel = _pick(K.fused_linear, B, s * B * m * m)
        if s * B * m * m >= PARALLEL_MIN_WORK and s >= 2 * _MIN_HALF and B < _threads():
            kernel = K.fused_linear_halves  # too few chains to share: split each in two
        kernel(
            W,
            WT,
            act,
            act if dact is None else dact,
            X,
            x_first,
            a,
            carry,
            code,
            chain._residual,
            chain._h,
            F,
            dX,
        )

    return run


def adjoint(chain: Any, x_first: Any, X: Any, G: Any, keep_adj: bool = True) -> tuple[Any, Any, Any]:
    """``(adj, grad_x, delta)`` of the reverse recurrence for states ``X (L, B, m)`` from ``x_first``.

    ``adj[t] = G[t] + J_{t+1}^T adj[t+1]`` (``adj`` of the last layer is ``G`` there),
    ``grad_x = J_0^T adj[0]`` and ``delta[t] = act'(z_t) * adj[t]`` (times ``h`` for a
    ResNet). ``G`` of one row ``(1, B, m)`` is the gradient of the last layer alone; without
    ``keep_adj`` the returned ``adj`` is None. All arrays C-contiguous NumPy in the chain's
    compute dtype.
    """
    K = _kernels()
    L, B, m = X.shape
    dtype = X.dtype
    W, bias = chain._params(_backend.resolve({}, backend="numba"), dtype)
    z = np.empty((L, B, m), dtype=dtype)
    WT = _transposed(chain, dtype)
    compiled = _compiled_pays(chain._act.name, B, m)
    if compiled:
        _pick(K.affine_shifted, L, L * B * m * m)(WT, bias, X, x_first, 0, z)
    else:  # all pre-activations in one batched BLAS product
        np.matmul(x_first, WT[0], out=z[0])
        np.matmul(X[:-1], WT[1:], out=z[1:])
        z += bias[:, None, :]
    _, dact = _activate(chain, z, None, z, True)  # (z is not needed after: act' in its place)
    adj = np.empty((L if keep_adj else 1, B, m), dtype=dtype)
    delta = np.empty((L, B, m), dtype=dtype)
    grad_x = np.empty((B, m), dtype=dtype)
    if not compiled:
        _adjoint_blas(W, dact, G, chain._residual, adj, delta, grad_x)
        return (adj if keep_adj else None), grad_x, delta
    work = L * B * m * m
    chunks = min(B, _threads()) if B > 1 and work >= PARALLEL_MIN_WORK else 1
    K.adjoint[0 if chunks > 1 else 1](W, dact, G, chain._residual, chunks, adj, delta, grad_x)
    return (adj if keep_adj else None), grad_x, delta


def _adjoint_blas(W, dact, G, residual: bool, adj, delta, grad_x) -> None:
    """The reverse recurrence of :func:`adjoint` as a loop of BLAS products per layer (wide
    layers or batches, where the compiled pass's scalar products cost more): with
    ``J_t^T v = [v +] (dact_t * v) @ W_t`` (``dact`` holds ``h act'`` for a ResNet),
    ``adj[t] = G[t] + J_{t+1}^T adj[t+1]``."""
    L = dact.shape[0]
    v = np.array(G[-1], copy=True)  # adj of the last layer
    for t in range(L - 1, -1, -1):
        if adj.shape[0] == L:
            adj[t] = v
        nxt = np.multiply(dact[t], v, out=delta[t]) @ W[t]
        if residual:
            nxt += v
        if t and G.shape[0] == L:
            nxt += G[t - 1]
        v = nxt
    grad_x[...] = v


def _activate(chain: Any, z: Any, act: Any, dact: Any, need: bool) -> tuple[Any, Any]:
    """``(act(z), act'(z))`` (``act'`` times ``h`` for a ResNet) on NumPy, for the fused passes.

    For tanh in place, into ``act`` (None: not wanted) and ``dact`` (which may be ``z``
    itself): the passes run every sweep, and fresh large temporaries cost page faults. Other
    activations through :meth:`DenseChain._act_values` (new arrays).
    """
    if chain._act.name != "tanh":
        return chain._act_values(np, z, need, True)
    if act is not None:
        np.tanh(z, out=act)
        np.multiply(act, act, out=dact)
    else:
        np.tanh(z, out=dact)
        np.multiply(dact, dact, out=dact)
    np.subtract(1.0, dact, out=dact)
    if chain._residual and chain._h != 1.0:
        np.multiply(dact, chain._h, out=dact)
    return act, dact
