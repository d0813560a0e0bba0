"""``show_config``: versions, available backends and threads."""

from __future__ import annotations

import importlib.util
import platform
import sys

__all__ = ["package_version", "show_config"]


def _version(dist: str) -> str:
    import importlib.metadata  # deferred: tens of milliseconds, not needed by ``import pcrsolve``

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def package_version() -> str:
    """pcrsolve's installed version, or ``"0+unknown"`` when run from an uninstalled source tree."""
    version = _version("pcrsolve")
    return "0+unknown" if version == "not installed" else version


def show_config(file=None) -> None:
    """Print pcrsolve's version, its dependencies, the available backends and threads.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: ``sys.stdout``).

    Examples
    --------
    >>> import pcrsolve as pcr
    >>> pcr.show_config()  # doctest: +SKIP
    """
    out = file if file is not None else sys.stdout
    import numba

    rows = [
        ("pcrsolve", _version("pcrsolve")),
        ("python", platform.python_version()),
        ("machine", f"{platform.machine()}, {platform.system()}"),
        ("numpy", _version("numpy")),
        ("scipy", _version("scipy")),
        (
            "numba",
            f"{_version('numba')} ({numba.get_num_threads()} threads, "
            f"layer {numba.threading_layer() if _numba_threads_started() else 'not started'})",
        ),
        ("array-api-compat", _version("array-api-compat")),
    ]
    cupy = "not installed"
    if importlib.util.find_spec("cupy") is not None:
        try:
            import cupy

            cupy = f"{cupy.__version__} ({cupy.cuda.runtime.getDeviceCount()} GPU(s))"
        except Exception as exc:  # CuPy without a driver raises CUDA-specific errors
            cupy = f"installed, no usable GPU ({type(exc).__name__})"
    rows.append(("cupy", cupy))
    rows.append(("backends", "numba, numpy" + (", cupy" if "GPU(s)" in cupy else "")))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}", file=out)


def _numba_threads_started() -> bool:
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # raised until a parallel kernel has run
        return False
    return True
