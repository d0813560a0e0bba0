"""Ready-made chains: MLP and ResNet forward/backward passes, DDIM/DDPM sampling, RNNs over time.

Each adapter is a :class:`pcrsolve.Chain` (``step``, ``jac``, ``jac_diag``, ``jvp``, ``vjp``,
``linearize``, vectorized over the step axis) with a ``forward(x, **solve_chain_options)`` that
returns the :class:`pcrsolve.ChainSolution`. :class:`MLP` and :class:`ResNet` also give the
gradients of a loss on their output from one adjoint solve, :class:`RNN` those of a loss on all
its hidden states.
"""

from ._activations import ACTIVATIONS, Activation, get_activation
from .diffusion import DDIM
from .mlp import MLP
from .resnet import ResNet
from .rnn import RNN
from .stacked import StackedRNN, StackedSolution

__all__ = [
    "ACTIVATIONS",
    "DDIM",
    "MLP",
    "RNN",
    "Activation",
    "ResNet",
    "StackedRNN",
    "StackedSolution",
    "get_activation",
]
