"""Smoke-run every example script with tiny sizes: it must exit 0 and write its PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    pytest.importorskip("matplotlib")
    png = script.with_suffix(".png")
    if png.exists():
        png.unlink()
    env = {**os.environ, "PCRSOLVE_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert png.exists() and png.stat().st_size > 0, f"{script.name} did not write {png.name}"


def test_there_are_three_examples():
    assert {p.stem for p in EXAMPLES} >= {"plot_mlp_depth", "plot_resnet_training", "plot_diffusion_sampling"}
