"""Block-diagonal Jacobians: ``jac_blocks`` and ``solve_chain(method="block")``.

A chain of ``nb`` independent ``b``-dimensional maps, in the strided layout of
:class:`pcrsolve.Chain` (block ``i`` couples state entries ``i, i + nb, ...``), solved with
its blocks against dense Newton (same iterates) and the plain loop; the layout helper against
a dense recurrence; the error messages.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import pcrsolve as pcr
import reference
from conftest import _strict_backend
from pcrsolve import _backend
from pcrsolve.chain._blocks import block_recurrence, from_blocks, to_blocks

BATCHES = [(), (3,), (2, 3)]


class Paired:
    """``x_k = tanh(M_k x + c_k)`` with ``M_k`` block diagonal in the strided layout (NumPy)."""

    def __init__(self, rng, n, nb, b, dtype):
        self.blocks = (0.6 * rng.standard_normal((n, nb, b, b)) / np.sqrt(b)).astype(dtype)
        self.M = reference.dense_from_blocks(self.blocks)
        self.c = rng.standard_normal((n, nb * b)).astype(dtype)

    def _pre(self, x, k):
        nbatch = x.ndim - 2
        M = self.M[k].reshape(len(k), *(1,) * nbatch, *self.M.shape[1:])
        c = self.c[k].reshape(len(k), *(1,) * nbatch, self.c.shape[-1])
        return (M @ x[..., None])[..., 0] + c

    def step(self, x, k):
        return np.tanh(self._pre(x, k))

    def jac(self, x, k):
        nbatch = x.ndim - 2
        M = self.M[k].reshape(len(k), *(1,) * nbatch, *self.M.shape[1:])
        return (1 - np.tanh(self._pre(x, k)) ** 2)[..., None] * M

    def jac_blocks(self, x, k):
        nbatch = x.ndim - 2
        nb, b = self.blocks.shape[1], self.blocks.shape[2]
        d = (1 - np.tanh(self._pre(x, k)) ** 2).reshape(*x.shape[:-1], b, nb)
        d = np.swapaxes(d, -1, -2)  # (..., nb, b): entry p of block i
        blk = self.blocks[k].reshape(len(k), *(1,) * nbatch, *self.blocks.shape[1:])
        return d[..., :, None] * blk


def loop(chain, x0, n):
    out, x = [], x0
    for k in range(n):
        x = chain.step(x[None], np.array([k]))[0]
        out.append(x)
    return np.stack(out)


@pytest.mark.parametrize(("nb", "b"), [(3, 2), (4, 1), (1, 3), (2, 3)])
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_block_method_matches_dense_newton_and_loop(rng, nb, b, batch, backend):
    n = 60
    ch = Paired(rng, n, nb, b, np.float64)
    x0 = rng.standard_normal((*batch, nb * b))
    expected = loop(ch, x0, n)
    blocks = pcr.FunctionChain(ch.step, jac_blocks=ch.jac_blocks)
    dense = pcr.FunctionChain(ch.step, jac=ch.jac)
    sol = pcr.solve_chain(blocks, x0, n, method="block", backend=backend)
    assert sol.converged
    np.testing.assert_allclose(sol.states, expected, rtol=1e-12, atol=1e-12)
    # The same Newton iterates as the dense Jacobian, sweep by sweep.
    for K in (1, 2, 3):
        a = pcr.solve_chain(blocks, x0, n, method="block", tol=0, max_iter=K, backend=backend)
        d = pcr.solve_chain(dense, x0, n, method="newton", tol=0, max_iter=K, backend=backend)
        np.testing.assert_allclose(a.states, d.states, rtol=1e-12, atol=1e-13)
        assert a.residuals == pytest.approx(d.residuals, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_block_method_dtypes_and_window(rng, dtype):
    n, nb, b = 300, 4, 2
    ch = Paired(rng, n, nb, b, dtype)
    x0 = rng.standard_normal((2, nb * b)).astype(dtype)
    sol = pcr.solve_chain(
        pcr.FunctionChain(ch.step, jac_blocks=ch.jac_blocks), x0, n, method="block", window=50
    )
    assert sol.states.dtype == dtype and sol.converged
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(sol.states, loop(ch, x0, n), rtol=tol, atol=tol)


def test_block_method_on_strict(rng, monkeypatch):
    case = _strict_backend(monkeypatch)
    xp = case.xp
    n, nb, b = 40, 3, 2
    ch = Paired(rng, n, nb, b, np.float64)
    M, c, blocks = case.asarray(ch.M), case.asarray(ch.c), case.asarray(ch.blocks)

    def pre(x, k):  # batch (2,)
        return (
            xp.matmul(xp.take(M, k, axis=0)[:, None, ...], x[..., None])[..., 0]
            + xp.take(c, k, axis=0)[:, None, :]
        )

    def jac_blocks(x, k):
        d = 1 - xp.tanh(pre(x, k)) ** 2
        d = xp.permute_dims(xp.reshape(d, (x.shape[0], 2, b, nb)), (0, 1, 3, 2))
        return d[..., None] * xp.take(blocks, k, axis=0)[:, None, ...]

    chain = pcr.FunctionChain(lambda x, k: xp.tanh(pre(x, k)), jac_blocks=jac_blocks)
    x0 = rng.standard_normal((2, nb * b))
    sol = pcr.solve_chain(chain, case.asarray(x0), n, method="block")
    assert isinstance(sol.states, type(M))
    np.testing.assert_allclose(case.to_numpy(sol.states), loop(ch, x0, n), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("b", [1, 2, 4])
def test_block_recurrence_matches_dense(rng, reverse, transpose, b):
    s, batch, nb = 17, (2, 3), 3
    A = rng.standard_normal((s, *batch, nb, b, b)) / b
    R = rng.standard_normal((s, *batch, nb * b))
    z = rng.standard_normal((6, nb * b))
    be = _backend.resolve({"A": A})
    X = block_recurrence(be, A, R, z, method="auto", reverse=reverse, transpose=transpose)
    D = reference.dense_from_blocks(A)
    if transpose:
        D = np.swapaxes(D, -1, -2)
    # reference layout: batch first, sequence axis next
    ref = reference.linear_recurrence(
        np.moveaxis(D, 0, -3), np.moveaxis(R, 0, -2), z.reshape(*batch, nb * b), reverse=reverse
    )
    np.testing.assert_allclose(X, np.moveaxis(ref, -2, 0), rtol=1e-12, atol=1e-12)


def test_to_blocks_layout():
    v = np.arange(6.0)  # [c0 c1 c2 h0 h1 h2]
    w = to_blocks(np, v, 2)
    np.testing.assert_array_equal(w, [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(from_blocks(np, w), v)


# --------------------------------------------------------------------------- errors


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


def test_block_method_needs_jac_blocks():
    chain = pcr.FunctionChain(lambda x, k: x, jac=lambda x, k: np.ones((len(k), 2, 2)))
    with raises(
        ValueError,
        "method='block' needs the Jacobians' diagonal blocks: give `jac_blocks(x_prev, k)` "
        "(s, *batch, m/b, b, b), e.g. FunctionChain(step, jac_blocks=...); for a dense Jacobian "
        "use method='newton', for its diagonal method='diagonal'.",
    ):
        pcr.solve_chain(chain, np.zeros(2), 5, method="block")


def test_jac_blocks_must_be_callable():
    with raises(TypeError, "FunctionChain: `jac_blocks` must be callable; got int."):
        pcr.FunctionChain(lambda x, k: x, jac_blocks=3)


def test_jac_blocks_bad_shape_and_dtype(rng):
    step = lambda x, k: 0.5 * x  # noqa: E731
    bad = pcr.FunctionChain(step, jac_blocks=lambda x, k: np.ones((x.shape[0], 3, 3, 3)))
    # (s is the number of steps of the first sweep, whatever the solver chooses)
    pattern = r"`chain\.jac_blocks` must return shape \(s, \*batch, m/b, b, b\) = \((\d+), 8, 1, 1\) for "
    with pytest.raises(ValueError, match=pattern + r"x_prev of shape \(\1, 8\); got shape \(\1, 3, 3, 3\)\."):
        pcr.solve_chain(bad, np.zeros(8), 50, method="block")
    wrong_b = pcr.FunctionChain(step, jac_blocks=lambda x, k: np.ones((x.shape[0], 2, 4, 4)))
    with pytest.raises(
        ValueError,
        match=r"= \((\d+), 2, 2, 4, 4\) for x_prev of shape \(\1, 2, 8\); got shape \(\1, 2, 4, 4\)\.",
    ):
        pcr.solve_chain(wrong_b, np.zeros((2, 8)), 50, method="block")
    f32 = pcr.FunctionChain(step, jac_blocks=lambda x, k: np.ones((x.shape[0], 4, 2, 2), np.float32))
    with raises(TypeError, "`chain.jac_blocks` must return the states' dtype float64; got float32."):
        pcr.solve_chain(f32, np.zeros(8), 50, method="block")


def test_repr_lists_jac_blocks():
    assert (
        repr(pcr.FunctionChain(lambda x, k: x, jac_blocks=lambda x, k: x))
        == "FunctionChain(step, jac_blocks)"
    )
