"""Benchmark of the adapters (MLP, ResNet, DDIM) against the loops users write.

    python benchmarks/bench_adapters.py [--quick] [--rounds 7]

Cases (``run(quick)`` returns one dict per row; the script prints them):

- ``mlp_forward``: ``MLP.forward``, L = 4096, m = 8, one input, against the user's loop
  ``x = np.tanh(W[k] @ x + b[k])``. Weights ``gain * N(0, 1/m)``, biases ``N(0, 0.5^2)``;
  gain 0.9 (the target row) and 0.25 (strongly contracting). Three ways per gain:
  ``forward()`` (``method="auto"``: the cost model picks the compiled loop or Newton sweeps;
  target >= 4x), ``forward(method="newton")`` (target >= 2x; the cost rules may still finish
  with the loop, the row says so), and ``newton sweeps only``: the fixed-iteration mode
  (``tol=0, max_iter=K`` with the fewest ``K`` sweeps that converge), the parallel sweeps
  alone, no fallback possible.
- ``ddim_forward``: ``DDIM.forward``, T = 1000 steps, one 2-D sample, against the sequential
  sampler loop (target >= 3x for the default, ``"auto"``; Newton and Picard shown too). The
  denoiser is the exact (Bayes-optimal) noise predictor of a ring of 8 Gaussians, in closed
  form with its JVP: a perfectly trained 2-D toy model.
- ``mlp_forward_backward``: forward + all parameter gradients over L and m (one input),
  against a NumPy loop and hand-written backprop.
- ``resnet_training_step``: one SGD step of a tanh ResNet (batch 32, h = 1/L) over L and m:
  forward, loss gradient, ``ResNet.gradients``, update; against the loop + hand backprop
  (target >= 1.5x at L = 1024, m = 16).

Everything is warmed up first (compilation and caches are not timed); baseline and candidate
are timed in alternation over several rounds; reported are both medians and the median of the
per-round ratios ``baseline / candidate`` (> 1: pcrsolve is faster). Results are checked
against the baseline before timing.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
from _timing import interleaved

from pcrsolve._demo._chains import ddim_loop, ddim_problem
from pcrsolve.adapters import DDIM, MLP, ResNet

# ----------------------------------------------------------------------------- timing


def _row(bench: str, times: dict[str, np.ndarray], **extra: Any) -> dict[str, Any]:
    base, cand = times["baseline"], times["pcrsolve"]
    return {
        "benchmark": bench,
        **extra,
        "baseline_ms": float(np.median(base) * 1e3),
        "pcrsolve_ms": float(np.median(cand) * 1e3),
        "ratio": float(np.median(base / cand)),
    }


def _route(sol) -> dict[str, Any]:
    """How a solve went: the route, iterations and sweeps, its status and why."""
    return {
        "iterations": sol.iterations,
        "sweeps": len(sol.residuals),
        "route": sol.route,
        "status": sol.status,
        "message": sol.message,
        "route_reason": sol.route_reason,
    }


# ----------------------------------------------------------------------------- MLP / ResNet


def _mlp_params(rng, L, m, gain):
    W = gain * rng.standard_normal((L, m, m)) / np.sqrt(m)
    b = 0.5 * rng.standard_normal((L, m))
    return W, b


def _mlp_loop(W, b, x):
    for k in range(W.shape[0]):
        x = np.tanh(W[k] @ x + b[k])
    return x


def _fewest_sweeps(net, x, ref) -> int:
    """The fewest sweeps after which the fixed-iteration mode has converged (answer = ref)."""
    for K in range(1, 64):
        sol = net.forward(x, method="newton", tol=0, max_iter=K)
        if sol.converged and np.max(np.abs(sol.states[-1] - ref)) < 1e-8:
            return K
    raise AssertionError("Newton did not converge in 63 sweeps")


def bench_mlp_forward(quick: bool, rounds: int) -> list[dict[str, Any]]:
    L, m = (512 if quick else 4096), 8
    rows = []
    for gain in (0.9, 0.25):
        rng = np.random.default_rng(0)
        W, b = _mlp_params(rng, L, m, gain)
        x = rng.standard_normal(m)
        net = MLP(W, b, "tanh")
        ref = _mlp_loop(W, b, x)
        K = _fewest_sweeps(net, x, ref)
        ways = {
            "auto": (lambda net=net, x=x: net.forward(x), 4.0),
            "newton": (lambda net=net, x=x: net.forward(x, method="newton"), 2.0),
            "newton sweeps only": (
                lambda net=net, x=x, K=K: net.forward(x, method="newton", tol=0, max_iter=K),
                2.0,
            ),
        }
        fns = {"baseline": lambda W=W, b=b, x=x: _mlp_loop(W, b, x)}
        fns.update({name: f for name, (f, _) in ways.items()})
        times = interleaved(fns, rounds)
        for name, (f, target) in ways.items():
            sol = f()
            err = float(np.max(np.abs(sol.states[-1] - ref)))
            assert err < 1e-8, (name, err)
            rows.append(
                _row(
                    "mlp_forward",
                    {"baseline": times["baseline"], "pcrsolve": times[name]},
                    L=L,
                    m=m,
                    batch=1,
                    gain=gain,
                    method=name,
                    **_route(sol),
                    max_abs_err=err,
                    baseline="loop x = tanh(W[k] @ x + b[k])",
                    target=target if gain == 0.9 else None,
                )
            )
    return rows


def _hand_forward_backward(W, b, x, grad_out):
    """NumPy loop forward (storing activations) and hand-written backprop, tanh MLP."""
    outs = [x]
    for k in range(W.shape[0]):
        x = np.tanh(W[k] @ x + b[k])
        outs.append(x)
    g = grad_out
    dW = np.empty_like(W)
    db = np.empty_like(b)
    for k in range(W.shape[0] - 1, -1, -1):
        delta = g * (1.0 - outs[k + 1] ** 2)
        dW[k] = np.outer(delta, outs[k])
        db[k] = delta
        g = W[k].T @ delta
    return dW, db, g


def bench_mlp_forward_backward(quick: bool, rounds: int) -> list[dict[str, Any]]:
    Ls = (256, 1024) if quick else (256, 1024, 4096)
    ms = (4, 16) if quick else (4, 16, 32)
    rows = []
    for L in Ls:
        for m in ms:
            rng = np.random.default_rng(1)
            W, b = _mlp_params(rng, L, m, 0.5)
            x, g_out = rng.standard_normal(m), rng.standard_normal(m)
            net = MLP(W, b, "tanh")

            def pcr_fb(net=net, x=x, g_out=g_out):
                sol = net.forward(x)
                return sol, net.gradients(x, sol, g_out)

            sol, grads = pcr_fb()
            dW, _, _ = _hand_forward_backward(W, b, x, g_out)
            err = float(np.max(np.abs(grads["weights"] - dW)) / max(np.max(np.abs(dW)), 1e-300))
            assert err < 1e-6, err
            times = interleaved(
                {
                    "baseline": lambda W=W, b=b, x=x, g=g_out: _hand_forward_backward(W, b, x, g),
                    "pcrsolve": pcr_fb,
                },
                max(3, rounds // 2),
            )
            rows.append(
                _row(
                    "mlp_forward_backward",
                    times,
                    L=L,
                    m=m,
                    batch=1,
                    gain=0.5,
                    iterations=sol.iterations,
                    route=sol.route,
                    status=sol.status,
                    max_rel_error=err,
                    baseline="loop + hand backprop",
                )
            )
    return rows


def _resnet_hand_step(W, b, X, Y, h, lr):
    """One SGD step (MSE loss on the final state), loop forward + hand backprop; batch rows."""
    outs = [X]
    x = X
    for k in range(W.shape[0]):
        x = x + h * np.tanh(x @ W[k].T + b[k])
        outs.append(x)
    g = 2.0 * (x - Y) / X.shape[0]
    dW = np.empty_like(W)
    db = np.empty_like(b)
    for k in range(W.shape[0] - 1, -1, -1):
        a = (outs[k + 1] - outs[k]) / h  # tanh(z_k), recovered
        delta = h * g * (1.0 - a * a)
        dW[k] = delta.T @ outs[k]
        db[k] = delta.sum(0)
        g = g + delta @ W[k]
    return W - lr * dW, b - lr * db


def _resnet_pcr_step(W, b, X, Y, h, lr):
    net = ResNet(W, b, "tanh", step_size=h)
    sol = net.forward(X)
    grads = net.gradients(X, sol, 2.0 * (sol.states[-1] - Y) / X.shape[0])
    return W - lr * grads["weights"], b - lr * grads["biases"]


def bench_resnet_training(quick: bool, rounds: int) -> list[dict[str, Any]]:
    Ls = (256, 1024) if quick else (256, 1024, 4096)
    ms = (4, 16) if quick else (4, 16, 32)
    rows = []
    for L in Ls:
        for m in ms:
            rng = np.random.default_rng(2)
            W = rng.standard_normal((L, m, m)) / np.sqrt(m)
            b = 0.1 * rng.standard_normal((L, m))
            X = rng.standard_normal((32, m))
            Y = np.tanh(X[:, ::-1])
            h = 1.0 / L
            Wr, _ = _resnet_hand_step(W, b, X, Y, h, 0.1)
            Wp, _ = _resnet_pcr_step(W, b, X, Y, h, 0.1)
            err = float(np.max(np.abs(Wp - Wr)))
            assert err < 1e-8, err
            sol = ResNet(W, b, "tanh", step_size=h).forward(X)
            times = interleaved(
                {
                    "baseline": lambda W=W, b=b, X=X, Y=Y, h=h: _resnet_hand_step(W, b, X, Y, h, 0.1),
                    "pcrsolve": lambda W=W, b=b, X=X, Y=Y, h=h: _resnet_pcr_step(W, b, X, Y, h, 0.1),
                },
                max(3, rounds // 2),
            )
            rows.append(
                _row(
                    "resnet_training_step",
                    times,
                    L=L,
                    m=m,
                    batch=32,
                    iterations=sol.iterations,
                    route=sol.route,
                    status=sol.status,
                    max_abs_err=err,
                    baseline="loop + hand backprop",
                    target=1.5 if (L, m) == (1024, 16) else None,
                )
            )
    return rows


# ----------------------------------------------------------------------------- DDIM
# The problem and the user's sampler loop are the demo's (pcrsolve._demo._chains).


def bench_ddim(quick: bool, rounds: int) -> list[dict[str, Any]]:
    T = 200 if quick else 1000
    eps, jvp, alpha_bar, ts = ddim_problem(T)
    ddim = DDIM(eps, alpha_bar, ts, denoiser_jvp=jvp)
    x = np.random.default_rng(3).standard_normal(2)
    ref = ddim_loop(eps, alpha_bar, ts, x)
    ways = {
        "auto": lambda: ddim.forward(x),
        "newton": lambda: ddim.forward(x, method="newton"),
        "picard": lambda: ddim.forward(x, method="picard"),
    }
    times = interleaved({"baseline": lambda: ddim_loop(eps, alpha_bar, ts, x), **ways}, rounds)
    rows = []
    for method, f in ways.items():
        sol = f()
        err = float(np.max(np.abs(sol.states[-1] - ref)))
        assert err < 1e-6, (method, err)
        rows.append(
            _row(
                "ddim_forward",
                {"baseline": times["baseline"], "pcrsolve": times[method]},
                T=T,
                m=2,
                batch=1,
                method=method,
                **_route(sol),
                max_abs_err=err,
                baseline="sequential sampler loop",
                target=3.0 if method == "auto" else None,
            )
        )
    return rows


# ----------------------------------------------------------------------------- entry points


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Run every case; return one dict per table row (times in ms, ``ratio`` > 1: faster)."""
    rounds = rounds or (3 if quick else 7)
    return [
        *bench_mlp_forward(quick, rounds),
        *bench_ddim(quick, rounds),
        *bench_mlp_forward_backward(quick, rounds),
        *bench_resnet_training(quick, rounds),
    ]


def _print(rows: list[dict[str, Any]]) -> None:
    current = None
    for r in rows:
        if r["benchmark"] != current:
            current = r["benchmark"]
            print(f"\n{current}  (baseline: {r['baseline']})")
        keys = [k for k in ("L", "T", "m", "batch", "gain", "method") if k in r]
        label = " ".join(f"{k}={r[k]}" for k in keys)
        target = f"  target >= {r['target']}x" if r.get("target") else ""
        print(
            f"  {label:<48s} baseline {r['baseline_ms']:9.2f} ms  pcrsolve {r['pcrsolve_ms']:9.2f} ms  "
            f"ratio {r['ratio']:6.2f}x  (route {r.get('route')}, {r['status']}, {r['iterations']} it){target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    import numba

    print(
        f"cores {os.cpu_count()}, numba threads {numba.get_num_threads()}, numpy {np.__version__}, "
        f"numba {numba.__version__}"
    )
    _print(run(args.quick, args.rounds))


if __name__ == "__main__":
    main()
