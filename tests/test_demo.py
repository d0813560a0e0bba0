"""The demo (`python -m pcrsolve demo`) with tiny sizes: it runs, prints an aligned table, is accurate."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pcrsolve import _demo
from pcrsolve.__main__ import main as cli
from pcrsolve._demo import _chains, _linear, _made, _timing

TINY = [
    ("batched tridiagonal", _linear.tridiagonal, {"batch": 8, "n": 33, "rounds": 1}),
    ("block tridiagonal", _linear.block_tridiagonal, {"batch": 3, "n": 17, "m": 3, "rounds": 1}),
    ("IIR filters (recurrence)", _linear.recurrence, {"filters": 4, "length": 100, "rounds": 1}),
]


@pytest.mark.parametrize(("label", "case", "kwargs"), TINY, ids=[t[0] for t in TINY])
def test_linear_cases_are_accurate(label, case, kwargs):
    row = case(**kwargs)
    assert row.case == label
    assert row.error < 1e-12
    assert row.t_reference > 0 and row.t_pcrsolve > 0


def test_banded_storage_matches_dense():
    rng = np.random.default_rng(0)
    B, n, m = 2, 5, 3
    L, U = rng.random((B, n - 1, m, m)), rng.random((B, n - 1, m, m))
    D = rng.random((B, n, m, m))
    ab = _linear.banded(L, D, U)
    bw = 2 * m - 1
    for s in range(B):
        A = np.zeros((n * m, n * m))
        for k in range(n):
            A[k * m : (k + 1) * m, k * m : (k + 1) * m] = D[s, k]
            if k:
                A[k * m : (k + 1) * m, (k - 1) * m : k * m] = L[s, k - 1]
                A[(k - 1) * m : k * m, k * m : (k + 1) * m] = U[s, k - 1]
        dense = np.zeros_like(A)
        for r in range(n * m):
            for c in range(max(0, r - bw), min(n * m, r + bw + 1)):
                dense[r, c] = ab[s, bw + r - c, c]
        np.testing.assert_array_equal(dense, A)


@pytest.mark.parametrize("case", [_chains.chain, _chains.mlp_adapter])
def test_chain_cases_match_sequential(case):
    row = case(layers=32, width=3, rounds=1)
    assert row.error <= 1e-10
    assert row.extra["converged"]
    assert row.extra["route"] in ("sequential", "newton")
    assert (row.extra["iterations"] == 0) == (row.extra["route"] == "sequential")
    note = _chains.chain_note(row)
    assert note.startswith(row.case) and "x the user's loop" in note and "x sequential_chain" in note
    assert ("sequential loop" in note) == (row.extra["route"] == "sequential")


def test_ddim_case_matches_the_sampler_loop():
    row = _chains.ddim_sampling(steps=60, rounds=1)
    assert row.case == "DDIM sampler (diffusion)" and row.reference == "user loop"
    assert row.error <= 1e-7 and row.extra["converged"]
    assert row.extra["route"] in ("sequential", "newton")


def test_ring_denoiser_jvp_is_its_derivative():
    """The DDIM case's exact denoiser against central differences."""
    eps, jvp = _chains.ring_denoiser(lambda t: np.linspace(0.05, 0.95, 10)[t])
    rng = np.random.default_rng(1)
    x, u, t = rng.standard_normal((10, 3, 2)), rng.standard_normal((10, 3, 2)), np.arange(10)
    h = 1e-6
    fd = (eps(x + h * u, t) - eps(x - h * u, t)) / (2 * h)
    np.testing.assert_allclose(jvp(x, t, u), fd, rtol=1e-6, atol=1e-7)


def test_chain_note_says_when_the_sweeps_fell_back():
    extra = {
        "route": "newton",
        "route_reason": "auto: ...",
        "status": "sequential",
        "message": "finished steps 9..31 with the sequential loop after 4 sweeps: max_iter = 4",
        "iterations": 4,
        "converged": True,
        "t_sequential_chain": 2.0,
    }
    row = _timing.Row("c", "s", "user loop", 0.0, 1.0, 0.5, 0.0, extra)
    note = _chains.chain_note(row)
    assert "newton sweeps, 4 Newton iterations, then FELL BACK to the loop: finished steps 9..31" in note
    assert "2.00x the user's loop, 4.00x sequential_chain" in note


def test_made_case_samples_identically_in_fewer_calls():
    row = _made.made_sampling(pixels=48, hidden=32, batch=3, rounds=1)
    assert row.error == 0.0  # bit for bit the pixel-by-pixel samples
    assert row.extra["converged"] and 1 <= row.extra["sweeps"] < 48
    assert "identical" in row.extra["note"]


def test_made_is_autoregressive():
    """Output position i of the demo's MADE does not move when positions >= i do."""
    model = _made.MADE(20, (16, 16), seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 20))
    for i in range(20):
        y = x.copy()
        y[:, i:] = rng.standard_normal((2, 20 - i))
        for a, b in zip(model.params(x), model.params(y)):
            np.testing.assert_array_equal(a[:, : i + 1], b[:, : i + 1])


def test_table_is_aligned_and_points_to_docs():
    out = io.StringIO()
    cases = [
        *TINY,
        ("tanh MLP chain (DeepPCR)", _chains.chain, {"layers": 16, "width": 2, "rounds": 1}),
        ("MLP adapter vs user loop", _chains.mlp_adapter, {"layers": 16, "width": 2, "rounds": 1}),
        ("DDIM sampler (diffusion)", _chains.ddim_sampling, {"steps": 20, "rounds": 1}),
    ]
    assert _demo.main(file=out, cases=cases) == 0
    lines = out.getvalue().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("case"))
    table = lines[head : head + 2 + len(cases)]
    assert set(table[1]) == {"-"}
    assert len({len(line) for line in table}) == 1, table  # every row as wide as the header
    for line, (label, _, _) in zip(table[2:], cases):
        assert line.startswith(label)
        assert line.rstrip().endswith("x")
    text = out.getvalue()
    assert "make docs" in text and "examples/" in text and "make bench" in text


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit):
        cli(["nonsense"])
    assert "demo" in capsys.readouterr().err


def test_cli_config(capsys):
    assert cli(["config"]) == 0
    assert "numpy" in capsys.readouterr().out
