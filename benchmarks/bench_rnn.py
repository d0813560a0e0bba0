"""Benchmark of the RNN adapters (Newton over time, the compiled loop, the route between them)
against the loops users write.

    python benchmarks/run.py --only rnn [--quick]     (or: python benchmarks/bench_rnn.py [--quick])

Cases (``run(quick)`` returns one dict per row; the script prints them):

- ``paragru_forward``: a ParaGRU (``RNN("gru_diag", ...)``) against the user's NumPy loop, for T
  in 2^10 .. 2^16, width m in {16, 64, 256}, batch {1, 8} (sizes with T * batch * m above 2^23
  are skipped: the input projections alone would take 200 MB, the loop seconds). The loop
  precomputes the input projections in one product as the adapter does; the adapter is built
  inside every timed call (its cached projections are not reused across rounds). Three rows
  per size: ``"newton"``, Newton over time alone, the fused sweeps (``method="diagonal"``,
  exact Newton for this cell, from ParaRNN's first guess, in the fixed-iteration mode with as
  many sweeps as it needs to converge: ``iterations`` sweeps that moved a state by more than the
  default tolerance and one that confirms it, ``sweeps``; no cost model that could prefer the
  loop); ``"forward()"``, what a user calls (``method="auto"``: the cost model's choice, in
  ``route``); ``"compiled loop"``, the adapter's loop ``RNN.sequential``. ``ratio``: the user's
  loop time over the row's; ``vs_compiled_loop``: the compiled loop's time over the row's.
  Target: ``forward()`` >= 8x at T = 16384, m = 16, batch 1.
- ``paragru_crossover``: per (m, batch) and row kind, the smallest T from which it beats the
  user's loop at every measured T.
- ``rnn_cells``: every cell, T = 4096, width 16, batch 1: Newton's fused sweeps (the cell's exact
  method, as above) and ``forward()`` against the compiled loop (no NumPy loop: the baseline is
  the adapter's own loop).
- ``paragru_gradients``: ``RNN.gradients`` (one compiled reverse pass and batched products)
  against hand-written back-propagation through time in NumPy, loss on all states.
- ``stacked_grid``: k in {2, 4, 8} ParaGRU layers, T = 512, m = 16: Newton sweeps layer by layer
  (their sum) against the layers x time grid as one chain (``StackedRNN.forward(method="grid")``),
  and both forward passes against the user's loop over layers.

Everything is warmed up first (compilation and caches are not timed); baseline and candidates
are timed in alternation over several rounds; reported are the medians and the median of the
per-round ratios ``baseline / candidate`` (> 1: pcrsolve is faster). Every result is checked
against the baseline.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script, or by run.py
from _timing import interleaved, median_ms, median_ratio

from pcrsolve.adapters import RNN, StackedRNN

GATES = ("z", "r", "c")
_MAX_ELEMENTS = 1 << 23  # T * batch * m


def _moved(sol) -> int:
    """Sweeps of a fixed-iteration run whose update exceeded the default tolerance."""
    tol = np.finfo(sol.states.dtype).eps ** 0.75
    return int(sum(r > tol for r in sol.residuals))


# ----------------------------------------------------------------------------- ParaGRU


def paragru_params(rng, m: int, d_in: int) -> dict[str, np.ndarray]:
    """A ParaGRU layer as ParaRNN initialises it: |a| <= 0.5, U of unit gain."""
    p = {f"a_{g}": rng.uniform(-0.5, 0.5, m) for g in GATES}
    p |= {f"U_{g}": rng.standard_normal((m, d_in)) / np.sqrt(d_in) for g in GATES}
    return p | {f"b_{g}": 0.1 * rng.standard_normal(m) for g in GATES}


def _projections(p, x):
    """``U_g x_t + b_g`` of all steps in one product: ``(T, batch, 3, m)``."""
    U = np.concatenate([p[f"U_{g}"] for g in GATES])
    b = np.concatenate([p[f"b_{g}"] for g in GATES])
    m = p["a_z"].shape[0]
    return (x.reshape(-1, x.shape[-1]) @ U.T + b).reshape(*x.shape[:-1], 3, m)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def user_loop(p, x, h0):
    """The user's ParaGRU loop in NumPy (all states)."""
    P = _projections(p, x)
    az, ar, ac = p["a_z"], p["a_r"], p["a_c"]
    h = h0
    out = np.empty((x.shape[0], *h0.shape))
    for t in range(x.shape[0]):
        z = _sigmoid(az * h + P[t, ..., 0, :])
        r = _sigmoid(ar * h + P[t, ..., 1, :])
        c = np.tanh(ac * (r * h) + P[t, ..., 2, :])
        h = h + z * (c - h)
        out[t] = h
    return out


def user_backprop(p, x, h0, g):
    """Hand-written back-propagation through time of ``sum_t <g[t], h_t>`` (the user's loop)."""
    P = _projections(p, x)
    az, ar, ac = p["a_z"], p["a_r"], p["a_c"]
    T = x.shape[0]
    hs, zs, rs, cs = [], [], [], []
    h = h0
    for t in range(T):
        z = _sigmoid(az * h + P[t, ..., 0, :])
        r = _sigmoid(ar * h + P[t, ..., 1, :])
        c = np.tanh(ac * (r * h) + P[t, ..., 2, :])
        hs.append(h)
        zs.append(z)
        rs.append(r)
        cs.append(c)
        h = h + z * (c - h)
    dP = np.empty_like(P)
    grads = {f"a_{q}": np.zeros_like(az) for q in GATES}
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        u = g[t] + carry
        h, z, r, c = hs[t], zs[t], rs[t], cs[t]
        d_c = u * z * (1 - c * c)
        d_z = u * (c - h) * z * (1 - z)
        g_rh = ac * d_c
        d_r = g_rh * h * r * (1 - r)
        carry = u * (1 - z) + g_rh * r + az * d_z + ar * d_r
        grads["a_z"] += (d_z * h).reshape(-1, h.shape[-1]).sum(0)
        grads["a_r"] += (d_r * h).reshape(-1, h.shape[-1]).sum(0)
        grads["a_c"] += (d_c * r * h).reshape(-1, h.shape[-1]).sum(0)
        dP[t, ..., 0, :], dP[t, ..., 1, :], dP[t, ..., 2, :] = d_z, d_r, d_c
    D = dP.reshape(-1, 3, h0.shape[-1])
    X = x.reshape(-1, x.shape[-1])
    for i, q in enumerate(GATES):
        grads[f"U_{q}"] = D[:, i].T @ X
        grads[f"b_{q}"] = D[:, i].sum(0)
    grads["h0"] = carry
    return grads


def _newton_sweeps(p, x) -> tuple[int, int]:
    """``(iterations, sweeps)`` of Newton from ParaRNN's guess: the sweeps of a fixed-iteration
    run whose update exceeded the default tolerance, and one more that confirms it."""
    fixed = RNN("gru_diag", p, x).forward(method="diagonal", tol=0, max_iter=12)
    moved = _moved(fixed)
    return moved, moved + 1


def bench_paragru(quick: bool, rounds: int) -> list[dict[str, Any]]:
    Ts = [1 << 10, 1 << 12] if quick else [1 << e for e in range(10, 17)]
    cases = [(16, 1)] if quick else [(m, b) for m in (16, 64, 256) for b in (1, 8)]
    rows = []
    for m, batch in cases:
        for T in Ts:
            if T * batch * m > _MAX_ELEMENTS:
                continue
            rng = np.random.default_rng(T + m + batch)
            d_in = 8
            p = paragru_params(rng, m, d_in)
            x = rng.standard_normal((T, batch, d_in) if batch > 1 else (T, d_in))
            h0 = np.zeros((*x.shape[1:-1], m))
            iterations, sweeps = _newton_sweeps(p, x)
            last: dict[str, Any] = {}

            def newton(p=p, x=x, last=last, sweeps=sweeps):
                # The sweeps alone (no cost model that could prefer the loop), as many as the
                # adaptive solve needs to converge; the last one's update verifies it.
                last["newton"] = RNN("gru_diag", p, x).forward(method="diagonal", tol=0, max_iter=sweeps)

            def forward(p=p, x=x, last=last):
                last["forward"] = RNN("gru_diag", p, x).forward()

            def compiled(p=p, x=x, T=T, last=last):
                rnn = RNN("gru_diag", p, x)
                last["loop"] = rnn.sequential(rnn.h0, 0, T)

            big = T * batch * m > (1 << 20)
            times = interleaved(
                {
                    "baseline": lambda p=p, x=x, h0=h0: user_loop(p, x, h0),
                    "newton": newton,
                    "forward": forward,
                    "compiled": compiled,
                },
                2 if big else rounds,
            )
            ref = user_loop(p, x, h0)
            got = {k: getattr(v, "states", v) for k, v in last.items()}
            err = max(float(np.max(np.abs(a - ref))) for a in got.values())
            assert err < 1e-9 and last["newton"].converged, err
            common = {"benchmark": "paragru_forward", "T": T, "m": m, "batch": batch}
            common |= {"baseline": "NumPy loop over steps", "baseline_ms": median_ms(times, "baseline")}
            for name, label, extra in (
                ("newton", "newton", {"iterations": iterations, "sweeps": sweeps}),
                ("forward", "forward()", {"route": last["forward"].route}),
                ("compiled", "compiled loop", {}),
            ):
                row = {
                    **common,
                    "method": label,
                    "pcrsolve_ms": median_ms(times, name),
                    "ratio": median_ratio(times, name),
                    **extra,
                }
                if name != "compiled":  # > 1: faster than the adapter's compiled loop
                    row["vs_compiled_loop"] = median_ratio(times, name, "compiled")
                if name == "forward" and (T, m, batch) == (16384, 16, 1):
                    row["target"] = 8.0
                rows.append(row | {"max_abs_err": err})
    for m, batch in cases:
        for method in ("newton", "forward()", "compiled loop"):
            mine = [r for r in rows if (r["m"], r["batch"], r["method"]) == (m, batch, method)]
            wins = [r["T"] for i, r in enumerate(mine) if all(q["ratio"] > 1.0 for q in mine[i:])]
            rows.append(
                {
                    "benchmark": "paragru_crossover",
                    "m": m,
                    "batch": batch,
                    "method": f"{method}: from T = {wins[0]}" if wins else f"{method}: no T measured",
                    "crossover_T": wins[0] if wins else None,
                    "baseline": "NumPy loop over steps",
                }
            )
    return rows


def cell_params(rng, cell: str, w: int, d_in: int) -> dict[str, np.ndarray]:
    """Parameters of ``cell``: recurrent weights of gain about 0.5, U of unit gain."""
    gates = ("",) if cell == "elman" else ("_f", "_z", "_o") if cell == "lstm_diag" else ("_z", "_r", "_c")
    p = {f"U{g}": rng.standard_normal((w, d_in)) / np.sqrt(d_in) for g in gates}
    p |= {f"b{g}": 0.1 * rng.standard_normal(w) for g in gates}
    if cell in ("elman", "gru"):
        return p | {f"W{g}": 0.5 * rng.standard_normal((w, w)) / np.sqrt(w) for g in gates}
    p |= {f"a{g}": rng.uniform(-0.5, 0.5, w) for g in gates}
    if cell == "lstm_diag":
        p |= {"p_f": rng.uniform(-0.5, 0.5, w), "p_o": rng.uniform(-0.5, 0.5, w)}
    return p


def bench_cells(quick: bool, rounds: int) -> list[dict[str, Any]]:
    T, w, d_in = 4096, 16, 8
    rows = []
    for cell in ("elman", "gru", "gru_diag", "lstm_diag"):
        rng = np.random.default_rng(7)
        p = cell_params(rng, cell, w, d_in)
        x = rng.standard_normal((T, d_in))
        method = RNN(cell, p, x).method
        moved = _moved(RNN(cell, p, x).forward(method=method, tol=0, max_iter=12))
        last: dict[str, Any] = {}

        def compiled(cell=cell, p=p, x=x, last=last):
            rnn = RNN(cell, p, x)
            last["loop"] = rnn.sequential(rnn.h0, 0, T)

        def newton(cell=cell, p=p, x=x, last=last, method=method, moved=moved):
            last["newton"] = RNN(cell, p, x).forward(method=method, tol=0, max_iter=moved + 1)

        def forward(cell=cell, p=p, x=x, last=last):
            last["forward"] = RNN(cell, p, x).forward()

        times = interleaved({"baseline": compiled, "newton": newton, "forward": forward}, rounds)
        err = max(float(np.max(np.abs(last[k].states - last["loop"]))) for k in ("newton", "forward"))
        assert err < 1e-9 and last["newton"].converged, err
        for name, label, extra in (
            ("newton", f"newton (fused sweeps, {method})", {"iterations": moved, "sweeps": moved + 1}),
            ("forward", "forward()", {"route": last["forward"].route}),
        ):
            rows.append(
                {
                    "benchmark": "rnn_cells",
                    "cell": cell,
                    "T": T,
                    "m": w,
                    "batch": 1,
                    "method": label,
                    "baseline": "the compiled loop (RNN.sequential)",
                    "baseline_ms": median_ms(times, "baseline"),
                    "pcrsolve_ms": median_ms(times, name),
                    "ratio": median_ratio(times, name),
                    "max_abs_err": err,
                    **extra,
                }
            )
    return rows


def bench_paragru_gradients(quick: bool, rounds: int) -> list[dict[str, Any]]:
    T, m = (2048 if quick else 16384), 16
    rng = np.random.default_rng(5)
    p = paragru_params(rng, m, 8)
    x = rng.standard_normal((T, 8))
    h0 = np.zeros(m)
    g = rng.standard_normal((T, m)) / T
    states = user_loop(p, x, h0)
    want = user_backprop(p, x, h0, g)
    got = RNN("gru_diag", p, x).gradients(states, g)
    err = max(float(np.max(np.abs(got[k] - want[k])) / (1e-300 + np.max(np.abs(want[k])))) for k in want)
    assert err < 1e-9, err
    times = interleaved(
        {
            "baseline": lambda: user_backprop(p, x, h0, g),
            "pcrsolve": lambda: RNN("gru_diag", p, x).gradients(states, g),
        },
        rounds,
    )
    return [
        {
            "benchmark": "paragru_gradients",
            "T": T,
            "m": m,
            "batch": 1,
            "baseline": "NumPy back-propagation through time",
            "baseline_ms": median_ms(times, "baseline"),
            "pcrsolve_ms": median_ms(times, "pcrsolve"),
            "ratio": median_ratio(times, "pcrsolve"),
            "max_rel_error": err,
        }
    ]


# ----------------------------------------------------------------------------- stacked


def bench_stacked(quick: bool, rounds: int) -> list[dict[str, Any]]:
    T, m, d_in = (256 if quick else 512), 16, 8
    rows = []
    for k in (2,) if quick else (2, 4, 8):
        rng = np.random.default_rng(k)
        layers = [("gru_diag", paragru_params(rng, m, d_in if i == 0 else m)) for i in range(k)]
        x = rng.standard_normal((T, d_in))

        def loop(layers=layers, x=x):
            h = x
            for _, q in layers:
                h = user_loop(q, h, np.zeros(m))
            return h

        net = StackedRNN(layers, x)
        lw_fixed = net.forward(method="layerwise", tol=0, max_iter=12)
        grid_fixed = net.forward(method="grid", tol=0, max_iter=12)
        lw_it = sum(_moved(s) for s in lw_fixed.solutions)
        grid_it = _moved(grid_fixed.solutions[0])
        ref = loop()
        lw, grid = net.forward(method="layerwise"), net.forward(method="grid")
        err = max(float(np.max(np.abs(s.states[-1] - ref))) for s in (lw, grid, grid_fixed))
        assert err < 1e-9, err
        times = interleaved(
            {
                "baseline": loop,
                "layerwise": lambda net=net: net.forward(method="layerwise"),
                "grid": lambda net=net: net.forward(method="grid"),
            },
            rounds,
        )
        for method, its, sol in (("layerwise", lw_it, lw), ("grid", grid_it, grid)):
            rows.append(
                {
                    "benchmark": "stacked_grid",
                    "T": T,
                    "m": m,
                    "k": k,
                    "batch": 1,
                    "method": method,
                    "baseline": "NumPy loops, layer after layer",
                    "baseline_ms": median_ms(times, "baseline"),
                    "pcrsolve_ms": median_ms(times, method),
                    "ratio": median_ratio(times, method),
                    "iterations": its,
                    "status": "/".join(sorted({s.status for s in sol.solutions})),
                    "max_abs_err": err,
                }
            )
    return rows


# ----------------------------------------------------------------------------- entry points


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Run every case; return one dict per table row (times in ms, ``ratio`` > 1: faster)."""
    rounds = rounds or (2 if quick else 5)
    return [
        *bench_paragru(quick, rounds),
        *([] if quick else bench_cells(quick, rounds)),
        *bench_paragru_gradients(quick, rounds),
        *bench_stacked(quick, rounds),
    ]


if __name__ == "__main__":
    from run import main

    sys.exit(main(quick="--quick" in sys.argv[1:], only=["rnn"]))
