"""The backend switch: who decides, conversions, import cost, show_config."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import pcrsolve as pcr
from pcrsolve import _backend

HEAVY = ("numba", "cupy", "dask", "distributed", "scipy", "pcrsolve.kernels", "pcrsolve.adapters")


def _loaded_after(code: str) -> list[str]:
    """The heavy modules (and submodules) imported by running ``code`` in a fresh interpreter."""
    probe = f"{code}; import sys; print(' '.join(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.split() if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_import_is_light():
    assert _loaded_after("import pcrsolve") == []


def test_subpackages_load_on_first_access():
    loaded = _loaded_after("import pcrsolve; pcrsolve.adapters.MLP")
    assert "pcrsolve.adapters" in loaded and "dask" not in loaded
    assert "pcrsolve.kernels" in _loaded_after("import pcrsolve; pcrsolve.kernels.table")
    assert "adapters" in dir(pcr)
    assert isinstance(pcr.__version__, str) and pcr.__version__
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        pcr.nonexistent  # noqa: B018


def test_inputs_decide():
    import array_api_strict as xps

    assert _backend.resolve({"a": np.ones(2), "b": [1.0]}).name == "numba"
    assert _backend.resolve({"a": [1.0], "b": None}).name == "numba"
    be = _backend.resolve({"a": xps.ones(2), "b": [1.0]})
    assert be.name == "array_api_strict" and not be.is_cpu_numpy


def test_explicit_backend_wins_and_nests():
    assert _backend.resolve({"a": np.ones(2)}, "numpy").name == "numpy"
    with pcr.use_backend("numpy"):
        assert _backend.resolve({"a": np.ones(2)}).name == "numpy"
        with pcr.use_backend("numba"):
            assert _backend.resolve({"a": np.ones(2)}).name == "numba"
        assert _backend.resolve({"a": np.ones(2)}, "numba").name == "numba"
    assert _backend.resolve({"a": np.ones(2)}).name == "numba"


def test_explicit_backend_converts_other_libraries():
    import array_api_strict as xps

    x = pcr.solve_tridiagonal(
        xps.asarray([1.0]), xps.asarray([4.0, 4.0]), [1.0], np.array([5.0, 5.0]), backend="numba"
    )
    assert isinstance(x, np.ndarray)
    np.testing.assert_allclose(x, [1.0, 1.0])


def test_result_stays_in_input_library():
    import array_api_strict as xps

    x = pcr.solve_tridiagonal(
        xps.asarray([1.0]), xps.asarray([4.0, 4.0]), xps.asarray([1.0]), xps.asarray([5.0, 5.0])
    )
    assert type(x).__module__.startswith("array_api_strict")


@pytest.mark.skipif(_backend.importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cupy_not_installed_message():
    with pytest.raises(
        RuntimeError, match=r"backend 'cupy' needs CuPy, which is not installed; install CuPy"
    ):
        _backend.resolve({}, "cupy")


def test_show_config():
    buf = io.StringIO()
    pcr.show_config(file=buf)
    text = buf.getvalue()
    for word in ("pcrsolve", "numpy", "numba", "threads", "cupy", "backends"):
        assert word in text
