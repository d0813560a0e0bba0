"""
Diffusion sampling in parallel: DDIM as a chain
===============================================

A diffusion model samples by running its denoiser ``T`` times in sequence. DDIM sampling is a
deterministic chain ``x_{k+1} = c_x[k] x_k + c_eps[k] eps(x_k, t_k)``, so pcrsolve can solve
for all ``T`` states at once (:class:`pcrsolve.adapters.DDIM`): Newton's method with the
denoiser's Jacobian-vector products, or the Jacobian-free Picard iteration (as ParaDiGMS).

Here a small MLP denoiser (two hidden layers of 64, Fourier features of the input and of the
time) is trained in plain NumPy (hand-written backpropagation, Adam) on a 2-D toy distribution
(two moons), then sampled with DDIM both by the sequential loop and by
pcrsolve from the same starting noise. We compare the two sample sets side by side (scatter
plots), their largest difference, a distribution distance (sliced Wasserstein) to held-out
data, and the speed-up. The speed-up is measured on one sample at a time: on a CPU the
sequential loop over a single sample is dominated by per-call overhead, which is what a
whole-chain solve removes. For a large batch the sequential loop is already vectorized and
the Newton solve, which evaluates the denoiser several times per step, does not pay on two
CPU cores (the printout shows that too); DeepPCR and ParaDiGMS report their gains on GPUs.
Set ``PCRSOLVE_EXAMPLE_QUICK=1`` for a tiny smoke run.
"""

# %%
# Data and denoiser
# -----------------
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pcrsolve.adapters import DDIM

QUICK = os.environ.get("PCRSOLVE_EXAMPLE_QUICK") == "1"
T = 1000 if not QUICK else 50  # diffusion steps (training schedule; single-sample sampling)
TRAIN_STEPS = 3000 if not QUICK else 20
N_SAMPLES = 400 if not QUICK else 32
SCATTER_STEPS = 100 if not QUICK else 10  # DDIM steps for the batch of samples in the plot
HIDDEN, FREQS = 64, 8
rng = np.random.default_rng(0)
try:  # one BLAS thread: the matrices here are small, and BLAS threads only add overhead to them
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:
    pass


def two_moons(n):
    """The two-moons toy distribution, standardized."""
    a = np.pi * rng.random(n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(a), 1.0 - np.cos(a))
    y = np.where(upper, np.sin(a), 0.5 - np.sin(a))
    pts = np.stack([x, y], 1) + 0.06 * rng.standard_normal((n, 2))
    return (pts - [0.5, 0.25]) / [0.85, 0.5]


betas = np.linspace(1e-4, 0.02, T) * (1000 / T)
abar = np.cumprod(1.0 - betas)  # abar[t], t = 0 .. T-1


def silu(z):
    s = 1.0 / (1.0 + np.exp(-z))
    return z * s, s + z * s * (1.0 - s)  # value and derivative


def time_features(t, shape):
    """Sinusoidal features of t / T, broadcast to ``shape`` (*lead) -> (*lead, 2 FREQS)."""
    f = np.asarray(t, dtype=float)[..., None] / T * (2.0 ** np.arange(FREQS)) * np.pi
    feats = np.concatenate([np.sin(f), np.cos(f)], -1)
    lead = feats.shape[:1] + (1,) * (len(shape) - 1)
    return np.broadcast_to(feats.reshape(lead + feats.shape[1:]), (*shape, 2 * FREQS))


X_FREQS = 2.0 ** np.arange(4)  # Fourier features of x help a small MLP resolve thin structures


def inputs(x, t):
    """Network input: [x, sin(x f), cos(x f), time features], shape (*lead, 2 + 16 + 2 FREQS)."""
    xf = (x[..., None] * X_FREQS).reshape(*x.shape[:-1], -1)
    return np.concatenate([x, np.sin(xf), np.cos(xf), time_features(t, x.shape[:-1])], -1)


def input_tangent(x, v):
    """d inputs / dx applied to v (the time features do not depend on x)."""
    xf = (x[..., None] * X_FREQS).reshape(*x.shape[:-1], -1)
    vf = (v[..., None] * X_FREQS).reshape(*v.shape[:-1], -1)
    return np.concatenate([v, np.cos(xf) * vf, -np.sin(xf) * vf], -1)


def init_params():
    d_in = 2 + 4 * len(X_FREQS) + 2 * FREQS
    return {
        "W1": rng.standard_normal((d_in, HIDDEN)) / np.sqrt(d_in),
        "b1": np.zeros(HIDDEN),
        "W2": rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN),
        "b2": np.zeros(HIDDEN),
        "W3": rng.standard_normal((HIDDEN, 2)) / np.sqrt(HIDDEN) * 0.1,
        "b3": np.zeros(2),
    }


def mlp(P, inp):
    """eps = W3 silu(W2 silu(W1 inp + b1) + b2) + b3 on row vectors; also the cache."""
    z1 = inp @ P["W1"] + P["b1"]
    h1, d1 = silu(z1)
    z2 = h1 @ P["W2"] + P["b2"]
    h2, d2 = silu(z2)
    return h2 @ P["W3"] + P["b3"], (inp, h1, d1, h2, d2)


def make_denoiser(P):
    """The trained model as DDIM wants it: ``eps(x, t)`` and ``jvp(x, t, v)``, x (s, *batch, 2)."""
    n_x = 2 + 4 * len(X_FREQS)

    def eps(x, t):
        return mlp(P, inputs(x, t))[0]

    def jvp(x, t, v):  # forward mode, tangent in x only
        _, (_, _, d1, _, d2) = mlp(P, inputs(x, t))
        dh1 = d1 * (input_tangent(x, v) @ P["W1"][:n_x])
        dh2 = d2 * (dh1 @ P["W2"])
        return dh2 @ P["W3"]

    return eps, jvp


# %%
# Training: DDPM noise-prediction loss, hand-written backprop, Adam
# -----------------------------------------------------------------
P = init_params()


def train(P):
    m_, v_ = {k: np.zeros_like(p) for k, p in P.items()}, {k: np.zeros_like(p) for k, p in P.items()}
    for it in range(1, TRAIN_STEPS + 1):
        x0 = two_moons(256)
        t = rng.integers(0, T, 256)
        noise = rng.standard_normal(x0.shape)
        a = abar[t][:, None]
        xt = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
        pred, (inp, h1, d1, h2, d2) = mlp(P, inputs(xt, t))
        g3 = 2.0 * (pred - noise) / pred.size
        g2 = (g3 @ P["W3"].T) * d2
        g1 = (g2 @ P["W2"].T) * d1
        grads = {
            "W3": h2.T @ g3,
            "b3": g3.sum(0),
            "W2": h1.T @ g2,
            "b2": g2.sum(0),
            "W1": inp.T @ g1,
            "b1": g1.sum(0),
        }
        lr = 3e-3 * min(1.0, 2.0 * (1 - it / TRAIN_STEPS) + 0.05)
        for k, g in grads.items():
            m_[k] = 0.9 * m_[k] + 0.1 * g
            v_[k] = 0.999 * v_[k] + 0.001 * g * g
            P[k] -= lr * (m_[k] / (1 - 0.9**it)) / (np.sqrt(v_[k] / (1 - 0.999**it)) + 1e-8)


t0 = time.perf_counter()
train(P)
print(f"trained the denoiser: {TRAIN_STEPS} Adam steps in {time.perf_counter() - t0:.1f} s")
eps, eps_jvp = make_denoiser(P)


# %%
# DDIM: sequential sampler and pcrsolve
# -------------------------------------
def ddim_schedule(n):
    """n DDIM steps over the T training steps: the times and alpha_bar (n + 1 entries, to 1.0)."""
    ts = np.linspace(T - 1, 0, n).round().astype(int)
    return ts, np.r_[abar[ts], 1.0]


def sequential_ddim(x, ts, alpha_bar):
    """The plain DDIM loop (eta = 0)."""
    for k in range(len(ts)):
        a, a1 = alpha_bar[k], alpha_bar[k + 1]
        e = eps(x[None], ts[k : k + 1])[0]
        x = np.sqrt(a1) * (x - np.sqrt(1 - a) * e) / np.sqrt(a) + np.sqrt(1 - a1) * e
    return x


def sliced_wasserstein(a, b, n_dir=256):
    """Sliced 1-Wasserstein distance between two equal-size 2-D point sets."""
    ang = np.linspace(0, np.pi, n_dir, endpoint=False)
    d = np.stack([np.cos(ang), np.sin(ang)])
    return float(np.mean(np.abs(np.sort(a @ d, 0) - np.sort(b @ d, 0))))


# A batch of samples for the scatter plots (SCATTER_STEPS DDIM steps).
ts_s, ab_s = ddim_schedule(SCATTER_STEPS)
ddim_s = DDIM(eps, ab_s, ts_s, denoiser_jvp=eps_jvp)
z = rng.standard_normal((N_SAMPLES, 2))
t = time.perf_counter()
seq_samples = sequential_ddim(z, ts_s, ab_s)
t_seq_batch = time.perf_counter() - t
t = time.perf_counter()
sol = ddim_s.forward(z)
t_pcr_batch = time.perf_counter() - t
pcr_samples = sol.states[-1]
data = two_moons(N_SAMPLES)
max_diff = float(np.max(np.abs(pcr_samples - seq_samples)))
sw_seq, sw_pcr = sliced_wasserstein(seq_samples, data), sliced_wasserstein(pcr_samples, data)
sw_floor = sliced_wasserstein(two_moons(N_SAMPLES), data)  # sampling noise: data vs more data
print(
    f"{N_SAMPLES} samples, {SCATTER_STEPS} DDIM steps: max |pcrsolve - sequential| = {max_diff:.1e}; "
    f"sliced Wasserstein to data: sequential {sw_seq:.4f}, pcrsolve {sw_pcr:.4f} "
    f"(fresh data {sw_floor:.4f}); "
    f"batch times: sequential {t_seq_batch * 1e3:.0f} ms, pcrsolve {t_pcr_batch * 1e3:.0f} ms "
    f"({sol.iterations} Newton it., {sol.status})"
)

# %%
# Speed-up on single-sample chains of T steps
# -------------------------------------------
ts_1, ab_1 = ddim_schedule(T)
ddim_1 = DDIM(eps, ab_1, ts_1, denoiser_jvp=eps_jvp)
starts = rng.standard_normal((3 if not QUICK else 1, 2))
speed = {}
for method in ("newton", "picard"):
    ddim_1.forward(starts[0], method=method)  # warm-up
    ratios, its, diffs = [], [], []
    for x in starts:
        t = time.perf_counter()
        ref = sequential_ddim(x, ts_1, ab_1)
        t_seq = time.perf_counter() - t
        t = time.perf_counter()
        s1 = ddim_1.forward(x, method=method)
        t_pcr = time.perf_counter() - t
        ratios.append(t_seq / t_pcr)
        its.append(s1.iterations)
        diffs.append(float(np.max(np.abs(s1.states[-1] - ref))))
    speed[method] = float(np.median(ratios))
    print(
        f"one sample, {T} DDIM steps, method={method}: speed-up {speed[method]:.2f}x "
        f"(sequential {t_seq * 1e3:.1f} ms, pcrsolve {t_pcr * 1e3:.1f} ms, iterations {its}, "
        f"max |diff| {max(diffs):.1e})"
    )

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), sharex=True, sharey=True)
axes[0].scatter(data[:, 0], data[:, 1], s=4, c="gray")
axes[0].set_title(f"training distribution (two moons)\nfresh data: sliced W1 {sw_floor:.3f}")
axes[1].scatter(seq_samples[:, 0], seq_samples[:, 1], s=4, c="C0")
axes[1].set_title(f"sequential DDIM ({SCATTER_STEPS} steps)\nsliced W1 to data {sw_seq:.3f}")
axes[2].scatter(pcr_samples[:, 0], pcr_samples[:, 1], s=4, c="C3")
axes[2].set_title(
    f"pcrsolve DDIM ({sol.status} after {sol.iterations} Newton it.)\n"
    f"sliced W1 {sw_pcr:.3f}, max |diff| {max_diff:.1e}"
)
for ax in axes:
    ax.set_aspect("equal")
    ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-2.2, 2.2)
fig.suptitle(
    f"single-sample speed-up over the sequential loop, {T} steps: "
    f"Newton {speed['newton']:.2f}x, Picard {speed['picard']:.2f}x",
    y=0.99,
)
fig.tight_layout()
# sphinx-gallery runs examples without __file__; scripts save next to themselves.
fig.savefig(Path(globals().get("__file__", "plot_diffusion_sampling.py")).with_suffix(".png"), dpi=100)
