"""Validation of the chain API's arguments, with the error messages that name them."""

from __future__ import annotations

import operator
from typing import Any

from .. import _validation
from ._eval import has

__all__ = [
    "as_int",
    "check_chain",
    "default_tol",
    "n_steps",
    "needs",
    "optional_float",
    "optional_int",
    "order",
    "order_value",
    "states_like",
    "x0",
]


def check_chain(chain: Any, where: str) -> None:
    """Raise TypeError unless ``chain`` has a callable ``step``."""
    if not has(chain, "step"):
        raise TypeError(
            f"`chain` passed to {where} must have a callable `step(x_prev, k)` (see pcrsolve.Chain); "
            f"got {type(chain).__name__}. Wrap plain functions as FunctionChain(step, jac=...)."
        )


def as_int(value: Any, name: str, expected: str = "an int") -> int:
    """``value`` as an int (NumPy integers accepted, bool and floats not), else TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be {expected}; got bool.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be {expected}; got {type(value).__name__} {value!r}.") from None


def n_steps(value: Any) -> int:
    """``n_steps`` as a non-negative int (NumPy integers accepted, bool and floats not)."""
    n = as_int(value, "n_steps")
    if n < 0:
        raise ValueError(f"`n_steps` must be >= 0; got {n}.")
    return n


def x0(be, value: Any, dtype: Any = None):
    """``x0`` as a finite ``(*batch, m)`` array of the backend with a float/complex dtype.

    Always a private copy (it is small): the chain sees it as ``x_prev`` and may write into
    it without touching the caller's array.
    """
    xp = be.xp
    a = _validation._numeric(be, value, "x0")
    if a.ndim < 1:
        raise ValueError(
            "`x0` must have shape (*batch, m) with the state axis m last; got a scalar. Use "
            "x0[None] (shape (1,)) for a scalar state."
        )
    dtype = _validation.result_dtype(xp, a) if dtype is None else dtype
    a = xp.asarray(_validation._cast(xp, a, dtype), copy=True)
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError("`x0` contains NaN or inf; the chain must start from a finite state.")
    return a


def states_like(be, a: Any, name: str, n: int, x0, what: str):
    """An array of shape ``(n, *x0.shape)``, cast to ``x0``'s dtype, checked finite."""
    xp = be.xp
    arr = _validation._numeric(be, a, name)
    want = (n, *x0.shape)
    if tuple(arr.shape) != want:
        raise ValueError(
            f"`{name}` must have shape (n_steps, *batch, m) = {want} ({what}); got shape {tuple(arr.shape)}."
        )
    arr = _validation._cast(xp, arr, x0.dtype)
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or inf.")
    return arr


def optional_int(value: Any, name: str, minimum: int) -> int | None:
    """``None`` or an int ``>= minimum``."""
    if value is None:
        return None
    v = as_int(value, name, "an int or None")
    if v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum} (or None); got {v}.")
    return v


def optional_float(value: Any, name: str, low: float, high: float, low_open: bool) -> float | None:
    """``None`` or a float in ``(low, high]`` (``[low, high]`` unless ``low_open``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a float or None; got bool.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a float or None; got {type(value).__name__}.") from None
    ok = (v > low if low_open else v >= low) and v <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"`{name}` must lie in {interval}; got {value!r}.")
    return v


def needs(chain: Any, method: str) -> None:
    """Raise ValueError if the chain lacks the derivatives ``method`` needs."""
    if method in ("newton", "band1") and not any(has(chain, n) for n in ("jac", "jvp", "linearize")):
        raise ValueError(
            f"method={method!r} needs the chain's dense Jacobian: give `jac(x_prev, k)` "
            "(s, *batch, m, m), `jvp(x_prev, k, v)` or `linearize(x_prev, k)`, e.g. "
            "FunctionChain(step, jac=...); methods 'picard', 'jacobi' and 'sequential' need only `step`."
        )
    if method == "diagonal" and not any(has(chain, n) for n in ("jac_diag", "jac", "jvp", "linearize")):
        raise ValueError(
            "method='diagonal' needs the Jacobians' diagonals: give `jac_diag(x_prev, k)` "
            "(s, *batch, m), or `jac`, `jvp` or `linearize` (their diagonal is taken), e.g. "
            "FunctionChain(step, jac_diag=...); methods 'picard', 'jacobi' and 'sequential' need only `step`."
        )
    if method == "block" and not has(chain, "jac_blocks"):
        raise ValueError(
            "method='block' needs the Jacobians' diagonal blocks: give `jac_blocks(x_prev, k)` "
            "(s, *batch, m/b, b, b), e.g. FunctionChain(step, jac_blocks=...); for a dense Jacobian "
            "use method='newton', for its diagonal method='diagonal'."
        )


def order_value(value: Any, name: str) -> int:
    """``value`` as a chain order, an int ``>= 1``; ``name`` is how messages call it."""
    r = as_int(value, name, "an int >= 1")
    if r < 1:
        raise ValueError(f"`{name}` must be >= 1 (1: x_k = f_k(x_(k-1)); r: the last r states); got {r}.")
    return r


def order(chain: Any) -> int:
    """The chain's order ``r >= 1`` (``chain.order``, 1 when absent)."""
    return order_value(getattr(chain, "order", 1), "chain.order")


def default_tol(xp: Any, dtype: Any) -> float:
    """The default ``tol``: ``eps**0.75`` of the state dtype (1.8e-12 float64, 6.4e-6 float32)."""
    return float(xp.finfo(dtype).eps) ** 0.75
