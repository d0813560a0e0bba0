"""Benchmark of the chain solver against the loops users write.

    python benchmarks/bench_chain.py [--quick] [--rounds 9]

Cases (``run(quick)`` returns one dict per row; the script prints them). Every solve uses the
default ``method="auto"`` (the cost model picks the loop or Newton sweeps); each row says which
route ran and why it ended.

- ``mlp_functionchain``: a tanh MLP chain, L = 4096, one input, given to ``solve_chain`` as a
  :class:`~pcrsolve.FunctionChain` whose ``step`` and ``jac`` are written as a user would in
  NumPy (vectorized over ``k``), against the user's own loop ``x = np.tanh(W[k] @ x + b[k])``.
  Weights ``gain * N(0, 1/m)``, biases ``N(0, 0.5^2)``. Targets: m = 2 >= 1.5x, m = 8 >= 1.0x
  (gain 0.5; gain 1.0, the edge of chaos for tanh, is shown too).
- ``mlp_functionchain_hook``: m = 32, the same chain given the user's loop as its
  ``sequential`` hook: the cost model's choice and bookkeeping must cost little
  (target >= 0.9x the user's loop).
- ``library_loop``: m = 32 without the hook: ``solve_chain`` (which runs the library's own
  loop, one ``step`` call per step) and ``sequential_chain`` against the user's ``step``
  called in a tight loop; target: at most 20% more (ratio >= 1/1.2).
- ``chaotic_logistic``: the logistic map ``x <- 3.9 x (1 - x)``, n = 2000, three starting
  points, against ``sequential_chain`` (target >= 0.7x) and the plain loop; the answer must
  equal the loop's bit for bit (any error would grow to O(1) along a chaotic chain).
- ``mlp_functionchain_tuned_malloc``: ``mlp_functionchain`` at m = 8 in a child process whose
  glibc malloc keeps freed memory (``MALLOC_MMAP_THRESHOLD_=64 MiB``,
  ``MALLOC_TRIM_THRESHOLD_=256 MiB``). By default every large NumPy temporary of the user's
  ``jac`` is a fresh ``mmap`` whose pages fault in on first touch; the loop's small arrays
  never hit it. Linux only.
- ``mlp_table``: L in 2^6 .. 2^14 (``--quick``: 2^6 .. 2^12) x m in {2, 8, 32}, gain 0.5: the
  route chosen per cell, sweeps and iterations, parallel depth ``sweeps * ceil(log2 L)``
  against the loop's L, peak NumPy memory of one solve (``tracemalloc``), and the speed-up
  over the user's loop.

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
from _timing import interleaved

if __name__ == "__main__":  # run as a script: use this checkout's pcrsolve, whatever is installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pcrsolve as pcr

SUITE = "chain"

# ----------------------------------------------------------------------------- timing


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


def _route(sol) -> dict[str, Any]:
    """How a solve went: the route, the sweeps and iterations, and a fallback if any."""
    return {
        "route": sol.route,
        "iterations": sol.iterations,
        "sweeps": len(sol.residuals),
        "status": sol.status,
        "route_reason": sol.route_reason,
        "message": sol.message,
    }


# ----------------------------------------------------------------------------- chains


def _mlp_params(rng, L, m, gain):
    W = gain * rng.standard_normal((L, m, m)) / np.sqrt(m)
    b = 0.5 * rng.standard_normal((L, m))
    return W, b


def _user_loop(W, b, x):
    for k in range(W.shape[0]):
        x = np.tanh(W[k] @ x + b[k])
    return x


def _user_chain(W, b, hook: bool = False) -> pcr.FunctionChain:
    """What a user writes: step and Jacobian in NumPy, vectorized over the step indices k;
    with ``hook``, their own loop as the chain's ``sequential``."""

    def step(x, k):
        return np.tanh(np.einsum("kij,kj->ki", W[k], x) + b[k])

    def jac(x, k):
        y = step(x, k)
        return (1 - y**2)[:, :, None] * W[k]

    def sequential(x, start, stop):
        out = np.empty((stop - start, x.shape[-1]))
        for k in range(start, stop):
            x = np.tanh(W[k] @ x + b[k])
            out[k - start] = x
        return out

    return pcr.FunctionChain(step, jac=jac, sequential=sequential if hook else None)


# ----------------------------------------------------------------------------- cases


def _mlp_row(
    bench: str, L: int, m: int, gain: float, hook: bool, rounds: int, target: float
) -> dict[str, Any]:
    rng = np.random.default_rng(L + m)
    W, b = _mlp_params(rng, L, m, gain)
    x = rng.standard_normal(m)
    chain = _user_chain(W, b, hook)
    sol = pcr.solve_chain(chain, x, L)
    err = float(np.max(np.abs(sol.states[-1] - _user_loop(W, b, x))))
    assert err < 1e-8, err
    times = interleaved(
        {"baseline": lambda: _user_loop(W, b, x), "pcrsolve": lambda: pcr.solve_chain(chain, x, L)}, rounds
    )
    r = _ratios(times)
    return {
        "benchmark": bench,
        "L": L,
        "m": m,
        "batch": 1,
        "gain": gain,
        "method": "auto",
        **_route(pcr.solve_chain(chain, x, L)),
        "baseline_ms": r["baseline_ms"],
        "pcrsolve_ms": r["pcrsolve_ms"],
        "ratio": r["ratio_pcrsolve"],
        "max_abs_err": err,
        "baseline": "loop x = np.tanh(W[k] @ x + b[k])",
        "target": target,
    }


def bench_mlp(quick: bool, rounds: int) -> list[dict[str, Any]]:
    L = 4096
    return [
        _mlp_row("mlp_functionchain", L, 2, 0.5, False, rounds, 1.5),
        _mlp_row("mlp_functionchain", L, 8, 0.5, False, rounds, 1.0),
        _mlp_row("mlp_functionchain", L, 8, 1.0, False, rounds, 1.0),
        _mlp_row("mlp_functionchain_hook", L, 32, 0.5, True, rounds, 0.9),
    ]


def bench_library_loop(quick: bool, rounds: int) -> list[dict[str, Any]]:
    """The library's own loop (no hook) against the user's ``step`` called in a tight loop."""
    L, m = 4096, 32
    rng = np.random.default_rng(7)
    W, b = _mlp_params(rng, L, m, 0.5)
    x = rng.standard_normal(m)
    chain = _user_chain(W, b)
    ks = np.arange(L)

    def step_calls():
        y = x[None]
        for k in range(L):
            y = chain.step(y, ks[k : k + 1])
        return y[0]

    assert np.allclose(step_calls(), pcr.sequential_chain(chain, x, L)[-1])
    times = interleaved(
        {
            "baseline": step_calls,
            "sequential_chain": lambda: pcr.sequential_chain(chain, x, L),
            "pcrsolve": lambda: pcr.solve_chain(chain, x, L),
        },
        rounds,
    )
    r = _ratios(times)
    return [
        {
            "benchmark": "library_loop",
            "L": L,
            "m": m,
            "batch": 1,
            "method": "auto",
            **_route(pcr.solve_chain(chain, x, L)),
            "baseline_ms": r["baseline_ms"],
            "pcrsolve_ms": r["pcrsolve_ms"],
            "sequential_chain_ms": r["sequential_chain_ms"],
            "ratio": r["ratio_pcrsolve"],
            "ratio_sequential_chain": r["ratio_sequential_chain"],
            "overhead": 1 / r["ratio_pcrsolve"] - 1,
            "baseline": "the user's step called in a loop",
            "target": 1 / 1.2,
        }
    ]


_TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def bench_mlp_tuned_malloc(quick: bool, rounds: int) -> list[dict[str, Any]]:
    """``mlp_functionchain`` at m = 8 in a child process with glibc malloc told to keep memory."""
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
    times = interleaved(
        {
            "baseline": lambda: pcr.sequential_chain(chain, x0, n),
            "loop": lambda: _logistic_loop(x0, n),
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
            "method": "auto",
            **_route(sol),
            "n_step_evals": sol.n_step_evals,
            "baseline_ms": r["baseline_ms"],
            "pcrsolve_ms": r["pcrsolve_ms"],
            "loop_ms": r["loop_ms"],
            "ratio": r["ratio_pcrsolve"],
            "ratio_vs_loop": r["loop_ms"] / r["pcrsolve_ms"],
            "answer_equal": True,
            "baseline": "sequential_chain",
            "target": 0.7,
        }
    ]


def bench_table(quick: bool, rounds: int) -> list[dict[str, Any]]:
    Ls = [2**p for p in range(6, 13 if quick else 15)]
    rows = []
    for m in (2, 8, 32):
        for L in Ls:
            rng = np.random.default_rng(L + m)
            W, b = _mlp_params(rng, L, m, 0.5)
            x = rng.standard_normal(m)
            chain = _user_chain(W, b)
            sol = pcr.solve_chain(chain, x, L)
            assert np.max(np.abs(sol.states[-1] - _user_loop(W, b, x))) < 1e-8
            times = interleaved(
                {
                    "baseline": lambda W=W, b=b, x=x: _user_loop(W, b, x),
                    "pcrsolve": lambda chain=chain, x=x, L=L: pcr.solve_chain(chain, x, L),
                },
                max(2, rounds // 2) if L * m < 2**17 else 2,
            )
            r = _ratios(times)
            sol = pcr.solve_chain(chain, x, L)
            sweeps = len(sol.residuals)
            rows.append(
                {
                    "benchmark": "mlp_table",
                    "L": L,
                    "m": m,
                    "batch": 1,
                    "gain": 0.5,
                    "method": "auto",
                    **_route(sol),
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
        + bench_library_loop(quick, rounds)
        + bench_chaotic(quick, rounds)
        + ([] if quick else bench_mlp_tuned_malloc(quick, rounds))
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
        if "n_steps" in r:
            size = f"n={r['n_steps']} batch={r['batch']}"
        else:
            size = f"L={r['L']} m={r['m']}" + (f" gain={r['gain']}" if "gain" in r else "")
        extra = ""
        if r["benchmark"] == "chaotic_logistic":
            extra = f"; {r['ratio_vs_loop']:.2f}x the plain loop, answer equal: {r['answer_equal']}"
        if r["benchmark"] == "library_loop":
            seq = r["ratio_sequential_chain"]
            extra = f"; the library's loop adds {100 * r['overhead']:.0f}% (sequential_chain {seq:.2f}x)"
        print(
            f"{r['benchmark']:<31} {size:<20} {r['baseline']:<34.34} {r['baseline_ms']:8.2f} ms  "
            f"solve_chain {r['pcrsolve_ms']:8.2f} ms  ratio {r['ratio']:5.2f} (target {r['target']:.2f})  "
            f"route {r['route']}, {r['iterations']} it / {r['sweeps']} sweeps, {r['status']}{extra}"
        )
    table = [r for r in rows if r["benchmark"] == "mlp_table"]
    if table:
        print("\nmlp_table (gain 0.5, one input, method auto; ratio = loop time / solve_chain time)")
        print(
            f"{'m':>3} {'L':>6} {'route':>10} {'it':>3} {'sweeps':>6} {'depth':>6} {'vs L':>6} "
            f"{'peak MB':>8} {'loop ms':>8} {'solve ms':>9} {'ratio':>6}  status"
        )
        for r in table:
            print(
                f"{r['m']:>3} {r['L']:>6} {r['route']:>10} {r['iterations']:>3} {r['sweeps']:>6} "
                f"{r['depth']:>6} {r['loop_depth']:>6} {r['peak_mb']:>8.1f} {r['baseline_ms']:>8.2f} "
                f"{r['pcrsolve_ms']:>9.2f} {r['ratio']:>6.2f}  {r['status']}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller table, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--mlp-json", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.mlp_json:
        rounds = args.rounds or 9
        rows = [_mlp_row("mlp_functionchain", 4096, 8, g, False, rounds, 1.0) for g in (0.5, 1.0)]
        print(json.dumps(rows))
        return
    print(_machine())
    t = time.perf_counter()
    _print(run(args.quick, args.rounds))
    print(f"\n({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
