"""``python -m pcrsolve demo``: each solver against its SciPy (or plain-loop) reference.

Every case builds its problem, solves it once with the reference and once with pcrsolve (the
first pcrsolve call compiles or loads the Numba kernels and is not timed), checks the accuracy,
then times reference and pcrsolve in alternation and reports the medians and their ratio.
Each case is a function returning a :class:`Row`, so the tests can run them with tiny sizes.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

__all__ = [
    "MADE",
    "Row",
    "block_tridiagonal",
    "chain",
    "chain_note",
    "dask_chunked",
    "format_row",
    "header",
    "interleaved",
    "made_sampling",
    "main",
    "mlp_adapter",
    "pixel_by_pixel",
    "recurrence",
    "tridiagonal",
]


@dataclass
class Row:
    """One line of the demo table."""

    case: str
    size: str
    reference: str
    error: float  # max |x - x_ref| / max |x_ref| (relative) or max |x - x_ref| (chains)
    t_reference: float  # median seconds
    t_pcrsolve: float  # median seconds
    warmup: float = 0.0  # seconds of the first pcrsolve call (compilation included)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.t_reference / self.t_pcrsolve if self.t_pcrsolve > 0 else float("inf")


def interleaved(
    baseline: Callable[[], Any], candidate: Callable[[], Any], rounds: int
) -> tuple[float, float]:
    """Median seconds of ``baseline`` and ``candidate``, timed in alternation ``rounds`` times."""
    tb, tc = [], []
    for _ in range(max(1, rounds)):
        t = time.perf_counter()
        baseline()
        tb.append(time.perf_counter() - t)
        t = time.perf_counter()
        candidate()
        tc.append(time.perf_counter() - t)
    return float(np.median(tb)), float(np.median(tc))


def _warm(f: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def _relerr(x, ref) -> float:
    scale = float(np.max(np.abs(ref))) if np.size(ref) else 1.0
    return float(np.max(np.abs(np.asarray(x) - ref))) / (scale or 1.0) if np.size(ref) else 0.0


# ----------------------------------------------------------------------- cases


def tridiagonal(batch: int = 4096, n: int = 256, rounds: int = 9, seed: int = 0) -> Row:
    """Batched diagonally dominant tridiagonal systems against a loop of LAPACK ``dgtsv``."""
    from scipy.linalg import lapack

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    dl, du = rng.uniform(-1, 1, (batch, n - 1)), rng.uniform(-1, 1, (batch, n - 1))
    d = 2.5 + rng.random((batch, n))
    rhs = rng.standard_normal((batch, n))

    def reference():
        x = np.empty_like(rhs)
        for i in range(batch):
            x[i] = lapack.dgtsv(dl[i], d[i], du[i], rhs[i])[3]
        return x

    def candidate():
        return pcr.solve_tridiagonal(dl, d, du, rhs)

    x, warm = _warm(candidate)
    err = _relerr(x, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("batched tridiagonal", f"{batch} x {n}", "dgtsv loop", err, tr, tc, warm)


def _banded(L, D, U):
    """LAPACK banded storage ``ab`` of each block tridiagonal matrix: (B, 4m-1, n m)."""
    B, n, m, _ = D.shape
    bw = 2 * m - 1
    ab = np.zeros((B, 2 * bw + 1, n * m))
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    for blocks, off in ((D, 0), (L, -1), (U, 1)):
        k = np.arange(blocks.shape[1]) + (1 if off < 0 else 0)  # block row of each block
        rows = k[:, None, None] * m + i
        cols = (k[:, None, None] + off) * m + j
        ab[:, bw + rows - cols, cols] = blocks
    return ab


def block_tridiagonal(batch: int = 32, n: int = 1024, m: int = 4, rounds: int = 7, seed: int = 1) -> Row:
    """Block diagonally dominant block tridiagonal systems against a ``solve_banded`` loop."""
    from scipy.linalg import solve_banded

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    L = rng.uniform(-1, 1, (batch, n - 1, m, m))
    U = rng.uniform(-1, 1, (batch, n - 1, m, m))
    D = rng.uniform(-1, 1, (batch, n, m, m)) + 3 * m * np.eye(m)
    rhs = rng.standard_normal((batch, n, m))
    ab = _banded(L, D, U)
    bw = 2 * m - 1

    def reference():
        return np.stack([solve_banded((bw, bw), ab[i], rhs[i].reshape(-1)) for i in range(batch)]).reshape(
            rhs.shape
        )

    def candidate():
        return pcr.solve_block_tridiagonal(L, D, U, rhs)

    x, warm = _warm(candidate)
    err = _relerr(x, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("block tridiagonal", f"{batch} x {n} x {m}x{m}", "solve_banded loop", err, tr, tc, warm)


def recurrence(filters: int = 64, length: int = 100_000, rounds: int = 5, seed: int = 2) -> Row:
    """First-order IIR filters ``y[k] = a y[k-1] + u[k]`` against a ``scipy.signal.lfilter`` loop."""
    from scipy.signal import lfilter

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.99, filters)
    u = rng.standard_normal((filters, length))
    A, b = a[:, None, None], u[:, :, None]  # diagonal A: (filters, 1, 1) broadcasts along the sequence

    def reference():
        return np.stack([lfilter([1.0], [1.0, -a[i]], u[i]) for i in range(filters)])

    def candidate():
        return pcr.linear_recurrence(A, b)

    x, warm = _warm(candidate)
    err = _relerr(x[..., 0], reference())
    tr, tc = interleaved(reference, candidate, rounds)
    return Row("IIR filters (recurrence)", f"{filters} x {length}", "lfilter loop", err, tr, tc, warm)


def dask_chunked(n: int = 2**21, chunks: int = 8, rounds: int = 5, seed: int = 4) -> Row:
    """One long tridiagonal system as a Dask array split into ``chunks`` along its sequence axis.

    ``pcrsolve.dask`` joins the chunks by the partition method (threaded scheduler, no
    cluster); the reference is LAPACK ``dgtsv`` on the whole system, and the row also records
    the single-machine ``solve_tridiagonal``'s time, the chunks and the graph's task count.
    """
    import dask.array as da
    from scipy.linalg import lapack

    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    dl, du = rng.uniform(-1, 1, n - 1), rng.uniform(-1, 1, n - 1)
    d = 2.5 + rng.random(n)
    rhs = rng.standard_normal(n)
    size = -(-n // chunks)
    x = pcr.solve_tridiagonal(dl, da.from_array(d, chunks=size), du, da.from_array(rhs, chunks=size))
    tasks = len(dict(x.__dask_graph__()))

    def reference():
        return lapack.dgtsv(dl, d, du, rhs)[3]

    def candidate():
        return x.compute(scheduler="threads")

    got, warm = _warm(candidate)
    err = _relerr(got, reference())
    tr, tc = interleaved(reference, candidate, rounds)
    single, _ = interleaved(lambda: pcr.solve_tridiagonal(dl, d, du, rhs), lambda: None, rounds)
    return Row(
        "Dask, sequence chunked",
        f"n = {n}, {len(x.chunks[0])} chunks",
        "dgtsv",
        err,
        tr,
        tc,
        warm,
        {"tasks": tasks, "chunks": x.chunks[0], "t_single": single},
    )


def mlp_chain(layers: int, width: int, seed: int = 3):
    """A tanh MLP ``x_k = tanh(W_k x_{k-1} + b_k)`` as a :class:`~pcrsolve.FunctionChain`.

    Returns the chain, an input, and the loop a user writes for it (``loop(x0) -> output``).
    """
    import pcrsolve as pcr

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((layers, width, width)) / np.sqrt(width)
    b = 0.5 * rng.standard_normal((layers, width))

    def step(x, k):
        return np.tanh(
            np.einsum("kij,k...j->k...i", W[k], x) + b[k].reshape(len(k), *(1,) * (x.ndim - 2), -1)
        )

    def jac(x, k):
        y = step(x, k)
        return (1.0 - y * y)[..., None] * W[k].reshape(len(k), *(1,) * (x.ndim - 2), width, width)

    def loop(x):
        for k in range(layers):
            x = np.tanh(W[k] @ x + b[k])
        return x

    return pcr.FunctionChain(step, jac=jac), rng.standard_normal(width), loop


def _chain_row(case: str, size: str, solve, loop, sequential, x0, rounds: int) -> Row:
    """Time ``solve`` against the user's ``loop`` and against ``sequential`` (sequential_chain),
    in alternation; the row's reference is the user's loop."""
    sol, warm = _warm(solve)
    states = np.asarray(sol.states)
    err = float(np.max(np.abs(states[-1] - loop(x0)))) if states.shape[0] else 0.0
    ref_states = sequential()
    err = max(err, float(np.max(np.abs(states - ref_states))) if states.shape[0] else 0.0)
    tl, ts, tc = [], [], []
    for _ in range(max(1, rounds)):
        for f, acc in ((lambda: loop(x0), tl), (sequential, ts), (solve, tc)):
            t = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t)
    extra = {
        "route": sol.route,
        "route_reason": sol.route_reason,
        "status": sol.status,
        "message": sol.message,
        "iterations": int(sol.iterations),
        "converged": bool(sol.converged),
        "t_sequential_chain": float(np.median(ts)),
    }
    return Row(case, size, "user loop", err, float(np.median(tl)), float(np.median(tc)), warm, extra)


def chain(layers: int = 1024, width: int = 8, rounds: int = 7, seed: int = 3) -> Row:
    """A deep tanh MLP written by the user (a ``FunctionChain`` of NumPy functions) solved by
    ``solve_chain`` (``method="auto"``), against the user's loop and ``sequential_chain``."""
    import pcrsolve as pcr

    ch, x0, loop = mlp_chain(layers, width, seed)
    return _chain_row(
        "tanh MLP chain (DeepPCR)",
        f"{layers} layers, m = {width}",
        lambda: pcr.solve_chain(ch, x0, layers),
        loop,
        lambda: pcr.sequential_chain(ch, x0, layers),
        x0,
        rounds,
    )


def mlp_adapter(layers: int = 4096, width: int = 8, rounds: int = 7, seed: int = 3) -> Row:
    """:class:`pcrsolve.adapters.MLP` (``forward()``: the cost model picks its compiled loop or
    fused Newton sweeps) against the loop a user writes and ``sequential_chain``."""
    import pcrsolve as pcr
    from pcrsolve.adapters import MLP

    rng = np.random.default_rng(seed)
    W = 0.5 * rng.standard_normal((layers, width, width)) / np.sqrt(width)
    b = 0.5 * rng.standard_normal((layers, width))
    x0 = rng.standard_normal(width)
    mlp = MLP(W, b)

    def loop(x):
        for k in range(layers):
            x = np.tanh(W[k] @ x + b[k])
        return x

    return _chain_row(
        "MLP adapter vs user loop",
        f"{layers} layers, m = {width}",
        lambda: mlp.forward(x0),
        loop,
        lambda: pcr.sequential_chain(mlp, x0, layers),
        x0,
        rounds,
    )


class MADE:
    """A small NumPy MADE (Germain et al., ICML 2015): a masked ReLU network, autoregressive.

    Output position ``i`` (a mean ``mu`` and a log-scale) reads input positions ``< i`` only:
    hidden units get random degrees and the masks keep the connections that respect them.
    ``weights`` and ``biases`` are per layer; the masks are applied to the weights already.
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (256, 256), seed: int = 0, gain: float = 1.0):
        rng = np.random.default_rng(seed)
        degrees = [np.arange(dim)] + [rng.integers(0, max(dim - 1, 1), h) for h in hidden]
        masks = [degrees[i + 1][:, None] >= degrees[i][None, :] for i in range(len(hidden))]
        out = np.arange(dim)[:, None] > degrees[-1][None, :]
        masks.append(np.concatenate([out, out]))  # the means, then the log-scales
        self.dim, self.masks = dim, masks
        self.weights = [gain * rng.standard_normal(M.shape) * np.sqrt(2.0 / M.shape[1]) * M for M in masks]
        self.weights[-1] *= np.sqrt(0.5)  # a linear output layer
        self.biases = [0.1 * rng.standard_normal(M.shape[0]) for M in masks]

    def params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, log_scale)``, each of ``x``'s shape ``(..., dim)``."""
        h = x
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ W.T + b, 0.0)
        o = h @ self.weights[-1].T + self.biases[-1]
        return o[..., : self.dim], np.clip(o[..., self.dim :], -7.0, 3.0)

    def sampler(self, noise: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``func(x) = mu(x) + exp(log_scale(x)) * noise``: sampling with the noise drawn up front."""

        def func(x):
            mu, log_scale = self.params(x)
            return mu + np.exp(log_scale) * noise

        return func


def pixel_by_pixel(func: Callable[[np.ndarray], np.ndarray], x0: np.ndarray) -> np.ndarray:
    """Autoregressive sampling as usually written: one model call per position."""
    x = np.array(x0, copy=True)
    for i in range(x.shape[-1]):
        x[..., i] = func(x)[..., i]
    return x


def made_sampling(
    pixels: int = 256, hidden: int = 256, batch: int = 16, rounds: int = 3, seed: int = 4
) -> Row:
    """A MADE sampled by Jacobi sweeps (``solve_autoregressive``) against pixel-by-pixel sampling."""
    import pcrsolve as pcr

    model = MADE(pixels, (hidden, hidden), seed)
    func = model.sampler(np.random.default_rng(seed).standard_normal((batch, pixels)))
    x0 = np.zeros((batch, pixels))

    def reference():
        return pixel_by_pixel(func, x0)

    def candidate():
        return pcr.solve_autoregressive(func, x0, tol=0)  # tol=0: bit-for-bit the loop's samples

    sol, warm = _warm(candidate)
    err = float(np.max(np.abs(sol.x - reference()))) if pixels else 0.0
    tr, tc = interleaved(reference, candidate, rounds)
    sweeps = len(sol.residuals)
    return Row(
        "MADE sampling (Jacobi)",
        f"D = {pixels}, batch {batch}",
        "pixel-by-pixel",
        err,
        tr,
        tc,
        warm,
        {
            "sweeps": sweeps,
            "converged": bool(sol.converged),
            "note": f"{sweeps} model calls (Jacobi sweeps) instead of {pixels}, samples "
            f"{'identical' if err == 0 else f'within {err:.1e}'} to pixel-by-pixel sampling.",
        },
    )


def chain_note(row: Row) -> str:
    """What a chain case did: the route, the iterations, a fallback, both speed-ups."""
    e = row.extra
    if e["route"] == "sequential":
        how = f"the sequential loop ({e['route_reason']})"
    else:
        its = "Newton iterations" if e["route"] == "newton" else "iterations"
        how = f"{e['route']} sweeps, {e['iterations']} {its}"
        if e["status"] == "sequential":
            how += f", then FELL BACK to the loop: {e['message']}"
        else:
            how += " (converged)" if e["converged"] else " (NOT converged)"
    vs_chain = e["t_sequential_chain"] / row.t_pcrsolve
    speed = f"{row.speedup:.2f}x the user's loop, {vs_chain:.2f}x sequential_chain"
    return f"{row.case}: {how}; {speed}; max |difference| from the loop {row.error:.1e}."


# ----------------------------------------------------------------------- output

_COLUMNS = (
    ("case", 26, "<"),
    ("size", 22, "<"),
    ("reference", 18, "<"),
    ("max error", 10, ">"),
    ("ref [ms]", 10, ">"),
    ("pcrsolve [ms]", 14, ">"),
    ("speed-up", 9, ">"),
)


def header() -> str:
    """The table's column titles and rule."""
    line = "  ".join(f"{t:{a}{w}}" for t, w, a in _COLUMNS)
    return f"{line}\n{'-' * len(line)}"


def format_row(row: Row) -> str:
    """One aligned table line for ``row``."""
    cells = (
        row.case,
        row.size,
        row.reference,
        f"{row.error:.1e}",
        f"{1e3 * row.t_reference:.1f}",
        f"{1e3 * row.t_pcrsolve:.1f}",
        f"{row.speedup:.2f}x",
    )
    return "  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, _COLUMNS))


def _machine() -> str:
    import numba
    import scipy

    import pcrsolve

    return (
        f"pcrsolve {pcrsolve.__version__} on {platform.machine()}, {platform.system()}; "
        f"NumPy {np.__version__}, SciPy {scipy.__version__}, Numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), float64"
    )


Case = tuple[str, Callable[..., Row], dict[str, Any]]


def default_cases() -> list[Case]:
    """The cases ``python -m pcrsolve demo`` runs, with their full sizes."""
    cases: list[Case] = [
        ("batched tridiagonal", tridiagonal, {}),
        ("block tridiagonal", block_tridiagonal, {}),
        ("IIR filters (recurrence)", recurrence, {}),
        ("tanh MLP chain (DeepPCR)", chain, {}),
        ("MLP adapter vs user loop", mlp_adapter, {}),
        ("MADE sampling (Jacobi)", made_sampling, {}),
    ]
    if importlib.util.find_spec("dask") is not None:
        cases.append(("Dask, sequence chunked", dask_chunked, {}))
    return cases


def main(file: TextIO | None = None, cases: Sequence[Case] | None = None) -> int:
    """Run the demo cases, print the table and notes; return the exit status (0)."""
    out = file if file is not None else sys.stdout
    cases = default_cases() if cases is None else cases
    print(_machine(), file=out)
    print(
        "Each case: accuracy against the reference, then median times of interleaved repetitions "
        "(the first pcrsolve call is a warm-up and is not timed).\n",
        file=out,
    )
    print(header(), file=out, flush=True)
    rows, warmup = [], 0.0
    for label, run, kwargs in cases:
        print(f"{label:<26.26}", end="", file=out, flush=True)  # shows progress while the case runs
        row = run(**kwargs)
        print(format_row(row)[26:], file=out, flush=True)  # the rest of the line
        rows.append(row)
        warmup += row.warmup
    print(file=out)
    for row in rows:
        if "route" in row.extra:
            print(chain_note(row), file=out)
        elif "note" in row.extra:
            print(f"{row.case}: {row.extra['note']}", file=out)
        elif "iterations" in row.extra:
            state = "converged" if row.extra["converged"] else "NOT converged"
            print(
                f"{row.case}: {row.extra['iterations']} Newton iterations ({state}); max |difference| "
                f"from the sequential loop {row.error:.1e}.",
                file=out,
            )
        if "tasks" in row.extra:
            print(
                f"{row.case}: {len(row.extra['chunks'])} chunks of {row.extra['chunks'][0]} rows, "
                f"{row.extra['tasks']} tasks in the graph (three phases: reduce each chunk, solve the "
                f"interface, complete each chunk); the single-machine solve_tridiagonal takes "
                f"{1e3 * row.extra['t_single']:.1f} ms.",
                file=out,
            )
    if warmup > 2.0:
        print(
            f"The first run compiles kernels ({warmup:.0f} s of warm-up, not in the times above); "
            "later runs load them from Numba's cache.",
            file=out,
        )
    print(
        "\nmax error: max |x - x_ref| / max |x_ref| (chains: max |x - x_ref|). speed-up: reference time / "
        "pcrsolve time, medians.\n"
        "More: `make docs` builds the documentation (docs/_build/html/index.html); examples/ holds "
        "MLP, ResNet, diffusion and autoregressive-sampling examples; `make bench` (or "
        "`python -m pcrsolve bench --quick`) runs the benchmarks and plots them.",
        file=out,
    )
    return 0
