"""``python benchmarks/run.py [--quick] [--only a,b] [--out DIR]``: run the suites, print, save, plot.

``make bench`` runs it. Every ``benchmarks/bench_<name>.py`` that exposes
``run(quick: bool) -> list[dict]`` is a suite named ``<name>``; suites that fail to import are
reported and skipped. The records (format in ``benchmarks/README.md``) go to
``benchmarks/results/bench-<time>.json`` (and ``latest.json``), with PNG plots next to them; a
full run (not ``--quick``) also copies the plots and the reStructuredText tables the
documentation shows into ``docs/_static/bench/`` and rewrites the README's few benchmark numbers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["machine", "main", "ratio_table", "run_suites", "suites"]

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
DOCS_BENCH = ROOT / "docs" / "_static" / "bench"


def machine() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, threads, library versions."""
    import numba
    import numpy as np
    import scipy

    import pcrsolve

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "pcrsolve": pcrsolve.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
            for p in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def suites() -> list[str]:
    """The suite names: ``<name>`` for every ``benchmarks/bench_<name>.py``, in a fixed order."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py"))


def _load(name: str):
    path = BENCHMARKS / f"bench_{name}.py"
    if not path.is_file():
        return None, f"{path.relative_to(ROOT)} not found"
    spec = importlib.util.spec_from_file_location(f"pcrsolve_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a suite that does not import is skipped, not fatal
        return None, f"import failed: {type(exc).__name__}: {exc}"
    if not callable(getattr(module, "run", None)):
        return None, "no run(quick) function"
    return module, None


def run_suites(
    quick: bool, only: Sequence[str] | None = None, out: TextIO | None = None
) -> tuple[list[dict], dict[str, str]]:
    """Run the available suites; return their records and the status of each suite."""
    out = out if out is not None else sys.stdout
    records: list[dict] = []
    status: dict[str, str] = {}
    for name in only or suites():
        module, why = _load(name)
        if module is None:
            status[name] = f"skipped ({why})"
            print(f"[{name}] skipped: {why}", file=out, flush=True)
            continue
        print(f"[{name}] running{' (quick)' if quick else ''} ...", file=out, flush=True)
        t = time.perf_counter()
        try:
            recs = list(module.run(quick))
        except Exception as exc:
            status[name] = f"failed ({type(exc).__name__}: {exc})"
            print(f"[{name}] FAILED:\n{traceback.format_exc()}", file=out, flush=True)
            continue
        records += [normalize(r, name) for r in recs]
        status[name] = f"ok ({len(recs)} records, {time.perf_counter() - t:.0f} s)"
        print(f"[{name}] {status[name]}", file=out, flush=True)
    return records, status


# ----------------------------------------------------------------------- records

# Keys of a flat record that describe the problem (the rest are measurements).
_PARAM_KEYS = ("L", "n_steps", "T", "n", "m", "k", "batch", "width", "gain", "eta", "window", "method")
_PARAM_KEYS += ("dtype", "chunks", "workers")


def normalize(r: dict, suite: str) -> dict:
    """Fill the common keys (``case``, ``params``, ``t_baseline``, ``t_candidate``, ``ratio``).

    Suites may return flat records (``benchmark``, ``L``, ``m``, ``baseline_ms``,
    ``pcrsolve_ms``, ...); the original keys are kept.
    """
    r = dict(r)
    r.setdefault("suite", suite)
    if r.get("case") is None:
        r["case"] = _get(r, "benchmark", "name", default="")
    if not isinstance(r.get("params"), dict):
        r["params"] = {k: r[k] for k in _PARAM_KEYS if k in r and isinstance(r[k], (int, float, str))}
    for ours, theirs in (("t_baseline", "baseline_ms"), ("t_candidate", "pcrsolve_ms")):
        if r.get(ours) is None and isinstance(r.get(theirs), (int, float)):
            r[ours] = r[theirs] / 1e3
    if r.get("ratio") is None and isinstance(r.get("speedup"), (int, float)):
        r["ratio"] = r["speedup"]
    if r.get("method") is None and "method" in r["params"]:
        r["method"] = r["params"]["method"]
    return r


# ----------------------------------------------------------------------- table


def _get(r: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if r.get(k) is not None:
            return r[k]
    return default


def _params(r: dict) -> str:
    p = dict(r.get("params") or {})
    p.pop("method", None)
    p.pop("dtype", None)
    return " ".join(f"{k}={v}" for k, v in p.items())


def _ms(t: Any) -> str:
    return f"{1e3 * t:.2f}" if isinstance(t, (int, float)) else "-"


def ratio_table(records: Sequence[dict], *, sweeps: bool = False) -> str:
    """One aligned table: suite, case, sizes, method, baseline, medians, ratio."""
    rows = []
    for r in records:
        if not sweeps and "sweep" in str(r.get("case", "")):
            continue
        ratio = _get(r, "ratio", "speedup")
        extra = []
        if r.get("iterations") is not None:
            extra.append(f"{r['iterations']} it")
        if r.get("gbps") is not None:
            extra.append(f"{r['gbps']:.2f} GB/s ({100 * r.get('gbps_fraction_of_copy', 0):.0f}% of copy)")
        if r.get("peak_extra_over_input") is not None:
            extra.append(f"mem {r['peak_extra_over_input']:.2f}x in")
        err = _get(r, "max_rel_error", "max_error", "max_abs_err")
        if isinstance(err, (int, float)):
            extra.append(f"err {err:.0e}")
        rows.append(
            (
                str(r.get("suite", "")),
                str(_get(r, "case", "name", "benchmark", default="")),
                _params(r),
                str(_get(r, "method", default=(r.get("params") or {}).get("method", ""))),
                str(r.get("baseline", "")),
                _ms(_get(r, "t_baseline")),
                _ms(_get(r, "t_candidate", "t_pcrsolve")),
                f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else "-",
                ", ".join(extra),
            )
        )
    head = ("suite", "case", "sizes", "method", "baseline", "base [ms]", "ours [ms]", "ratio", "notes")
    right = {5, 6, 7}
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]

    def fmt(row):
        return "  ".join(
            f"{c:>{w}}" if i in right else f"{c:<{w}}" for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [fmt(head), "-" * len(fmt(head))] + [fmt(row) for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------- plots


def _series(records, case: str, x: str, by: str = "method"):
    out: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("case") != case:
            continue
        p = r.get("params") or {}
        if x in p and isinstance(_get(r, "ratio", "speedup"), (int, float)):
            out.setdefault(str(p.get(by, r.get(by))), []).append((p[x], _get(r, "ratio", "speedup")))
    return {k: sorted(v) for k, v in out.items()}


def _line_plot(path: Path, series, xlabel: str, ylabel: str, title: str, logy: bool = True) -> Path | None:
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=100)
    for label, pts in series.items():
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o", ms=3, label=label)
    ax.set_xscale("log", base=2)
    if logy:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if "speed-up" in ylabel:
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _gbps_plot(path: Path, records) -> Path | None:
    rows = [r for r in records if r.get("gbps") is not None and "sweep" not in str(r.get("case"))]
    rows = [r for r in rows if r.get("method") == "auto"] or rows
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['case']}\n{_params(r)}" for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 0.55 * len(rows) + 1.4), dpi=100)
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [r["gbps"] for r in rows], height=0.4, label="pcrsolve (auto)")
    ax.barh([i - 0.2 for i in y], [r["copy_gbps"] for r in rows], height=0.4, label="NumPy copy, same bytes")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("effective GB/s (bytes of inputs + output / time)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _chain_series(records, suite: str, value: str, x_keys=("L", "n_steps", "n", "T"), by_keys=("m", "gain")):
    out: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("suite") != suite:
            continue
        p = {**(r.get("params") or {}), **r}
        x = next((p[k] for k in x_keys if isinstance(p.get(k), (int, float))), None)
        by = ", ".join(f"{k} = {p[k]}" for k in by_keys if p.get(k) is not None)
        v = _get(r, value) if value != "ratio" else _get(r, "ratio", "speedup")
        method = p.get("method")
        if x is None or not isinstance(v, (int, float)):
            continue
        label = ", ".join(s for s in (str(r.get("case", "")), by, str(method or "")) if s)
        out.setdefault(label, []).append((x, v))
    # Keep series with at least two points: a plot over L needs a sweep.
    return {k: sorted(v) for k, v in out.items() if len(v) >= 2}


def plots(records: Sequence[dict], outdir: Path) -> list[Path]:
    """PNG plots of whatever the records contain; returns the files written."""
    made = [
        _line_plot(
            outdir / "linear_speedup_vs_n.png",
            _series(records, "sweep over n (one system)", "n"),
            "n (one system)",
            "speed-up over LAPACK dgtsv",
            "One tridiagonal system, float64",
        ),
        _line_plot(
            outdir / "linear_speedup_vs_batch.png",
            _series(records, "sweep over batch (n = 256)", "batch"),
            "number of systems (n = 256)",
            "speed-up over a dgtsv loop",
            "Batched tridiagonal systems, float64",
        ),
        _gbps_plot(outdir / "linear_gbps.png", records),
    ]
    for suite in ("chain", "adapters"):
        made.append(
            _line_plot(
                outdir / f"{suite}_speedup_vs_L.png",
                _chain_series(records, suite, "ratio"),
                "chain length L",
                "speed-up over the sequential loop",
                f"{suite} benchmarks",
            )
        )
        made.append(
            _line_plot(
                outdir / f"{suite}_iterations.png",
                _chain_series(records, suite, "iterations"),
                "chain length L",
                "iterations",
                f"{suite}: iterations",
                logy=False,
            )
        )
    made += _rnn_plots(records, outdir)
    return [p for p in made if p is not None]


def _rnn_plots(records: Sequence[dict], outdir: Path) -> list[Path | None]:
    """ParaGRU over the sequence length: Newton's and the compiled loop's speed-ups, iterations."""
    rows = {
        method: [r for r in records if r.get("case") == "paragru_forward" and r.get("method") == method]
        for method in ("newton", "compiled loop")
    }
    by = ("m", "batch")
    return [
        _line_plot(
            outdir / "rnn_speedup_vs_T.png",
            _chain_series(rows["newton"], "rnn", "ratio", by_keys=by),
            "sequence length T",
            "speed-up over the user's NumPy loop",
            "ParaGRU: RNN.forward (Newton over time)",
        ),
        _line_plot(
            outdir / "rnn_loop_speedup_vs_T.png",
            _chain_series(rows["compiled loop"], "rnn", "ratio", by_keys=by),
            "sequence length T",
            "speed-up over the user's NumPy loop",
            "ParaGRU: RNN.sequential (compiled loop)",
        ),
        _line_plot(
            outdir / "rnn_iterations.png",
            _chain_series(rows["newton"], "rnn", "iterations", by_keys=by),
            "sequence length T",
            "Newton iterations",
            "ParaGRU: Newton iterations over time",
            logy=False,
        ),
    ]


# ----------------------------------------------------------------------- docs


def _rst(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A reStructuredText simple table (a cell of just "-", which would start a list, as "—")."""
    body = [["—" if c == "-" else c for c in row] for row in body]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(head), rule, *(line(b) for b in body), rule])


def _x(r: dict | None) -> str:
    v = None if r is None else _get(r, "ratio", "speedup")
    return f"{v:.2f}x" if isinstance(v, (int, float)) else "-"


def _by_case(records: Sequence[dict]) -> tuple[list[str], list[tuple[str, str, dict[str, dict]]]]:
    """Methods (in order of appearance) and one row per (case, sizes): ``{method: record}``."""
    methods: list[str] = []
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for r in records:
        m = str(_get(r, "method", default="-"))
        if m not in methods:
            methods.append(m)
        rows.setdefault((str(_get(r, "case", "name", default="")), _params(r) or "-"), {})[m] = r
    return methods, [(case, sizes, cells) for (case, sizes), cells in rows.items()]


def _rst_ratios(records: Sequence[dict]) -> str:
    """One row per case and sizes: a speed-up column per method, or times and one speed-up."""
    methods, rows = _by_case(records)
    if not rows:
        return ""
    if len(methods) > 1:
        head = ["case", "sizes", "baseline", "baseline [ms]", *methods]
        body = []
        for case, sizes, cells in rows:
            first = next(iter(cells.values()))
            body.append(
                [case, sizes, str(first.get("baseline") or "-"), _ms(_get(first, "t_baseline"))]
                + [_x(cells.get(m)) for m in methods]
            )
        return _rst(head, body)
    head = ["case", "sizes", "baseline", "baseline [ms]", "pcrsolve [ms]", "speed-up"]
    body = []
    for case, sizes, cells in rows:
        r = next(iter(cells.values()))
        body.append(
            [
                case,
                sizes,
                str(r.get("baseline") or "-"),
                _ms(_get(r, "t_baseline")),
                _ms(_get(r, "t_candidate", "t_pcrsolve")),
                _x(r),
            ]
        )
    return _rst(head, body)


def _rst_coldstart(records: Sequence[dict]) -> str:
    rows: dict[str, dict[str, dict]] = {}
    for r in records:
        rows.setdefault(str(r.get("method")), {})[str((r.get("params") or {}).get("cache"))] = r
    if not rows:
        return ""
    head = ["first call of", "inputs", "cold cache [s]", "warm cache [s]", "import [s]"]
    body = []
    for name, by in rows.items():
        cold, warm = by.get("cold", {}), by.get("warm", {})
        body.append(
            [
                "``python -m pcrsolve demo``" if name == "demo" else f"``{name}``",
                str(cold.get("what", "all of it, end to end")),
                f"{cold['t_candidate']:.2f}" if "t_candidate" in cold else "-",
                f"{warm['t_candidate']:.2f}" if "t_candidate" in warm else "-",
                f"{cold['import_s']:.2f}" if "import_s" in cold else "-",
            ]
        )
    return _rst(head, body)


def _rst_memory(records: Sequence[dict]) -> str:
    rows = [r for r in records if r.get("gbps") is not None]
    if not rows:
        return ""
    head = ["case", "method", "GB/s", "copy GB/s", "of copy", "peak extra / input"]
    body = [
        [
            str(r.get("case")),
            str(r.get("method")),
            f"{r['gbps']:.2f}",
            f"{r['copy_gbps']:.2f}",
            f"{100 * r['gbps_fraction_of_copy']:.0f}%",
            f"{r['peak_extra_over_input']:.2f}" if r.get("peak_extra_over_input") is not None else "-",
        ]
        for r in rows
    ]
    return _rst(head, body)


def _rst_factorizations(records: Sequence[dict]) -> str:
    """Full solve / factored solve, per method: one row per structure, sizes and backend."""
    methods, rows = _by_case(records)
    head = ["structure", "sizes", "backend", *methods]
    body = []
    for case, _, cells in rows:
        p = next(iter(cells.values())).get("params") or {}
        sizes = " x ".join(str(p[k]) for k in ("batch", "n") if k in p)
        if "m" in p:
            sizes += f", {p['m']}x{p['m']} blocks"
        body.append([case.removeprefix("factored solve, "), sizes, str(p.get("backend", "-"))])
        body[-1] += [_x(cells.get(m)) for m in methods]
    return _rst(head, body)


def _suite(records: Sequence[dict], name: str) -> list[dict]:
    return [r for r in records if r.get("suite") == name and "sweep" not in str(r.get("case", ""))]


def _factored(r: dict) -> bool:
    return str(r.get("case", "")).startswith("factored solve")


def doc_tables(records: Sequence[dict]) -> dict[str, str]:
    """The reStructuredText tables the benchmark page includes, by file name.

    The linear suite gives ``linear.inc`` (the solvers), ``factorizations.inc`` and
    ``memory.inc``; ``coldstart.inc``, ``chain.inc`` and ``adapters.inc`` are one suite each.
    The other suites' sections show their figures only.
    """
    linear = _suite(records, "linear")
    tables = {
        "linear.inc": _rst_ratios([r for r in linear if not _factored(r)]),
        "factorizations.inc": _rst_factorizations([r for r in linear if _factored(r)]),
        "memory.inc": _rst_memory(linear),
        "coldstart.inc": _rst_coldstart(_suite(records, "coldstart")),
        "chain.inc": _rst_ratios(_suite(records, "chain")),
        "adapters.inc": _rst_ratios(_suite(records, "adapters")),
    }
    return {name: (text or "(not measured in the last run)") + "\n" for name, text in tables.items()}


# The README's few numbers live between these markers; a full run rewrites them.
README_BEGIN = "<!-- benchmark numbers: written by benchmarks/run.py, do not edit -->"
README_END = "<!-- end of benchmark numbers -->"


def _find(records: Sequence[dict], case: str, method: str, **params: Any) -> dict | None:
    for r in records:
        p = r.get("params") or {}
        if (
            r.get("case") == case
            and r.get("method") == method
            and all(p.get(k) == v for k, v in params.items())
        ):
            return r
    return None


def readme_numbers(records: Sequence[dict], info: dict, when: str) -> str:
    """The README's benchmark lines (Markdown) from this run's records."""
    lines = [f"Measured by `make bench` on {when} ({info['cpu']}, {info['usable_cores']} cores):", ""]
    quoted = [
        (
            "4096 tridiagonal systems, n = 256, against a loop of LAPACK `dgtsv`",
            "batched tridiagonal",
            {"batch": 4096},
        ),
        ("one tridiagonal system, n = 2^21, against `dgtsv`", "one tridiagonal system", {"n": 2**21}),
        (
            "32 block tridiagonal systems, n = 1024, 4x4 blocks, against a `solve_banded` loop",
            "block tridiagonal",
            {},
        ),
        (
            # A tridiagonal factorization saves flops but not memory traffic (~1x); a block one
            # saves the block inversions, the number a user factoring once is after.
            "a solve with a stored block factorization (32 x 1024, 4x4 blocks) against a full solve",
            "factored solve, block tridiagonal",
            {"batch": 32, "backend": "numba"},
        ),
    ]
    for text, case, params in quoted:
        r = _find(records, case, "auto", **params)
        if r is not None:
            lines.append(f'- {text}: {_x(r)} (`method="auto"`)')
    cold = _find(records, "first call", "solve_tridiagonal", cache="cold")
    warm = _find(records, "first call", "solve_tridiagonal", cache="warm")
    if cold is not None and warm is not None:
        lines.append(
            f"- the first `solve_tridiagonal` of a fresh process: {cold['t_candidate']:.1f} s with an empty "
            f"Numba cache (compiling), {warm['t_candidate']:.2f} s once the cache is filled"
        )
    return "\n".join(lines)


def write_readme(text: str, path: Path | None = None) -> bool:
    """Replace the README's block of benchmark numbers; False when it has no markers."""
    path = path or ROOT / "README.md"
    old = path.read_text()
    if README_BEGIN not in old or README_END not in old:
        return False
    head, rest = old.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    path.write_text(f"{head}{README_BEGIN}\n{text}\n{README_END}{tail}")
    return True


def write_docs(records: Sequence[dict], info: dict, files: Sequence[Path], when: str) -> None:
    """Copy plots, write the tables the benchmark page includes and the README's numbers."""
    DOCS_BENCH.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, DOCS_BENCH / f.name)
    blas = "; ".join(info.get("blas", [])) or "unknown"
    machine_line = (
        f"Measured on {when}: {info['cpu']} ({info['usable_cores']} usable cores of {info['cores']}), "
        f"{info['system']}; Python {info['python']}, NumPy {info['numpy']}, SciPy {info['scipy']}, "
        f"Numba {info['numba']} with {info['numba_threads']} threads; BLAS: {blas}; pcrsolve "
        f"{info['pcrsolve']}."
    )
    (DOCS_BENCH / "machine.inc").write_text(machine_line + "\n")
    for name, text in doc_tables(records).items():
        (DOCS_BENCH / name).write_text(text)
    (DOCS_BENCH / "plots.txt").write_text("\n".join(sorted(f.name for f in files)) + "\n")
    write_readme(readme_numbers(records, info, when))


# ----------------------------------------------------------------------- main


def main(quick: bool = False, out: str | None = None, only: Sequence[str] | None = None) -> int:
    """Run, print, save, plot. Returns 0, or 1 when no suite produced records."""
    outdir = Path(out) if out else BENCHMARKS / "results"
    unknown = sorted(set(only or ()) - set(suites()))
    if unknown:
        print(f"unknown suite(s) {unknown}; choose from {', '.join(suites())}.", file=sys.stderr)
        return 2
    info = machine()
    print(
        f"pcrsolve benchmarks{' --quick' if quick else ''} on {info['cpu']}, {info['usable_cores']} cores, "
        f"NumPy {info['numpy']}, SciPy {info['scipy']}, Numba {info['numba']} "
        f"({info['numba_threads']} threads)",
        flush=True,
    )
    records, status = run_suites(quick, only)
    if not records:
        print("no benchmark produced results.", file=sys.stderr)
        return 1
    print("\nRatios: baseline time / pcrsolve time (medians of interleaved rounds; > 1: pcrsolve faster)\n")
    print(ratio_table(records))
    outdir.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": when, "quick": quick, "machine": info, "suites": status, "records": records}
    for name in (f"bench-{stamp}.json", "latest.json"):
        (outdir / name).write_text(json.dumps(payload, indent=1, default=str))
    files = plots(records, outdir)
    print(f"\nwrote {outdir / f'bench-{stamp}.json'} and {len(files)} plot(s) to {outdir}/")
    if not quick and not only:
        write_docs(records, info, files, when)
        print(f"copied the plots and tables to {DOCS_BENCH.relative_to(ROOT)}/ for the documentation")
    return 0


def _cli(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    p.add_argument("--out", default=None, help="directory for the results (default: benchmarks/results/)")
    p.add_argument("--only", default=None, help=f"comma-separated suites (default: {','.join(suites())})")
    args = p.parse_args(argv)
    only = None if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    return main(quick=args.quick, out=args.out, only=only)


if __name__ == "__main__":
    sys.exit(_cli())
