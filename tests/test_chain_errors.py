"""Bad input to the chain API: each error names the argument and says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from test_chain import mlp

import pcrsolve as pcr


@pytest.fixture
def ch(rng):
    return mlp(rng, 10, 3)


def test_chain_without_step():
    with pytest.raises(TypeError, match=r"`chain` passed to solve_chain must have a callable `step"):
        pcr.solve_chain(object(), np.zeros(2), 3)
    with pytest.raises(TypeError, match=r"`chain` passed to sequential_chain"):
        pcr.sequential_chain(lambda x, k: x, np.zeros(2), 3)
    with pytest.raises(TypeError, match=r"FunctionChain: `step` must be callable"):
        pcr.FunctionChain(None)
    with pytest.raises(TypeError, match=r"FunctionChain: `jac` must be callable; got int"):
        pcr.FunctionChain(lambda x, k: x, jac=3)


def test_unknown_method(ch):
    with pytest.raises(
        ValueError, match=r"`method` must be one of 'auto', 'newton', .* for solve_chain; got 'broyden'"
    ):
        pcr.solve_chain(ch, np.zeros(3), 10, method="broyden")
    with pytest.raises(
        ValueError, match=r"`method` must be one of 'auto', .* for chain_adjoint; got 'newton'"
    ):
        pcr.chain_adjoint(ch, np.zeros(3), np.zeros((10, 3)), np.zeros((10, 3)), method="newton")


def test_missing_derivatives(ch):
    step_only = pcr.FunctionChain(ch.step)
    with pytest.raises(ValueError, match=r"method='newton' needs the chain's dense Jacobian: give `jac"):
        pcr.solve_chain(step_only, np.zeros(3), 10, method="newton")
    with pytest.raises(ValueError, match=r"method='diagonal' needs .*`jac_diag"):
        pcr.solve_chain(step_only, np.zeros(3), 10, method="diagonal")
    with pytest.raises(ValueError, match=r"chain_adjoint needs the chain's Jacobians: give `jac.*`vjp"):
        pcr.chain_adjoint(step_only, np.zeros(3), np.zeros((10, 3)), np.zeros((10, 3)))
    for method in ("picard", "jacobi", "sequential"):  # these need only step
        assert pcr.solve_chain(step_only, np.zeros(3), 10, method=method).converged
    # "auto" (the default) weighs only Jacobian-based sweeps: with `step` alone it runs the loop.
    sol = pcr.solve_chain(step_only, np.zeros(3), 10)
    assert sol.route == "sequential" and "gives no Jacobians" in sol.route_reason


@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_n_steps(ch, bad):
    with pytest.raises(ValueError, match=rf"`n_steps` must be >= 0; got {bad}"):
        pcr.solve_chain(ch, np.zeros(3), bad)
    with pytest.raises(ValueError, match=r"`n_steps` must be >= 0"):
        pcr.sequential_chain(ch, np.zeros(3), bad)


@pytest.mark.parametrize("bad", [2.5, "10", True, None])
def test_non_int_n_steps(ch, bad):
    with pytest.raises(TypeError, match=r"`n_steps` must be an int"):
        pcr.solve_chain(ch, np.zeros(3), bad)


def test_numpy_int_n_steps(ch):
    assert pcr.solve_chain(ch, np.zeros(3), np.int64(10)).states.shape == (10, 3)


def test_bad_x0(ch):
    with pytest.raises(ValueError, match=r"`x0` must have shape \(\*batch, m\) .* got a scalar"):
        pcr.solve_chain(ch, 1.0, 10)
    with pytest.raises(ValueError, match=r"`x0` contains NaN or inf"):
        pcr.solve_chain(ch, np.array([0.0, np.nan, 0.0]), 10)
    with pytest.raises(TypeError, match=r"`x0` must have a numeric dtype"):
        pcr.solve_chain(ch, np.array(["a", "b", "c"]), 10)


def test_bad_x_init(ch):
    with pytest.raises(
        ValueError, match=r"`x_init` must have shape \(n_steps, \*batch, m\) = \(10, 3\).*got shape \(9, 3\)"
    ):
        pcr.solve_chain(ch, np.zeros(3), 10, x_init=np.zeros((9, 3)))
    with pytest.raises(ValueError, match=r"`x_init` must have shape .* = \(10, 2, 3\)"):
        pcr.solve_chain(ch, np.zeros((2, 3)), 10, x_init=np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"`x_init` contains NaN or inf"):
        pcr.solve_chain(ch, np.zeros(3), 10, x_init=np.full((10, 3), np.inf))


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"window": 0}, ValueError, r"`window` must be >= 1 \(or None\); got 0"),
        ({"window": 2.0}, TypeError, r"`window` must be an int or None; got float"),
        ({"max_iter": -1}, ValueError, r"`max_iter` must be >= 0 \(or None\); got -1"),
        ({"tol": -1e-3}, ValueError, r"`tol` must lie in \[0, inf\]; got -0.001"),
        ({"tol": "small"}, TypeError, r"`tol` must be a float or None; got str"),
        ({"damping": 0.0}, ValueError, r"`damping` must lie in \(0, 1\]; got 0.0"),
        ({"damping": 1.5}, ValueError, r"`damping` must lie in \(0, 1\]; got 1.5"),
        ({"callback": 3}, TypeError, r"`callback` must be callable or None; got int"),
        ({"progress": "yes"}, TypeError, r"`progress` must be a bool; got str"),
        ({"backend": "tpu"}, ValueError, r"`backend` must be one of"),
    ],
)
def test_bad_options(ch, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        pcr.solve_chain(ch, np.zeros(3), 10, **kwargs)


def test_wrong_step_output_shape():
    chain = pcr.FunctionChain(lambda x, k: x[0], jac=lambda x, k: np.zeros((*x.shape, x.shape[-1])))
    with pytest.raises(
        ValueError, match=r"`chain.step` must return shape \(s, \*batch, m\) = \(1, 3\) .*got shape \(3,\)"
    ):
        pcr.solve_chain(chain, np.zeros(3), 10)
    with pytest.raises(ValueError, match=r"`chain.step` must return shape \(s, \*batch, m\) = \(1, 3\)"):
        pcr.sequential_chain(chain, np.zeros(3), 10)


def test_wrong_jacobian_shape():
    chain = pcr.FunctionChain(lambda x, k: x, jac=lambda x, k: np.zeros(x.shape))
    # The first four steps run sequentially (to time the loop); the cost probe then evaluates
    # a sweep on them (an explicit method: "auto" runs so short a loop without a sweep).
    pattern = r"`chain.jac` must return shape \(s, \*batch, m, m\) = \(4, 3, 3\) for x_prev of shape \(4, 3\)"
    with pytest.raises(ValueError, match=pattern + r"; got shape \(4, 3\)"):
        pcr.solve_chain(chain, np.zeros(3), 10, method="newton")
    diag = pcr.FunctionChain(lambda x, k: x, jac_diag=lambda x, k: x[..., 0])
    with pytest.raises(ValueError, match=r"`chain.jac_diag` must return shape \(s, \*batch, m\)"):
        pcr.solve_chain(diag, np.zeros(3), 10, method="diagonal")
    jvp = pcr.FunctionChain(lambda x, k: x, jvp=lambda x, k, v: v[:1])
    with pytest.raises(ValueError, match=r"`chain.jvp` must return shape"):
        pcr.solve_chain(jvp, np.zeros(3), 10, method="newton")
    seq = pcr.FunctionChain(lambda x, k: x, sequential=lambda x, a, b: np.zeros((b - a + 1, 3)))
    with pytest.raises(
        ValueError,
        match=r"`chain.sequential` must return shape \(stop - start, \*batch, m\) = \(10, 3\) for x_prev "
        r"of shape \(3,\); got shape \(11, 3\). It returns the state after each of steps 0..9",
    ):
        pcr.sequential_chain(seq, np.zeros(3), 10)


def test_wrong_step_output_dtype(rng):
    ch64 = mlp(rng, 10, 3, np.float64)  # float64 parameters with float32 states
    with pytest.raises(TypeError, match=r"`chain.step` must return the states' dtype float32; got float64"):
        pcr.solve_chain(ch64, np.zeros(3, np.float32), 10)
    chain = pcr.FunctionChain(lambda x, k: x, jac=lambda x, k: np.zeros((*x.shape, 3), np.float32))
    with pytest.raises(TypeError, match=r"`chain.jac` must return the states' dtype float64; got float32"):
        pcr.solve_chain(chain, np.zeros(3), 10, method="newton")


def test_sequential_hook_errors():
    f32 = pcr.FunctionChain(lambda x, k: x, sequential=lambda x, a, b: np.zeros((b - a, 3), np.float32))
    with pytest.raises(
        TypeError, match=r"`chain.sequential` must return the states' dtype float64; got float32"
    ):
        pcr.sequential_chain(f32, np.zeros(3), 10)
    listed = pcr.FunctionChain(lambda x, k: x, sequential=lambda x, a, b: [x] * (b - a))
    with pytest.raises(TypeError, match=r"`chain.sequential` must return an array .*got list"):
        pcr.solve_chain(listed, np.zeros(3), 10, method="sequential")

    def nan_at_7(x, a, b):
        out = np.ones((b - a, 2, 3))
        out[7 - a :, 1] = np.nan
        return out

    nan = pcr.FunctionChain(lambda x, k: x, sequential=nan_at_7)
    with pytest.raises(FloatingPointError, match=r"NaN or inf at step 7 \(batch element \(1,\)\)"):
        pcr.sequential_chain(nan, np.zeros((2, 3)), 10)
    with pytest.raises(TypeError, match=r"FunctionChain: `sequential` must be callable; got int"):
        pcr.FunctionChain(lambda x, k: x, sequential=1)


def test_step_returning_a_list():
    chain = pcr.FunctionChain(lambda x, k: x.tolist())
    with pytest.raises(
        TypeError, match=r"`chain.step` must return an array of the states' library.*got list"
    ):
        pcr.solve_chain(chain, np.zeros(3), 10, method="jacobi")


def test_adjoint_shapes(ch):
    x0 = np.zeros(3)
    with pytest.raises(
        ValueError, match=r"`states` must have shape \(n, \*batch, m\) with \(\*batch, m\) = \(3,\)"
    ):
        pcr.chain_adjoint(ch, x0, np.zeros(3), np.zeros(3))
    with pytest.raises(
        ValueError, match=r"`grad_states` must have shape \(n_steps, \*batch, m\) = \(10, 3\)"
    ):
        pcr.chain_adjoint(ch, x0, np.zeros((10, 3)), np.zeros((9, 3)))


def test_mixed_backends(ch, monkeypatch):
    from conftest import _strict_backend

    case = _strict_backend(monkeypatch)
    with pytest.raises(TypeError, match=r"different array libraries"):
        pcr.solve_chain(ch, case.asarray(np.zeros(3)), 10, x_init=np.zeros((10, 3)))
