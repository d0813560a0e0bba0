"""
Training a deep ResNet with pcrsolve gradients
==============================================

A ResNet of ``L = 256`` residual blocks ``x <- x + h tanh(W_k x + b_k)`` (``h = 4/L``: an
explicit Euler discretisation of a neural ODE on ``[0, 4]``) classifies points of a small
synthetic 2-D task (three concentric rings), trained by full-batch SGD with momentum. Each
training step runs the forward pass with :meth:`pcrsolve.adapters.ResNet.forward` (Newton's
method over all blocks at once, DeepPCR) and the backward pass with
:meth:`~pcrsolve.adapters.ResNet.gradients` (one adjoint linear recurrence for all blocks, then
one batched product for every block's parameter gradients).

The same network is also trained from the same initial weights with the plain sequential
forward loop and hand-written backpropagation. Both are exact methods, so the two loss curves
lie on top of each other; the plot shows them overlaid and the largest difference between the
two sets of trained weights. Set ``PCRSOLVE_EXAMPLE_QUICK=1`` for a tiny smoke run.
"""

# %%
# Data and model
# --------------
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pcrsolve.adapters import ResNet

QUICK = os.environ.get("PCRSOLVE_EXAMPLE_QUICK") == "1"
L = 256 if not QUICK else 32  # residual blocks
M = 8  # width: the 2-D input is zero-padded to m features
CLASSES = 3
N = 120 if not QUICK else 48  # training points
EPOCHS = 80 if not QUICK else 5
LR, MOMENTUM = 0.5, 0.9
rng = np.random.default_rng(0)


def rings(n, classes):
    """Points on ``classes`` concentric noisy rings (points (n, 2), labels (n,): the ring)."""
    y = np.arange(n) % classes
    r = 0.3 + 0.35 * y + 0.06 * rng.standard_normal(n)
    a = 2 * np.pi * rng.random(n)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1), y


X2, y = rings(N, CLASSES)
X = np.zeros((N, M))
X[:, :2] = X2
Y = np.eye(CLASSES)[y]

W0 = 1.5 * rng.standard_normal((L, M, M)) / np.sqrt(M)
b0 = 0.5 * rng.standard_normal((L, M))
R0 = 0.5 * rng.standard_normal((CLASSES, M))  # linear read-out
h = 4.0 / L


def loss_and_grad_out(out, R):
    """Softmax cross-entropy of the read-out ``out @ R.T``; gradients w.r.t. ``out`` and ``R``."""
    logits = out @ R.T
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(p)), y] + 1e-300))
    dlogits = (p - Y) / len(p)
    return loss, dlogits @ R, dlogits.T @ out


# %%
# Sequential training: the loop and hand-written backprop
# -------------------------------------------------------
def sequential_step(W, b, R):
    xs = [X]
    x = X
    for k in range(L):
        x = x + h * np.tanh(x @ W[k].T + b[k])
        xs.append(x)
    loss, g, dR = loss_and_grad_out(x, R)
    dW, db = np.empty_like(W), np.empty_like(b)
    for k in range(L - 1, -1, -1):
        a = np.tanh(xs[k] @ W[k].T + b[k])
        delta = h * g * (1 - a * a)
        dW[k] = delta.T @ xs[k]
        db[k] = delta.sum(0)
        g = g + delta @ W[k]
    return loss, dW, db, dR


# %%
# pcrsolve training: Newton forward, adjoint backward
# ---------------------------------------------------
iterations = []


def pcrsolve_step(W, b, R):
    net = ResNet(W, b, activation="tanh", step_size=h)
    sol = net.forward(X)
    iterations.append(sol.iterations)
    loss, g, dR = loss_and_grad_out(sol.states[-1], R)
    grads = net.gradients(X, sol, g)
    return loss, grads["weights"], grads["biases"], dR


def train(step):
    params = [W0.copy(), b0.copy(), R0.copy()]
    velocity = [np.zeros_like(p) for p in params]
    losses = []
    t = time.perf_counter()
    for _ in range(EPOCHS):
        loss, *grads = step(*params)
        losses.append(loss)
        for p, v, g in zip(params, velocity, grads):
            v *= MOMENTUM
            v -= LR * g
            p += v
    return np.array(losses), params, time.perf_counter() - t


pcrsolve_step(W0, b0, R0)  # warm-up (JIT compilation is cached on disk)
iterations.clear()
loss_seq, params_seq, t_seq = train(sequential_step)
loss_pcr, params_pcr, t_pcr = train(pcrsolve_step)
diff = max(float(np.max(np.abs(a - c))) for a, c in zip(params_seq, params_pcr))
print(f"{L} blocks, width {M}, {N} points, {EPOCHS} full-batch SGD steps (momentum {MOMENTUM})")
W, b, R = params_pcr
accuracy = np.mean(np.argmax(ResNet(W, b, "tanh", step_size=h).forward(X).states[-1] @ R.T, 1) == y)
print(f"final loss: sequential {loss_seq[-1]:.6f}, pcrsolve {loss_pcr[-1]:.6f}; accuracy {accuracy:.1%}")
print(f"max |loss difference| {np.max(np.abs(loss_seq - loss_pcr)):.2e}, max |weight difference| {diff:.2e}")
print(
    f"training time: sequential {t_seq:.2f} s, pcrsolve {t_pcr:.2f} s "
    f"(Newton iterations per forward pass: median {np.median(iterations):.0f}, max {max(iterations)})"
)

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(loss_seq, lw=4, alpha=0.4, label="sequential loop + hand backprop")
axes[0].plot(loss_pcr, "k--", lw=1.2, label="pcrsolve (Newton forward, adjoint backward)")
axes[0].set_xlabel("SGD step")
axes[0].set_ylabel("cross-entropy")
axes[0].set_title(f"ResNet, {L} blocks: loss curves (max |weight diff| {diff:.1e})")
axes[0].legend()
axes[0].grid(True, alpha=0.3)

# decision regions of the pcrsolve-trained network
g1, g2 = np.meshgrid(np.linspace(-1.3, 1.3, 100), np.linspace(-1.3, 1.3, 100))
grid = np.zeros((g1.size, M))
grid[:, 0], grid[:, 1] = g1.ravel(), g2.ravel()
out = ResNet(W, b, "tanh", step_size=h).forward(grid).states[-1]
axes[1].contourf(
    g1, g2, np.argmax(out @ R.T, 1).reshape(g1.shape), alpha=0.25, levels=np.arange(-0.5, CLASSES)
)
axes[1].scatter(X2[:, 0], X2[:, 1], c=y, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
axes[1].set_title(f"decision regions after training (pcrsolve), accuracy {accuracy:.0%}")
axes[1].set_aspect("equal")
fig.tight_layout()
# sphinx-gallery runs examples without __file__; scripts save next to themselves.
fig.savefig(Path(globals().get("__file__", "plot_resnet_training.py")).with_suffix(".png"), dpi=100)
