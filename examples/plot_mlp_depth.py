"""
MLP forward and backward passes against depth and width
=======================================================

DeepPCR (Danieli et al., NeurIPS 2023) evaluates an ``L``-layer network as one nonlinear
system: all layer outputs ``x_k = tanh(W_k x_{k-1} + b_k)`` are unknowns, solved together by
Newton's method, and every Newton step is a block-bidiagonal linear system solved in
``O(log L)`` parallel depth. The backward pass is one linear system too (the adjoint chain).

This example times :meth:`pcrsolve.adapters.MLP.forward` and
:meth:`~pcrsolve.adapters.MLP.gradients` against the loops a user writes (``x = tanh(W[k] @ x
+ b[k])`` and hand-written backpropagation), over depth ``L`` and width ``m``, for one input,
and checks the result against the sequential one. The shape to look for (as in DeepPCR's MLP
figure): the number of Newton iterations stays small and nearly flat in ``L``, so the
speed-up grows with depth, and it shrinks with width (a Newton step costs ``O(m^2)`` per layer
where the loop's matrix-vector product is cheap in BLAS).

On a CPU the gain comes from replacing ``L`` Python-level iterations by a few whole-chain
sweeps of compiled code; on a GPU, from the parallel depth. Set ``PCRSOLVE_EXAMPLE_QUICK=1``
for a seconds-long smoke run with tiny sizes.
"""

# %%
# Setup
# -----
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pcrsolve.adapters import MLP

QUICK = os.environ.get("PCRSOLVE_EXAMPLE_QUICK") == "1"
DEPTHS = [16, 64] if QUICK else [64, 256, 1024, 4096]
WIDTHS = [4] if QUICK else [4, 8, 16, 32]
REPEATS = 1 if QUICK else 5
rng = np.random.default_rng(0)


def loop_forward(W, b, x):
    """The user's loop: all layer outputs, one layer at a time."""
    out = np.empty((W.shape[0], x.shape[0]))
    for k in range(W.shape[0]):
        x = np.tanh(W[k] @ x + b[k])
        out[k] = x
    return out


def loop_backward(W, x, states, grad_out):
    """Hand-written backpropagation of dLoss/d(output) = grad_out through the tanh layers."""
    dW = np.empty_like(W)
    g = grad_out
    for k in range(W.shape[0] - 1, -1, -1):
        delta = g * (1.0 - states[k] ** 2)
        dW[k] = np.outer(delta, states[k - 1] if k else x)
        g = W[k].T @ delta
    return dW


def best_time(f, repeats=REPEATS):
    f()  # warm-up: JIT compilation (cached on disk) and first-call costs are not timed
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# %%
# Forward and backward, over depth and width
# ------------------------------------------
# Weights ``0.5 N(0, 1/m)``: a contracting network, where Newton's method converges in a few
# iterations (at the edge of chaos, ``N(0, 1/m)``, the converged prefix advances slowly and the
# solver switches to the sequential loop after a couple of sweeps: see the benchmarks).
results = {m: {"fwd": [], "bwd": [], "iters": [], "fallback": [], "err": [], "gerr": []} for m in WIDTHS}
for m in WIDTHS:
    for L in DEPTHS:
        W = 0.5 * rng.standard_normal((L, m, m)) / np.sqrt(m)
        b = 0.5 * rng.standard_normal((L, m))
        x = rng.standard_normal(m)
        g_out = rng.standard_normal(m)
        net = MLP(W, b, activation="tanh")

        sol = net.forward(x)
        ref = loop_forward(W, b, x)
        grads = net.gradients(x, sol, g_out)
        dW = loop_backward(W, x, ref, g_out)

        t_loop_f = best_time(lambda W=W, b=b, x=x: loop_forward(W, b, x))
        t_pcr_f = best_time(lambda net=net, x=x: net.forward(x))
        t_loop_b = best_time(lambda W=W, x=x, ref=ref, g=g_out: loop_backward(W, x, ref, g))
        t_pcr_b = best_time(lambda net=net, x=x, sol=sol, g=g_out: net.gradients(x, sol, g))
        r = results[m]
        r["fwd"].append(t_loop_f / t_pcr_f)
        r["bwd"].append(t_loop_b / t_pcr_b)
        r["iters"].append(sol.iterations)
        r["fallback"].append(sol.status == "sequential")  # the solver finished with the plain loop
        r["err"].append(float(np.max(np.abs(sol.states - ref))))
        r["gerr"].append(float(np.max(np.abs(grads["weights"] - dW)) / np.max(np.abs(dW))))
        print(
            f"L={L:5d} m={m:3d}: forward {t_loop_f * 1e3:7.2f} ms loop / {t_pcr_f * 1e3:7.2f} ms pcrsolve "
            f"({r['fwd'][-1]:4.2f}x, {sol.iterations} Newton it., {sol.status}); "
            f"backward {r['bwd'][-1]:4.2f}x; max |error| {r['err'][-1]:.1e}, "
            f"grad rel. error {r['gerr'][-1]:.1e}"
        )

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
for i, m in enumerate(WIDTHS):
    r, c = results[m], f"C{i}"
    axes[0].plot(DEPTHS, r["fwd"], "o-", color=c, label=f"m = {m}")
    axes[1].plot(DEPTHS, r["bwd"], "o-", color=c, label=f"m = {m}")
    axes[2].plot(DEPTHS, r["iters"], "o-", color=c, label=f"m = {m}")
    fell = np.array(r["fallback"])
    if fell.any():  # hollow markers: the cost rule switched to the sequential loop
        axes[2].plot(np.array(DEPTHS)[fell], np.array(r["iters"])[fell], "o", ms=11, mfc="none", color="k")
    axes[3].plot(DEPTHS, np.maximum(r["err"], 1e-17), "o-", color=c, label=f"states, m = {m}")
    axes[3].plot(DEPTHS, np.maximum(r["gerr"], 1e-17), "x--", color=c, label=f"gradients (rel.), m = {m}")
for ax, title in zip(
    axes,
    (
        "forward speed-up vs loop",
        "backward speed-up vs hand backprop",
        "Newton iterations (circled: finished sequentially)",
        "max |pcrsolve - sequential|",
    ),
):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth L")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
for ax in axes[:2]:
    ax.axhline(1.0, color="k", lw=0.8)
axes[3].set_yscale("log")
axes[0].legend()
axes[3].legend(fontsize=7)
fig.tight_layout()
# sphinx-gallery runs examples without __file__; scripts save next to themselves.
fig.savefig(Path(globals().get("__file__", "plot_mlp_depth.py")).with_suffix(".png"), dpi=100)
