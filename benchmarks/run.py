"""``python benchmarks/run.py [--quick] [--only a,b] [--out DIR]``: run the suites, print, save, plot.

``make bench`` runs it. Every ``benchmarks/bench_<name>.py`` that exposes
``run(quick: bool) -> list[dict]`` is a suite named ``<name>``; suites that fail to import are
reported and skipped. The records (format in ``benchmarks/README.md``) go to
``benchmarks/results/bench-<time>.json`` (and ``latest.json``), with PNG plots next to them; a
full run (not ``--quick``) also copies the plots and an reStructuredText table the documentation
shows into ``docs/_static/bench/``.
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
_PARAM_KEYS += ("dtype",)


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


def _rst_table(records: Sequence[dict]) -> str:
    rows = [r for r in records if "sweep" not in str(r.get("case", ""))]
    head = ["suite", "case", "sizes", "method", "baseline", "baseline [ms]", "pcrsolve [ms]", "speed-up"]
    body = [
        [
            str(r.get("suite", "")),
            str(_get(r, "case", "name", default="")),
            _params(r) or "-",
            str(_get(r, "method", default="-")),
            str(r.get("baseline", "")) or "-",
            _ms(_get(r, "t_baseline")),
            _ms(_get(r, "t_candidate", "t_pcrsolve")),
            f"{_get(r, 'ratio', 'speedup'):.2f}x"
            if isinstance(_get(r, "ratio", "speedup"), (int, float))
            else "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(head), rule, *(line(b) for b in body), rule])


def _rst_memory(records: Sequence[dict]) -> str:
    rows = [r for r in records if r.get("gbps") is not None and "sweep" not in str(r.get("case", ""))]
    if not rows:
        return ""
    head = ["case", "method", "GB/s", "copy GB/s", "fraction of copy", "peak extra memory / input"]
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
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(head), rule, *(line(b) for b in body), rule])


def write_docs(records: Sequence[dict], info: dict, files: Sequence[Path], when: str) -> None:
    """Copy plots and write the tables the documentation's benchmark page includes."""
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
    text = [machine_line, "", _rst_table(records), ""]
    mem = _rst_memory(records)
    if mem:
        text += [
            "Effective bandwidth (bytes of the inputs and the output, once, divided by the time) against a",
            "NumPy copy moving the same number of bytes, and the peak of NumPy allocations during the call",
            "(the output included) as a multiple of the input bytes:",
            "",
            mem,
            "",
        ]
    (DOCS_BENCH / "tables.inc").write_text("\n".join(text))
    (DOCS_BENCH / "plots.txt").write_text("\n".join(sorted(f.name for f in files)) + "\n")


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
