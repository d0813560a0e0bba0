"""Stacked recurrent networks: layer by layer, or the layers x time grid as one chain."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend
from ._cells import CELLS
from ._grid import GridChain, into_output
from ._rnn_layer import Layer
from ._rnn_validation import check_params, check_rnn
from .rnn import RNN

__all__ = ["StackedRNN", "StackedSolution"]

STACKED_METHODS = ("layerwise", "grid")


@dataclass(frozen=True)
class StackedSolution:
    """The result of :meth:`StackedRNN.forward`.

    Attributes
    ----------
    states : tuple of arrays
        One per layer: ``states[l]`` has shape ``(T, *batch, m_l)`` (``[c; h]`` for lstm_diag).
    solutions : tuple of ChainSolution
        ``method="layerwise"``: one per layer; ``"grid"``: one, whose states stack all layers.
    method : {"layerwise", "grid"}
    """

    states: tuple[Any, ...]
    solutions: tuple[Any, ...]
    method: str

    @property
    def iterations(self) -> int:
        """Newton iterations one after the other: their sum over the layers (layerwise), or the grid's."""
        return sum(s.iterations for s in self.solutions)

    @property
    def converged(self) -> bool:
        """Whether every solve converged."""
        return all(s.converged for s in self.solutions)


class StackedRNN:
    r"""A stack of recurrent layers over time: layer ``l`` reads the hidden states of layer ``l-1``.

    Layer 0 reads ``inputs``; layer ``l > 0`` reads the hidden state ``h`` of layer ``l-1`` at
    the same step (for an lstm_diag layer, the second half of its state ``[c; h]``). The
    arrays are copied when the stack is built, as by :class:`~pcrsolve.adapters.RNN`.

    Parameters
    ----------
    layers : list of (cell, params)
        The layers, bottom first, each a cell name and its parameters as for
        :class:`~pcrsolve.adapters.RNN` (``U_*`` of layer ``l > 0`` of shape ``(w_l, w_{l-1})``).
    inputs : (T, *batch, d_in) array_like
        The input sequence of layer 0.
    h0 : list of (array_like or None), optional
        The initial state of each layer (zeros for ``None``, or when ``h0`` is omitted).

    Attributes
    ----------
    n_layers : int
    n_steps : int
        ``T``.
    state_sizes : tuple of int
        ``m_l`` of every layer.

    Raises
    ------
    ValueError, TypeError
        As :class:`~pcrsolve.adapters.RNN`, for any layer (the message names it), or when a
        layer's input size does not match the width of the layer below.

    Notes
    -----
    ``forward(method="layerwise")`` solves the layers one after the other, each by Newton's
    method over time (ParaRNN, DEER): the Newton iterations add up over the layers.
    ``forward(method="grid")`` solves the layers x time grid as one chain over time whose
    state stacks all layers (Naumov 2017): one step runs the layers bottom-up, its Jacobian is
    block lower triangular, and the iterations are about those of one layer, whatever the
    depth, at a cost of ``O(M^2)`` per step for the stacked width ``M = sum m_l`` (dense
    Newton on the stacked state).

    Examples
    --------
    >>> import numpy as np
    >>> from pcrsolve.adapters import StackedRNN
    >>> rng = np.random.default_rng(0)
    >>> def paragru(w, d_in):
    ...     p = {f"a_{g}": rng.uniform(-0.5, 0.5, w) for g in "zrc"}
    ...     p |= {f"U_{g}": rng.standard_normal((w, d_in)) / np.sqrt(d_in) for g in "zrc"}
    ...     return p | {f"b_{g}": np.zeros(w) for g in "zrc"}
    >>> net = StackedRNN([("gru_diag", paragru(8, 3))] + [("gru_diag", paragru(8, 8))] * 3,
    ...                  rng.standard_normal((400, 3)))
    >>> sol = net.forward()                    # layer by layer, Newton over time in each
    >>> sol.converged, len(sol.states), sol.states[-1].shape
    (True, 4, (400, 8))

    The Newton sweeps each way (fixed-iteration runs, which never switch to the loop; a sweep
    "moves" while its update exceeds 1e-12):

    >>> def moved(sol):
    ...     return [int(sum(r > 1e-12 for r in s.residuals)) for s in sol.solutions]
    >>> lw = net.forward(method="layerwise", tol=0, max_iter=8)
    >>> grid = net.forward(method="grid", tol=0, max_iter=8)
    >>> moved(lw), moved(grid)                # four solves in a row, against one
    ([4, 4, 4, 4], [5])
    >>> bool(np.allclose(lw.states[-1], grid.states[-1]))
    True
    """

    def __init__(self, layers: list[tuple[str, dict[str, Any]]], inputs: Any, *, h0: Any = None) -> None:
        if not isinstance(layers, (list, tuple)) or not layers:
            got = "an empty list" if isinstance(layers, (list, tuple)) else type(layers).__name__
            raise TypeError(f"`layers` must be a non-empty list of (cell, params) pairs; got {got}.")
        for l, item in enumerate(layers):
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise TypeError(f"`layers[{l}]` must be a (cell, params) pair; got {type(item).__name__}.")
        k = len(layers)
        if h0 is None:
            h0 = [None] * k
        elif not isinstance(h0, (list, tuple)) or len(h0) != k:
            got = len(h0) if isinstance(h0, (list, tuple)) else type(h0).__name__
            raise ValueError(
                f"`h0` must be None or a list of {k} initial states (one per layer, each None or an "
                f"array); got {got}."
            )
        with _errors_of(0):
            first = RNN(layers[0][0], layers[0][1], inputs, h0=h0[0])
        specs = [_Spec(first._layer, first.params, first.h0)]
        be = _backend.resolve({"inputs": first.inputs})
        xp = np if be.is_numba else be.xp
        for l in range(1, k):
            cell, params = layers[l]
            w_below = specs[-1].layer.width
            with _errors_of(l):
                c = CELLS.get(cell) if isinstance(cell, str) else None
                if c is not None:
                    check_params(c, params)
                    shape = tuple(np.shape(params[c.input_names[0]]))
                    if len(shape) == 2 and shape[1] != w_below:
                        raise ValueError(
                            f"`params[{c.input_names[0]!r}]` must have shape (w, d_in) = ({shape[0]}, "
                            f"{w_below}): the input of layer {l} is the hidden state h (width {w_below}) "
                            f"of layer {l - 1}; got shape {shape}."
                        )
                # the layer's inputs are computed; an empty sequence of their shape checks the rest
                placeholder = xp.zeros((0, *first._batch, w_below), dtype=first._dtype)
                a = check_rnn(cell, params, placeholder, h0[l])
            specs.append(_Spec(Layer(a.cell, a.params, a.width, a.d_in), a.params, a.h0))
        self._first = first
        self._specs = specs
        self._layers = [spec.layer for spec in specs]
        self._grid = GridChain(self._layers, first)

    @property
    def n_layers(self) -> int:
        """The number of layers."""
        return len(self._layers)

    @property
    def n_steps(self) -> int:
        """``T``."""
        return self._first.n_steps

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """``m_l`` of every layer."""
        return tuple(layer.m for layer in self._layers)

    @property
    def grid(self) -> GridChain:
        """The layers x time grid as one :class:`~pcrsolve.Chain` (state: all layers stacked)."""
        return self._grid

    def __repr__(self) -> str:
        cells = ", ".join(f"{layer.cell.name}({layer.width})" for layer in self._layers)
        return f"StackedRNN([{cells}], T={self.n_steps}, batch={self._first._batch})"

    def _rnn(self, l: int, inputs: Any) -> RNN:
        """Layer ``l`` as an :class:`RNN` on the given inputs (the hidden states of layer ``l-1``)."""
        if l == 0:
            return self._first
        spec = self._specs[l]
        return RNN(spec.layer.cell.name, spec.params, inputs, h0=spec.h0)

    # ------------------------------------------------------------------ solving

    def forward(self, method: str = "layerwise", **options: Any) -> StackedSolution:
        """Run all layers over all steps.

        Parameters
        ----------
        method : {"layerwise", "grid"}, optional
            ``"layerwise"``: one :meth:`RNN.forward <pcrsolve.adapters.RNN.forward>` per layer,
            bottom-up (each with its cell's exact Newton method unless ``options`` say
            otherwise). ``"grid"``: one :func:`~pcrsolve.solve_chain` on the stacked state
            (``method="newton"`` by default, from every step taken from the initial states).
        **options
            Passed to :func:`pcrsolve.solve_chain` (``tol``, ``max_iter``, ``backend``, ...;
            its ``method`` as ``chain_method``).

        Returns
        -------
        StackedSolution
            ``states`` per layer, the solver's ``solutions``, the total ``iterations``.
        """
        from ..chain import solve_chain

        if method not in STACKED_METHODS:
            raise ValueError(f"`method` must be 'layerwise' or 'grid'; got {method!r}.")
        if "chain_method" in options:
            options["method"] = options.pop("chain_method")
        if method == "layerwise":
            sols, inputs = [], None
            for l in range(self.n_layers):
                sol = self._rnn(l, inputs).forward(**options)
                sols.append(sol)
                inputs = self._layers[l].output(sol.states) if l + 1 < self.n_layers else None
            return StackedSolution(tuple(s.states for s in sols), tuple(sols), "layerwise")
        options.setdefault("method", "newton")
        backend = options.get("backend")
        with _backend.use_backend(backend) if backend is not None else contextlib.nullcontext():
            be = _backend.resolve({"inputs": self._first.inputs})
            xp = np if be.is_numba else be.xp
            H0 = xp.concat([be.asarray(spec.h0) for spec in self._specs], axis=-1)
            T = self.n_steps
            if options.get("x_init") is None and options["method"] != "sequential" and T > 0:
                X = xp.broadcast_to(H0[None, ...], (T, *H0.shape))
                options["x_init"] = self._grid.step(be.contiguous(X), xp.arange(T))
            sol = solve_chain(self._grid, H0, T, **options)
        states = tuple(sol.states[..., a:b] for a, b in zip(self._grid.offsets[:-1], self._grid.offsets[1:]))
        return StackedSolution(states, (sol,), "grid")

    def gradients(self, states: Any, grad_states: list[Any]) -> list[dict[str, Any]]:
        """Gradients of a loss on the states of any layers, layer by layer from the top.

        Parameters
        ----------
        states : StackedSolution or list of arrays
            The states of every layer (``sol.states``, or ``sol`` itself), exact.
        grad_states : list of (array_like or None)
            ``dLoss / d states[l]`` for every layer, ``(T, *batch, m_l)`` (``None``: zero).

        Returns
        -------
        list of dict
            One per layer, as :meth:`RNN.gradients <pcrsolve.adapters.RNN.gradients>`: the
            gradient of every parameter, ``"h0"`` and ``"inputs"`` (for layer 0 the
            network's inputs; for layer ``l > 0`` the hidden states of layer ``l-1``).

        Notes
        -----
        Back-propagation through layers and time: the adjoint of layer ``l`` receives, besides
        the loss on its own states, the gradient its inputs got from layer ``l+1``; each layer
        is one structured adjoint solve over time (:meth:`RNN.gradients`).
        """
        states = list(getattr(states, "states", states))
        k = self.n_layers
        n_grads = len(grad_states) if isinstance(grad_states, (list, tuple)) else type(grad_states).__name__
        if len(states) != k or n_grads != k:
            raise ValueError(
                f"`states` and `grad_states` must be lists of {k} arrays (one per layer; None for a "
                f"layer without loss in `grad_states`); got {len(states)} and {n_grads}."
            )
        out: list[dict[str, Any]] = [{}] * k
        carry = None
        for l in range(k - 1, -1, -1):
            be = _backend.resolve({"inputs": self._first.inputs, "states": states[l]})
            xp = np if be.is_numba else be.xp
            S = be.asarray(states[l])
            g = grad_states[l]
            g = xp.zeros(tuple(S.shape), dtype=S.dtype) if g is None else be.asarray(g)
            if carry is not None:
                g = g + into_output(xp, self._layers[l], carry)
            below = None if l == 0 else self._layers[l - 1].output(be.asarray(states[l - 1]))
            out[l] = self._rnn(l, below).gradients(S, g)
            carry = out[l]["inputs"]
        return out


@dataclass(frozen=True)
class _Spec:
    """A validated layer: its :class:`Layer`, parameters and initial state."""

    layer: Layer
    params: dict[str, Any]
    h0: Any


class _errors_of:
    """Prefix the message of a bad layer's ValueError or TypeError with the layer."""

    def __init__(self, l: int) -> None:
        self.l = l

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> None:
        if exc is not None and typ in (ValueError, TypeError):
            raise typ(f"in `layers[{self.l}]`: {exc}") from None
