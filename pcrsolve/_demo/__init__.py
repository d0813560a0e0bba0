"""``python -m pcrsolve demo``: each solver against its SciPy (or plain-loop) reference.

Every case builds its problem, solves it once with the reference and once with pcrsolve (the
first pcrsolve call compiles or loads the Numba kernels and is not timed), checks the accuracy,
then times reference and pcrsolve in alternation and reports the medians and their ratio.
Each case is a function returning a :class:`~._timing.Row`, so the tests can run them with tiny
sizes: the linear cases live in ``_linear``, the chains in ``_chains``, autoregressive sampling
in ``_made``; this module runs them and prints the table.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import numpy as np

from ._chains import chain, chain_note, ddim_sampling, mlp_adapter
from ._linear import block_tridiagonal, dask_chunked, recurrence, tridiagonal
from ._made import made_sampling
from ._timing import Row

__all__ = ["default_cases", "format_row", "header", "main"]


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
        ("DDIM sampler (diffusion)", ddim_sampling, {}),
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
        "`python benchmarks/run.py --quick`) runs the benchmarks and plots them.",
        file=out,
    )
    return 0
