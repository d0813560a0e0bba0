"""The benchmark driver's documentation output: tables with methods as columns, the README block."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("pcrsolve_bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rec(suite, case, method, ratio, **params):
    return {
        "suite": suite,
        "case": case,
        "method": method,
        "params": {**params, "method": method},
        "baseline": "dgtsv loop",
        "t_baseline": 0.025,
        "t_candidate": 0.025 / ratio,
        "ratio": ratio,
    }


PAIRS = (("auto", 5.0), ("pcr", 1.0))
RECORDS = [
    *(_rec("linear", "batched tridiagonal", m, r, batch=4096, n=256) for m, r in PAIRS),
    *(_rec("linear", "one tridiagonal system", m, r / 3, batch=1, n=2**21) for m, r in PAIRS),
    _rec("linear", "factored solve, block tridiagonal", "auto", 3.0, batch=32, n=1024, backend="numba"),
    *(
        {
            "suite": "coldstart",
            "case": "first call",
            "method": "solve_tridiagonal",
            "what": "n = 100",
            "params": {"function": "solve_tridiagonal", "cache": cache},
            "t_candidate": t,
            "import_s": 0.1,
        }
        for cache, t in (("cold", 1.25), ("warm", 0.05))
    ),
]


def test_one_row_per_case_with_methods_as_columns(run):
    tables = run.doc_tables(RECORDS)
    lines = tables["linear.inc"].splitlines()
    assert lines[1].split()[-2:] == ["auto", "pcr"]
    rows = [line for line in lines if line.startswith(("batched", "one"))]
    assert len(rows) == 2 and rows[0].split()[-2:] == ["5.00x", "1.00x"]
    assert "1.25" in tables["coldstart.inc"] and "0.05" in tables["coldstart.inc"]
    assert tables["chain.inc"].strip() == "(not measured in the last run)"


def test_readme_block_is_rewritten_in_place(run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{run.README_BEGIN}\nold\n{run.README_END}\n\nrest\n")
    info = {"cpu": "a CPU", "usable_cores": 2}
    assert run.write_readme(run.readme_numbers(RECORDS, info, "2026-01-01 12:00"), readme)
    text = readme.read_text()
    assert text.startswith("# title\n\n") and text.endswith(f"{run.README_END}\n\nrest\n")
    assert "old" not in text and "2026-01-01 12:00" in text
    assert "5.00x" in text and "3.00x" in text and "1.2 s" in text
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    assert not run.write_readme("x", other) and other.read_text() == "no markers\n"
