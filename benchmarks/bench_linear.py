"""Benchmarks of the linear solvers against SciPy/LAPACK (a suite of ``benchmarks/run.py``).

``run(quick)`` returns one record (a dict, see ``benchmarks/README.md``) per (case, method):

- batched tridiagonal, 4096 systems x n = 256, against a loop of ``scipy.linalg.lapack.dgtsv``;
- one tridiagonal system, n = 2**21, against one ``dgtsv`` call;
- block tridiagonal, 32 systems x n = 1024 x 4x4 blocks, against a ``solve_banded`` loop;
- 64 first-order IIR filters of length 1e5 (``linear_recurrence``) against an ``lfilter`` loop;
- a solve with a stored factorization against a full solve, per method (batched and single long
  scalar systems, batched block systems; Numba kernels and the xp kernels on NumPy);
- sweeps over n (one system) and over the batch size (n = 256) for every method, so the docs
  can show where ``pcr`` and ``hybrid`` pay off.

Every case is warmed up first (Numba compilation is not timed); baseline and candidates are then
timed in alternation, and the medians and the median of the per-round ratios are reported. The
effective bandwidth counts the bytes of the inputs and the output once, and is compared with a
NumPy copy moving the same number of bytes. Peak extra memory is what ``tracemalloc`` sees
(NumPy allocations, including the output; scratch inside Numba kernels is not counted), as a
multiple of the input bytes.

Run alone: ``python benchmarks/bench_linear.py [--quick]``.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SUITE = "linear"


# ----------------------------------------------------------------------- measuring


def _time(f: Callable[[], Any]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def interleaved(baseline: Callable[[], Any], candidates: dict[str, Callable[[], Any]], rounds: int):
    """Times of ``baseline`` and each candidate, in alternation: ``{name: [s, ...]}``."""
    times: dict[str, list[float]] = {"baseline": [], **{k: [] for k in candidates}}
    for _ in range(rounds):
        times["baseline"].append(_time(baseline))
        for name, f in candidates.items():
            times[name].append(_time(f))
    return times


def peak_extra_bytes(f: Callable[[], Any]) -> int:
    """Peak bytes allocated (and visible to tracemalloc) while ``f`` runs, output included."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = f()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return max(0, peak - base)


_COPY_GBPS: dict[int, float] = {}


def copy_gbps(nbytes: int, rounds: int) -> float:
    """GB/s of ``np.copyto`` moving ``nbytes`` in total (half read, half written)."""
    half = max(8, nbytes // 2) // 8
    if half not in _COPY_GBPS:
        src, dst = np.ones(half), np.empty(half)
        np.copyto(dst, src)
        t = float(np.median([_time(lambda: np.copyto(dst, src)) for _ in range(max(3, rounds))]))
        _COPY_GBPS[half] = 2 * 8 * half / t / 1e9
    return _COPY_GBPS[half]


def records(
    case: str,
    params: dict[str, Any],
    baseline_name: str,
    baseline: Callable[[], Any],
    candidates: dict[str, Callable[[], Any]],
    *,
    rounds: int,
    reference: np.ndarray | None = None,
    extract: Callable[[Any], np.ndarray] = np.asarray,
    nbytes_in: int = 0,
    nbytes_out: int = 0,
    memory: bool = False,
) -> list[dict[str, Any]]:
    """Warm up, check, time in alternation; one record per candidate."""
    ref = np.asarray(baseline() if reference is None else reference)
    warm: dict[str, float] = {}
    errors: dict[str, float] = {}
    scale = float(np.max(np.abs(ref))) or 1.0
    for name, f in candidates.items():
        t = time.perf_counter()
        x = extract(f())
        warm[name] = time.perf_counter() - t
        errors[name] = float(np.max(np.abs(x - ref))) / scale if ref.size else 0.0
    times = interleaved(baseline, candidates, rounds)
    tb = np.array(times["baseline"])
    nbytes = nbytes_in + nbytes_out
    copy = copy_gbps(nbytes, rounds) if nbytes else None
    out = []
    for name, f in candidates.items():
        tc = np.array(times[name])
        rec: dict[str, Any] = {
            "suite": SUITE,
            "case": case,
            "method": name,
            "params": {**params, "method": name},
            "baseline": baseline_name,
            "t_baseline": float(np.median(tb)),
            "t_candidate": float(np.median(tc)),
            "ratio": float(np.median(tb / tc)),
            "rounds": int(rounds),
            "warmup_s": warm[name],
            "max_rel_error": errors[name],
        }
        if nbytes:
            rec["bytes"] = int(nbytes)
            rec["gbps"] = nbytes / rec["t_candidate"] / 1e9
            rec["copy_gbps"] = copy
            rec["gbps_fraction_of_copy"] = rec["gbps"] / copy
        if memory and nbytes_in:
            rec["peak_extra_bytes"] = peak_extra_bytes(f)
            rec["peak_extra_over_input"] = rec["peak_extra_bytes"] / nbytes_in
        out.append(rec)
    return out


# ----------------------------------------------------------------------- problems


def tridiagonal_system(rng, batch: int, n: int):
    """Diagonally dominant systems in LAPACK layout: ``dl, du: (batch, n-1)``, ``d, rhs: (batch, n)``."""
    dl = rng.uniform(-1, 1, (batch, max(n - 1, 0)))
    du = rng.uniform(-1, 1, (batch, max(n - 1, 0)))
    d = 2.5 + rng.random((batch, n))
    rhs = rng.standard_normal((batch, n))
    return dl, d, du, rhs


def dgtsv_loop(dl, d, du, rhs):
    from scipy.linalg import lapack

    x = np.empty_like(rhs)
    for i in range(rhs.shape[0]):
        x[i] = lapack.dgtsv(dl[i], d[i], du[i], rhs[i])[3]
    return x


def _nbytes(*arrays) -> int:
    return int(sum(a.nbytes for a in arrays))


METHODS = ("auto", "sequential", "pcr", "hybrid")


# ----------------------------------------------------------------------- cases


def batched_tridiagonal(rng, rounds: int, batch: int = 4096, n: int = 256, methods=METHODS, memory=True):
    import pcrsolve as pcr

    dl, d, du, rhs = tridiagonal_system(rng, batch, n)
    cands = {m: (lambda m=m: pcr.solve_tridiagonal(dl, d, du, rhs, method=m)) for m in methods}
    return records(
        "batched tridiagonal",
        {"batch": batch, "n": n, "dtype": "float64"},
        "dgtsv loop",
        lambda: dgtsv_loop(dl, d, du, rhs),
        cands,
        rounds=rounds,
        nbytes_in=_nbytes(dl, d, du, rhs),
        nbytes_out=rhs.nbytes,
        memory=memory,
    )


def single_tridiagonal(rng, rounds: int, n: int = 2**21, methods=METHODS, memory=True):
    from scipy.linalg import lapack

    import pcrsolve as pcr

    dl, d, du, rhs = (a[0] for a in tridiagonal_system(rng, 1, n))
    cands = {m: (lambda m=m: pcr.solve_tridiagonal(dl, d, du, rhs, method=m)) for m in methods}
    return records(
        "one tridiagonal system",
        {"batch": 1, "n": n, "dtype": "float64"},
        "dgtsv",
        lambda: lapack.dgtsv(dl, d, du, rhs)[3],
        cands,
        rounds=rounds,
        nbytes_in=_nbytes(dl, d, du, rhs),
        nbytes_out=rhs.nbytes,
        memory=memory,
    )


def block_tridiagonal(rng, rounds: int, batch: int = 32, n: int = 1024, m: int = 4, methods=METHODS):
    from scipy.linalg import solve_banded

    import pcrsolve as pcr
    from pcrsolve._demo._linear import banded  # the demo's baseline too

    L = rng.uniform(-1, 1, (batch, n - 1, m, m))
    U = rng.uniform(-1, 1, (batch, n - 1, m, m))
    D = rng.uniform(-1, 1, (batch, n, m, m)) + 3 * m * np.eye(m)
    rhs = rng.standard_normal((batch, n, m))
    ab, bw = banded(L, D, U), 2 * m - 1

    def baseline():
        return np.stack([solve_banded((bw, bw), ab[i], rhs[i].reshape(-1)) for i in range(batch)]).reshape(
            rhs.shape
        )

    cands = {k: (lambda k=k: pcr.solve_block_tridiagonal(L, D, U, rhs, method=k)) for k in methods}
    return records(
        "block tridiagonal",
        {"batch": batch, "n": n, "m": m, "dtype": "float64"},
        "solve_banded loop",
        baseline,
        cands,
        rounds=rounds,
        nbytes_in=_nbytes(L, D, U, rhs),
        nbytes_out=rhs.nbytes,
        memory=True,
    )


def iir_filters(rng, rounds: int, filters: int = 64, length: int = 100_000, methods=METHODS):
    from scipy.signal import lfilter

    import pcrsolve as pcr

    a = rng.uniform(0.5, 0.99, filters)
    u = rng.standard_normal((filters, length))
    A, b = a[:, None, None], u[:, :, None]

    def baseline():
        return np.stack([lfilter([1.0], [1.0, -a[i]], u[i]) for i in range(filters)])

    cands = {k: (lambda k=k: pcr.linear_recurrence(A, b, method=k)) for k in methods}
    return records(
        "IIR filters (linear_recurrence)",
        {"batch": filters, "n": length, "m": 1, "dtype": "float64"},
        "lfilter loop",
        baseline,
        cands,
        rounds=rounds,
        extract=lambda x: np.asarray(x)[..., 0],
        nbytes_in=_nbytes(A, b),
        nbytes_out=b.nbytes,
        memory=True,
    )


def factored_solves(rng, rounds: int, quick: bool = False) -> list[dict[str, Any]]:
    """A solve with a stored factorization against a full solve by the same method.

    ``ratio`` = full solve / factored solve (> 1: the factorization pays from the second
    right-hand side on); ``t_factor`` is the factorization itself. Batched and single long
    scalar systems and batched block systems on the Numba backend, and the xp kernels (the
    code CuPy runs) on NumPy, where a factored solve replays PCR's levels without a loop over
    rows.
    """
    import pcrsolve as pcr

    scale = 4 if quick else 1
    cases = [
        ("tridiagonal", "numba", 4096 // scale, 256, 0, (*METHODS, "pivoting")),
        ("tridiagonal", "numba", 1, 2**21 // scale, 0, (*METHODS, "pivoting")),
        ("block tridiagonal", "numba", 32 // scale, 1024, 4, METHODS),
        ("tridiagonal", "numpy", 256 // scale, 1024, 0, ("auto", "pcr", "hybrid")),
        ("block tridiagonal", "numpy", 32 // scale, 256, 4, ("auto", "pcr", "hybrid")),
    ]
    out = []
    for structure, backend, batch, n, m, methods in cases:
        if m:
            L = rng.uniform(-1, 1, (batch, n - 1, m, m))
            U = rng.uniform(-1, 1, (batch, n - 1, m, m))
            D = rng.uniform(-1, 1, (batch, n, m, m)) + 3 * m * np.eye(m)
            mats, rhs = (L, D, U), rng.standard_normal((batch, n, m))
            solve, factor = pcr.solve_block_tridiagonal, pcr.factor_block_tridiagonal
        else:
            dl, d, du, rhs = tridiagonal_system(rng, batch, n)
            mats, solve, factor = (dl, d, du), pcr.solve_tridiagonal, pcr.factor_tridiagonal
        params = {"batch": batch, "n": n, **({"m": m} if m else {}), "backend": backend, "dtype": "float64"}
        for method in methods:
            out.append(_factored(structure, params, solve, factor, mats, rhs, method, backend, rounds))
    return out


def _factored(structure, params, solve, factor, mats, rhs, method, backend, rounds) -> dict[str, Any]:
    factor(*mats, method=method, backend=backend)  # warm-up: compilation is not timed
    t = time.perf_counter()
    f = factor(*mats, method=method, backend=backend)
    t_factor = time.perf_counter() - t
    [rec] = records(
        f"factored solve, {structure}",
        params,
        "full solve, same method",
        lambda: solve(*mats, rhs, method=method, backend=backend),
        {method: lambda: f.solve(rhs)},
        rounds=rounds,
    )
    rec["t_factor"] = t_factor
    rec["factor_method"] = f.method
    return rec


def sweep_n(rng, rounds: int, ns: Sequence[int], methods=METHODS):
    """One system of each length n: every method against one ``dgtsv`` call."""
    out = []
    for n in ns:
        for rec in single_tridiagonal(rng, rounds, n=n, methods=methods, memory=False):
            rec["case"] = "sweep over n (one system)"
            out.append(rec)
    return out


def sweep_batch(rng, rounds: int, batches: Sequence[int], n: int = 256, methods=METHODS):
    """``batch`` systems of length 256: every method against a ``dgtsv`` loop."""
    out = []
    for batch in batches:
        for rec in batched_tridiagonal(rng, rounds, batch=batch, n=n, methods=methods, memory=False):
            rec["case"] = "sweep over batch (n = 256)"
            out.append(rec)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """All linear benchmarks; ``quick``: fewer rounds and shorter sweeps (about a minute)."""
    rng = np.random.default_rng(20260101)
    rounds = 3 if quick else 7
    out: list[dict[str, Any]] = []
    out += batched_tridiagonal(rng, rounds)
    out += single_tridiagonal(rng, rounds)
    out += block_tridiagonal(rng, rounds)
    out += iir_filters(rng, rounds)
    out += factored_solves(rng, rounds, quick)
    ns = [2**k for k in (range(8, 19, 3) if quick else range(6, 22, 1))]
    out += sweep_n(rng, rounds, ns)
    batches = [2**k for k in (range(0, 13, 3) if quick else range(0, 13, 1))]
    out += sweep_batch(rng, rounds, batches)
    return out


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    for r in run(args.quick):
        print(
            f"{r['case']:<32} {r['method']:<11} {r['params']!s:<60} "
            f"{r['ratio']:6.2f}x  err {r['max_rel_error']:.1e}"
        )
