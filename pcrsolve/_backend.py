"""The one place that looks at array types: which backend serves a call.

A call's backend is decided once, from its inputs or from ``backend=`` (or
:func:`use_backend`), and everything below receives the resulting :class:`Backend`:
its array namespace ``xp``, a converter for inputs, and its kernel table.

- NumPy arrays, lists and scalars -> ``"numba"`` (Numba CPU kernels).
- CuPy arrays -> ``"cupy"`` (the xp kernels on the GPU).
- Any other Array-API library (e.g. ``array_api_strict``, JAX) -> the xp kernels on that
  library (the chain layer needs arrays that can be written in place: not JAX's).
- ``"numpy"`` -> the xp kernels on NumPy (what CuPy runs, on the CPU).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["BACKENDS", "Backend", "is_dask", "resolve", "use_backend"]

BACKENDS = ("numba", "numpy", "cupy")

_CUPY_INSTALL = (
    "install CuPy for your CUDA version, e.g. pip install 'pcrsolve[cuda12]' "
    "(or 'pcrsolve[cuda13]'), on a machine with an NVIDIA GPU"
)

_chosen: contextvars.ContextVar[str | None] = contextvars.ContextVar("pcrsolve_backend", default=None)


@dataclass(frozen=True)
class Backend:
    """A resolved backend: a name, an array namespace and how to reach its kernels.

    Attributes
    ----------
    name : str
        ``"numba"``, ``"numpy"``, ``"cupy"``, or the module name of another Array-API
        library (e.g. ``"array_api_strict"``).
    xp : module
        The array namespace the results live in.
    """

    name: str
    xp: Any

    @property
    def is_numba(self) -> bool:
        """Whether this backend runs the Numba CPU kernels."""
        return self.name == "numba"

    @property
    def is_cpu_numpy(self) -> bool:
        """Whether arrays are NumPy arrays (the ``"numba"`` and ``"numpy"`` backends)."""
        return self.name in ("numba", "numpy")

    @property
    def kernels(self):
        """The :class:`~pcrsolve.kernels.KernelTable` of this backend."""
        return _kernel_table(self.name, self.xp)

    def contiguous(self, a: Any) -> Any:
        """``a`` in C order where the kernels need it (Numba); unchanged elsewhere."""
        return np.ascontiguousarray(a) if self.is_numba else a

    def asarray(self, a: Any) -> Any:
        """Return ``a`` as an array of this backend (a view when it already is one)."""
        if self.is_cpu_numpy:
            if _library(a) == "cupy":
                return a.get()  # explicit device-to-host copy, asked for by backend=
            return np.asarray(a)
        return self.xp.asarray(a)


@functools.cache
def _kernel_table(name: str, xp: Any):
    from .kernels import table

    return table("numba" if name == "numba" else "xp", xp)


def _library(a: Any) -> str | None:
    """Top-level module of an array's type, or None for lists, scalars and None."""
    if a is None or isinstance(a, (list, tuple, int, float, complex, bool)):
        return None
    if isinstance(a, (np.ndarray, np.generic)):
        return "numpy"
    if array_api_compat.is_array_api_obj(a):
        return type(a).__module__.split(".")[0]
    return None


def is_dask(*arrays: Any) -> bool:
    """Whether any input is a Dask array: the linear solvers then hand the call to
    :mod:`pcrsolve.dask` (Dask is never imported here: a Dask array implies it is loaded)."""
    return any(_library(a) == "dask" for a in arrays)


def _cupy_namespace():
    if importlib.util.find_spec("cupy") is None:
        raise RuntimeError(f"backend 'cupy' needs CuPy, which is not installed; {_CUPY_INSTALL}.")
    import cupy

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken: CuPy raises its own types
        raise RuntimeError(f"backend 'cupy' found no usable GPU ({exc}); {_CUPY_INSTALL}.") from None
    if count == 0:
        raise RuntimeError(f"backend 'cupy' found no GPU; {_CUPY_INSTALL}.")
    import array_api_compat.cupy as xp

    return xp


def _named(name: str) -> Backend:
    if name in ("numba", "numpy"):
        import array_api_compat.numpy as xp

        return Backend(name, xp)
    if name == "cupy":
        return Backend("cupy", _cupy_namespace())
    raise ValueError(f"`backend` must be one of {', '.join(map(repr, BACKENDS))} or None; got {name!r}.")


def resolve(arrays: Mapping[str, Any], backend: str | None = None) -> Backend:
    """Decide the backend of one call.

    Parameters
    ----------
    arrays : mapping of str to array_like
        The call's array arguments by name (names appear in error messages).
    backend : str, optional
        An explicit choice; otherwise the innermost :func:`use_backend`, otherwise the
        inputs' array library.

    Raises
    ------
    TypeError
        If the inputs come from different array libraries and no backend was chosen.
    ValueError
        If ``backend`` is not a known name.
    RuntimeError
        If CuPy was asked for but is not installed or finds no GPU.
    """
    name = backend if backend is not None else _chosen.get()
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(
                f"`backend` must be a string such as 'numba' or 'cupy'; got {type(name).__name__}."
            )
        return _named(name)
    owners: dict[str, str] = {}
    for arg, a in arrays.items():
        lib = _library(a)
        if lib is not None:
            owners.setdefault(lib, arg)
    if len(owners) > 1:
        listed = ", ".join(f"{lib} for `{arg}`" for lib, arg in owners.items())
        raise TypeError(
            f'the inputs come from different array libraries ({listed}); pass backend="numba" '
            'to work on NumPy arrays, backend="cupy" to move them all to the GPU, or convert '
            "them yourself."
        )
    lib = next(iter(owners), "numpy")
    if lib == "numpy":
        return _named("numba")
    if lib == "cupy":
        return Backend("cupy", _cupy_namespace())
    first = next(a for a in arrays.values() if _library(a) == lib)
    return Backend(lib, array_api_compat.array_namespace(first))


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed pcrsolve calls on backend ``name`` unless a call says otherwise.

    Parameters
    ----------
    name : {"numba", "numpy", "cupy"}
        ``"numba"``: Numba CPU kernels; ``"numpy"``: the array-namespace kernels on
        NumPy; ``"cupy"``: the array-namespace kernels on the GPU (inputs are moved there).

    Examples
    --------
    >>> import numpy as np, pcrsolve as pcr
    >>> with pcr.use_backend("numpy"):
    ...     x = pcr.solve_tridiagonal([1.0], [4.0, 4.0], [1.0], [5.0, 5.0])
    >>> x
    array([1., 1.])
    """
    _named(name)  # fail here, not at the first call inside
    token = _chosen.set(name)
    try:
        yield
    finally:
        _chosen.reset(token)
