"""Exception types raised by pcrsolve."""

from __future__ import annotations

import numpy as np

__all__ = ["SingularMatrixError"]


class SingularMatrixError(np.linalg.LinAlgError):
    """A system is singular, or a non-pivoting method broke down on it.

    A subclass of :class:`numpy.linalg.LinAlgError`, so code that already catches
    NumPy's and SciPy's ``LinAlgError`` catches it too.
    """
