"""Ready-made chains: MLP and ResNet forward/backward passes and DDIM/DDPM sampling.

Each adapter is a :class:`pcrsolve.Chain` (``step``, ``jac``, ``jac_diag``, ``jvp``, ``vjp``,
``linearize``, vectorized over the step axis) with a ``forward(x, **solve_chain_options)`` that
returns the :class:`pcrsolve.ChainSolution`. :class:`MLP` and :class:`ResNet` also give the
gradients of a loss on their output from one adjoint solve.
"""

from ._activations import ACTIVATIONS, Activation, get_activation
from .diffusion import DDIM
from .mlp import MLP
from .resnet import ResNet

__all__ = ["ACTIVATIONS", "DDIM", "MLP", "Activation", "ResNet", "get_activation"]
