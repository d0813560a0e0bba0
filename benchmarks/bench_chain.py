"""Benchmark of the chain solver against the loops users write.

    python benchmarks/bench_chain.py [--quick] [--rounds 7]

Cases (``run(quick)`` returns one dict per row; the script prints them):

- ``mlp_functionchain``: a tanh MLP chain, L = 4096, m = 8, one input, given to
  ``solve_chain`` as a :class:`~pcrsolve.FunctionChain` whose ``step`` and ``jac`` are
  written as a user would in NumPy (vectorized over ``k``), against the user's own loop
  ``x = np.tanh(W[k] @ x + b[k])`` (target >= 1.2x with <= 10 Newton iterations). Weights
  ``gain * N(0, 1/m)``, biases ``N(0, 0.5^2)``; one row per gain: 0.5 (contracting) and 1.0
  (Glorot scale, the edge of chaos for tanh).
- ``chaotic_logistic``: the logistic map ``x <- 3.9 x (1 - x)``, n = 2000, three starting
  points, by ``solve_chain`` (Newton), against the plain loop and against
  ``sequential_chain`` (target: no worse than 3x the loop, i.e. ratio >= 1/3). The answer
  must equal the loop's bit for bit: any error would grow to O(1) along a chaotic chain.
- ``mlp_functionchain_tuned_malloc``: the same, in a child process whose glibc malloc keeps
  freed memory (``MALLOC_MMAP_THRESHOLD_=64 MiB``, ``MALLOC_TRIM_THRESHOLD_=256 MiB``).
  By default every large NumPy temporary (the user's ``W[k]`` gathers and Jacobians, 2 MiB
  each here) is a fresh ``mmap`` whose pages fault in on first touch; on this class of
  virtual machine that costs several times the arithmetic (``d[:, :, None] * W[k]``: 3 ms
  against 0.35 ms). The loop's small arrays never hit it. Linux only.
- ``mlp_table``: L in 2^6 .. 2^14 (``--quick``: 2^6 .. 2^12) x m in {2, 8, 32}: sweeps,
  iterations, parallel depth ``sweeps * ceil(log2 L)`` against the loop's depth L, peak
  NumPy memory of one solve (``tracemalloc``), and the speed-up over the user's loop.

Everything is warmed up first (Numba compilation and caches are not timed); baseline and
candidate are timed in alternation over several rounds; reported are both medians and the
median of the per-round ratios ``baseline / candidate`` (> 1: pcrsolve is faster). Results
are checked against the baseline before timing.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

if __name__ == "__main__":  # run as a script: use this checkout's pcrsolve, whatever is installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pcrsolve as pcr

SUITE = "chain"

# ----------------------------------------------------------------------------- timing


def _interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, np.ndarray]:
    for f in fns.values():  # warm-up: Numba compilation or cache load, first-call costs
        f()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: np.array(t) for name, t in times.items()}


def _ratios(times: dict[str, np.ndarray], baseline: str = "baseline") -> dict[str, float]:
    base = times[baseline]
    out = {f"{name}_ms": float(np.median(t) * 1e3) for name, t in times.items()}
    for name, t in times.items():
        if name != baseline:
            out[f"ratio_{name}"] = float(np.median(base / t))
    return out


def _peak_mb(f: Callable[[], Any]) -> float:
    """Peak NumPy memory (MB) while ``f`` runs, as ``tracemalloc`` sees it."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        f()
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- chains


def _mlp_params(rng, L, m, gain):
    W = gain * rng.standard_normal((L, m, m)) / np.sqrt(m)
    b = 0.5 * rng.standard_normal((L, m))
    return W, b


def _user_chain(W, b) -> pcr.FunctionChain:
    """What a user writes: step and Jacobian in NumPy, vectorized over the step indices k."""

    def step(x, k):
        return np.tanh(np.einsum("kij,kj->ki", W[k], x) + b[k])

    def jac(x, k):
        y = step(x, k)
        return (1 - y**2)[:, :, None] * W[k]

    return pcr.FunctionChain(step, jac=jac)


def _user_loop(W, b, x):
    for k in range(W.shape[0]):
        x = np.tanh(W[k] @ x + b[k])
    return x


# ----------------------------------------------------------------------------- cases


def bench_mlp(quick: bool, rounds: int) -> list[dict[str, Any]]:
    L, m = 4096, 8
    rows = []
    for gain in (0.5, 1.0):
        rng = np.random.default_rng(0)
        W, b = _mlp_params(rng, L, m, gain)
        x = rng.standard_normal(m)
        chain = _user_chain(W, b)
        sol = pcr.solve_chain(chain, x, L)
        err = float(np.max(np.abs(sol.states[-1] - _user_loop(W, b, x))))
        assert err < 1e-8, err
        times = _interleaved(
            {
                "baseline": lambda W=W, b=b, x=x: _user_loop(W, b, x),
                "pcrsolve": lambda chain=chain, x=x: pcr.solve_chain(chain, x, L),
            },
            rounds,
        )
        sol = pcr.solve_chain(chain, x, L)
        r = _ratios(times)
        rows.append(
            {
                "benchmark": "mlp_functionchain",
                "L": L,
                "m": m,
                "batch": 1,
                "gain": gain,
                "method": "newton",
                "iterations": sol.iterations,
                "sweeps": len(sol.residuals),
                "status": sol.status,
                "baseline_ms": r["baseline_ms"],
                "pcrsolve_ms": r["pcrsolve_ms"],
                "ratio": r["ratio_pcrsolve"],
                "max_abs_err": err,
                "baseline": "loop x = np.tanh(W[k] @ x + b[k])",
                "target": 1.2,
            }
        )
    return rows


_TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def bench_mlp_tuned_malloc(quick: bool, rounds: int) -> list[dict[str, Any]]:
    """``bench_mlp`` in a child process with glibc malloc told to keep freed memory."""
    if not sys.platform.startswith("linux"):
        return []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, **_TUNED_MALLOC}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, os.path.abspath(__file__), "--mlp-json", "--rounds", str(rounds)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    for r in rows:
        r["benchmark"] = "mlp_functionchain_tuned_malloc"
        r["malloc"] = " ".join(f"{k}={v}" for k, v in _TUNED_MALLOC.items())
    return rows


class _Logistic:
    r = 3.9

    def step(self, x, k):
        return self.r * x * (1 - x)

    def jac(self, x, k):
        return (self.r * (1 - 2 * x))[..., None]


def _logistic_loop(x, n):
    out = np.empty((n, *x.shape))
    for k in range(n):
        x = 3.9 * x * (1 - x)
        out[k] = x
    return out


def bench_chaotic(quick: bool, rounds: int) -> list[dict[str, Any]]:
    n = 2000
    x0 = np.array([[0.2], [0.31], [0.77]])
    chain = _Logistic()
    sol = pcr.solve_chain(chain, x0, n)
    assert np.array_equal(sol.states, _logistic_loop(x0, n)), "not the loop's answer"
    times = _interleaved(
        {
            "baseline": lambda: _logistic_loop(x0, n),
            "sequential_chain": lambda: pcr.sequential_chain(chain, x0, n),
            "pcrsolve": lambda: pcr.solve_chain(chain, x0, n),
        },
        rounds,
    )
    r = _ratios(times)
    return [
        {
            "benchmark": "chaotic_logistic",
            "n_steps": n,
            "m": 1,
            "batch": 3,
            "method": "newton",
            "iterations": sol.iterations,
            "sweeps": len(sol.residuals),
            "status": sol.status,
            "n_step_evals": sol.n_step_evals,
            "baseline_ms": r["baseline_ms"],
            "pcrsolve_ms": r["pcrsolve_ms"],
            "sequential_chain_ms": r["sequential_chain_ms"],
            "ratio": r["ratio_pcrsolve"],
            "ratio_vs_sequential_chain": r["pcrsolve_ms"] and r["sequential_chain_ms"] / r["pcrsolve_ms"],
            "baseline": "loop x = 3.9 x (1 - x)",
            "target": 1 / 3,
            "message": sol.message,
        }
    ]


def bench_table(quick: bool, rounds: int) -> list[dict[str, Any]]:
    Ls = [2**p for p in range(6, 13 if quick else 15)]
    ms = (2, 8, 32)
    rows = []
    for m in ms:
        for L in Ls:
            rng = np.random.default_rng(L + m)
            W, b = _mlp_params(rng, L, m, 0.5)
            x = rng.standard_normal(m)
            chain = _user_chain(W, b)
            sol = pcr.solve_chain(chain, x, L)
            assert np.max(np.abs(sol.states[-1] - _user_loop(W, b, x))) < 1e-8
            times = _interleaved(
                {
                    "baseline": lambda W=W, b=b, x=x: _user_loop(W, b, x),
                    "pcrsolve": lambda chain=chain, x=x, L=L: pcr.solve_chain(chain, x, L),
                },
                max(2, rounds // 2) if L * m < 2**17 else 2,
            )
            r = _ratios(times)
            sweeps = len(sol.residuals)
            rows.append(
                {
                    "benchmark": "mlp_table",
                    "L": L,
                    "m": m,
                    "batch": 1,
                    "gain": 0.5,
                    "method": "newton",
                    "iterations": sol.iterations,
                    "sweeps": sweeps,
                    "status": sol.status,
                    "depth": sweeps * math.ceil(math.log2(L)),
                    "loop_depth": L,
                    "peak_mb": _peak_mb(lambda chain=chain, x=x, L=L: pcr.solve_chain(chain, x, L)),
                    "baseline_ms": r["baseline_ms"],
                    "pcrsolve_ms": r["pcrsolve_ms"],
                    "ratio": r["ratio_pcrsolve"],
                }
            )
    return rows


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """All cases; one record (a flat dict) per row."""
    rounds = rounds if rounds is not None else (5 if quick else 9)
    return (
        bench_mlp(quick, rounds)
        + bench_mlp_tuned_malloc(quick, rounds)
        + bench_chaotic(quick, rounds)
        + bench_table(quick, rounds)
    )


# ----------------------------------------------------------------------------- script


def _machine() -> str:
    import numba

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cores} cores, numba {numba.__version__} ({numba.get_num_threads()} threads), "
        f"numpy {np.__version__}, pcrsolve {pcr.__version__}, python {sys.version.split()[0]}"
    )


def _print(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["benchmark"] == "mlp_table":
            continue
        extra = ""
        if r["benchmark"] == "chaotic_logistic":
            extra = (
                f"  sequential_chain {r['sequential_chain_ms']:.2f} ms "
                f"(ratio vs it {r['ratio_vs_sequential_chain']:.2f}); {r['n_step_evals']} step evals"
            )
        size = (
            f"L={r['L']} m={r['m']} gain={r['gain']}" if "L" in r else f"n={r['n_steps']} batch={r['batch']}"
        )
        print(
            f"{r['benchmark']:<31} {size:<22} loop {r['baseline_ms']:7.2f} ms  solve_chain "
            f"{r['pcrsolve_ms']:7.2f} ms  ratio {r['ratio']:5.2f} (target {r['target']:.2f})  "
            f"{r['iterations']} it / {r['sweeps']} sweeps  {r['status']}{extra}"
        )
    table = [r for r in rows if r["benchmark"] == "mlp_table"]
    if table:
        print("\nmlp_table (gain 0.5, one input; ratio = loop time / solve_chain time)")
        print(
            f"{'m':>3} {'L':>6} {'it':>3} {'sweeps':>6} {'depth':>6} {'vs L':>6} {'peak MB':>8} "
            f"{'loop ms':>8} {'solve ms':>9} {'ratio':>6}  status"
        )
        for r in table:
            print(
                f"{r['m']:>3} {r['L']:>6} {r['iterations']:>3} {r['sweeps']:>6} {r['depth']:>6} "
                f"{r['loop_depth']:>6} {r['peak_mb']:>8.1f} {r['baseline_ms']:>8.2f} "
                f"{r['pcrsolve_ms']:>9.2f} {r['ratio']:>6.2f}  {r['status']}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller table, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--mlp-json", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.mlp_json:
        print(json.dumps(bench_mlp(False, args.rounds or 9)))
        return
    print(_machine())
    t = time.perf_counter()
    _print(run(args.quick, args.rounds))
    print(f"\n({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
