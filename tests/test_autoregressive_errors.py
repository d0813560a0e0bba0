"""solve_autoregressive: every bad input gets a clear error, raised before any work is wasted."""

from __future__ import annotations

import numpy as np
import pytest

import pcrsolve as pcr


def shift(x):
    """``x_i = x_{i-1} + 1``: causal along the last axis."""
    return np.concatenate([np.ones_like(x[..., :1]), x[..., :-1] + 1], axis=-1)


X = np.zeros((2, 5))


def test_func_not_callable():
    with pytest.raises(TypeError, match=r"`func` must be callable.*got ndarray"):
        pcr.solve_autoregressive(np.zeros(3), X)


@pytest.mark.parametrize("name", ["jac", "jvp", "callback"])
def test_callbacks_not_callable(name):
    with pytest.raises(TypeError, match=rf"`{name}` must be callable or None; got int"):
        pcr.solve_autoregressive(shift, X, **{name: 3})


def test_unknown_method():
    with pytest.raises(
        ValueError, match=r"`method` must be one of 'jacobi', .* for solve_autoregressive; got 'gauss'"
    ):
        pcr.solve_autoregressive(shift, X, method="gauss")


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (
            {"axis": 2},
            ValueError,
            r"`axis` = 2 is out of range for x_init of shape \(2, 5\) \(2 axes\).*\[-2, 1\]",
        ),
        ({"axis": -3}, ValueError, r"`axis` = -3 is out of range"),
        ({"axis": 1.0}, TypeError, r"`axis` must be an int; got float"),
        ({"axis": True}, TypeError, r"`axis` must be an int; got bool"),
        ({"method": "jacobi_gs"}, ValueError, r"method='jacobi_gs' needs `block_size`"),
        ({"method": "gs_jacobi"}, ValueError, r"method='gs_jacobi' needs `window`"),
        (
            {"block_size": 2},
            ValueError,
            r"`block_size` applies only to method='jacobi_gs'; got method='jacobi'",
        ),
        (
            {"method": "sequential", "window": 2},
            ValueError,
            r"`window` applies to methods 'gs_jacobi', 'jacobi'",
        ),
        ({"bandwidth": 2}, ValueError, r"`bandwidth` applies only to method='newton'"),
        ({"method": "newton"}, ValueError, r"method='newton' needs the Jacobian of func: pass jac="),
        ({"method": "jacobi_gs", "block_size": 0}, ValueError, r"`block_size` must be >= 1"),
        ({"window": 0}, ValueError, r"`window` must be >= 1"),
        ({"method": "newton", "jvp": shift, "bandwidth": 0}, ValueError, r"`bandwidth` must be >= 1"),
        ({"max_iter": -1}, ValueError, r"`max_iter` must be >= 0"),
        ({"max_iter": 2.5}, TypeError, r"`max_iter` must be an int or None; got float"),
        ({"tol": -1.0}, ValueError, r"`tol` must lie in \[0, inf\]"),
        ({"tol": "small"}, TypeError, r"`tol` must be a float or None; got str"),
        ({"check_causal": 1}, TypeError, r"`check_causal` must be a bool; got int"),
        ({"progress": "yes"}, TypeError, r"`progress` must be a bool; got str"),
        ({"backend": "tpu"}, ValueError, r"`backend` must be one of 'numba', 'numpy', 'cupy'"),
    ],
)
def test_bad_options(kwargs, exc, pattern):
    calls = []

    def f(x):
        calls.append(1)
        return shift(x)

    with pytest.raises(exc, match=pattern):
        pcr.solve_autoregressive(f, X, **kwargs)
    assert not calls  # checked before func is ever called


def test_bad_x_init():
    with pytest.raises(
        ValueError, match=r"`x_init` must have at least one axis, the sequence axis; got a scalar"
    ):
        pcr.solve_autoregressive(shift, 0.0)
    with pytest.raises(ValueError, match=r"`x_init` contains NaN or inf"):
        pcr.solve_autoregressive(shift, np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match=r"`x_init` must have a numeric dtype"):
        pcr.solve_autoregressive(shift, np.array(["a", "b"]))


def test_func_changing_shape():
    with pytest.raises(
        ValueError, match=r"`func` must return shape x_init.shape = \(2, 5\) .* got shape \(2, 4\)"
    ):
        pcr.solve_autoregressive(lambda x: x[..., 1:], X)


@pytest.mark.parametrize("method", ["jacobi", "sequential", "newton"])
def test_func_changing_dtype(method):
    jac = lambda x: np.zeros((2, 5, 5))  # noqa: E731
    with pytest.raises(
        TypeError, match=r"`func` must return the dtype of its argument, float64; got float32"
    ):
        pcr.solve_autoregressive(lambda x: shift(x).astype(np.float32), X, method=method, jac=jac)


def test_func_returning_a_list_or_another_library(monkeypatch):
    with pytest.raises(TypeError, match=r"`func` must return an array of the library of `x_init`.*got list"):
        pcr.solve_autoregressive(lambda x: [0.0] * 5, np.zeros(5))
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    with pytest.raises(
        TypeError, match=r"must return arrays of the library of `x_init` \(array_api_strict\); got a numpy"
    ):
        pcr.solve_autoregressive(lambda x: np.zeros(5), case.asarray(np.zeros(5)))


def test_bad_jacobians():
    with pytest.raises(
        ValueError, match=r"`jac` must return shape \(\*batch, n, n\) = \(2, 5, 5\) .* got shape \(5, 5\)"
    ):
        pcr.solve_autoregressive(shift, X, method="newton", jac=lambda x: np.zeros((5, 5)))
    with pytest.raises(TypeError, match=r"`jac` must return the dtype of its argument, float64; got float32"):
        pcr.solve_autoregressive(shift, X, method="newton", jac=lambda x: np.zeros((2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"`jvp` must return shape \(q, \*x_init.shape\) for q tangents"):
        pcr.solve_autoregressive(shift, X, method="newton", jvp=lambda x, v: v[0])


def test_leaky_func_is_reported_with_check_causal():
    with pytest.raises(
        ValueError, match=r"`func` is not causal along axis 1: its output at position 0 changed"
    ):
        pcr.solve_autoregressive(lambda x: x + 1.0, X, check_causal=True)
