"""The demo's chain cases: a user's FunctionChain, the MLP adapter and a DDIM sampler, each
against the loop a user writes and against ``sequential_chain``."""

from __future__ import annotations

import time

import numpy as np

from ._timing import Row, first_call

__all__ = [
    "chain",
    "chain_note",
    "ddim_loop",
    "ddim_problem",
    "ddim_sampling",
    "mlp_adapter",
    "mlp_chain",
    "ring_denoiser",
]


def mlp_chain(layers: int, width: int, seed: int = 3, gain: float = 0.5):
    """A tanh MLP ``x_k = tanh(W_k x_{k-1} + b_k)`` as a :class:`~pcrsolve.FunctionChain`.

    Weights ``gain * N(0, 1/width)``, biases ``N(0, 0.5^2)``. Returns the chain, an input, and
    the loop a user writes for it (``loop(x0) -> output``).
    """
    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    W = gain * rng.standard_normal((layers, width, width)) / np.sqrt(width)
    b = 0.5 * rng.standard_normal((layers, width))

    def step(x, k):  # x (s, *batch, m), k (s,)
        lead = (len(k), *(1,) * (x.ndim - 2))
        return np.tanh((W[k].reshape(*lead, width, width) @ x[..., None])[..., 0] + b[k].reshape(*lead, -1))

    def jac(x, k):
        y = step(x, k)
        return (1.0 - y * y)[..., None] * W[k].reshape(len(k), *(1,) * (x.ndim - 2), width, width)

    def loop(x):
        for k in range(layers):
            x = np.tanh(W[k] @ x + b[k])
        return x

    return pcr.FunctionChain(step, jac=jac), rng.standard_normal(width), loop


def _chain_row(case: str, size: str, solve, loop, sequential, x0, rounds: int) -> Row:
    """Time ``solve`` against the user's ``loop`` and against ``sequential`` (sequential_chain),
    in alternation; the row's reference is the user's loop."""
    sol, warm = first_call(solve)
    states = np.asarray(sol.states)
    err = float(np.max(np.abs(states[-1] - loop(x0)))) if states.shape[0] else 0.0
    ref_states = sequential()
    err = max(err, float(np.max(np.abs(states - ref_states))) if states.shape[0] else 0.0)
    tl, ts, tc = [], [], []
    for _ in range(max(1, rounds)):
        for f, acc in ((lambda: loop(x0), tl), (sequential, ts), (solve, tc)):
            t = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t)
    extra = {
        "route": sol.route,
        "route_reason": sol.route_reason,
        "status": sol.status,
        "message": sol.message,
        "iterations": int(sol.iterations),
        "converged": bool(sol.converged),
        "t_sequential_chain": float(np.median(ts)),
    }
    return Row(case, size, "user loop", err, float(np.median(tl)), float(np.median(tc)), warm, extra)


def chain(layers: int = 4096, width: int = 2, gain: float = 0.5, rounds: int = 7, seed: int = 3) -> Row:
    """A deep narrow tanh MLP written by the user (a ``FunctionChain`` of NumPy functions) solved
    by ``solve_chain`` (``method="auto"``), against the user's loop and ``sequential_chain``.

    Narrow and deep is where Newton's sweeps pay for a chain of NumPy callbacks: a sweep
    evaluates all steps in a few vectorized calls, the loop pays Python's overhead per step.
    """
    import pcrsolve as pcr

    ch, x0, loop = mlp_chain(layers, width, seed, gain)
    return _chain_row(
        "tanh MLP chain (DeepPCR)",
        f"{layers} layers, m = {width}",
        lambda: pcr.solve_chain(ch, x0, layers),
        loop,
        lambda: pcr.sequential_chain(ch, x0, layers),
        x0,
        rounds,
    )


def mlp_adapter(layers: int = 4096, width: int = 8, rounds: int = 7, seed: int = 3) -> Row:
    """:class:`pcrsolve.adapters.MLP` (``forward()``: the cost model picks its compiled loop or
    fused Newton sweeps) against the loop a user writes and ``sequential_chain``."""
    import pcrsolve as pcr
    from pcrsolve.adapters import MLP

    rng = np.random.default_rng(seed)
    W = 0.5 * rng.standard_normal((layers, width, width)) / np.sqrt(width)
    b = 0.5 * rng.standard_normal((layers, width))
    x0 = rng.standard_normal(width)
    mlp = MLP(W, b)

    def loop(x):
        for k in range(layers):
            x = np.tanh(W[k] @ x + b[k])
        return x

    return _chain_row(
        "MLP adapter vs user loop",
        f"{layers} layers, m = {width}",
        lambda: mlp.forward(x0),
        loop,
        lambda: pcr.sequential_chain(mlp, x0, layers),
        x0,
        rounds,
    )


def ring_denoiser(alpha_bar_of_t, k: int = 8, radius: float = 2.0, std: float = 0.15):
    """The exact noise predictor of ``k`` equal Gaussians on a circle in 2-D, and its ``J v``.

    ``x_t = sqrt(a) x_0 + sqrt(1 - a) eps``; with ``v = a std^2 + 1 - a`` the posterior mean is
    ``E[x_0 | x_t] = sum_i r_i (mu_i + sqrt(a) std^2 / v (x_t - sqrt(a) mu_i))`` (``r``: the
    components' posterior weights), and ``eps = (x_t - sqrt(a) E[x_0 | x_t]) / sqrt(1 - a)``.
    Both are vectorized over ``x (s, *batch, 2)`` and ``t (s,)``.
    """
    ang = 2.0 * np.pi * np.arange(k) / k
    mu = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    s2 = std * std

    def parts(x, t):
        a = alpha_bar_of_t(np.asarray(t)).reshape((-1,) + (1,) * (x.ndim - 1))
        sa = np.sqrt(a)
        v = a * s2 + 1.0 - a
        d = x[..., None, :] - sa[..., None] * mu  # (s, *batch, k, 2)
        logit = -0.5 * np.sum(d * d, axis=-1) / v
        r = np.exp(logit - logit.max(axis=-1, keepdims=True))
        r /= r.sum(axis=-1, keepdims=True)
        return a, sa, v, d, r, mu + (sa * s2 / v)[..., None] * d

    def eps(x, t):
        a, sa, _, _, r, Ei = parts(x, t)
        return (x - sa * np.sum(r[..., None] * Ei, axis=-2)) / np.sqrt(1.0 - a)

    def jvp(x, t, u):
        a, sa, v, d, r, Ei = parts(x, t)
        gu = -np.sum(d * u[..., None, :], axis=-1) / v
        dr = r * (gu - np.sum(r * gu, axis=-1, keepdims=True))
        dE = (sa * s2 / v) * u + np.sum(dr[..., None] * Ei, axis=-2)
        return (u - sa * dE) / np.sqrt(1.0 - a)

    return eps, jvp


def ddim_problem(steps: int):
    """A linear-beta DDPM schedule of ``steps`` steps, sampled at every step, and the ring denoiser.

    Returns ``(eps, jvp, alpha_bar, ts)`` as :class:`pcrsolve.adapters.DDIM` takes them.
    """
    abar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, steps))  # abar[t], t = 0 .. steps-1
    eps, jvp = ring_denoiser(lambda t: abar[t])
    ts = np.arange(steps - 1, -1, -1)
    return eps, jvp, np.r_[abar[ts], 1.0], ts


def ddim_loop(eps, alpha_bar, ts, x):
    """The sequential DDIM sampler (eta = 0), as users write it."""
    for k in range(len(ts)):
        a, a1 = alpha_bar[k], alpha_bar[k + 1]
        e = eps(x[None], ts[k : k + 1])[0]
        x = np.sqrt(a1) * (x - np.sqrt(1.0 - a) * e) / np.sqrt(a) + np.sqrt(1.0 - a1) * e
    return x


def ddim_sampling(steps: int = 1000, rounds: int = 5, seed: int = 5) -> Row:
    """:class:`pcrsolve.adapters.DDIM` (``forward()``, Newton sweeps through the denoiser's
    ``J v`` when they pay) against the sampler loop a user writes (:func:`ddim_problem`)."""
    import pcrsolve as pcr
    from pcrsolve.adapters import DDIM

    eps, jvp, alpha_bar, ts = ddim_problem(steps)
    ddim = DDIM(eps, alpha_bar, ts, denoiser_jvp=jvp)
    x0 = np.random.default_rng(seed).standard_normal(2)
    return _chain_row(
        "DDIM sampler (diffusion)",
        f"T = {steps}, 2-D",
        lambda: ddim.forward(x0),
        lambda x: ddim_loop(eps, alpha_bar, ts, x),
        lambda: pcr.sequential_chain(ddim, x0, ddim.n_steps),
        x0,
        rounds,
    )


def chain_note(row: Row) -> str:
    """What a chain case did: the route, the iterations, a fallback, both speed-ups."""
    e = row.extra
    if e["route"] == "sequential":
        how = f"the sequential loop ({e['route_reason']})"
    else:
        its = "Newton iterations" if e["route"] == "newton" else "iterations"
        how = f"{e['route']} sweeps, {e['iterations']} {its}"
        if e["status"] == "sequential":
            how += f", then FELL BACK to the loop: {e['message']}"
        else:
            how += " (converged)" if e["converged"] else " (NOT converged)"
    vs_chain = e["t_sequential_chain"] / row.t_pcrsolve
    speed = f"{row.speedup:.2f}x the user's loop, {vs_chain:.2f}x sequential_chain"
    return f"{row.case}: {how}; {speed}; max |difference| from the loop {row.error:.1e}."
