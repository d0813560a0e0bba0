"""pcrsolve.dask.solve_chain on a LocalCluster against the sequential loop and the one-machine solver.

One in-process cluster for the module (two single-threaded workers); one test starts worker
processes, where the chain must pickle.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import pcrsolve as pcr  # noqa: E402

pytestmark = pytest.mark.timeout(180)

M = 3


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


class SlowMLP:
    """A tanh MLP whose every call sleeps: steps cost milliseconds, so sweeps can pay."""

    def __init__(self, n, m=M, gain=0.6, seed=0, delay=0.002, nan_at=None):
        rng = np.random.default_rng(seed)
        self.W = gain * rng.standard_normal((n, m, m)) / np.sqrt(m)
        self.b = rng.standard_normal((n, m))
        self.delay, self.nan_at = delay, nan_at

    def _z(self, x, k):
        W = self.W[k].reshape(len(k), *(1,) * (x.ndim - 2), *self.W.shape[1:])
        return np.einsum("k...ij,k...j->k...i", W, x) + self.b[k].reshape(len(k), *(1,) * (x.ndim - 2), -1)

    def step(self, x, k):
        time.sleep(self.delay)
        y = np.tanh(self._z(x, k))
        if self.nan_at is not None:
            y = np.where((k == self.nan_at).reshape(-1, *(1,) * (y.ndim - 1)), np.nan, y)
        return y

    def jac(self, x, k):
        y = np.tanh(self._z(x, k))
        W = self.W[k].reshape(len(k), *(1,) * (x.ndim - 2), *self.W.shape[1:])
        return (1 - y * y)[..., None] * W


class PerStepMLP(SlowMLP):
    """Each step (not each call) sleeps: sweeps spread over many workers pay."""

    def step(self, x, k):
        time.sleep(self.delay * (len(k) - 1))
        return super().step(x, k)


def _seq(chain, x0, n):
    chain_fast = SlowMLP.__new__(SlowMLP)
    chain_fast.__dict__.update(chain.__dict__, delay=0.0)
    return pcr.sequential_chain(chain_fast, x0, n)


@pytest.mark.parametrize("method", ["newton", "diagonal", "picard", "jacobi", "sequential"])
def test_every_method_matches_the_loop(client, method):
    n = 40
    chain = SlowMLP(n)
    x0 = np.linspace(-1, 1, M)
    sol = pcr.dask.solve_chain(chain, x0, n, chunk_steps=8, method=method, client=client)
    assert isinstance(sol.states, da.Array) and sol.states.chunks == ((8,) * 5, (M,))
    np.testing.assert_allclose(sol.states.compute(), _seq(chain, x0, n), rtol=1e-9, atol=1e-9)
    assert sol.converged and sol.status in ("converged", "sequential")
    if method != "sequential":
        assert len(sol.residuals) >= 1


def test_linear_chain_converges_in_one_iteration(client):
    n = 32
    rng = np.random.default_rng(1)
    A = 0.5 * rng.standard_normal((n, M, M)) / np.sqrt(M)
    c = rng.standard_normal((n, M))

    def step(x, k):
        time.sleep(0.003)
        return np.einsum("kij,kj->ki", A[k], x) + c[k]

    chain = pcr.FunctionChain(step, jac=lambda x, k: A[k])
    sol = pcr.dask.solve_chain(chain, np.zeros(M), n, chunk_steps=8, client=client)
    ref = pcr.sequential_chain(
        pcr.FunctionChain(lambda x, k: np.einsum("kij,kj->ki", A[k], x) + c[k]), np.zeros(M), n
    )
    np.testing.assert_allclose(sol.states.compute(), ref, rtol=1e-12, atol=1e-12)
    assert sol.status == "converged" and sol.iterations == 1, sol.message


def test_batch_states_and_window(client):
    n = 40
    chain = SlowMLP(n, seed=2)
    x0 = np.random.default_rng(3).standard_normal((2, 2, M))
    ref = _seq(chain, x0, n)
    sol = pcr.dask.solve_chain(chain, x0, n, chunk_steps=6, client=client)
    assert sol.states.shape == (n, 2, 2, M)
    np.testing.assert_allclose(sol.states.compute(), ref, rtol=1e-9, atol=1e-9)
    windows = []
    sol = pcr.dask.solve_chain(chain, x0, n, chunk_steps=6, window=12, client=client, callback=windows.append)
    np.testing.assert_allclose(sol.states.compute(), ref, rtol=1e-9, atol=1e-9)
    for info in windows:
        start, stop = info["window"]
        assert stop - start <= 12


def test_chaotic_chain_falls_back_to_the_loop(client):
    n = 60

    def step(x, k):  # the logistic map at r = 3.9: chaotic, Newton's prefix crawls
        return 3.9 * x * (1 - x)

    chain = pcr.FunctionChain(step, jac=lambda x, k: (3.9 * (1 - 2 * x))[..., None])
    sol = pcr.dask.solve_chain(chain, np.array([0.3]), n, chunk_steps=10, client=client)
    np.testing.assert_allclose(
        sol.states.compute(), pcr.sequential_chain(chain, np.array([0.3]), n), rtol=1e-9
    )
    assert sol.status == "sequential" and "sequential loop" in sol.message


def test_nan_in_the_sequential_chain_names_the_step(client):
    n = 24
    chain = SlowMLP(n, delay=0.0, nan_at=13)
    with pytest.raises(FloatingPointError, match=r"NaN or inf at step 13"):
        pcr.dask.solve_chain(chain, np.zeros(M), n, chunk_steps=5, client=client)


def test_nan_at_poor_iterates_is_held_back(client):
    n = 30

    def step(x, k):  # finite along the true trajectory (x in (0, 1)), NaN for x < 0
        time.sleep(0.002)
        return 0.5 * np.sqrt(x) + 0.25

    chain = pcr.FunctionChain(step, jac=lambda x, k: (0.25 / np.sqrt(x))[..., None])
    x_init = np.full((n, 1), -1.0)  # a first guess where f is NaN
    sol = pcr.dask.solve_chain(chain, np.array([0.5]), n, chunk_steps=7, x_init=x_init, client=client)
    ref = pcr.sequential_chain(pcr.FunctionChain(lambda x, k: 0.5 * np.sqrt(x) + 0.25), np.array([0.5]), n)
    np.testing.assert_allclose(sol.states.compute(), ref, rtol=1e-10)
    assert np.isinf(sol.residuals[0])


def test_fixed_iterations_equal_the_single_machine_solver(client):
    n = 30
    chain = SlowMLP(n, delay=0.0, seed=4)
    x0 = np.ones(M)
    sol = pcr.dask.solve_chain(chain, x0, n, chunk_steps=7, tol=0, max_iter=4, client=client)
    one = pcr.solve_chain(chain, x0, n, tol=0, max_iter=4)
    assert sol.iterations == 4 and sol.status == one.status
    np.testing.assert_allclose(sol.states.compute(), one.states, rtol=1e-12, atol=1e-13)


def test_warm_start_from_a_dask_array(client):
    n = 24
    chain = SlowMLP(n, seed=5)
    ref = _seq(chain, np.zeros(M), n)
    guess = da.from_array(ref + 1e-6, chunks=(5, M))
    sol = pcr.dask.solve_chain(chain, np.zeros(M), n, chunk_steps=8, x_init=guess, client=client)
    np.testing.assert_allclose(sol.states.compute(), ref, rtol=1e-10, atol=1e-12)


def test_callbacks_progress_and_counts(client, capsys):
    n = 24
    chain = SlowMLP(n, seed=6)
    seen = []
    sol = pcr.dask.solve_chain(chain, np.zeros(M), n, chunk_steps=6, client=client, callback=seen.append)
    assert [s["iteration"] for s in seen] == list(range(1, len(seen) + 1))
    assert set(seen[0]) == {
        "iteration",
        "residual",
        "prefix",
        "window",
        "damping",
        "n_step_evals",
        "n_jac_evals",
    }
    assert sol.n_step_evals >= n and sol.n_jac_evals > 0
    pcr.dask.solve_chain(chain, np.zeros(M), n, chunk_steps=6, client=client, progress=True)


def test_tasks_per_sweep_and_frozen_chunks_drop_out():
    n, chunk = 48, 6
    chain = SlowMLP(n, seed=7, delay=0.0)
    seen = []
    # a cluster of its own: the task stream records every task that ends while it is open,
    # including those a previous test's solve left running on a shared cluster
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client=client) as ts:
            pcr.dask.solve_chain(
                chain,
                np.zeros(M),
                n,
                chunk_steps=chunk,
                tol=0,
                max_iter=12,
                client=client,
                callback=seen.append,
            )
    names = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in ts.data]
    count = Counter(k.rsplit("-", 5)[0] for k in names)  # keys are "<function>-<uuid4>"
    # a sweep evaluates only the chunks that hold active steps: those at or past the prefix
    active = [len(range(s["window"][0] // chunk, -(-n // chunk))) for s in seen]
    expected = sum(active)
    assert count["evaluate"] + count["evaluate_ahead"] == expected < len(seen) * (n // chunk)
    # every sweep after the first was evaluated ahead, from its decision on the workers
    assert count["evaluate"] == active[0] and count["evaluate_ahead"] == expected - active[0]
    # per active chunk and sweep: evaluation (with its summary), completion, its small part;
    # per sweep: the carries and the decision; no task fetches a chunk's states for its neighbour
    assert count["complete"] == count["getitem"] == expected
    assert count["carries"] == count["decide"] == len(seen)
    assert count["summary"] == count["row"] == 0
    P = n // chunk
    assert len(names) == 3 * expected + 2 * len(seen) + count["initial"] + count["unpack"]
    assert count["initial"] == P  # setup: the first iterate of every chunk


def test_evaluations_made_ahead_when_sweeps_spread_wide():
    # eight workers, one chunk each: every sweep's steps spread over eight workers, so while the
    # forecast wants more sweeps, each sweep's graph evaluates the next one ahead (steps of
    # 30 ms: the sweeps pay even on a loaded machine, whose cost rules could end them early)
    n, chunk = 64, 8
    chain = PerStepMLP(n, seed=10, delay=0.03)
    x0 = np.zeros(M)
    with distributed.LocalCluster(
        n_workers=8, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as c:
            seen = []
            with distributed.get_task_stream(client=c) as ts:
                sol = pcr.dask.solve_chain(chain, x0, n, chunk_steps=chunk, client=c, callback=seen.append)
            states = sol.states.compute()
    np.testing.assert_allclose(states, _seq(chain, x0, n), rtol=1e-9, atol=1e-9)
    assert len(seen) >= 2, sol.message
    count = Counter(
        (t["key"] if isinstance(t["key"], str) else t["key"][0]).rsplit("-", 5)[0] for t in ts.data
    )
    active = [len(range(s["window"][0] // chunk, -(-n // chunk))) for s in seen]
    assert count["evaluate_ahead"] >= active[1]  # at least the second sweep was evaluated ahead
    assert count["evaluate"] + count["evaluate_ahead"] >= sum(active)
    assert count["complete"] == sum(active)


def test_completion_evaluates_again_without_the_kept_evaluation(client, monkeypatch):
    from pcrsolve.dask import _stash

    n = 30
    chain = SlowMLP(n, delay=0.0, seed=9)
    x0 = np.ones(M)
    put, keys = _stash.put, []
    monkeypatch.setattr(_stash, "put", lambda *args: keys.append(args[:3]) or put(*args))
    kept = pcr.dask.solve_chain(chain, x0, n, chunk_steps=7, tol=0, max_iter=4, client=client)
    # every evaluation was kept, and taken by its completion
    assert len(keys) == 4 * 5 and not any(key in _stash._STORE for key in keys)
    # as in another process or after a lost worker: the completion finds nothing kept
    missed = []
    monkeypatch.setattr(_stash, "take", lambda *key: missed.append(key))
    again = pcr.dask.solve_chain(chain, x0, n, chunk_steps=7, tol=0, max_iter=4, client=client)
    np.testing.assert_array_equal(again.states.compute(), kept.states.compute())
    assert len(missed) == 4 * 5  # every completion of the four sweeps (five chunks) evaluated again
    assert again.n_step_evals == kept.n_step_evals


def test_kept_evaluations_are_dropped_when_stale(monkeypatch):
    from pcrsolve.dask import _stash

    monkeypatch.setattr(_stash, "_STORE", {})  # this test's own cache
    monkeypatch.setattr(_stash, "_SOLVES", [])
    _stash.put("s0", 1, 0, "a")
    _stash.put("s0", 2, 0, "b")
    _stash.put("s0", 3, 1, "c")  # sweep 1 is two sweeps old: dropped
    assert _stash.take("s0", 1, 0) is None and _stash.take("s0", 2, 0) == "b"
    for solve in ("s1", "s2", "s3", "s4"):  # four newer solves: s0 is dropped
        _stash.put(solve, 1, 0, solve)
    assert _stash.take("s0", 3, 1) is None
    assert _stash.forget("s4") == 1 and _stash.take("s4", 1, 0) is None
    for solve in ("s1", "s2", "s3"):
        assert _stash.forget(solve) == 1
    assert _stash.size() == 0


def test_chain_is_scattered_once(client, monkeypatch):
    calls = []
    real = client.scatter
    monkeypatch.setattr(
        client, "scatter", lambda data, **kw: calls.append(type(data).__name__) or real(data, **kw)
    )
    chain = SlowMLP(20, delay=0.0)
    pcr.dask.solve_chain(chain, np.zeros(M), 20, chunk_steps=5, client=client, tol=0, max_iter=3)
    assert calls == ["SlowMLP"]


def test_no_client_says_how_to_start_one(monkeypatch):
    def none():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "get_client", none)
    with pytest.raises(ValueError, match=r"needs a dask.distributed client.*LocalCluster"):
        pcr.dask.solve_chain(pcr.FunctionChain(np.cos), np.zeros(1), 4, method="picard")


def test_bad_options(client):
    chain = pcr.FunctionChain(lambda x, k: x)
    with pytest.raises(ValueError, match=r"`chunk_steps` must be >= 1"):
        pcr.dask.solve_chain(chain, np.zeros(1), 4, chunk_steps=0, client=client)
    with pytest.raises(ValueError, match=r"method='newton' needs the chain's dense Jacobian"):
        pcr.dask.solve_chain(chain, np.zeros(1), 4, client=client)
    with pytest.raises(TypeError, match=r"must have a callable `step"):
        pcr.dask.solve_chain(object(), np.zeros(1), 4, client=client)
    with pytest.raises(ValueError, match=r"`x_init` must have shape"):
        pcr.dask.solve_chain(chain, np.zeros(1), 4, x_init=da.zeros((3, 1)), method="picard", client=client)


def test_on_worker_processes():
    from pcrsolve.adapters import MLP

    rng = np.random.default_rng(8)
    n, m = 32, 4
    mlp = MLP(0.5 * rng.standard_normal((n, m, m)) / np.sqrt(m), rng.standard_normal((n, m)))
    x0 = rng.standard_normal(m)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as c:
            sol = pcr.dask.solve_chain(mlp, x0, n, chunk_steps=8, client=c, tol=0, max_iter=3)
            states = sol.states.compute()
    one = pcr.solve_chain(mlp, x0, n, tol=0, max_iter=3)
    np.testing.assert_allclose(states, one.states, rtol=1e-12, atol=1e-13)
