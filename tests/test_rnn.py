"""RNN adapters: the cells' steps and Jacobians, the loop, and forward() against plain loops.

References (``rnn_reference``) are the cells written from their equations, one step at a
time, with central finite differences for derivatives. Every cell, float32/float64, batch
shapes, the Numba path (NumPy arrays), the xp path on NumPy (``use_backend("numpy")``) and
on ``array_api_strict``.
"""

from __future__ import annotations

import numpy as np
import pytest
import rnn_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

import pcrsolve as pcr
from conftest import _strict_backend, unchanged
from pcrsolve.adapters import RNN
from pcrsolve.chain._blocks import from_blocks
from reference import dense_from_blocks

CELLS = ref.CELLS
BATCHES = [(), (3,), (2, 3)]
FLOATS = [np.float32, np.float64]
PATHS = ["numba", "numpy"]  # NumPy arrays on the Numba path, and on the xp path


def make(rng, cell, T=40, batch=(2,), w=5, d_in=3, dtype=np.float64, scale=0.5, h0=True):
    p = ref.random_params(rng, cell, w, d_in, scale, dtype)
    x = rng.standard_normal((T, *batch, d_in)).astype(dtype)
    h = (0.5 * rng.standard_normal((*batch, ref.state_size(cell, w)))).astype(dtype) if h0 else None
    return p, x, h


def on(path):
    return pcr.use_backend(path)


# ----------------------------------------------------------------------------- one step


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_step_and_jacobians_match_reference(rng, cell, path):
    T, batch, w = 12, (2,), 4
    p, x, h0 = make(rng, cell, T, batch, w)
    rnn = RNN(cell, p, x, h0=h0)
    m = rnn.state_size
    s = 7
    k = np.array([0, 3, 4, 5, 11, 2, 2])
    X = rng.standard_normal((s, *batch, m))
    with on(path):
        f = rnn.step(X, k)
        J = rnn.jac(X, k)
        d = rnn.jac_diag(X, k)
        blocks = rnn.jac_blocks(X, k)
        f2, J2 = rnn.linearize(X, k)
    expected_f = np.stack([ref.step(cell, p, X[i], x[k[i]]) for i in range(s)])
    np.testing.assert_allclose(f, expected_f, rtol=1e-13, atol=1e-14)
    fd = np.stack([ref.fd_jacobian(lambda h, i=i: ref.step(cell, p, h, x[k[i]]), X[i]) for i in range(s)])
    np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(d, np.diagonal(J, axis1=-2, axis2=-1), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dense_from_blocks(blocks), J, rtol=1e-13, atol=1e-14)
    b = {"gru_diag": 1, "lstm_diag": 2}.get(cell, m)
    assert blocks.shape == (s, *batch, m // b, b, b)
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_array_equal(J2, J)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_jvp_vjp_and_probes(rng, cell, path):
    T, batch, w = 9, (3,), 3
    p, x, h0 = make(rng, cell, T, batch, w)
    rnn = RNN(cell, p, x, h0=h0)
    m = rnn.state_size
    k = np.arange(T)
    X = rng.standard_normal((T, *batch, m))
    v = rng.standard_normal((T, *batch, m))
    with on(path):
        J = rnn.jac(X, k)
        Jv = rnn.jvp(X, k, v)
        JTv = rnn.vjp(X, k, v)
        # m probes stacked along the step axis (how the chain solver assembles a Jacobian)
        eye = np.broadcast_to(np.eye(m)[:, None, None, :], (m, T, *batch, m)).reshape(m * T, *batch, m)
        cols = rnn.jvp(np.concatenate([X] * m), np.concatenate([k] * m), eye)
    np.testing.assert_allclose(Jv, np.einsum("...ij,...j->...i", J, v), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(JTv, np.einsum("...ji,...j->...i", J, v), rtol=1e-12, atol=1e-13)
    probed = np.moveaxis(cols.reshape(m, T, *batch, m), 0, -1)
    np.testing.assert_allclose(probed, J, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_structured_jacobians_are_structured(rng, cell):
    """Outside the cell's blocks the dense Jacobian is exactly zero."""
    p, x, h0 = make(rng, cell, 6, (2,), 4)
    rnn = RNN(cell, p, x, h0=h0)
    X = rng.standard_normal((6, 2, rnn.state_size))
    J = rnn.jac(X, np.arange(6))
    if cell in ("gru_diag", "lstm_diag"):
        b = 1 if cell == "gru_diag" else 2
        mask = dense_from_blocks(np.ones((rnn.state_size // b, b, b))) == 0
        assert np.all(J[..., mask] == 0)
        assert np.any(J[..., ~mask] != 0)


def test_block_layout_of_lstm(rng):
    """Block i of lstm_diag couples c_i and h_i: entries i and w + i."""
    p, x, h0 = make(rng, "lstm_diag", 3, (), 4)
    rnn = RNN("lstm_diag", p, x, h0=h0)
    X = rng.standard_normal((3, 8))
    blocks = rnn.jac_blocks(X, np.arange(3))
    J = rnn.jac(X, np.arange(3))
    i = 2
    np.testing.assert_array_equal(blocks[:, i], J[:, [[i, i], [4 + i, 4 + i]], [[i, 4 + i], [i, 4 + i]]])
    diagonal = from_blocks(np, np.diagonal(blocks, axis1=-2, axis2=-1))
    np.testing.assert_array_equal(diagonal, rnn.jac_diag(X, np.arange(3)))


@pytest.mark.kernels  # also run without JIT: the compiled gates
@pytest.mark.parametrize("cell", CELLS)
def test_compiled_and_xp_paths_agree(rng, cell):
    """The Numba path (compiled gates of the diagonal cells) against the array-namespace code."""
    p, x, h0 = make(rng, cell, 30, (2, 2), 6)
    rnn = RNN(cell, p, x, h0=h0)
    X = rng.standard_normal((30, 2, 2, rnn.state_size))
    k = np.arange(30)[::-1].copy()  # not consecutive: the gathering path
    for name in ("step", "jac_diag", "jac_blocks"):
        a = getattr(rnn, name)(X, k)
        with on("numpy"):
            b = getattr(rnn, name)(X, k)
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15, err_msg=name)


def test_repeated_evaluation_is_never_stale(rng):
    """The compiled path reuses the last gates only for equal x_prev and k."""
    p, x, h0 = make(rng, "gru_diag", 10, (), 4)
    rnn = RNN("gru_diag", p, x, h0=h0)
    X = rng.standard_normal((10, 4))
    k = np.arange(10)
    rnn.step(X, k)
    X[3, 1] += 0.5  # the caller changes its array in place
    d, f = rnn.jac_diag(X, k), rnn.step(X, k)
    k2 = k.copy()
    k2[0] = 5
    f2 = rnn.step(X, k2)
    with on("numpy"):
        np.testing.assert_allclose(d, rnn.jac_diag(X, k), rtol=1e-14)
        np.testing.assert_allclose(f, rnn.step(X, k), rtol=1e-14)
        np.testing.assert_allclose(f2, rnn.step(X, k2), rtol=1e-14)


# ----------------------------------------------------------------------------- the loop


@pytest.mark.kernels  # also run without JIT: the compiled loops
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_sequential_matches_loop(rng, cell, path):
    p, x, h0 = make(rng, cell, 50, (2, 3), 4)
    rnn = RNN(cell, p, x, h0=h0)
    expected = ref.loop(cell, p, x, h0)
    with on(path):
        states = rnn.sequential(h0, 0, 50)
        part = rnn.sequential(expected[19], 20, 35)
        empty = rnn.sequential(h0, 7, 7)
    np.testing.assert_allclose(states, expected, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(part, expected[20:35], rtol=1e-13, atol=1e-14)
    assert empty.shape == (0, 2, 3, rnn.state_size)


# ----------------------------------------------------------------------------- forward


def assert_states(got, expected, dtype, T, solver_tol=False):
    """Within eps * T of the loop, or (``solver_tol``, a method that converges linearly)
    within the solver's default tolerance (on the update, eps**0.75) with some margin."""
    eps = np.finfo(dtype).eps
    tol = 50 * eps * max(T, 10) if dtype == np.float32 else 1e4 * eps
    if solver_tol:
        tol = max(tol, 50 * eps**0.75)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cell", CELLS)
def test_forward_matches_loop(rng, cell, dtype, batch):
    T = 200
    p, x, h0 = make(rng, cell, T, batch, 5, dtype=dtype)
    with unchanged(x, h0, *p.values()):
        rnn = RNN(cell, p, x, h0=h0)
        sol = rnn.forward()
    assert sol.converged and sol.states.dtype == dtype and sol.states.shape == (T, *batch, rnn.state_size)
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    expected = ref.loop(cell, p64, x.astype(float), h0.astype(float))
    assert_states(sol.states, expected, dtype, T)


@pytest.mark.parametrize("method", ["newton", "diagonal", "block", "jacobi", "picard", "sequential"])
@pytest.mark.parametrize("cell", CELLS)
def test_every_method(rng, cell, method):
    T = 120
    p, x, h0 = make(rng, cell, T, (2,), 4)
    rnn = RNN(cell, p, x, h0=h0)
    sol = rnn.forward(method=method)
    assert sol.converged
    exact = method in ("newton", "sequential", rnn.method)
    assert_states(sol.states, ref.loop(cell, p, x, h0), np.float64, T, solver_tol=not exact)


@pytest.mark.parametrize("cell", CELLS)
def test_exact_newton_iterates(rng, cell):
    """The cell's structured method takes the same Newton steps as the dense Jacobian."""
    T = 150
    p, x, h0 = make(rng, cell, T, (2,), 4)
    rnn = RNN(cell, p, x, h0=h0)
    for K in (1, 3):
        a = rnn.forward(tol=0, max_iter=K)
        d = rnn.forward(method="newton", tol=0, max_iter=K)
        np.testing.assert_allclose(a.states, d.states, rtol=1e-11, atol=1e-12)


def test_default_method_and_guess(rng):
    p, x, h0 = make(rng, "lstm_diag", 300, (), 6)
    rnn = RNN("lstm_diag", p, x, h0=h0)
    assert rnn.method == "block"
    calls = []
    sol = rnn.forward(callback=calls.append)
    assert sol.converged and sol.iterations <= 8
    # the default guess: every step from h0 (one vectorized evaluation)
    guess = rnn.step(np.broadcast_to(h0, (300, 12)).copy(), np.arange(300))
    fixed = rnn.forward(tol=0, max_iter=1)
    explicit = rnn.forward(tol=0, max_iter=1, x_init=guess)
    np.testing.assert_array_equal(fixed.states, explicit.states)


@pytest.mark.parametrize("cell", CELLS)
def test_xp_path_on_numpy(rng, cell):
    T = 100
    p, x, h0 = make(rng, cell, T, (2,), 4)
    rnn = RNN(cell, p, x, h0=h0)
    sol = rnn.forward(backend="numpy")
    assert sol.converged
    assert_states(sol.states, ref.loop(cell, p, x, h0), np.float64, T)


@pytest.mark.parametrize("cell", CELLS)
def test_array_api_strict(rng, monkeypatch, cell):
    """Parameters and inputs as array_api_strict arrays: the xp path end to end."""
    be = _strict_backend(monkeypatch)
    T = 60
    p, x, h0 = make(rng, cell, T, (2,), 3)
    rnn = RNN(cell, {k: be.asarray(v) for k, v in p.items()}, be.asarray(x), h0=be.asarray(h0))
    sol = rnn.forward()
    assert isinstance(sol.states, type(be.asarray(0.0))) and sol.converged
    assert_states(be.to_numpy(sol.states), ref.loop(cell, p, x, h0), np.float64, T)
    seq = rnn.sequential(be.asarray(h0), 0, T)
    assert_states(be.to_numpy(seq), ref.loop(cell, p, x, h0), np.float64, T)
    X = rng.standard_normal((5, 2, rnn.state_size))
    k = np.array([4, 0, 1, 2, 3])
    blocks = rnn.jac_blocks(be.asarray(X), be.asarray(k))
    np.testing.assert_allclose(be.to_numpy(blocks), RNN(cell, p, x, h0=h0).jac_blocks(X, k), rtol=1e-14)


def test_float32_and_promotion(rng):
    p, x, h0 = make(rng, "gru_diag", 50, (2,), 4, dtype=np.float32)
    assert RNN("gru_diag", p, x, h0=h0).forward().states.dtype == np.float32
    assert RNN("gru_diag", p, x.astype(np.float64), h0=h0).forward().states.dtype == np.float64
    ints = RNN("gru_diag", p, np.ones((5, 2, 3), dtype=np.int64))
    assert ints.h0.dtype == np.float64 and np.all(ints.h0 == 0)
    assert ints.params["a_z"].dtype == np.float64


def test_zero_steps(rng):
    p, x, _ = make(rng, "gru", 0, (2,), 3)
    rnn = RNN("gru", p, x)
    sol = rnn.forward()
    assert sol.states.shape == (0, 2, 3)
    g = rnn.gradients(sol, np.zeros((0, 2, 3)))
    assert g["inputs"].shape == (0, 2, 3) and np.all(g["W_z"] == 0) and g["h0"].shape == (2, 3)


def test_attributes_and_repr(rng):
    p, x, h0 = make(rng, "lstm_diag", 7, (2, 3), 4, d_in=5)
    rnn = RNN("lstm_diag", p, x, h0=h0)
    assert (rnn.cell, rnn.n_steps, rnn.width, rnn.state_size) == ("lstm_diag", 7, 4, 8)
    assert rnn.inputs.shape == (7, 2, 3, 5) and rnn.h0.shape == (2, 3, 8)
    assert set(rnn.params) == set(p)
    assert repr(rnn) == "RNN('lstm_diag', T=7, batch=(2, 3), width=4, d_in=5, dtype=float64)"
    assert isinstance(rnn, pcr.Chain)


@settings(max_examples=20, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    T=st.integers(1, 80),
    batch=st.sampled_from([(), (2,), (1, 3)]),
    w=st.integers(1, 5),
    scale=st.floats(0.0, 0.9),
    window=st.one_of(st.none(), st.integers(1, 30)),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_networks_match_loop(cell, T, batch, w, scale, window, seed):
    rng = np.random.default_rng(seed)
    p, x, h0 = make(rng, cell, T, batch, w, scale=scale)
    rnn = RNN(cell, p, x, h0=h0)
    sol = rnn.forward(window=window)
    assert sol.converged
    assert_states(sol.states, ref.loop(cell, p, x, h0), np.float64, T)
