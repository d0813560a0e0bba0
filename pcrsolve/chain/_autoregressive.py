"""``solve_autoregressive``: the fixed point ``x = func(x)`` of a causal ``func``, in a few sweeps.

The public shell and its result; the sweeps live in :mod:`._ar_sweep`, the loop over them in
:mod:`._ar_loop`, and the calls into the user's functions in :mod:`._ar_eval`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _backend, _validation
from . import _validation as check
from ._ar_eval import Problem
from ._ar_loop import Method, run
from ._ar_sweep import gauss_seidel
from ._policy import Options
from ._sequential import first_true

__all__ = ["AR_METHODS", "AutoregressiveSolution", "solve_autoregressive"]

AR_METHODS = ("jacobi", "sequential", "jacobi_gs", "gs_jacobi", "newton")


@dataclass(frozen=True)
class AutoregressiveSolution:
    """The result of :func:`solve_autoregressive`.

    Attributes
    ----------
    x : array of ``x_init``'s shape
        The fixed point ``x = func(x)``: what sampling position by position gives (within
        ``tol``), in the array library of ``x_init``.
    converged : bool
        Whether ``x`` is the sequential answer within ``tol``. Always true unless a
        fixed-iteration run (``tol=0`` with ``max_iter``) ended with an update above the
        dtype's default tolerance.
    iterations : int
        Sweeps that changed some position by more than ``tol`` (a sweep that only confirmed
        convergence is not counted); in a fixed-iteration run, the number of sweeps.
    residuals : tuple of float
        Per sweep, the largest scaled update ``|dx| / (1 + |x|)`` over the active positions
        and batch elements (``inf`` when non-finite values were held back).
    status : {"converged", "sequential", "max_iter"}
        ``"converged"``: every position converged in sweeps. ``"sequential"``: the remaining
        positions were sampled one by one (``method="sequential"``, or more sweeps would not
        have paid; ``message`` says why and from which position). ``"max_iter"``: a
        fixed-iteration run whose last update exceeds the default tolerance.
    message : str
        A human-readable account of how the solve ended.
    n_evals : int
        Calls of ``func`` (the sequential loop makes ``n``; ``check_causal`` adds its probes).
    n_jac_evals : int
        Calls of ``jac``, plus tangents passed to ``jvp`` (one per Jacobian column or band).
    """

    x: Any
    converged: bool
    iterations: int
    residuals: tuple[float, ...]
    status: str
    message: str
    n_evals: int
    n_jac_evals: int


def _axis(axis: Any, shape: tuple[int, ...]) -> int:
    ax = check.as_int(axis, "axis")
    nd = len(shape)
    if not -nd <= ax < nd:
        raise ValueError(
            f"`axis` = {ax} is out of range for x_init of shape {shape} ({nd} axes); pass the sequence "
            f"axis as an int in [{-nd}, {nd - 1}] (default -1, the last axis)."
        )
    return ax % nd


def _method(method: str, block_size, window, bandwidth, jac, jvp) -> Method:
    """Check that ``method`` has the options and derivatives it needs, and only those."""
    if method == "jacobi_gs" and block_size is None:
        raise ValueError(
            "method='jacobi_gs' needs `block_size`: the number of positions per block (sampled one by "
            "one inside a block, all blocks at once), e.g. block_size=28 for the rows of a 28 x 28 image."
        )
    if method == "gs_jacobi" and window is None:
        raise ValueError(
            "method='gs_jacobi' needs `window`: how many positions past the converged prefix each sweep "
            "updates, e.g. window=64."
        )
    if block_size is not None and method != "jacobi_gs":
        raise ValueError(f"`block_size` applies only to method='jacobi_gs'; got method={method!r}.")
    if window is not None and method not in ("gs_jacobi", "jacobi", "newton"):
        raise ValueError(
            f"`window` applies to methods 'gs_jacobi', 'jacobi' and 'newton'; got method={method!r}."
        )
    if bandwidth is not None and method != "newton":
        raise ValueError(f"`bandwidth` applies only to method='newton'; got method={method!r}.")
    if method == "newton" and jac is None and jvp is None:
        raise ValueError(
            "method='newton' needs the Jacobian of func: pass jac=(x) -> (*batch, n, n), or "
            "jvp=(x, v) -> J v for a stack v of shape (q, *x.shape) of q tangents (n of them per sweep, "
            "or bandwidth of them with `bandwidth`). Methods 'jacobi', 'gs_jacobi', 'jacobi_gs' and "
            "'sequential' need only func."
        )
    name = {"gs_jacobi": "jacobi"}.get(method, method)
    return Method(name, window, block_size, bandwidth)


def _check_causal(pb: Problem, X: Any, axis: int) -> None:
    """Probe that output positions ``<= j`` ignore input positions ``>= j``, for a few ``j``.

    One call of ``func`` at ``X`` and one per split ``j`` in ``{0, n/4, n/2, 3n/4, n-1}``, with
    every position from ``j`` on perturbed; an output position up to ``j`` that moves by more
    than ``sqrt(eps) (1 + |y|)`` reads the future. A probe, not a proof: it catches a leak
    from position ``k`` into ``i <= k`` when a split lies in ``[i, k]``, so every leak that
    repeats along the sequence (a mask off by one, a shift too short, a normalisation over
    the sequence), but not necessarily one confined to a single pair between two splits.
    """
    xp, n = pb.xp, pb.n
    Y0 = pb.f(X)
    pos = xp.arange(n)
    size = math.prod(X.shape)
    # A deterministic, device-side perturbation of the size of the entries.
    wiggle = xp.reshape(xp.cos(xp.astype(xp.arange(size), X.dtype) * 0.7548776662466927), X.shape)
    tol = math.sqrt(float(xp.finfo(X.dtype).eps))
    nb = len(pb.batch)
    for j in sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}):
        Xp = xp.where(pos >= j, X + (1 + xp.abs(X)) * wiggle, X)
        moved = xp.abs(pb.f(Xp) - Y0)[..., : j + 1] > tol * (1 + xp.abs(Y0[..., : j + 1]))
        per = xp.any(moved, axis=tuple(range(nb))) if nb else moved
        if bool(xp.any(per)):
            i = int(first_true(xp, per))
            raise ValueError(
                f"`func` is not causal along axis {axis}: its output at position {i} changed when the input "
                f"positions from {j} on changed (check_causal=True). Position i may read only positions "
                "< i; check the masks or the shift of func (an off-by-one lets a position read itself)."
            )


def solve_autoregressive(
    func: Callable[[Any], Any],
    x_init: Any,
    *,
    axis: int = -1,
    method: str = "jacobi",
    block_size: int | None = None,
    window: int | None = None,
    jac: Callable[[Any], Any] | None = None,
    jvp: Callable[[Any, Any], Any] | None = None,
    bandwidth: int | None = None,
    tol: float | None = None,
    max_iter: int | None = None,
    check_causal: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> AutoregressiveSolution:
    """Solve ``x = func(x)`` for a causal ``func``: autoregressive sampling in a few sweeps.

    Position ``i`` of ``func(x)`` along ``axis`` may read only positions ``< i`` (every other
    axis is a batch axis), as in an autoregressive model whose sampling noise is drawn up
    front (inside ``func``): MADE, PixelCNN, a causal convolution, a Markov chain of any
    order. The system ``x = func(x)`` is then triangular, its solution unique, and equal to
    sampling position by position, ``x_i <- func(x)_i`` for ``i = 0 .. n-1`` (``n`` calls of
    ``func``). Its methods solve it in fewer calls (Song, Meng, Liao and Ermon, ICML 2021):
    one Jacobi sweep ``x <- func(x)`` costs one call and fixes at least one more position,
    and usually many more.

    Parameters
    ----------
    func : callable ``(x) -> array of x's shape and dtype``
        The model: ``func(x)[..., i, ...]`` (position ``i`` along ``axis``) from ``x[..., :i,
        ...]``. Called with arrays of ``x_init``'s shape, dtype and library; it must not modify
        its argument.
    x_init : array_like
        A first guess (its values only speed things up; zeros are fine), which also fixes the
        shape, dtype (integers promote to float64) and backend.
    axis : int, optional
        The sequence axis of ``x_init`` (default: the last).
    method : {"jacobi", "sequential", "jacobi_gs", "gs_jacobi", "newton"}, optional
        ``"jacobi"`` (default): ``x <- func(x)`` over every unfrozen position; exact after at
        most ``n`` sweeps, one call each. ``"sequential"``: Gauss-Seidel, position by
        position, ``n`` calls (the reference). ``"jacobi_gs"`` (needs ``block_size = b``):
        blocks of ``b`` consecutive positions (aligned at 0, e.g. image rows) sampled one
        position at a time, all blocks at once; a sweep costs ``b`` calls and finishes at
        least one block. ``"gs_jacobi"`` (needs ``window = w``): Jacobi on the ``w`` positions
        past the converged prefix only, sliding on as it converges (also ``method="jacobi"``
        with ``window``). ``"newton"``: Newton's method on ``x - func(x) = 0``, whose Jacobian
        ``I - L`` is unit lower triangular; each sweep solves ``(I - L) dx = func(x) - x``:
        dense (from ``jac``, else ``n`` tangents of ``jvp``; a triangular solve), or with
        ``bandwidth = r`` as an order-``r`` linear recurrence (``r`` tangents of ``jvp``);
        with ``window``, only the window's rows and columns (``w`` tangents). A ``func``
        affine in ``x`` converges in one sweep.
    block_size : int, optional
        Positions per block of ``"jacobi_gs"``.
    window : int, optional
        Positions per sweep past the converged prefix (``"gs_jacobi"``, ``"jacobi"``,
        ``"newton"``).
    jac : callable ``(x) -> (*batch, n, n)``, optional
        For ``"newton"``: ``jac(x)[..., i, j] = d func(x)_i / d x_j`` per batch element
        (``*batch``: the other axes of ``x``, in order). Only the strict lower triangle is read.
    jvp : callable ``(x, v) -> (q, *x.shape)``, optional
        For ``"newton"`` without ``jac``: ``J v`` for a stack ``v (q, *x.shape)`` of ``q``
        tangents (called with at most about 4 million elements at a time).
    bandwidth : int, optional
        For ``"newton"``: position ``i`` reads only positions ``i - r .. i - 1`` (a causal
        convolution of receptive field ``r``, a Markov chain of order ``r``). Wrong (too
        small) bandwidths make Newton slower, never wrong.
    tol : float, optional
        Convergence threshold on the scaled update ``|dx| / (1 + |x|)`` per position and batch
        element; default ``eps**0.75`` of the dtype (1.8e-12 float64, 6.4e-6 float32). A
        position also counts as converged when the last two sweeps predict its remaining
        error within ``tol``, as in :func:`solve_chain`. ``tol`` bounds each position's own
        last update; what is left of it travels through the model to later positions, so a
        model that amplifies small changes ends further from the sampled answer (3e-10 for
        the briefly trained MADE of the benchmarks). ``tol=0`` accepts only exact updates (the
        bitwise sequential answer); ``tol=0`` with ``max_iter=K`` is the
        fixed-iteration mode: exactly ``K`` sweeps with no host synchronisation inside the
        loop (fewer once every position is exact).
    max_iter : int, optional
        At most this many sweeps; the positions still unconverged are then sampled one by one.
    check_causal : bool, optional
        Before solving, probe ``func`` (six calls) for an output position that reads its own
        or a later input position, and raise if one does. Output positions up to ``j`` are
        checked against changes at positions from ``j`` on, for ``j`` in ``{0, n/4, n/2, 3n/4,
        n-1}``: that catches a leak repeated along the sequence (a mask off by one, a shift
        too short, a normalisation over the whole sequence), not necessarily one confined to a
        single pair of positions.
    callback : callable, optional
        Called after every sweep with a dict: ``iteration``, ``residual``, ``prefix`` (frozen
        positions), ``window`` (the swept ``(start, stop)``), ``n_evals``, ``n_jac_evals``.
    progress : bool, optional
        Show a tqdm bar over the converged positions when tqdm is importable, else print one
        line per sweep on stderr.
    backend : {"numba", "numpy", "cupy"}, optional
        Where to compute; by default ``x_init`` decides. ``func`` receives arrays of that
        backend.

    Returns
    -------
    AutoregressiveSolution
        ``x``, ``converged``, ``iterations``, ``residuals``, ``status``, ``message``,
        ``n_evals``, ``n_jac_evals``.

    Raises
    ------
    ValueError
        For an ``axis`` out of range, a method without the options or derivatives it needs
        (or options it does not take), ``func`` returning another shape, non-finite
        ``x_init``, or (``check_causal``) a ``func`` that reads the future.
    TypeError
        For ``func``, ``jac`` or ``jvp`` not callable or returning another dtype or array
        library, or options of the wrong type.
    FloatingPointError
        If position-by-position sampling itself produces NaN or inf (the message names the
        position and batch element).

    See Also
    --------
    solve_chain : Chains ``x_k = f_k(x_{k-1}, ..., x_{k-r})``, one step function per position.

    Notes
    -----
    Guarantees. Positions whose update is within ``tol`` in every batch element form a
    frozen prefix ``p`` that is never updated again; position ``p`` reads only frozen
    positions, so the next sweep makes it exact. Hence every method is exact after at most
    ``n`` sweeps (``jacobi_gs``: ``ceil(n / b)``), and a ``func`` in which position ``i``
    reads only position ``i - 1`` through a chain of ``n`` dependencies needs all ``n``
    (``func(x)_i = x_{i-1} + 1``). Non-finite values produced at a poor iterate are held back
    and never enter the iterate.

    Costs. A Jacobi sweep is one call of ``func``, as is one position of sequential
    sampling, so the speed-up over sampling position by position is about ``n / sweeps`` on
    any hardware (31 sweeps for a 784-pixel MADE in Song et al.). A Newton sweep adds a
    Jacobian (``n`` tangents of ``jvp``, which cost about as much as the whole sequential
    loop unless ``jvp`` is cheap or batched; ``r`` with ``bandwidth``; one ``jac`` call) and
    a triangular solve (``O(n^2)`` per batch element dense, ``O(n r^2)`` banded); it pays
    where ``func`` is smooth and Jacobi needs many sweeps. The cost rules of
    :func:`solve_chain` apply with one call of ``func`` as the loop's step: the remaining
    positions are sampled one by one once the sweeps would cost more than twice sampling
    everything, and, for Newton, also once the sweeps still needed (forecast from the shrinking
    update or the advancing prefix) would cost more than sampling the rest. (A Jacobi-family
    sweep fixes at least as many positions as it makes calls, so it is never forecast away:
    it could save only its bookkeeping, while a slow start, common before the converged
    prefix takes off, would forgo its gain.)

    Examples
    --------
    A random causal model of 200 positions, three samples at once:

    >>> import numpy as np, pcrsolve as pcr
    >>> rng = np.random.default_rng(0)
    >>> n = 200
    >>> W = np.tril(rng.standard_normal((n, n)), -1) / np.sqrt(n)  # position i reads j < i
    >>> u = rng.standard_normal((3, n))  # the sampling noise, drawn up front
    >>> func = lambda x: u + 0.5 * np.tanh(x @ W.T)
    >>> sol = pcr.solve_autoregressive(func, np.zeros((3, n)))
    >>> sol.converged
    True

    ``sol.n_evals`` model calls (15 here; ``n`` if the cost rules chose to sample
    position by position) give the samples of the loop over positions:

    >>> x = np.zeros((3, n))
    >>> for i in range(n):  # sampling position by position
    ...     x[:, i] = func(x)[:, i]
    >>> bool(np.allclose(sol.x, x, rtol=1e-10, atol=1e-10))
    True
    """
    if not callable(func):
        raise TypeError(f"`func` must be callable, func(x) -> array of x's shape; got {type(func).__name__}.")
    method = _validation.method(method, AR_METHODS, "solve_autoregressive")
    for name, f in (("jac", jac), ("jvp", jvp), ("callback", callback)):
        if f is not None and not callable(f):
            raise TypeError(f"`{name}` must be callable or None; got {type(f).__name__}.")
    for name, flag in (("check_causal", check_causal), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"`{name}` must be a bool; got {type(flag).__name__}.")
    block_size = check.optional_int(block_size, "block_size", 1)
    window = check.optional_int(window, "window", 1)
    bandwidth = check.optional_int(bandwidth, "bandwidth", 1)
    max_iter = check.optional_int(max_iter, "max_iter", 0)
    tol_v = check.optional_float(tol, "tol", 0.0, math.inf, low_open=False)
    meth = _method(method, block_size, window, bandwidth, jac, jvp)

    be = _backend.resolve({"x_init": x_init}, backend)
    xp = be.xp
    x = _validation._numeric(be, x_init, "x_init")
    if x.ndim < 1:
        raise ValueError("`x_init` must have at least one axis, the sequence axis; got a scalar.")
    shape = tuple(x.shape)
    ax = _axis(axis, shape)
    x = _validation._cast(xp, x, _validation.result_dtype(xp, x))
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError("`x_init` contains NaN or inf; start from finite values (zeros are fine).")
    pb = Problem(func, jac, jvp, xp, shape, ax, x.dtype)
    X = xp.asarray(pb.to_canon(x), copy=True)  # the iterate: private, canonical (*batch, n)
    n = pb.n

    def result(converged, iterations, residuals, status, message):
        x = pb.to_user(X)
        return AutoregressiveSolution(
            x, converged, iterations, tuple(residuals), status, message, pb.n_evals, pb.n_jac_evals
        )

    if n == 0:
        return result(True, 0, (), "converged", "nothing to solve (no positions along `axis`).")
    if check_causal:
        _check_causal(pb, X, ax)
    if method == "sequential":
        gauss_seidel(pb, X, 0, n)
        return result(True, 0, (), "sequential", f"sampled the {n} positions one by one.")
    dtol = check.default_tol(xp, x.dtype)
    opts = Options(
        # The quadratic-rate acceptance of Newton needs its exact Jacobian; a band that is too
        # narrow converges linearly, so banded Newton is accepted at the linear rate.
        kind="dense" if method == "newton" and bandwidth is None else "zero",
        tol=dtol if tol_v is None else tol_v,
        fixed=tol_v == 0.0 and max_iter is not None,
        max_iter=max_iter,
        window=window,
        damping=1.0,
        callback=callback,
        progress=progress,
        default_tol=dtol,
        recurrence_method="auto",
    )
    out = run(be, pb, opts, meth, X)
    return result(out.converged, out.iterations, out.residuals, out.status, out.message)
