"""First calls in fresh processes: with an empty Numba cache (cold) and with the cache it filled (warm).

``run(quick)`` returns one record per (function, cache state). Every measurement is a new Python
process with ``NUMBA_CACHE_DIR`` set to a new temporary directory: the first process compiles
(cold), a second one on the same directory loads what the first wrote (warm). The time of
``import pcrsolve`` and of the first and second calls are reported separately; the first call
is what a new user, a CI job or a fresh notebook kernel waits for. Cold first calls of the four
functions on small float64 inputs should stay under ``TARGET_S`` on a 2-core machine: the run
prints a warning for any that does not (a check, not a test: timings are never asserted).

A full run also times ``python -m pcrsolve demo`` end to end, cold and warm.

Run alone: ``python benchmarks/bench_coldstart.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SUITE = "coldstart"
TARGET_S = 4.0

_SETUP = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import pcrsolve as pcr
t1 = time.perf_counter()
rng = np.random.default_rng(0)
"""

_TIMING = """
t2 = time.perf_counter()
call()
t3 = time.perf_counter()
call()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2, "second_s": t4 - t3}))
"""

#: name -> (what the call is, the code that defines ``call``)
CASES: dict[str, tuple[str, str]] = {
    "solve_tridiagonal": (
        "one system, n = 100",
        "dl, du, rhs = rng.random(99), rng.random(99), rng.random(100); d = 4 + rng.random(100)\n"
        "call = lambda: pcr.solve_tridiagonal(dl, d, du, rhs)",
    ),
    "solve_tridiagonal, batched": (
        "4096 systems, n = 256 (the README's example)",
        "dl, du = rng.random((4096, 255)), rng.random((4096, 255)); d = 4 + rng.random((4096, 256))\n"
        "rhs = rng.random((4096, 256))\n"
        "call = lambda: pcr.solve_tridiagonal(dl, d, du, rhs)",
    ),
    "solve_block_tridiagonal": (
        "one system, n = 16, 3x3 blocks",
        "L, U = rng.random((15, 3, 3)), rng.random((15, 3, 3)); D = 8 * np.eye(3) + rng.random((16, 3, 3))\n"
        "rhs = rng.random((16, 3))\n"
        "call = lambda: pcr.solve_block_tridiagonal(L, D, U, rhs)",
    ),
    "linear_recurrence": (
        "n = 64, dense 3x3",
        "A, b = 0.3 * rng.random((64, 3, 3)), rng.random((64, 3))\n"
        "call = lambda: pcr.linear_recurrence(A, b)",
    ),
    "solve_chain": (
        "tanh MLP, 64 layers, m = 4, Newton",
        "W = rng.standard_normal((64, 4, 4)) / 4\n"
        "step = lambda x, k: np.tanh(np.einsum('kij,kj->ki', W[k], x))\n"
        "jac = lambda x, k: (1 - step(x, k) ** 2)[..., None] * W[k]\n"
        "chain = pcr.FunctionChain(step, jac=jac)\n"
        "call = lambda: pcr.solve_chain(chain, np.ones(4), 64, method='newton')",
    ),
}
#: the four functions the cold-start target is about (small inputs)
TARGETED = ("solve_tridiagonal", "solve_block_tridiagonal", "linear_recurrence", "solve_chain")


def _env(cache_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def _first_call(code: str, cache_dir: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter with the given Numba cache; its timings."""
    out = subprocess.run(
        [sys.executable, "-c", _SETUP + code + _TIMING],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _demo(cache_dir: str) -> float:
    """Wall time of ``python -m pcrsolve demo`` in a fresh process."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pcrsolve", "demo"], env=_env(cache_dir), capture_output=True, check=True
    )
    return time.perf_counter() - t


def _record(name: str, what: str, cache: str, runs: list[dict[str, float]]) -> dict[str, Any]:
    first = statistics.median(r["first_s"] for r in runs)
    rec: dict[str, Any] = {
        "suite": SUITE,
        "case": "first call",
        "method": name,
        "params": {"function": name, "cache": cache},
        "what": what,
        "baseline": "-",
        "t_candidate": first,
        "first_call_s": first,
        "first_call_min_s": min(r["first_s"] for r in runs),
        "second_call_s": statistics.median(r["second_s"] for r in runs),
        "import_s": statistics.median(r["import_s"] for r in runs),
        "rounds": len(runs),
    }
    if name in TARGETED and cache == "cold":
        rec["target_s"] = TARGET_S
        rec["within_target"] = first < TARGET_S
    return rec


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Cold and warm first calls of every case; ``quick``: one round, no demo."""
    rounds = 1 if quick else 3
    records: list[dict[str, Any]] = []
    for name, (what, code) in CASES.items():
        cold, warm = [], []
        for _ in range(rounds):
            cache = tempfile.mkdtemp(prefix="pcrsolve-numba-cache-")
            try:
                cold.append(_first_call(code, cache))
                warm.append(_first_call(code, cache))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        for state, runs in (("cold", cold), ("warm", warm)):
            rec = _record(name, what, state, runs)
            records.append(rec)
            note = ""
            if rec.get("within_target") is False:
                note = f"  <-- over the {TARGET_S:g} s target"
            print(
                f"  {name:<27} {state}: first call {rec['first_call_s']:6.2f} s "
                f"(import {rec['import_s']:.2f} s, second call {1e3 * rec['second_call_s']:.2f} ms){note}",
                flush=True,
            )
    if not quick:
        cache = tempfile.mkdtemp(prefix="pcrsolve-numba-cache-")
        try:
            for state in ("cold", "warm"):
                t = _demo(cache)
                records.append(
                    {
                        "suite": SUITE,
                        "case": "python -m pcrsolve demo",
                        "method": "demo",
                        "params": {"cache": state},
                        "baseline": "-",
                        "t_candidate": t,
                        "rounds": 1,
                    }
                )
                print(f"  {'python -m pcrsolve demo':<27} {state}: {t:6.1f} s end to end", flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return records


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    run(p.parse_args().quick)
