"""Benchmark of autoregressive sampling in sweeps, and of chains of order r (skip connections).

    python benchmarks/bench_autoregressive.py [--quick] [--rounds 3]

Cases (``run(quick)`` returns one dict per row; the script prints them):

- ``made_random``: a MADE (D = 784, hidden 2 x 512, ReLU, Gaussian output) with random weights,
  batch 16: :func:`pcrsolve.solve_autoregressive` (Jacobi; default ``tol`` and ``tol=0``, the
  bitwise answer) against pixel-by-pixel sampling, one model call per pixel (target >= 30x).
  Song et al. (ICML 2021) report 31 sweeps and 27.2x for a MADE trained on MNIST, on a GPU.
- ``made_trained``: the same MADE trained briefly (Adam, Gaussian likelihood, a few hundred
  steps) on a toy data set of 28 x 28 images of blurred strokes, which gives it the local
  dependencies of images: sweeps and speed-up.
- ``causal_conv``: a PixelCNN stand-in, a one-layer causal convolution over the 784 pixels in
  raster order (32 channels, receptive field 28: the previous row), batch 16: Jacobi, Jacobi-GS
  (``block_size=28``, one row per block), GS-Jacobi (``window=112``) and banded Newton
  (``bandwidth=28``, 28 ``jvp`` tangents per sweep) against pixel-by-pixel sampling; reported
  are the model calls, sweeps and speed-ups.
- ``order_r``: a DenseNet-like chain ``x_k = tanh(sum_j W_kj x_{k-1-j} + b_k)`` of order
  r in {1, 2, 4, 8} (n = 256 steps, m = 16): Newton (the companion recurrence), band-1
  quasi-Newton and Jacobi against the user's loop over a history of states: iterations, sweeps,
  time.

Everything is warmed up first; baseline and candidates are timed in alternation over several
rounds; reported are the medians and the median per-round ratio ``baseline / candidate``
(> 1: pcrsolve is faster). Results are checked against the baseline before timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

if __name__ == "__main__":  # run as a script: use this checkout's pcrsolve, whatever is installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script, or by run.py

from _timing import interleaved, median_ms, median_ratio

import pcrsolve as pcr
from pcrsolve._demo._made import MADE, pixel_by_pixel

SUITE = "autoregressive"

# ----------------------------------------------------------------------------- timing


def _timed(times: dict[str, np.ndarray], name: str) -> dict[str, float]:
    """``baseline_ms``, ``pcrsolve_ms`` and ``ratio`` of candidate ``name`` from interleaved times."""
    return {
        "baseline_ms": median_ms(times, "baseline"),
        "pcrsolve_ms": median_ms(times, name),
        "ratio": median_ratio(times, name),
    }


@contextlib.contextmanager
def _sweeps_only():
    """Switch the cost rules off: how many sweeps a method needs by itself (not timed)."""
    from pcrsolve.chain import _policy

    saved = _policy.should_stop
    _policy.should_stop = lambda *a, **k: None
    try:
        yield
    finally:
        _policy.should_stop = saved


def _sampled(sol, alone, ref) -> dict[str, Any]:
    """What a ``solve_autoregressive`` run did (and, with ``alone``, what it did without the cost rules)."""
    out = {
        "sweeps": len(sol.residuals),
        "iterations": sol.iterations,
        "status": sol.status,
        "model_calls": sol.n_evals,
        "max_abs_err": float(np.max(np.abs(sol.x - ref))),
        "baseline": "pixel-by-pixel sampling (one model call per pixel)",
    }
    if alone is not None:
        out.update(sweeps_alone=len(alone.residuals), calls_alone=alone.n_evals)
    return out


# ----------------------------------------------------------------------------- MADE


def toy_images(rng, count: int, side: int = 28) -> np.ndarray:
    """``count`` images ``side x side`` of one to three blurred strokes, flattened: (count, side**2)."""
    yy, xx = np.mgrid[0:side, 0:side].astype(float)
    imgs = np.zeros((count, side, side))
    for _ in range(3):
        a, b = rng.uniform(3, side - 3, (2, count, 2))
        d = b - a
        t = (xx[None] - a[:, 0, None, None]) * d[:, 0, None, None] + (yy[None] - a[:, 1, None, None]) * d[
            :, 1, None, None
        ]
        t = np.clip(t / np.maximum((d**2).sum(-1), 1e-9)[:, None, None], 0, 1)
        dist2 = (xx[None] - a[:, 0, None, None] - t * d[:, 0, None, None]) ** 2 + (
            yy[None] - a[:, 1, None, None] - t * d[:, 1, None, None]
        ) ** 2
        keep = rng.random(count) < 0.7
        imgs = np.maximum(imgs, keep[:, None, None] * np.exp(-dist2 / (2 * (side / 20) ** 2)))
    return imgs.reshape(count, side * side)


def train_made(
    model: MADE, data: np.ndarray, steps: int, rng, batch: int = 64, lr: float = 2e-3
) -> list[float]:
    """A few Adam steps on the Gaussian negative log-likelihood (hand-written backprop)."""
    params = [*model.weights, *model.biases]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    nw, D, losses = len(model.weights), model.dim, []
    for it in range(1, steps + 1):
        x = data[rng.integers(0, len(data), batch)] + 0.02 * rng.standard_normal((batch, D))
        hs = [x]
        for W, b in zip(model.weights[:-1], model.biases[:-1]):
            hs.append(np.maximum(hs[-1] @ W.T + b, 0.0))
        o = hs[-1] @ model.weights[-1].T + model.biases[-1]
        mu, ls = o[:, :D], np.clip(o[:, D:], -7.0, 3.0)
        z = (x - mu) * np.exp(-ls)
        losses.append(float(np.mean(np.sum(0.5 * z * z + ls, axis=1))))
        inside = (o[:, D:] > -7.0) & (o[:, D:] < 3.0)
        g = np.concatenate([-z * np.exp(-ls), (1 - z * z) * inside], axis=1) / batch
        grads_w, grads_b = [], []
        for layer in range(nw - 1, -1, -1):
            grads_w.append((g.T @ hs[layer]) * model.masks[layer])
            grads_b.append(g.sum(0))
            if layer:
                g = (g @ model.weights[layer]) * (hs[layer] > 0)
        grads = [*reversed(grads_w), *reversed(grads_b)]
        for p, gr, a, v in zip(params, grads, m1, m2):
            a *= 0.9
            a += 0.1 * gr
            v *= 0.999
            v += 0.001 * gr * gr
            p -= lr * (a / (1 - 0.9**it)) / (np.sqrt(v / (1 - 0.999**it)) + 1e-8)
    return losses


def _made_rows(
    name: str, model: MADE, batch: int, rounds: int, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    D = model.dim
    func = model.sampler(np.random.default_rng(1).standard_normal((batch, D)))
    x0 = np.zeros((batch, D))
    ref = pixel_by_pixel(func, x0)
    sols = {tol: pcr.solve_autoregressive(func, x0, tol=tol) for tol in (None, 0.0)}
    times = interleaved(
        {
            "baseline": lambda: pixel_by_pixel(func, x0),
            "default": lambda: pcr.solve_autoregressive(func, x0),
            "exact": lambda: pcr.solve_autoregressive(func, x0, tol=0),
        },
        rounds,
    )
    rows = []
    for tol, key in ((None, "default"), (0.0, "exact")):
        sol = sols[tol]
        rows.append(
            {
                "benchmark": name,
                "n": D,
                "batch": batch,
                "method": "jacobi" + (" tol=0" if tol == 0 else ""),
                **_sampled(sol, None, ref),
                **_timed(times, key),
                "ideal_ratio": D / len(sol.residuals),
                "target": 30.0 if name == "made_random" else None,
                **extra,
            }
        )
    return rows


def bench_made(quick: bool, rounds: int) -> list[dict[str, Any]]:
    side, hidden, batch = (14, 128, 4) if quick else (28, 512, 16)
    rows = _made_rows("made_random", MADE(side * side, (hidden, hidden), seed=0), batch, rounds, {})
    rng = np.random.default_rng(2)
    model = MADE(side * side, (hidden, hidden), seed=3)
    steps = 30 if quick else 400
    t = time.perf_counter()
    losses = train_made(model, toy_images(rng, 2000, side), steps, rng)
    info = {
        "train_steps": steps,
        "train_seconds": time.perf_counter() - t,
        "nll_first": losses[0],
        "nll_last": float(np.mean(losses[-10:])),
    }
    return rows + _made_rows("made_trained", model, batch, rounds, info)


# ----------------------------------------------------------------------------- causal convolution


class CausalConv:
    """``x_i = u_i + a v . tanh(W [x_{i-r}, ..., x_{i-1}] + c)``: a causal convolution, then a readout."""

    def __init__(self, rng, n: int, batch: int, r: int = 28, channels: int = 32, a: float = 0.8):
        self.n, self.r, self.a = n, r, a
        self.W = rng.standard_normal((channels, r)) / np.sqrt(r)
        self.c = 0.1 * rng.standard_normal(channels)
        self.v = rng.standard_normal(channels) / np.sqrt(channels)
        self.u = rng.standard_normal((batch, n))

    def _windows(self, x):  # (..., n) -> (..., n, r): window i holds x_{i-r} .. x_{i-1}
        pad = np.concatenate([np.zeros((*x.shape[:-1], self.r)), x[..., :-1]], axis=-1)
        return np.lib.stride_tricks.sliding_window_view(pad, self.r, axis=-1)

    def __call__(self, x):
        h = np.tanh(self._windows(x) @ self.W.T + self.c)
        return self.u + self.a * (h @ self.v)

    def jvp(self, x, v):  # v: (q, batch, n)
        h = np.tanh(self._windows(x) @ self.W.T + self.c)
        return self.a * (((1 - h * h) * (self._windows(v) @ self.W.T)) @ self.v)


def bench_causal_conv(quick: bool, rounds: int) -> list[dict[str, Any]]:
    side, batch = (14, 4) if quick else (28, 16)
    n = side * side
    model = CausalConv(np.random.default_rng(5), n, batch, r=side)
    x0 = np.zeros((batch, n))
    ref = pixel_by_pixel(model, x0)
    cases = {
        "jacobi": {},
        f"jacobi_gs b={side}": {"method": "jacobi_gs", "block_size": side},
        f"gs_jacobi w={4 * side}": {"method": "gs_jacobi", "window": 4 * side},
        f"newton bandwidth={side}": {"method": "newton", "jvp": model.jvp, "bandwidth": side},
    }
    fns: dict[str, Callable[[], Any]] = {"baseline": lambda: pixel_by_pixel(model, x0)}
    for name, kw in cases.items():
        fns[name] = lambda kw=kw: pcr.solve_autoregressive(model, x0, **kw)
    times = interleaved(fns, rounds)
    rows = []
    for name, kw in cases.items():
        sol = pcr.solve_autoregressive(model, x0, **kw)
        with _sweeps_only():
            alone = pcr.solve_autoregressive(model, x0, **kw)
        rows.append(
            {
                "benchmark": "causal_conv",
                "n": n,
                "batch": batch,
                "method": name,
                **_sampled(sol, alone, ref),
                "jvp_tangents": sol.n_jac_evals,
                **_timed(times, name),
            }
        )
    return rows


# ----------------------------------------------------------------------------- chains of order r


def _skip_chain(rng, n: int, r: int, m: int, gain: float = 0.8):
    W = gain * rng.standard_normal((n, r, m, m)) / np.sqrt(r * m)
    b = 0.5 * rng.standard_normal((n, m))

    def pre(x, k):  # x: (s, r, m)
        return np.einsum("krij,krj->ki", W[k], x) + b[k]

    def step(x, k):
        return np.tanh(pre(x, k))

    def jac(x, k):  # (s, r, m, m)
        return (1 - np.tanh(pre(x, k)) ** 2)[:, None, :, None] * W[k]

    def loop(x0):
        hist = list(x0)  # x_{-r} .. x_{-1}
        for k in range(n):
            acc = b[k].copy()
            for j in range(r):
                acc += W[k, j] @ hist[-1 - j]
            hist.append(np.tanh(acc))
        return np.array(hist[r:])

    if r == 1:  # a first-order chain: x_prev (s, m) without a lag axis, x0 (m,)
        chain = pcr.FunctionChain(lambda x, k: step(x[:, None], k), jac=lambda x, k: jac(x[:, None], k)[:, 0])
        return chain, loop
    return pcr.FunctionChain(step, jac=jac, order=r), loop


def bench_order(quick: bool, rounds: int) -> list[dict[str, Any]]:
    n, m = (64, 8) if quick else (256, 16)
    rows = []
    for r in (1, 2, 4, 8):
        rng = np.random.default_rng(10 + r)
        chain, loop = _skip_chain(rng, n, r, m)
        x0 = rng.standard_normal((r, m))
        ref = loop(x0)
        methods = ("newton", "band1", "jacobi")
        start = x0 if r > 1 else x0[0]
        fns: dict[str, Callable[[], Any]] = {"baseline": lambda loop=loop, x0=x0: loop(x0)}
        for meth in methods:
            fns[meth] = lambda meth=meth, chain=chain, x=start: pcr.solve_chain(chain, x, n, method=meth)
        times = interleaved(fns, rounds)
        for meth in methods:
            sol = pcr.solve_chain(chain, start, n, method=meth)
            with _sweeps_only():
                alone = pcr.solve_chain(chain, start, n, method=meth)
            rows.append(
                {
                    "benchmark": "order_r",
                    "params": {"n_steps": n, "m": m, "order": r, "method": meth},
                    "n_steps": n,
                    "m": m,
                    "order": r,
                    "method": meth,
                    "iterations": sol.iterations,
                    "sweeps": len(sol.residuals),
                    "status": sol.status,
                    "sweeps_alone": len(alone.residuals),
                    "iterations_alone": alone.iterations,
                    "max_abs_err": float(np.max(np.abs(sol.states - ref))),
                    "baseline": "loop over a history of r states",
                    **_timed(times, meth),
                }
            )
    return rows


# ----------------------------------------------------------------------------- driver


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    rounds = rounds or (1 if quick else 3)
    return [
        *bench_made(quick, rounds),
        *bench_causal_conv(quick, rounds),
        *bench_order(quick, max(rounds, 5)),
    ]


def _fmt(r: dict[str, Any]) -> str:
    size = f"n={r.get('n', r.get('n_steps'))}" + (f" r={r['order']}" if "order" in r else "")
    alone = f"({r['sweeps_alone']} alone)" if "sweeps_alone" in r else ""
    return (
        f"{r['benchmark']:<13} {size:<12} {r['method']:<22} sweeps {r.get('sweeps', '-'):>4} {alone:<11} "
        f"{r['status']:<10} loop {r['baseline_ms']:9.1f} ms  ours {r['pcrsolve_ms']:8.1f} ms  "
        f"{r['ratio']:6.1f}x  err {r['max_abs_err']:.1e}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print the records as JSON")
    args = ap.parse_args(argv)
    rows = run(args.quick, args.rounds)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(_fmt(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
