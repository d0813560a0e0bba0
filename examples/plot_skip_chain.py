"""
Skip connections: a chain of order r, Newton against Jacobi
===========================================================

In a DenseNet-like network every layer reads several earlier ones,
``x_k = tanh(W_k1 x_{k-1} + ... + W_kr x_{k-r} + b_k)``: a chain of order ``r``
(``FunctionChain(..., order=r)``). Solving all layers at once by Newton's method needs, per
iteration, the block lower-banded system ``dx_k = sum_j J_kj dx_{k-j} + r_k`` (``J_kj`` the
Jacobian with respect to lag ``j``); pcrsolve solves it as a first-order recurrence on the
stacked state ``(x_k, ..., x_{k-r+1})``, whose Jacobian is the block companion matrix. The
cheaper alternatives drop information: the band-1 quasi-Newton method keeps only ``J_k1``
(the skips' Jacobians are dropped), Jacobi keeps none. All three are exact after at most ``n``
sweeps (the converged prefix grows by at least one layer per sweep); the question is how many
sweeps they need.

We run each method for a fixed number of sweeps (``tol=0, max_iter=K``: no early stop, no
fallback) and plot the largest update per sweep, for orders 1 to 8; then time the adaptive
solves against the loop a user writes, and check one gradient of the initial states
(:func:`pcrsolve.chain_adjoint`, one reverse solve) against finite differences. Set
``PCRSOLVE_EXAMPLE_QUICK=1`` for a tiny smoke run.
"""

# %%
# The chain
# ---------
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pcrsolve as pcr

QUICK = os.environ.get("PCRSOLVE_EXAMPLE_QUICK") == "1"
N, M = (32, 4) if QUICK else (128, 16)
ORDERS = [1, 2, 4, 8]
SWEEPS = 12 if QUICK else 40
rng = np.random.default_rng(0)


def skip_chain(r):
    """Weights, the vectorized step (x_prev: (s, r, m) with x_prev[:, j] = x_{k-1-j}) and its Jacobians."""
    W = 0.8 * rng.standard_normal((N, r, M, M)) / np.sqrt(r * M)
    b = 0.5 * rng.standard_normal((N, M))

    def step(x, k):
        return np.tanh(np.einsum("krij,krj->ki", W[k], x) + b[k])

    def jac(x, k):  # (s, r, m, m): one Jacobian per lag
        return (1 - step(x, k) ** 2)[:, None, :, None] * W[k]

    def loop(x0):
        """What a user writes: a list of the states, each step reads the last r."""
        hist = list(x0)
        for k in range(N):
            hist.append(np.tanh(sum(W[k, j] @ hist[-1 - j] for j in range(r)) + b[k]))
        return np.array(hist[r:])

    if r == 1:  # order 1 is the first-order layout: x_prev (s, m), x0 (m,), no lag axis
        first = pcr.FunctionChain(lambda x, k: step(x[:, None], k), jac=lambda x, k: jac(x[:, None], k)[:, 0])
        return first, lambda x0: loop(x0[None]), lambda x0: x0[0]
    return pcr.FunctionChain(step, jac=jac, order=r), loop, lambda x0: x0


# %%
# Sweeps of Newton, band-1 quasi-Newton and Jacobi
# ------------------------------------------------
METHODS = {"newton": "Newton (companion)", "band1": "band-1 quasi-Newton", "jacobi": "Jacobi"}


def best_time(fn, repeats=1 if QUICK else 5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


curves, timing = {}, {}
for r in ORDERS:
    chain, loop, start = skip_chain(r)
    x0 = start(rng.standard_normal((r, M)))
    ref = loop(x0)
    for method in METHODS:
        fixed = pcr.solve_chain(chain, x0, N, method=method, tol=0, max_iter=SWEEPS)
        curves[r, method] = np.maximum(fixed.residuals, 1e-17)
        sol = pcr.solve_chain(chain, x0, N, method=method)
        t_sol = best_time(lambda c=chain, x=x0, meth=method: pcr.solve_chain(c, x, N, method=meth))
        t_loop = best_time(lambda loop=loop, x0=x0: loop(x0))
        timing[r, method] = (len(sol.residuals), sol.status, t_loop / t_sol)
        print(
            f"r={r} {method:7s}: {len(sol.residuals):3d} sweeps ({sol.status}), "
            f"max |error| {np.max(np.abs(sol.states - ref)):.1e}, {t_loop / t_sol:5.2f}x the loop"
        )

# %%
# A gradient of all r initial states in one reverse solve
# -------------------------------------------------------
r = ORDERS[-1]
chain, loop, _ = skip_chain(r)
x0 = rng.standard_normal((r, M))
g = np.zeros((N, M))
g[-1] = 1.0  # loss = sum of the last state
_, grad_x0 = pcr.chain_adjoint(chain, x0, loop(x0), g)
h, fd = 1e-6, np.zeros_like(x0)
for idx in np.ndindex(x0.shape):
    e = np.zeros_like(x0)
    e[idx] = h
    fd[idx] = (loop(x0 + e)[-1].sum() - loop(x0 - e)[-1].sum()) / (2 * h)
err = np.max(np.abs(grad_x0 - fd))
print(f"order {r}: gradient of the {r} initial states, max |adjoint - finite differences| {err:.1e}")

# %%
# Plot
# ----
fig, axes = plt.subplots(1, len(ORDERS), figsize=(16, 3.8), sharey=True)
for ax, r in zip(axes, ORDERS):
    for i, (method, label) in enumerate(METHODS.items()):
        c = curves[r, method]
        ax.semilogy(np.arange(1, len(c) + 1), c, "o-", ms=3, color=f"C{i}", label=label)
    ax.set_title(f"order r = {r} (n = {N}, m = {M})", fontsize=10)
    ax.set_xlabel("sweep")
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel("largest scaled update")
axes[0].legend(fontsize=8)
fig.tight_layout()
# sphinx-gallery runs examples without __file__; scripts save next to themselves.
fig.savefig(Path(globals().get("__file__", "plot_skip_chain.py")).with_suffix(".png"), dpi=100)
