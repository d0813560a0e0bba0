"""RNN adapters: bad input gets a clear error (every message pinned down), inputs stay unchanged."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rnn_reference as ref

from conftest import _strict_backend
from pcrsolve.adapters import RNN, StackedRNN

GRU = ("W_z", "W_r", "W_c", "U_z", "U_r", "U_c", "b_z", "b_r", "b_c")


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


@pytest.fixture
def gru(rng):
    return ref.random_params(rng, "gru", 3, 2), rng.standard_normal((5, 2, 2))


def test_unknown_cell(gru):
    p, x = gru
    with raises(ValueError, "unknown `cell` 'lstm'; choose one of 'elman', 'gru', 'gru_diag', 'lstm_diag'."):
        RNN("lstm", p, x)
    with raises(TypeError, "`cell` must be a cell name ('elman', 'gru', 'gru_diag', 'lstm_diag'); got int."):
        RNN(3, p, x)


def test_params_names(gru):
    p, x = gru
    with raises(
        TypeError,
        "`params` must be a dict of arrays named W_z, W_r, W_c, U_z, U_r, U_c, b_z, b_r, b_c for cell "
        "'gru'; got list.",
    ):
        RNN("gru", [1], x)
    q = dict(p)
    del q["W_z"]
    q["Wz"] = 1
    with raises(
        ValueError,
        "`params` of cell 'gru' must hold exactly 'W_z', 'W_r', 'W_c', 'U_z', 'U_r', 'U_c', 'b_z', 'b_r', "
        "'b_c'; missing 'W_z' and unexpected 'Wz'.",
    ):
        RNN("gru", q, x)
    with raises(ValueError, "; missing 'a_z', 'a_r', 'a_c' and unexpected 'W_c', 'W_r', 'W_z'."):
        RNN("gru_diag", p, x)


def test_params_shapes(gru):
    p, x = gru
    with raises(
        ValueError,
        "`params['U_z']` must have shape (w, d_in) = (3, 2) to match the input size d_in = 2 of `inputs` "
        "(5, 2, 2); got shape (3, 4).",
    ):
        RNN("gru", {**p, "U_z": np.ones((3, 4))}, x)
    with raises(
        ValueError,
        "`params['U_z']` must have shape (w, d_in): hidden width w by input size d_in; got shape (3,).",
    ):
        RNN("gru", {**p, "U_z": np.ones(3)}, x)
    with raises(
        ValueError,
        "`params['W_r']` of cell 'gru' must have shape (3, 3) (hidden width w = 3 from `params['U_z']`); "
        "got shape (3, 2).",
    ):
        RNN("gru", {**p, "W_r": np.ones((3, 2))}, x)
    with raises(ValueError, "`params['b_c']` of cell 'gru' must have shape (3,) (hidden width w = 3"):
        RNN("gru", {**p, "b_c": np.ones(4)}, x)
    with raises(ValueError, "`params['U_c']` of cell 'gru' must have shape (3, 2)"):
        RNN("gru", {**p, "U_c": np.ones((4, 2))}, x)


def test_inputs_and_h0(gru, rng):
    p, x = gru
    with raises(
        ValueError,
        "`inputs` must have shape (T, *batch, d_in): one input vector per step; got shape (5,). Use "
        "inputs[:, None] for a sequence of scalars.",
    ):
        RNN("gru", p, np.ones(5))
    with raises(
        ValueError,
        "`h0` must have shape (*batch, m) = (2, 3) (the batch axes of `inputs` (5, 2, 2), m = w = 3); got "
        "shape (3,). Broadcast a shared initial state yourself, e.g. np.broadcast_to(h0, (*batch, m)).",
    ):
        RNN("gru", p, x, h0=np.zeros(3))
    lstm = ref.random_params(rng, "lstm_diag", 3, 2)
    with raises(
        ValueError, "`h0` must have shape (*batch, m) = (2, 6) (the batch axes of `inputs` (5, 2, 2), m"
    ):
        RNN("lstm_diag", lstm, x, h0=np.zeros((2, 3)))


def test_non_finite_and_dtypes(gru):
    p, x = gru
    with raises(
        ValueError, "`params['b_c']` contains NaN or inf; the RNN needs finite parameters and inputs."
    ):
        RNN("gru", {**p, "b_c": np.array([1, np.nan, 0])}, x)
    bad = x.copy()
    bad[2, 1, 0] = np.inf
    with raises(ValueError, "`inputs` contains NaN or inf"):
        RNN("gru", p, bad)
    with raises(TypeError, "`inputs` must have a real floating (or integer) dtype; got complex128."):
        RNN("gru", p, x * 1j)
    with raises(TypeError, "`params['W_z']` must have a real floating (or integer) dtype; got <U3."):
        RNN("gru", {**p, "W_z": "abc"}, x)


def test_mixed_libraries(gru, monkeypatch):
    p, x = gru
    be = _strict_backend(monkeypatch)
    with raises(
        TypeError,
        "the inputs come from different array libraries (numpy for `inputs`, array_api_strict for "
        "`params['W_z']`)",
    ):
        RNN("gru", {**p, "W_z": be.asarray(p["W_z"])}, x)


def test_chain_method_arguments(gru):
    p, x = gru
    rnn = RNN("gru", p, x)
    with raises(
        ValueError,
        "`x_prev` must have shape (s, *batch, m) with (*batch, m) = (2, 3) (the batch axes of `inputs` and "
        "the state size); got shape (4, 3).",
    ):
        rnn.step(np.zeros((4, 3)), np.arange(4))
    with raises(
        ValueError,
        "`k` must hold one integer step index per step, shape (4,); got shape (3,) and dtype int64.",
    ):
        rnn.step(np.zeros((4, 2, 3)), np.arange(3))
    with raises(ValueError, "shape (4,); got shape (4,) and dtype float64."):
        rnn.jac(np.zeros((4, 2, 3)), np.arange(4.0))
    with raises(ValueError, "`k` must hold step indices in [0, 5); got values in [3, 6]."):
        rnn.jac_diag(np.zeros((4, 2, 3)), np.arange(4) + 3)
    with raises(ValueError, "`v` must have shape (s, *batch, m) with (*batch, m) = (2, 3)"):
        rnn.jvp(np.zeros((4, 2, 3)), np.arange(4), np.zeros((4, 3)))
    with raises(ValueError, "`u` must have shape (s, *batch, m)"):
        rnn.vjp(np.zeros((4, 2, 3)), np.arange(4), np.zeros((3, 2, 3)))


def test_sequential_arguments(gru):
    p, x = gru
    rnn = RNN("gru", p, x)
    with raises(ValueError, "`start` and `stop` must satisfy 0 <= start <= stop <= T = 5; got 2, 9."):
        rnn.sequential(np.zeros((2, 3)), 2, 9)
    with raises(ValueError, "got 3, 2."):
        rnn.sequential(np.zeros((2, 3)), 3, 2)
    with raises(TypeError, "`start` must be an int; got float."):
        rnn.sequential(np.zeros((2, 3)), 2.0, 4)
    with raises(TypeError, "`stop` must be an int; got bool."):
        rnn.sequential(np.zeros((2, 3)), 0, True)
    with raises(ValueError, "`x_prev` must have shape (*batch, m) with (*batch, m) = (2, 3)"):
        rnn.sequential(np.zeros(3), 2, 4)


def test_gradients_arguments(gru):
    p, x = gru
    rnn = RNN("gru", p, x)
    with raises(
        ValueError,
        "`states` must have shape (T, *batch, m) with (*batch, m) = (2, 3) (the batch axes of `inputs` and "
        "the state size) and T = 5; got shape (4, 2, 3).",
    ):
        rnn.gradients(np.zeros((4, 2, 3)), np.zeros((5, 2, 3)))
    with raises(ValueError, "`grad_states` must have shape (T, *batch, m)"):
        rnn.gradients(np.zeros((5, 2, 3)), np.zeros((5, 3)))


def test_forward_options(gru):
    p, x = gru
    rnn = RNN("gru", p, x)
    with raises(
        ValueError,
        "`method` must be one of 'auto', 'newton', 'diagonal', 'block', 'picard', 'jacobi', 'sequential'",
    ):
        rnn.forward(method="bogus")


def test_stacked_arguments(rng):
    p1 = ref.random_params(rng, "gru_diag", 4, 2)
    p2 = ref.random_params(rng, "lstm_diag", 3, 5)
    x = rng.standard_normal((6, 2))
    with raises(TypeError, "`layers` must be a non-empty list of (cell, params) pairs; got dict."):
        StackedRNN({"a": 1}, x)
    with raises(TypeError, "`layers` must be a non-empty list of (cell, params) pairs; got an empty list."):
        StackedRNN([], x)
    with raises(TypeError, "`layers[1]` must be a (cell, params) pair; got str."):
        StackedRNN([("gru_diag", p1), "gru"], x)
    with raises(
        ValueError,
        "in `layers[1]`: `params['U_f']` must have shape (w, d_in) = (3, 4): the input of layer 1 is the "
        "hidden state h (width 4) of layer 0; got shape (3, 5).",
    ):
        StackedRNN([("gru_diag", p1), ("lstm_diag", p2)], x)
    with raises(ValueError, "in `layers[0]`: `params` of cell 'gru_diag' must hold exactly"):
        StackedRNN([("gru_diag", {}), ("lstm_diag", p2)], x)
    good = [("gru_diag", p1), ("gru_diag", ref.random_params(rng, "gru_diag", 3, 4))]
    with raises(
        ValueError,
        "`h0` must be None or a list of 2 initial states (one per layer, each None or an array); got 1.",
    ):
        StackedRNN(good, x, h0=[None])
    net = StackedRNN(good, x)
    with raises(ValueError, "`method` must be 'layerwise' or 'grid'; got 'wave'."):
        net.forward(method="wave")
    with raises(ValueError, "`k` must hold step indices in [0, 6); got values in [0, 6]."):
        net.grid.step(np.zeros((2, 7)), np.array([0, 6]))
    with raises(
        ValueError,
        "`x_prev` must have shape (2, 7): the states of all layers stacked, (*batch, sum m_l) = (7,); got "
        "shape (2, 8).",
    ):
        net.grid.jac(np.zeros((2, 8)), np.array([0, 1]))
