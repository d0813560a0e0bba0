"""A residual network of square blocks as a chain: ``x_{k+1} = x_k + h act(W_k x_k + b_k)``."""

from __future__ import annotations

from typing import Any

from ._activations import Activation
from ._dense import DenseChain

__all__ = ["ResNet"]


class ResNet(DenseChain):
    """A deep ResNet of ``L`` width-``m`` residual blocks, as a chain.

    Block ``k`` maps ``x`` to ``x + h act(W_k x + b_k)`` (an explicit Euler step of the ODE
    ``x' = act(W(t) x + b(t))`` when ``h = T / L``). States follow the chain convention:
    ``states[k]`` is the output of block ``k``, ``states[-1] = x``; shape ``(L, *batch, m)``.

    Parameters
    ----------
    weights : (L, m, m) array_like
        Block matrices ``W_k``.
    biases : (L, m) array_like
        Block biases ``b_k``.
    activation : {"tanh", "relu", "sigmoid", "gelu", "identity"} or (callable, callable), optional
        The elementwise nonlinearity (default ``"tanh"``), or a pair ``(function, derivative)``.
    step_size : float, optional
        The residual branch's scale ``h`` (default 1.0).

    Attributes
    ----------
    weights, biases : array
        The parameters: copies made when the network is built (as for
        :class:`~pcrsolve.adapters.MLP`).
    activation : Activation
    step_size : float
    n_steps : int
        ``L``.
    width : int
        ``m``.

    Raises
    ------
    ValueError
        If the shapes do not match (``weights`` (L, m, m), ``biases`` (L, m)), the activation
        is unknown, or ``step_size`` is not finite.
    TypeError
        If the parameters are complex or from different array libraries, or ``step_size`` is
        not a real number.

    Notes
    -----
    The Jacobian of block ``k`` is ``I + h diag(act'(z)) W_k``; see :class:`MLP` for how the
    chain methods run on each backend. Parameter gradients (:meth:`gradients`) come from one
    adjoint solve and one batched product over all blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from pcrsolve.adapters import ResNet
    >>> rng = np.random.default_rng(1)
    >>> L, m, h = 256, 3, 1.0 / 256
    >>> W = rng.standard_normal((L, m, m))
    >>> b = rng.standard_normal((L, m))
    >>> net = ResNet(W, b, activation="relu", step_size=h)
    >>> x = rng.standard_normal((5, m))               # a batch of 5 inputs
    >>> ref = x
    >>> for k in range(L):
    ...     ref = ref + h * np.maximum(ref @ W[k].T + b[k], 0.0)
    >>> sol = net.forward(x)
    >>> sol.states.shape
    (256, 5, 3)
    >>> bool(np.allclose(sol.states[-1], ref))
    True
    """

    _kind = "ResNet"
    _residual = True

    def __init__(
        self,
        weights: Any,
        biases: Any,
        activation: str | tuple[Any, Any] | Activation = "tanh",
        step_size: float = 1.0,
    ) -> None:
        super().__init__(weights, biases, activation, step_size)

    @property
    def step_size(self) -> float:
        """The residual scale ``h``."""
        return self._h
