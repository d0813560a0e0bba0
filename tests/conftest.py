"""Shared fixtures: dtypes, and the backends the public API is tested on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from systems import DTYPES


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


@dataclass
class BackendCase:
    """How a test moves data in and out of one backend."""

    name: str  # the value passed as ``backend=`` (None: by the inputs)
    asarray: Callable[[Any], Any]  # NumPy array -> this backend's array
    to_numpy: Callable[[Any], np.ndarray]
    xp: Any


def _strict_backend(monkeypatch) -> BackendCase:
    import array_api_strict as xp

    def forbidden(self, *args, **kwargs):
        raise RuntimeError("implicit conversion of an array_api_strict array to NumPy")

    # CuPy refuses implicit device-to-host conversion; forbidding it here exercises that.
    array_type = type(xp.asarray(0.0))
    monkeypatch.setattr(array_type, "__array__", forbidden, raising=False)
    monkeypatch.setattr(array_type, "__buffer__", forbidden, raising=False)
    return BackendCase(
        None, lambda a: xp.asarray(np.array(a, copy=True)), lambda a: np.array(a._array, copy=True), xp
    )


BACKEND_NAMES = ("numba", "numpy", "array_api_strict")


@pytest.fixture(params=BACKEND_NAMES)
def backend(request, monkeypatch) -> BackendCase:
    """The three ways through the public API: Numba kernels, xp kernels on NumPy, strict xp."""
    if request.param == "array_api_strict":
        return _strict_backend(monkeypatch)
    ident = lambda a: np.asarray(a)  # noqa: E731
    return BackendCase(request.param, ident, ident, np)


@contextlib.contextmanager
def unchanged(*arrays):
    """Assert that the NumPy ``arrays`` are bit-for-bit unchanged by the block."""
    copies = [np.array(a, copy=True) for a in arrays]
    yield
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c, err_msg="an input array was modified")


def _forbid_host_values(monkeypatch, xp):
    """Also forbid ``bool()/int()/float()/complex()`` of arrays: host syncs on a GPU."""

    def forbidden(self, *args, **kwargs):
        raise RuntimeError("a kernel pulled an array value back to the host")

    array_type = type(xp.asarray(0.0))
    for name in ("__bool__", "__int__", "__float__", "__complex__", "__index__"):
        monkeypatch.setattr(array_type, name, forbidden, raising=False)


def hide_tqdm(monkeypatch) -> None:
    """Make ``import tqdm`` fail, as where tqdm is not installed (progress falls back to lines)."""
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)


def count_host_syncs(monkeypatch, xp) -> dict[str, int]:
    """Count ``bool()/int()/float()/index()`` of ``xp``'s arrays (host syncs on a GPU) in ``["n"]``."""
    counts = {"n": 0}
    array_type = type(xp.asarray(0.0))
    for name in ("__bool__", "__float__", "__int__", "__index__"):
        real = getattr(array_type, name)

        def counting(self, *a, _real=real, **kw):
            counts["n"] += 1
            return _real(self, *a, **kw)

        monkeypatch.setattr(array_type, name, counting)
    return counts


def kernel_namespace(name, monkeypatch) -> BackendCase:
    """The namespace an xp kernel runs on; for array_api_strict no host conversion at all."""
    if name == "array_api_strict":
        be = _strict_backend(monkeypatch)
        _forbid_host_values(monkeypatch, be.xp)
        return be
    import array_api_compat.numpy as cnp

    return BackendCase("numpy", cnp.asarray, np.asarray, cnp)


@pytest.fixture(params=("numpy", "array_api_strict"))
def xb(request, monkeypatch) -> BackendCase:
    """An array namespace the xp kernels run on: array_api_compat.numpy or array_api_strict."""
    return kernel_namespace(request.param, monkeypatch)
