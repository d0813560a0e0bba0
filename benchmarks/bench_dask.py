"""Benchmarks of pcrsolve.dask: chunked solves against the single-machine solve, and the
distributed chain solver on an emulated expensive chain.

    python benchmarks/run.py --only dask [--quick]
    python benchmarks/bench_dask.py [--quick]

Cases (``run(quick)`` returns one dict per row):

- ``graph build``: time to build the graph (nothing is computed) and its task count, for one
  system of 2^23 unknowns in 8, 64 and 512 sequence chunks and for 512 x 8192 systems in 8
  batch chunks.
- ``one system, 8 sequence chunks``: ``pcrsolve.dask.solve_tridiagonal`` on 2^23 unknowns in
  8 chunks (threaded scheduler, the partition method) against ``pcrsolve.solve_tridiagonal``
  on the NumPy arrays (target >= 0.7x: chunking costs little).
- ``512 x 8192, 8 batch chunks``: the same with the batch axis chunked (target >= 0.7x).
- ``emulated chain, W workers``: a tanh MLP chain of 512 steps (m = 8; weights
  ``0.5 N(0, 1/m)``, biases ``0.1 N(0, 1)``: Newton needs 4 sweeps) whose step sleeps
  10 ms per step and whose Jacobian sleeps 2.5 ms per step (sleeping releases the GIL: a
  stand-in for a simulation step or a remote model), solved by ``pcrsolve.dask.solve_chain``
  on a ``LocalCluster`` of W = 1, 2, 4, 8, 16 single-threaded in-process workers against the
  sequential loop (target >= 2.5x at 16 workers). EMULATED: the workers share this
  machine's cores; only the sleeps run in parallel.
- ``cost model``: the round trip ``r`` and the hop ``h`` between dependent tasks measured on
  the cluster; with each run's sweeps, active chunks, task count (``3 P_s + 2`` per sweep, from
  its task stream) and sequential fallback, ``T_W = t0 + sum_s [ceil(P_s / W) L c + 4 h +
  (r or h)] + tau tasks + fallback`` (``r`` for a sweep the client submitted, ``h`` for one
  whose evaluations were made ahead) is fitted (``t0``, ``tau``) by least squares; prints
  predicted against measured times, the predicted break-even number of workers for this
  chain and the speed-ups projected to 64 .. 1024 workers (a chain of 64 steps per worker,
  the same per-step costs, sweeps and per-task cost: the projection shows where the one
  scheduler becomes the limit).

Baseline and candidate are timed in alternation; ratios are medians of per-round ratios
(baseline / candidate, > 1: the Dask path is faster). Results are checked first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _timing import interleaved, median_ratio

import pcrsolve as pcr

SUITE = "dask"
T_STEP, T_JAC = 0.010, 0.0025  # emulated seconds per step and per Jacobian
_PROBE = 3  # steps solve_chain runs sequentially first (to time the loop)
_TASKS_PER_CHUNK = 3  # tasks per active chunk and sweep (evaluate, complete, its small part)
_TASKS_PER_SWEEP = 2  # the carries and the decision
_HOPS = 4  # task hops on a sweep's critical path after its evaluations (carries .. decision)


def _interleaved(baseline, candidate, rounds: int) -> dict[str, float]:
    # Both have run once already (results checked), and an emulated chain's call takes seconds.
    times = interleaved({"baseline": baseline, "candidate": candidate}, rounds, warmup=False)
    return {
        "t_baseline": float(np.median(times["baseline"])),
        "t_candidate": float(np.median(times["candidate"])),
        "ratio": median_ratio(times, "candidate"),
    }


# ----------------------------------------------------------------------------- linear


def _system(rng, batch: tuple[int, ...], n: int):
    d = 4.0 + rng.random((*batch, n))
    dl, du = rng.random((*batch, n - 1)), rng.random((*batch, n - 1))
    return dl, d, du, rng.standard_normal((*batch, n))


def _dask_inputs(arrays, chunks):
    import dask.array as da

    return [da.from_array(a, chunks=chunks) for a in arrays]


def _tasks(x) -> int:
    return len(dict(x.__dask_graph__()))


def linear_cases(quick: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rounds = 2 if quick else 5
    n = 2**18 if quick else 2**23
    B, n2 = (64, 2048) if quick else (512, 8192)
    one = _system(rng, (), n)
    many = _system(rng, (B,), n2)
    rows = []
    pcr.dask.solve_tridiagonal(*_dask_inputs(_system(rng, (), 64), 16))  # imports, first-call costs
    for P in (8, 64, 512):
        arrays = _dask_inputs(one, -(-n // P))
        t = time.perf_counter()
        x = pcr.dask.solve_tridiagonal(*arrays)
        build = time.perf_counter() - t
        rows.append({"case": "graph build", "n": n, "chunks": P, "tasks": _tasks(x), "build_ms": 1e3 * build})
    arrays = _dask_inputs(many, (B // 8, -1))
    t = time.perf_counter()
    x = pcr.dask.solve_tridiagonal(*arrays)
    rows.append(
        {
            "case": "graph build",
            "batch": B,
            "n": n2,
            "chunks": 8,
            "tasks": _tasks(x),
            "build_ms": 1e3 * (time.perf_counter() - t),
        }
    )
    for case, data, chunks, params in (
        ("one system, 8 sequence chunks", one, -(-n // 8), {"n": n}),
        ("512 x 8192, 8 batch chunks", many, (B // 8, -1), {"batch": B, "n": n2}),
    ):
        x = pcr.dask.solve_tridiagonal(*_dask_inputs(data, chunks))
        ref = pcr.solve_tridiagonal(*data)
        got = x.compute(scheduler="threads")
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        timing = _interleaved(
            lambda data=data: pcr.solve_tridiagonal(*data),
            lambda x=x: x.compute(scheduler="threads"),
            rounds,
        )
        rows.append(
            {
                "case": case,
                **params,
                "method": "auto",
                "baseline": "pcrsolve.solve_tridiagonal (NumPy)",
                "tasks": _tasks(x),
                "max_rel_error": err,
                **timing,
            }
        )
    return rows


# ----------------------------------------------------------------------------- chain


class EmulatedChain:
    """A tanh MLP whose step sleeps ``T_STEP`` and whose Jacobian ``T_JAC`` per step."""

    def __init__(self, n: int, m: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = 0.5 * rng.standard_normal((n, m, m)) / np.sqrt(m)
        self.b = 0.1 * rng.standard_normal((n, m))

    def step(self, x, k):
        time.sleep(T_STEP * len(k))
        return np.tanh(np.einsum("kij,kj->ki", self.W[k], x) + self.b[k])

    def jac(self, x, k):
        time.sleep(T_JAC * len(k))
        y = np.tanh(np.einsum("kij,kj->ki", self.W[k], x) + self.b[k])
        return (1 - y * y)[:, :, None] * self.W[k]


def _noop(x):
    return x


def _overheads(client, repeats: int = 20) -> tuple[float, float, float]:
    """``(tau, r, h)``: seconds per no-op task in a batch, per client round trip, and per hop
    of a chain of dependent no-op tasks (a task starting when the one before it ends)."""
    client.submit(int, 0, pure=False).result()
    t = time.perf_counter()
    for _ in range(repeats):
        client.submit(int, 0, pure=False).result()
    r = (time.perf_counter() - t) / repeats
    k = 200
    t = time.perf_counter()
    futures = client.map(int, range(k), pure=False)
    client.gather(futures)
    tau = max((time.perf_counter() - t - r) / k, 0.0)
    t = time.perf_counter()
    f = client.submit(int, 0, pure=False)
    for _ in range(repeats):
        f = client.submit(_noop, f, pure=False)
    f.result()
    h = max((time.perf_counter() - t - r) / repeats, 0.0)
    return tau, r, h


def _client_sweeps(active: list[int], evaluated: int) -> list[bool]:
    """Which sweeps the client submitted after the decision before (their evaluations were not
    made ahead): the first, and the latest ones whose chunks account for the evaluations the
    client asked for (``evaluated``, counted in the task stream)."""
    out = [True] + [False] * (len(active) - 1)
    left = evaluated - active[0]
    for s in range(len(active) - 1, 0, -1):
        if left >= active[s]:
            out[s], left = True, left - active[s]
    return out


def chain_cases(quick: bool) -> list[dict[str, Any]]:
    from collections import Counter

    from distributed import Client, LocalCluster, get_task_stream

    n = 128 if quick else 512
    workers = (1, 4) if quick else (1, 2, 4, 8, 16)
    rounds = 1 if quick else 2
    chain = EmulatedChain(n)
    x0 = np.zeros(8)
    ref = pcr.sequential_chain(chain, x0, n)
    rows, fits = [], []
    for W in workers:
        with LocalCluster(
            n_workers=W, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster:
            with Client(cluster) as client:
                tau, r, h = _overheads(client)
                seen: list[dict] = []
                with get_task_stream(client=client) as ts:
                    sol = pcr.dask.solve_chain(chain, x0, n, client=client, callback=seen.append)
                keys = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in ts.data]
                kinds = Counter(k.rsplit("-", 5)[0] for k in keys)
                err = float(np.max(np.abs(sol.states.compute() - ref)))
                chunk = -(-n // W)
                timing = _interleaved(
                    lambda: pcr.sequential_chain(chain, x0, n),
                    lambda: pcr.dask.solve_chain(chain, x0, n, client=client),
                    rounds,
                )
        active = [-(-n // chunk) - s["window"][0] // chunk for s in seen]
        fallback = n - seen[-1]["prefix"] if sol.status == "sequential" and seen else 0
        fits.append(
            {
                "W": W,
                "chunk": chunk,
                "active": active,
                "fallback": fallback,
                "tau": tau,
                "r": r,
                "h": h,
                "tasks": len(keys),
                "client_sweeps": _client_sweeps(active, kinds["evaluate"]),
                "t": timing["t_candidate"],
            }
        )
        rows.append(
            {
                "case": "emulated chain (sleeps)",
                "n_steps": n,
                "m": 8,
                "workers": W,
                "method": "newton",
                "baseline": "sequential loop",
                "iterations": sol.iterations,
                "sweeps": len(sol.residuals),
                "status": sol.status,
                "tau_ms": 1e3 * tau,
                "roundtrip_ms": 1e3 * r,
                "hop_ms": 1e3 * h,
                "tasks": len(keys),
                "tasks_per_sweep": [_TASKS_PER_CHUNK * P + _TASKS_PER_SWEEP for P in active],
                "max_error": err,
                **timing,
            }
        )
    rows += cost_model(fits, n)
    return rows


def _work(f: dict, c: float) -> tuple[float, float, float]:
    """``(compute seconds, tasks, latency seconds)`` of one run.

    Compute: the emulated work on the critical path (the probe, ``ceil(P_s / W) L c`` per
    sweep, the sequential fallback). Tasks: counted in the run's task stream. Latency: per
    sweep the hops after its evaluations (carries, completion, small part, decision), then
    the client's round trip when it submitted the next sweep, else one more hop (the
    evaluations made ahead start on the workers).
    """
    compute = _PROBE * T_STEP + f["fallback"] * T_STEP
    compute += sum(math.ceil(P / f["W"]) * f["chunk"] * c for P in f["active"])
    latency = sum(_HOPS * f["h"] + (f["r"] if by_client else f["h"]) for by_client in f["client_sweeps"])
    return compute, f["tasks"], latency


def cost_model(fits: list[dict], n: int) -> list[dict[str, Any]]:
    """Fit ``T = t0 + compute + tau_eff tasks + latency`` by least squares; predict, project.

    ``compute`` and ``latency`` come from each run (:func:`_work`: the measured round trip
    and hop); ``t0`` (setup) and ``tau_eff`` (the cost of a task inside a sweep, contention
    included) are fitted.
    """
    c = T_STEP + T_JAC
    parts = [_work(f, c) for f in fits]
    r = float(np.median([f["r"] for f in fits]))
    h = float(np.median([f["h"] for f in fits]))
    y = np.array([f["t"] - cw - lat for f, (cw, _, lat) in zip(fits, parts)])
    X = np.array([[1.0, tasks] for _, tasks, _ in parts])
    (t0, tau_eff), *_ = np.linalg.lstsq(X, y, rcond=None)
    t0, tau_eff = max(float(t0), 0.0), max(float(tau_eff), 0.0)
    t_seq = n * T_STEP
    rows = []
    for f, (cw, tasks, lat) in zip(fits, parts):
        pred = t0 + cw + tau_eff * tasks + lat
        rows.append(
            {
                "case": "cost model: predicted vs measured",
                "workers": f["W"],
                "predicted_s": pred,
                "measured_s": f["t"],
                "ratio": t_seq / pred,
                "sweeps": len(f["active"]),
            }
        )
    converged = [len(f["active"]) for f in fits if f["fallback"] == 0] or [len(f["active"]) for f in fits]
    S = float(np.median(converged))

    def predicted(W: int, steps: int) -> float:
        """Speed-up of a chain of ``steps`` steps, one chunk per worker active in all S sweeps
        (the first submitted by the client, the others made ahead)."""
        L = math.ceil(steps / W)
        per_sweep = L * c + tau_eff * (_TASKS_PER_CHUNK * W + _TASKS_PER_SWEEP) + (_HOPS + 1) * h
        T = t0 + _PROBE * T_STEP + S * per_sweep + r - h
        return steps * T_STEP / T

    breakeven = next((W for W in range(1, n + 1) if predicted(W, n) > 1.0), None)
    rows.append(
        {
            "case": "cost model: fit",
            "t0_s": t0,
            "tau_ms": 1e3 * float(np.median([f["tau"] for f in fits])),
            "tau_eff_ms": 1e3 * tau_eff,
            "roundtrip_ms": 1e3 * r,
            "hop_ms": 1e3 * h,
            "sweeps": S,
            "c_ms": 1e3 * c,
            "breakeven_workers": breakeven,
        }
    )
    for W in (64, 128, 256, 512, 1024):
        rows.append(
            {
                "case": "cost model: projected (emulated costs)",
                "workers": W,
                "n_steps": 64 * W,
                "ratio": predicted(W, 64 * W),
            }
        )
    return rows


def plot(rows, path) -> None:
    """Speed-up against workers: measured, predicted by the fitted model, projected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [(r["workers"], r["ratio"]) for r in rows if r["case"] == "emulated chain (sleeps)"]
    predicted = [(r["workers"], r["ratio"]) for r in rows if r["case"].startswith("cost model: predicted")]
    projected = [(r["workers"], r["ratio"]) for r in rows if r["case"].startswith("cost model: projected")]
    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=100)
    for pts, style, label in (
        (measured, "o-", "measured (emulated chain, 512 steps)"),
        (predicted, "s--", "cost model, fitted"),
        (projected, "^:", "cost model, projected (64 steps per worker)"),
    ):
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, style, ms=4, label=label)
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("workers")
    ax.set_ylabel("speed-up over the sequential loop")
    ax.set_title("solve_chain on Dask: emulated 10 ms steps, 2.5 ms Jacobians", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Every case; ``quick`` shrinks sizes and worker counts. A full run also plots the
    speed-ups into ``docs/_static/bench/dask_cost_model.png``."""
    rows = linear_cases(quick) + chain_cases(quick)
    _print(rows)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = os.path.join(root, "benchmarks", "results")
    os.makedirs(results, exist_ok=True)
    plot(rows, os.path.join(results, "dask_cost_model.png"))
    if not quick:
        plot(rows, os.path.join(root, "docs", "_static", "bench", "dask_cost_model.png"))
    return rows


def _print(rows) -> None:
    for r in rows:
        case = r["case"]
        if case == "graph build":
            where = f"n={r['n']} batch={r.get('batch', 1)} chunks={r['chunks']}"
            print(f"  graph build: {where}: {r['tasks']} tasks, {r['build_ms']:.1f} ms")
        elif case == "cost model: fit":
            print(
                f"  cost model fit: t0 {r['t0_s']:.2f} s, tau {r['tau_ms']:.2f} ms/task (no-op), "
                f"{r['tau_eff_ms']:.2f} ms/task in sweeps (fitted), round trip {r['roundtrip_ms']:.1f} ms, "
                f"hop {r['hop_ms']:.1f} ms, "
                f"{r['sweeps']:g} sweeps, c {r['c_ms']:.1f} ms/step; predicted break-even at "
                f"{r['breakeven_workers']} workers"
            )
        elif case.startswith("cost model: predicted"):
            print(
                f"  W={r['workers']:>4}: predicted {r['predicted_s']:.2f} s, measured {r['measured_s']:.2f} s"
            )
        elif case.startswith("cost model: projected"):
            print(
                f"  projected (EMULATED costs) W={r['workers']:>5}, {r['n_steps']} steps: {r['ratio']:.1f}x"
            )
        else:
            extra = f" W={r['workers']}" if "workers" in r else ""
            times = f"{1e3 * r['t_baseline']:.0f} ms vs {1e3 * r['t_candidate']:.0f} ms"
            print(f"  {case}{extra}: {r['ratio']:.2f}x ({times})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    print(json.dumps(run(args.quick), indent=1, default=str))
