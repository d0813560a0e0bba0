"""A multilayer perceptron of square layers as a chain: ``x_{k+1} = act(W_k x_k + b_k)``."""

from __future__ import annotations

from typing import Any

from ._activations import Activation
from ._dense import DenseChain

__all__ = ["MLP"]


class MLP(DenseChain):
    """A deep MLP of ``L`` width-``m`` layers, as a chain for :func:`pcrsolve.solve_chain`.

    Layer ``k`` maps ``x`` to ``act(W_k x + b_k)``. In the chain convention the states are the
    layer outputs: ``states[k] = act(W_k states[k-1] + b_k)`` with ``states[-1] = x`` (the
    input), so ``states`` has shape ``(L, *batch, m)`` and the network's output is
    ``states[-1]``.

    Parameters
    ----------
    weights : (L, m, m) array_like
        Layer matrices ``W_k`` (acting on column vectors: ``W_k @ x``).
    biases : (L, m) array_like
        Layer biases ``b_k``.
    activation : {"tanh", "relu", "sigmoid", "gelu", "identity"} or (callable, callable), optional
        The elementwise nonlinearity (default ``"tanh"``), or a pair ``(function,
        derivative)``; see :func:`~pcrsolve.adapters.get_activation`.

    Attributes
    ----------
    weights, biases : array
        The parameters, in their array library, as a real floating dtype (integers become
        float64, float16 float32): copies made when the network is built, so changing the
        arrays passed in does not change the network (after an update, build a new one).
    activation : Activation
    n_steps : int
        ``L``.
    width : int
        ``m``.

    Raises
    ------
    ValueError
        If ``weights`` is not ``(L, m, m)``, ``biases`` not ``(L, m)``, or the activation is
        unknown.
    TypeError
        If the parameters are complex, come from different array libraries, or
        ``activation`` is neither a name nor a pair of callables.

    Notes
    -----
    The chain methods (:meth:`step`, :meth:`jac`, :meth:`jac_diag`, :meth:`jvp`, :meth:`vjp`,
    :meth:`linearize`) are vectorized over the step axis: ``k`` is an int array of shape
    ``(s,)`` and ``x_prev`` has shape ``(s, *batch, m)``. On NumPy inputs they run Numba
    kernels that read ``W[k]`` in place; on other array libraries (CuPy,
    ``array_api_strict``, ...) they run Array-API code with ``xp.take`` and ``matmul``.
    The Jacobian of layer ``k`` is ``diag(act'(z)) W_k``, ``z = W_k x + b_k``.

    Examples
    --------
    >>> import numpy as np
    >>> from pcrsolve.adapters import MLP
    >>> rng = np.random.default_rng(0)
    >>> L, m = 64, 4
    >>> W = rng.standard_normal((L, m, m)) / np.sqrt(m)
    >>> b = 0.1 * rng.standard_normal((L, m))
    >>> net = MLP(W, b, activation="tanh")
    >>> x = rng.standard_normal(m)
    >>> ref = x
    >>> for k in range(L):
    ...     ref = np.tanh(W[k] @ ref + b[k])
    >>> f = net.step(x[None], np.array([0]))          # one layer, vectorized over steps
    >>> bool(np.allclose(f[0], np.tanh(W[0] @ x + b[0])))
    True
    >>> sol = net.forward(x)                          # all layers by Newton's method
    >>> bool(np.allclose(sol.states[-1], ref))
    True
    >>> g = net.gradients(x, sol, grad_out=np.ones(m))  # d sum(output) / d parameters
    >>> g["weights"].shape, g["biases"].shape, g["x"].shape
    ((64, 4, 4), (64, 4), (4,))
    """

    _kind = "MLP"

    def __init__(
        self,
        weights: Any,
        biases: Any,
        activation: str | tuple[Any, Any] | Activation = "tanh",
    ) -> None:
        super().__init__(weights, biases, activation)
