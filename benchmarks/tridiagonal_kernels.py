"""Quick benchmark of the Numba scalar tridiagonal kernels against LAPACK ``dgtsv``.

    python benchmarks/tridiagonal_kernels.py [--rounds 7]

Two cases: a batch of 4096 systems of n = 256 (baseline: a Python loop of
``scipy.linalg.lapack.dgtsv``) and one system of n = 2**21 (baseline: one ``dgtsv`` call).
Everything is warmed up first (compilation is not timed); baseline and candidates are timed
in alternation over several rounds; the medians and the median of the per-round ratios
``baseline / candidate`` (> 1: the kernel is faster) are printed.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
import scipy
from scipy.linalg import lapack

from pcrsolve.kernels.numba import pivoting, tridiagonal


def _system(rng, nb, n):
    dl, du, rhs = (rng.standard_normal((nb, n)) for _ in range(3))
    d = 4.0 + rng.random((nb, n))
    dl[:, 0] = 0
    du[:, -1] = 0
    return dl, d, du, rhs


def _dgtsv_loop(dl, d, du, rhs):
    x = np.empty_like(rhs)
    for k in range(d.shape[0]):
        x[k] = lapack.dgtsv(dl[k, 1:], d[k], du[k, :-1], rhs[k])[3]
    return x


def _time(f, args):
    t = time.perf_counter()
    f(*args)
    return time.perf_counter() - t


def _case(title, args, baseline, candidates, rounds):
    ref = baseline(*args)
    for name, f in candidates.items():  # warm up (compile or load from cache), check
        x, info = f(*args)
        assert not info.any(), name
        err = np.max(np.abs(x - ref)) / np.max(np.abs(ref))
        assert err < 1e-10, (name, err)
    times = {name: [] for name in ("dgtsv", *candidates)}
    for _ in range(rounds):
        times["dgtsv"].append(_time(baseline, args))
        for name, f in candidates.items():
            times[name].append(_time(f, args))
    base = np.array(times["dgtsv"])
    print(f"\n{title}")
    print(f"  {'dgtsv':<22s} median {np.median(base) * 1e3:9.2f} ms")
    for name in candidates:
        t = np.array(times[name])
        print(
            f"  {name:<22s} median {np.median(t) * 1e3:9.2f} ms   "
            f"speed-up (median of round ratios) {np.median(base / t):6.2f}x"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    print(
        f"cores {os.cpu_count()}, numba threads {numba.get_num_threads()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}"
    )
    rng = np.random.default_rng(0)

    args = _system(rng, 4096, 256)
    _case(
        "4096 systems x n = 256, float64 (baseline: Python loop of dgtsv)",
        args,
        _dgtsv_loop,
        {
            "thomas": tridiagonal.thomas,
            "hybrid": tridiagonal.hybrid,
            "pcr": tridiagonal.pcr,
            "gtsv (pivoting)": pivoting.gtsv,
        },
        rounds,
    )

    args = _system(rng, 1, 2**21)
    _case(
        "1 system x n = 2**21, float64 (baseline: dgtsv)",
        args,
        _dgtsv_loop,
        {
            "hybrid": tridiagonal.hybrid,
            "thomas": tridiagonal.thomas,
            "pcr (rows)": tridiagonal.pcr,
            "gtsv (pivoting)": pivoting.gtsv,
        },
        rounds,
    )


if __name__ == "__main__":
    main()
