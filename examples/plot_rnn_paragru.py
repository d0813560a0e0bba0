"""
A ParaGRU over a long signal: Newton over time against the loop
================================================================

A ParaGRU (the GRU with diagonal recurrent weights of ParaRNN, Danieli et al. 2025) of width
16 reads a noisy signal of ``T = 16384`` samples and predicts the next sample with a linear
read-out. Newton's method over time computes all hidden states at once: every sweep evaluates
all steps and their (diagonal) Jacobians and solves one linear recurrence, and the cell's
diagonal Jacobian makes ``method="diagonal"`` exact Newton.
:meth:`pcrsolve.adapters.RNN.forward` weighs those sweeps against the adapter's compiled loop
and runs the faster. :meth:`~pcrsolve.adapters.RNN.gradients` back-propagates the loss on all
states through one reverse pass and batched products.

The example compares them with the loops a user writes in NumPy (the step loop, and
back-propagation through time), checks that they agree, counts the Newton sweeps and times
everything; then it takes a few SGD steps with the pcrsolve gradients. Set
``PCRSOLVE_EXAMPLE_QUICK=1`` for a seconds-long smoke run with a short signal.
"""

# %%
# The signal and the cell
# -----------------------
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pcrsolve.adapters import RNN

QUICK = os.environ.get("PCRSOLVE_EXAMPLE_QUICK") == "1"
T = 1024 if QUICK else 16384
W = 16  # hidden width
REPEATS = 1 if QUICK else 5
STEPS = 3 if QUICK else 25  # SGD steps
rng = np.random.default_rng(0)

t = np.arange(T + 1)
signal = np.sin(2 * np.pi * t / 97) + 0.5 * np.sin(2 * np.pi * t / 31) + 0.1 * rng.standard_normal(T + 1)
inputs = signal[:-1, None]  # (T, d_in = 1): the current sample
target = signal[1:]  # the next one

GATES = ("z", "r", "c")
params = {f"a_{g}": rng.uniform(-0.5, 0.5, W) for g in GATES}  # ParaRNN's |a| <= 0.5
params |= {f"U_{g}": rng.standard_normal((W, 1)) for g in GATES}
params |= {f"b_{g}": np.zeros(W) for g in GATES}
readout = 0.1 * rng.standard_normal(W)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def loop_forward(p, x):
    """The user's loop: one ParaGRU step at a time (input projections in one product)."""
    P = np.stack([x @ p[f"U_{g}"].T + p[f"b_{g}"] for g in GATES], axis=1)  # (T, 3, W)
    h, out = np.zeros(W), np.empty((len(x), W))
    for k in range(len(x)):
        z = sigmoid(p["a_z"] * h + P[k, 0])
        r = sigmoid(p["a_r"] * h + P[k, 1])
        c = np.tanh(p["a_c"] * (r * h) + P[k, 2])
        h = h + z * (c - h)
        out[k] = h
    return out


def loop_backward(p, x, states, g):
    """Hand-written back-propagation through time of ``sum_k <g[k], h_k>``."""
    P = np.stack([x @ p[f"U_{q}"].T + p[f"b_{q}"] for q in GATES], axis=1)
    grads = {name: np.zeros_like(v) for name, v in p.items()}
    carry = np.zeros(W)
    for k in range(len(x) - 1, -1, -1):
        h = states[k - 1] if k else np.zeros(W)
        z = sigmoid(p["a_z"] * h + P[k, 0])
        r = sigmoid(p["a_r"] * h + P[k, 1])
        c = np.tanh(p["a_c"] * (r * h) + P[k, 2])
        u = g[k] + carry
        d = {"z": u * (c - h) * z * (1 - z), "c": u * z * (1 - c * c)}
        g_rh = p["a_c"] * d["c"]
        d["r"] = g_rh * h * r * (1 - r)
        carry = u * (1 - z) + g_rh * r + p["a_z"] * d["z"] + p["a_r"] * d["r"]
        for q in GATES:
            grads[f"a_{q}"] += d[q] * (r * h if q == "c" else h)
            grads[f"U_{q}"] += np.outer(d[q], x[k])
            grads[f"b_{q}"] += d[q]
    return grads


def loss_and_grad(states, readout):
    """Mean squared error of the read-out's predictions, and its gradients."""
    err = states @ readout - target
    return np.mean(err**2), 2 * err[:, None] * readout / T, 2 * states.T @ err / T


def best_time(f):
    f()  # warm-up: compilation (cached on disk) and first-call costs are not timed
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# %%
# Forward: the route, and Newton over time
# ----------------------------------------
# ``forward()`` (``method="auto"``) times the compiled loop and a sweep of the cell's exact
# Newton method (``"diagonal"``) on the first steps and runs the route it predicts faster;
# ``sol.route`` says which, ``sol.route_reason`` why. A fixed-iteration run (``tol=0,
# max_iter=K``) sweeps whatever the costs, from ParaRNN's first guess (every step taken from
# ``h0``): the update of every sweep falls quadratically, and a handful of sweeps reach float64
# accuracy.
rnn = RNN("gru_diag", params, inputs)
sol = rnn.forward()
ref = loop_forward(params, inputs)
sweeps = rnn.forward(tol=0, max_iter=8).residuals
K = 1 + sum(r > np.finfo(float).eps ** 0.75 for r in sweeps)  # the sweeps Newton needs
print(f"forward: route {sol.route!r}; max |pcrsolve - loop| = {np.max(np.abs(sol.states - ref)):.1e}")
print(f"  because {sol.route_reason}")
print("update per sweep:", " ".join(f"{r:.0e}" for r in sweeps))

# %%
# Gradients: one reverse recurrence
# ---------------------------------
loss, g_states, _ = loss_and_grad(sol.states, readout)
grads = rnn.gradients(sol, g_states)
hand = loop_backward(params, inputs, ref, g_states)
rel = max(np.max(np.abs(grads[k] - hand[k])) / np.max(np.abs(hand[k])) for k in hand)
print(f"gradients: largest relative difference to hand-written BPTT {rel:.1e}")

# %%
# Timings
# -------
# pcrsolve's candidates build the adapter inside the timed call, so the input projections it
# caches are recomputed each time, as the loop does.
timings = {
    "loop forward": best_time(lambda: loop_forward(params, inputs)),
    "RNN.forward (auto)": best_time(lambda: RNN("gru_diag", params, inputs).forward()),
    f"Newton: {K} sweeps": best_time(lambda: RNN("gru_diag", params, inputs).forward(tol=0, max_iter=K)),
    "RNN.sequential (compiled loop)": best_time(
        lambda: (lambda r: r.sequential(r.h0, 0, T))(RNN("gru_diag", params, inputs))
    ),
    "loop backprop": best_time(lambda: loop_backward(params, inputs, ref, g_states)),
    "RNN.gradients": best_time(lambda: RNN("gru_diag", params, inputs).gradients(ref, g_states)),
}
for name, sec in timings.items():
    print(f"{name:32s} {sec * 1e3:8.2f} ms")
loop = timings["loop forward"]
print(
    f"speed-up over the NumPy loops: forward() {loop / timings['RNN.forward (auto)']:.1f}x (Newton's "
    f"sweeps {loop / timings[f'Newton: {K} sweeps']:.1f}x, the compiled loop "
    f"{loop / timings['RNN.sequential (compiled loop)']:.1f}x), gradients "
    f"{timings['loop backprop'] / timings['RNN.gradients']:.1f}x"
)

# %%
# A few SGD steps
# ---------------
# Forward by ``forward()``, gradients by the adjoint, plain SGD on every parameter and the read-out.
losses, p, R = [], dict(params), readout.copy()
for _ in range(STEPS):
    net = RNN("gru_diag", p, inputs)
    states = net.forward().states
    loss, g_states, g_R = loss_and_grad(states, R)
    losses.append(loss)
    g = net.gradients(states, g_states)
    p = {k: v - 0.5 * g[k] for k, v in p.items()}
    R = R - 0.5 * g_R
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in {STEPS} SGD steps")

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
axes[0].semilogy(range(1, len(sweeps) + 1), np.maximum(sweeps, 1e-17), "o-")
axes[0].axhline(np.finfo(float).eps ** 0.75, color="k", lw=0.8, ls="--", label="default tol")
axes[0].set(xlabel="sweep", ylabel="largest scaled update", title=f"Newton over time, T = {T}")
axes[0].legend()
axes[1].semilogy(np.maximum(np.max(np.abs(sol.states - ref), axis=1), 1e-18), lw=0.6)
axes[1].set(xlabel="step t", title="|pcrsolve - loop| per step")
names = list(timings)
axes[2].barh(names, [1e3 * timings[n] for n in names], color=["C0", "C1", "C1", "C2", "C0", "C1"])
axes[2].set(xlabel="ms (median)", title="time")
axes[2].invert_yaxis()
axes[3].plot(losses, "o-")
axes[3].set(xlabel="SGD step", ylabel="MSE", title="training with pcrsolve gradients")
for ax in axes:
    ax.grid(True, alpha=0.3)
fig.tight_layout()
# sphinx-gallery runs examples without __file__; scripts save next to themselves.
fig.savefig(Path(globals().get("__file__", "plot_rnn_paragru.py")).with_suffix(".png"), dpi=100)
