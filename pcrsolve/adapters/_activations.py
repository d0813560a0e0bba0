"""Elementwise activations with their derivatives, on any array namespace.

An :class:`Activation` evaluates ``a = act(z)`` and ``a' = act'(z)`` together (the chain
adapters always need both: the step value and the diagonal of the Jacobian). Built-ins:

============ ============================================ ====================================
name         act(z)                                       act'(z)
============ ============================================ ====================================
"tanh"       tanh z                                       1 - tanh² z
"relu"       max(z, 0)                                    1 if z > 0 else 0 (0 at z = 0)
"sigmoid"    1 / (1 + exp(-z))  (overflow-free form)      s (1 - s)
"gelu"       z Φ(z) = z (1 + erf(z/√2)) / 2  (exact)      Φ(z) + z φ(z)
"identity"   z                                            1
============ ============================================ ====================================

"gelu" is the exact, erf-based GELU (PyTorch's default, ``approximate="none"``), not the tanh
approximation. Its accuracy depends on where ``erf`` comes from:

GELU is computed as ``z erfc(-z/√2) / 2`` so that it keeps its relative accuracy for negative
``z`` (where ``1 + erf`` would cancel):

- NumPy (the ``"numba"`` and ``"numpy"`` backends): :func:`scipy.special.erfc`, correct to a
  few units in the last place.
- CuPy: :func:`cupyx.scipy.special.erfc`, likewise.
- Another namespace that has ``xp.erfc`` (or ``xp.erf``): that function.
- Any other Array-API namespace (e.g. ``array_api_strict``): the Chebyshev fit of
  ``erfc`` from Numerical Recipes (``erfcc``, Press et al., 2nd ed., §6.2), whose
  *relative* error in ``erfc`` is below 1.2e-7 everywhere; hence ``|Δ gelu(z)| < 1.2e-7 |z|``
  and, for ``z < 0``, a relative error below 1.2e-7 in ``gelu(z)`` itself.

A pair of callables ``(function, derivative)`` makes a custom activation; both take and
return arrays of the same shape in the inputs' array library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat

__all__ = ["ACTIVATIONS", "Activation", "erf", "erfc", "get_activation"]

#: Names of the built-in activations.
ACTIVATIONS = ("tanh", "relu", "sigmoid", "gelu", "identity")

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _is_numpy(xp: Any) -> bool:
    return array_api_compat.is_numpy_namespace(xp)


def _erfc_nr(xp: Any, z: Any) -> Any:
    """``erfc(z)`` by Numerical Recipes' ``erfcc``: relative error < 1.2e-7 for every real z."""
    az = xp.abs(z)
    t = 1.0 / (1.0 + 0.5 * az)
    poly = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
              1.00002368):  # fmt: skip
        poly = c + t * poly
    ans = t * xp.exp(-az * az - 1.26551223 + t * poly)
    return xp.where(z >= 0, ans, 2.0 - ans)


def erf(xp: Any, z: Any) -> Any:
    """``erf(z)`` on namespace ``xp`` (see the module docstring for the accuracy per backend)."""
    if _is_numpy(xp):
        import scipy.special

        return xp.asarray(scipy.special.erf(z))
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(z)
    native = getattr(xp, "erf", None)
    if native is not None:
        return native(z)
    return 1.0 - _erfc_nr(xp, z)


def erfc(xp: Any, z: Any) -> Any:
    """``erfc(z) = 1 - erf(z)`` on namespace ``xp``, without cancellation where available."""
    if _is_numpy(xp):
        import scipy.special

        return xp.asarray(scipy.special.erfc(z))
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.special

        return cupyx.scipy.special.erfc(z)
    native = getattr(xp, "erfc", None)
    if native is not None:
        return native(z)
    if hasattr(xp, "erf"):
        return 1.0 - xp.erf(z)
    return _erfc_nr(xp, z)


def _normal_cdf(xp: Any, z: Any) -> Any:
    """Φ(z) = erfc(-z/√2)/2: accurate in relative terms in the lower tail (where gelu is tiny)."""
    return 0.5 * erfc(xp, -z * _SQRT1_2)


# Each built-in: (xp, z) -> (act(z), act'(z)), or with need_derivative=False just act(z).


def _tanh(xp, z, need_derivative):
    a = xp.tanh(z)
    return (a, 1.0 - a * a) if need_derivative else a


def _relu(xp, z, need_derivative):
    pos = z > 0
    a = xp.where(pos, z, xp.zeros_like(z))
    return (a, xp.astype(pos, z.dtype)) if need_derivative else a


def _sigmoid(xp, z, need_derivative):
    e = xp.exp(-xp.abs(z))  # never overflows
    r = 1.0 / (1.0 + e)
    a = xp.where(z >= 0, r, e * r)
    return (a, a * (1.0 - a)) if need_derivative else a


def _gelu(xp, z, need_derivative):
    cdf = _normal_cdf(xp, z)
    a = z * cdf
    if not need_derivative:
        return a
    return a, cdf + z * (_INV_SQRT_2PI * xp.exp(-0.5 * z * z))


def _identity(xp, z, need_derivative):
    return (z, xp.ones_like(z)) if need_derivative else z


_BUILTINS = {"tanh": _tanh, "relu": _relu, "sigmoid": _sigmoid, "gelu": _gelu, "identity": _identity}


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and its derivative.

    Build one with :func:`get_activation` (or pass a name or a pair of callables to the
    adapters, which call it for you).

    Attributes
    ----------
    name : str
        The built-in's name, or ``"custom"`` for a pair of callables.
    """

    name: str
    _function: Callable[..., Any] | None = None
    _derivative: Callable[..., Any] | None = None

    def __call__(self, z: Any) -> Any:
        """``act(z)``, elementwise, in the array library of ``z``."""
        return self.value_and_derivative(z, need_derivative=False)

    def derivative(self, z: Any) -> Any:
        """``act'(z)``, elementwise."""
        return self.value_and_derivative(z)[1]

    def value_and_derivative(self, z: Any, *, need_derivative: bool = True) -> Any:
        """``(act(z), act'(z))`` computed together (or ``act(z)`` alone).

        Parameters
        ----------
        z : array
            Pre-activations, any shape, real floating dtype.
        need_derivative : bool, optional
            When False, return only ``act(z)``.

        Returns
        -------
        a : array
            ``act(z)``, the shape of ``z``, in its array library.
        da : array
            ``act'(z)``, the shape of ``z`` (only when ``need_derivative``).
        """
        return self._evaluate(array_api_compat.array_namespace(z), z, need_derivative)

    def _evaluate(self, xp: Any, z: Any, need_derivative: bool) -> Any:
        """:meth:`value_and_derivative` with the namespace already known."""
        if self._function is None:
            return _BUILTINS[self.name](xp, z, need_derivative)
        a = self._function(z)
        if not need_derivative:
            return a
        return a, self._derivative(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def get_activation(
    activation: str | tuple[Callable[..., Any], Callable[..., Any]] | Activation,
) -> Activation:
    """Return the :class:`Activation` named by ``activation``.

    Parameters
    ----------
    activation : {"tanh", "relu", "sigmoid", "gelu", "identity"} or (callable, callable) or Activation
        A built-in's name, or a pair ``(function, derivative)`` of elementwise callables on
        arrays, or an :class:`Activation` (returned unchanged).

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        If the name is not a built-in.
    TypeError
        If ``activation`` is neither a string nor a pair of callables.

    Examples
    --------
    >>> import numpy as np
    >>> from pcrsolve.adapters import get_activation
    >>> act = get_activation("relu")
    >>> act.value_and_derivative(np.array([-1.0, 0.0, 2.0]))
    (array([0., 0., 2.]), array([0., 0., 1.]))
    >>> square = get_activation((lambda z: z * z, lambda z: 2 * z))
    >>> square(np.array([3.0]))
    array([9.])
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        if activation not in _BUILTINS:
            raise ValueError(
                f"`activation` must be one of {', '.join(map(repr, ACTIVATIONS))} or a pair of "
                f"callables (function, derivative); got {activation!r}."
            )
        return Activation(activation)
    if (
        isinstance(activation, (tuple, list))
        and len(activation) == 2
        and all(callable(f) for f in activation)
    ):
        return Activation("custom", activation[0], activation[1])
    raise TypeError(
        f"`activation` must be a name ({', '.join(map(repr, ACTIVATIONS))}) or a pair of callables "
        f"(function, derivative); got {type(activation).__name__}."
    )
