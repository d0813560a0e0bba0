"""DDIM / DDPM-like sampling as a chain: every denoising step is one step of the chain."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from .. import _backend

__all__ = ["DDIM"]

_JACOBIAN_FREE = ("picard", "jacobi", "sequential")
_NO_JVP = (
    "needs Jacobian-vector products of the denoiser: pass `denoiser_jvp` (a function "
    "(x, t, v) -> J_eps(x, t) v, e.g. from jax.jvp or torch.func.jvp) to DDIM, or use a "
    'Jacobian-free method such as method="picard".'
)


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


class DDIM:
    r"""Denoising-diffusion sampling (DDIM, and DDPM-like with ``eta > 0``) as a chain.

    With ``a = alphas_cumprod`` (the cumulative products of the noise schedule), step ``k`` of
    ``n`` takes ``x_k`` to ``x_{k+1}``:

    .. code-block:: text

        eps     = denoiser(x_k, timesteps[k])
        x0_hat  = (x_k - sqrt(1 - a[k]) eps) / sqrt(a[k])
        sigma_k = eta sqrt((1 - a[k+1]) / (1 - a[k])) sqrt(1 - a[k] / a[k+1])
        x_{k+1} = sqrt(a[k+1]) x0_hat + sqrt(1 - a[k+1] - sigma_k^2) eps + sigma_k noise[k]

    In the chain convention ``states[k]`` is ``x_{k+1}`` and ``states[-1] = x_0`` is the
    starting noise; the sample is ``states[-1]`` of the solution (shape ``(n, *batch, m)``).
    With ``eta = 0`` sampling is deterministic; with ``eta > 0`` the noise is drawn up front,
    which makes DDPM-like sampling a deterministic chain too.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, t) -> eps``, vectorized over the leading step axis: ``x`` has shape
        ``(s, *batch, m)``, ``t`` shape ``(s,)`` (entries of ``timesteps``), and ``eps`` the
        shape of ``x``. It may be called with extra batch axes (Jacobian probes).
    alphas_cumprod : (n + 1,) array_like
        Values in (0, 1] (often called ``alpha_bar``): ``a[0]`` the noisiest point of the
        schedule, ``a[n]`` the cleanest (1.0 is allowed). With ``eta > 0`` the schedule must
        be non-decreasing with ``a[k] < 1`` for ``k < n``.
    timesteps : (n,) array_like
        The times passed to the denoiser, ``timesteps[k]`` at step ``k`` (kept in their
        dtype, e.g. integers).
    eta : float, optional
        0 (default) for DDIM; 1 gives DDPM's posterior variance.
    noise : (n, *batch, m) array_like, optional
        The noise of every step, drawn up front (e.g. ``rng.standard_normal``). Required when
        ``eta > 0``; its batch axes broadcast against the input's. Ignored when ``eta = 0``.
    denoiser_jvp : callable, optional
        ``denoiser_jvp(x, t, v) -> J v`` with ``J = d eps / d x``, same shapes as ``x``.
        Needed by the Jacobian-based methods (``"newton"``, ``"diagonal"``) and by
        :meth:`jac`, :meth:`jvp`, :meth:`vjp`, :meth:`linearize`; without it only the
        Jacobian-free methods (``"picard"``, ``"jacobi"``, ``"sequential"``) work.

    Attributes
    ----------
    n_steps : int
        ``n``.
    eta : float
    alphas_cumprod, timesteps, noise : array or None
        As given (``alphas_cumprod`` as float64), copied when the sampler is built: changing
        the arrays passed in does not change it.
    coefficients : tuple of three (n,) arrays
        ``(c_x, c_eps, sigma)`` with ``x_{k+1} = c_x[k] x_k + c_eps[k] eps + sigma[k] noise[k]``.

    Raises
    ------
    ValueError
        If ``alphas_cumprod`` is not 1-D with n + 1 >= 2 finite values in (0, 1], ``timesteps``
        does not have ``n`` entries, ``eta`` is negative, not finite or too large for the
        schedule, or ``noise`` is missing (``eta > 0``) or of the wrong shape.
    TypeError
        If ``denoiser`` or ``denoiser_jvp`` is not callable.

    Notes
    -----
    The Jacobian of step ``k`` is ``c_x[k] I + c_eps[k] d eps / d x``; :meth:`jac` builds it
    from ``m`` batched calls of ``denoiser_jvp`` (one probe per feature, on an extra batch
    axis), and :meth:`vjp` as ``J^T u`` from it, so both suit small feature sizes ``m``.
    Schedules and timesteps are moved to the array library of the states when used (they are
    small); ``noise`` must already live there.

    Examples
    --------
    A linear "denoiser" ``eps = 0.5 x`` on a 3-step schedule:

    >>> import numpy as np
    >>> from pcrsolve.adapters import DDIM
    >>> denoiser = lambda x, t: 0.5 * x
    >>> alpha_bar = np.array([0.2, 0.5, 0.8, 1.0])
    >>> ddim = DDIM(denoiser, alpha_bar, timesteps=np.array([750, 500, 250]),
    ...             denoiser_jvp=lambda x, t, v: 0.5 * v)
    >>> x = np.array([[1.0, -2.0]])                   # one sample, m = 2
    >>> ref = x
    >>> for k in range(3):
    ...     a, a1 = alpha_bar[k], alpha_bar[k + 1]
    ...     eps = 0.5 * ref
    ...     ref = np.sqrt(a1) * (ref - np.sqrt(1 - a) * eps) / np.sqrt(a) + np.sqrt(1 - a1) * eps
    >>> sol = ddim.forward(x)
    >>> bool(np.allclose(sol.states[-1], ref))
    True
    """

    def __init__(
        self,
        denoiser: Callable[[Any, Any], Any],
        alphas_cumprod: Any,
        timesteps: Any,
        *,
        eta: float = 0.0,
        noise: Any = None,
        denoiser_jvp: Callable[[Any, Any, Any], Any] | None = None,
    ) -> None:
        if not callable(denoiser):
            raise TypeError(f"`denoiser` must be a callable (x, t) -> eps; got {type(denoiser).__name__}.")
        if denoiser_jvp is not None and not callable(denoiser_jvp):
            raise TypeError(
                "`denoiser_jvp` must be a callable (x, t, v) -> J v or None; got "
                f"{type(denoiser_jvp).__name__}."
            )
        if isinstance(eta, (bool, str)) or not hasattr(eta, "__float__"):
            raise TypeError(f"`eta` must be a real number; got {type(eta).__name__}.")
        eta = float(eta)
        if not (math.isfinite(eta) and eta >= 0.0):
            raise ValueError(f"`eta` must be a finite number >= 0 (0: DDIM, 1: DDPM variance); got {eta}.")

        be = _backend.resolve({"alphas_cumprod": alphas_cumprod})
        xp = be.xp
        ab = be.asarray(alphas_cumprod)
        if ab.ndim != 1 or ab.shape[0] < 2:
            raise ValueError(
                "`alphas_cumprod` must be a 1-D array of n + 1 >= 2 values (from the noisiest point of the "
                f"schedule to the cleanest, for n steps); got shape {_shape(ab)}."
            )
        if not xp.isdtype(ab.dtype, ("real floating", "integral")):
            raise TypeError(f"`alphas_cumprod` must be real; got dtype {ab.dtype}.")
        ab = xp.astype(ab, xp.float64)
        n = int(ab.shape[0]) - 1
        if not bool(xp.all((ab > 0.0) & (ab <= 1.0))):
            raise ValueError(
                "`alphas_cumprod` must hold values in (0, 1] (cumulative products of 1 - beta); got values "
                f"in [{float(xp.min(ab))}, {float(xp.max(ab))}] (NaN counts as outside)."
            )
        tb = _backend.resolve({"timesteps": timesteps})
        ts = tb.xp.asarray(tb.asarray(timesteps), copy=True)  # the sampler's own (as all its arrays)
        if ts.ndim != 1 or ts.shape[0] != n:
            raise ValueError(
                f"`timesteps` must have shape (n,) = ({n},): one value per step, for `alphas_cumprod` of "
                f"{n + 1} entries; got shape {_shape(ts)}."
            )
        a, a1 = ab[:-1], ab[1:]
        if eta > 0.0:
            if not bool(xp.all(a < 1.0)) or not bool(xp.all(a1 >= a)):
                raise ValueError(
                    "with `eta` > 0, `alphas_cumprod` must be non-decreasing with alphas_cumprod[k] < 1 "
                    "for k < n "
                    "(sigma_k involves (1 - a[k+1]) / (1 - a[k]) and 1 - a[k] / a[k+1]); use eta=0 for "
                    "this schedule."
                )
            sigma = eta * xp.sqrt((1.0 - a1) / (1.0 - a)) * xp.sqrt(1.0 - a / a1)
        else:
            sigma = xp.zeros_like(a)
        rest = 1.0 - a1 - sigma * sigma
        if not bool(xp.all(rest >= -1e-12)):
            raise ValueError(
                f"`eta` = {eta} is too large for this schedule: 1 - a[k+1] - sigma_k^2 < 0 at some step; "
                "eta <= 1 always works."
            )
        c_x = xp.sqrt(a1 / a)
        c_eps = xp.sqrt(xp.clip(rest, 0.0, None)) - xp.sqrt(a1) * xp.sqrt(1.0 - a) / xp.sqrt(a)

        if noise is not None and eta > 0.0:
            nb = _backend.resolve({"noise": noise})
            noise = nb.xp.asarray(nb.asarray(noise), copy=True)
            if noise.ndim < 2 or noise.shape[0] != n:
                raise ValueError(
                    f"`noise` must have shape (n, *batch, m) with n = {n} (one draw per step); got "
                    f"shape {_shape(noise)}."
                )
        elif noise is None and eta > 0.0:
            raise ValueError(
                f"`noise` is required when `eta` > 0 (got eta={eta}): draw it up front, e.g. "
                "noise = rng.standard_normal((n, *batch, m)), so that sampling is a deterministic chain."
            )
        else:
            noise = None  # eta == 0: the noise term vanishes

        self._denoiser = denoiser
        self._denoiser_jvp = denoiser_jvp
        self._eta = eta
        self._n = n
        self._alpha_bar = ab
        self._timesteps = ts
        self._noise = noise
        self._coef = (c_x, c_eps, sigma)
        self._cache: dict[tuple[str, Any], tuple[Any, Any]] = {}
        self._float_dtypes: set[Any] = set()

    # ------------------------------------------------------------------ attributes

    @property
    def n_steps(self) -> int:
        """Number of sampling steps ``n``."""
        return self._n

    @property
    def eta(self) -> float:
        """The stochasticity ``eta``."""
        return self._eta

    @property
    def alphas_cumprod(self) -> Any:
        """(n + 1,) float64 array: the schedule."""
        return self._alpha_bar

    @property
    def timesteps(self) -> Any:
        """(n,) array: the times given to the denoiser."""
        return self._timesteps

    @property
    def noise(self) -> Any:
        """(n, *batch, m) array or None: the pre-drawn noise (None when ``eta == 0``)."""
        return self._noise

    @property
    def coefficients(self) -> tuple[Any, Any, Any]:
        """``(c_x, c_eps, sigma)``, each (n,): ``x_{k+1} = c_x x_k + c_eps eps + sigma noise[k]``."""
        return self._coef

    def __repr__(self) -> str:
        jvp = "yes" if self._denoiser_jvp is not None else "no"
        return f"DDIM(n={self._n}, eta={self._eta}, denoiser_jvp={jvp})"

    # ------------------------------------------------------------------ internals

    def _schedule(self, be: _backend.Backend, dtype: Any) -> tuple[Any, Any]:
        """``(coef, timesteps)`` in ``be``'s library: ``coef`` (n, 3) = (c_x, c_eps, sigma) in ``dtype``."""
        key = (be.name, dtype)
        hit = self._cache.get(key)
        if hit is None:
            xp = be.xp
            coef = xp.stack([xp.astype(be.asarray(c), dtype) for c in self._coef], axis=1)
            hit = (coef, be.asarray(self._timesteps))
            self._cache[key] = hit
        return hit

    def _prepare(self, x_prev: Any, k: Any, others: dict[str, Any] | None = None):
        """Resolve the backend, check shapes, gather the step coefficients (shaped to broadcast)."""
        arrays = {"x_prev": x_prev, "noise": self._noise}
        if others:
            arrays.update(others)
        be = _backend.resolve(arrays)
        xp = be.xp
        x = be.asarray(x_prev)
        if x.ndim < 2:
            raise ValueError(f"`x_prev` must have shape (s, *batch, m); got shape {_shape(x)}.")
        if x.dtype not in self._float_dtypes:
            if not xp.isdtype(x.dtype, "real floating"):
                x = xp.astype(x, xp.float64)
            else:
                self._float_dtypes.add(x.dtype)
        s = int(x.shape[0])
        kk = xp.asarray(k)
        if _shape(kk) != (s,):
            raise ValueError(f"`k` must have one index per step, shape ({s},); got shape {_shape(kk)}.")
        coef, ts = self._schedule(be, x.dtype)
        lead = (s,) + (1,) * (x.ndim - 2) + (3,)
        if be.is_cpu_numpy:  # plain indexing: the per-call overhead matters in sequential loops
            c, t = coef[kk].reshape(lead), ts[kk]
        else:
            c, t = xp.reshape(xp.take(coef, kk, axis=0), lead), xp.take(ts, kk, axis=0)
        return be, xp, x, kk, c[..., 0:1], c[..., 1:2], c[..., 2:3], t

    def _eps(self, x: Any, t: Any) -> Any:
        eps = self._denoiser(x, t)
        if not hasattr(eps, "shape") or _shape(eps) != _shape(x):
            got = f"shape {_shape(eps)}" if hasattr(eps, "shape") else type(eps).__name__
            raise ValueError(
                f"`denoiser` must return an array of the shape of its input x, (s, *batch, m) = "
                f"{_shape(x)}; got {got}. It is called with all steps at once: x has a leading step "
                "axis and t has shape (s,)."
            )
        return eps

    def _need_jvp(self, what: str) -> None:
        if self._denoiser_jvp is None:
            raise ValueError(f"{what} {_NO_JVP}")

    def _jvp_eps(self, x: Any, t: Any, v: Any) -> Any:
        out = self._denoiser_jvp(x, t, v)
        if not hasattr(out, "shape") or _shape(out) != _shape(v):
            got = f"shape {_shape(out)}" if hasattr(out, "shape") else type(out).__name__
            raise ValueError(
                f"`denoiser_jvp` must return an array of the shape of v, {_shape(v)}; got {got}."
            )
        return out

    def _dense(self, xp: Any, x: Any, ce: Any, cx: Any, t: Any) -> Any:
        """Jacobians (s, *batch, m, m) from m batched jvp probes on an extra batch axis."""
        s, m, nd = int(x.shape[0]), int(x.shape[-1]), x.ndim
        dev = array_api_compat.device(x)
        X = xp.broadcast_to(x[:, None, ...], (s, m, *_shape(x)[1:]))
        eye = xp.eye(m, dtype=x.dtype, device=dev)
        V = xp.broadcast_to(xp.reshape(eye, (1, m) + (1,) * (nd - 2) + (m,)), _shape(X))
        JV = self._jvp_eps(X, t, V)  # (s, probe, *batch, out)
        J = xp.permute_dims(JV, (0, *range(2, nd + 1), 1))  # (s, *batch, out, probe)
        return ce[..., None] * J + cx[..., None] * eye

    # ------------------------------------------------------------------ Chain protocol

    def step(self, x_prev: Any, k: Any) -> Any:
        """Denoising steps ``k`` from states ``x_prev``.

        Parameters
        ----------
        x_prev : (s, *batch, m) array
            States ``x_k`` (``states[k - 1]``; the starting noise for ``k = 0``).
        k : (s,) int array
            Step indices in ``[0, n)``.

        Returns
        -------
        (s, *batch, m) array
            ``x_{k+1}``.
        """
        be, xp, x, kk, cx, ce, sigma, t = self._prepare(x_prev, k)
        out = cx * x + ce * self._eps(x, t)
        if self._noise is not None:
            noise = xp.take(be.asarray(self._noise), kk, axis=0)
            noise = xp.astype(noise, x.dtype) if noise.dtype != x.dtype else noise
            out = out + sigma * noise
        return out

    def jvp(self, x_prev: Any, k: Any, v: Any) -> Any:
        """``J v`` with ``J = c_x I + c_eps d eps / d x`` (needs ``denoiser_jvp``)."""
        self._need_jvp("DDIM.jvp")
        be, xp, x, _, cx, ce, _, t = self._prepare(x_prev, k, {"v": v})
        v = be.asarray(v)
        v = xp.astype(v, x.dtype) if v.dtype != x.dtype else v
        if _shape(v) != _shape(x):
            raise ValueError(f"`v` must have the shape of `x_prev`, {_shape(x)}; got shape {_shape(v)}.")
        return cx * v + ce * self._jvp_eps(x, t, v)

    def jac(self, x_prev: Any, k: Any) -> Any:
        """Dense Jacobians, shape (s, *batch, m, m), from ``m`` probes of ``denoiser_jvp``."""
        self._need_jvp("DDIM.jac")
        _, xp, x, _, cx, ce, _, t = self._prepare(x_prev, k)
        return self._dense(xp, x, ce, cx, t)

    def jac_diag(self, x_prev: Any, k: Any) -> Any:
        """The diagonals of :meth:`jac`, shape (s, *batch, m)."""
        self._need_jvp("DDIM.jac_diag")
        J = self.jac(x_prev, k)
        xp = array_api_compat.array_namespace(J)
        m = int(J.shape[-1])
        flat = xp.reshape(J, (*_shape(J)[:-2], m * m))
        return xp.take(flat, xp.arange(0, m * m, m + 1), axis=-1)

    def vjp(self, x_prev: Any, k: Any, u: Any) -> Any:
        """``J^T u``, shape (s, *batch, m), through the dense :meth:`jac`."""
        self._need_jvp("DDIM.vjp")
        J = self.jac(x_prev, k)
        xp = array_api_compat.array_namespace(J)
        u = xp.asarray(u)
        u = xp.astype(u, J.dtype) if u.dtype != J.dtype else u
        if _shape(u) != _shape(J)[:-1]:
            raise ValueError(f"`u` must have the shape of `x_prev`, {_shape(J)[:-1]}; got shape {_shape(u)}.")
        return xp.matmul(u[..., None, :], J)[..., 0, :]

    def linearize(self, x_prev: Any, k: Any) -> tuple[Any, Any]:
        """``(step(x_prev, k), jac(x_prev, k))``."""
        self._need_jvp("DDIM.linearize")
        return self.step(x_prev, k), self.jac(x_prev, k)

    def sequential(self, x_prev: Any, start: int, stop: int) -> Any:
        """The sampler loop: steps ``start .. stop-1`` from ``x_prev``, one denoiser call each.

        What a hand-written sampler does, with the schedule's coefficients computed once (the
        denoiser is the user's code, so the loop stays in Python; it is what
        :func:`pcrsolve.sequential_chain` and every fallback of :func:`pcrsolve.solve_chain`
        run).

        Parameters
        ----------
        x_prev : (*batch, m) array
            The state before step ``start`` (the starting noise for ``start = 0``).
        start, stop : int
            The steps to run, ``0 <= start <= stop <= n``.

        Returns
        -------
        (stop - start, *batch, m) array
            ``x_{start+1} .. x_{stop}``.
        """
        from ._dense_fused import bounds

        a, b = bounds(start, stop, self._n, "steps")
        be = _backend.resolve({"x_prev": x_prev, "noise": self._noise})
        xp = be.xp
        x = be.asarray(x_prev)
        if x.ndim < 1:
            raise ValueError(f"`x_prev` must have shape (*batch, m); got shape {_shape(x)}.")
        if not xp.isdtype(x.dtype, "real floating"):
            x = xp.astype(x, xp.float64)
        coef, ts = self._schedule(be, x.dtype)
        noise = None if self._noise is None else be.asarray(self._noise)
        outs = []
        for k in range(a, b):
            eps = self._eps(x[None, ...], ts[k : k + 1])[0, ...]
            x = coef[k, 0] * x + coef[k, 1] * eps
            if noise is not None:
                nk = noise[k, ...]
                x = x + coef[k, 2] * (xp.astype(nk, x.dtype) if nk.dtype != x.dtype else nk)
            outs.append(x)
        return xp.stack(outs) if outs else xp.zeros((0, *_shape(x)), dtype=x.dtype)

    # ------------------------------------------------------------------ sampling

    def forward(self, x: Any, **options: Any) -> Any:
        """Sample: solve the chain from the starting noise ``x`` with :func:`pcrsolve.solve_chain`.

        Parameters
        ----------
        x : (*batch, m) array_like
            The starting noise ``x_0`` (e.g. ``rng.standard_normal((batch, m))``).
        **options
            Passed to :func:`pcrsolve.solve_chain`. ``method`` defaults to ``"auto"`` (the cost
            model chooses between Newton sweeps and the sampler loop) when ``denoiser_jvp``
            was given and to ``"picard"`` otherwise.

        Returns
        -------
        ChainSolution
            ``sol.states`` has shape ``(n, *batch, m)``; the samples are ``sol.states[-1]``.

        Raises
        ------
        ValueError
            If ``method`` needs Jacobians (``"newton"``, ``"diagonal"``) and no
            ``denoiser_jvp`` was given, or ``noise`` does not broadcast against ``x``.
        """
        from ..chain import solve_chain

        options = dict(options)
        method = options.setdefault("method", "auto" if self._denoiser_jvp is not None else "picard")
        if self._denoiser_jvp is None and method not in _JACOBIAN_FREE:
            self._need_jvp(f'method="{method}"')
        backend = options.get("backend")
        be = _backend.resolve({"x": x, "noise": self._noise}, backend=backend)
        x = be.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"`x` must have shape (*batch, m); got shape {_shape(x)}.")
        if self._noise is not None:
            ns = _shape(self._noise)[1:]
            try:
                ok = _broadcast(ns, _shape(x)) == _shape(x)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"`noise` must have shape (n, *batch, m) = {(self._n, *_shape(x))} (or broadcast to "
                    f"it) for `x` of shape {_shape(x)}; got shape {_shape(self._noise)}."
                )
        if backend is None:
            return solve_chain(self, x, self._n, **options)
        with _backend.use_backend(backend):
            return solve_chain(self, x, self._n, **options)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    import numpy as np

    return tuple(np.broadcast_shapes(a, b))
