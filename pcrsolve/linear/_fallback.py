"""Pivoting fallbacks for systems a non-pivoting method could not solve accurately.

Used by ``method="auto"`` on the CPU only, for the few systems of a batch that need it.
"""

from __future__ import annotations

import numpy as np

from .._errors import SingularMatrixError

__all__ = ["block_banded_solve"]


def block_banded_solve(L: np.ndarray, D: np.ndarray, U: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve one block tridiagonal system by LAPACK's banded LU with partial pivoting.

    Parameters
    ----------
    L, D, U : (n, m, m) ndarray
        Blocks in the padded layout (``L[0]`` and ``U[n-1]`` are zero).
    rhs : (n, m) ndarray

    Returns
    -------
    x : (n, m) ndarray

    Raises
    ------
    SingularMatrixError
        If the matrix is singular.
    """
    n, m = rhs.shape
    N = n * m
    w = 2 * m - 1  # lower and upper bandwidth of the assembled matrix
    ab = np.zeros((2 * w + 1, N), dtype=D.dtype)
    for off, blocks, k0 in ((-1, L, 1), (0, D, 0), (1, U, 0)):
        for k in range(k0, n - 1 if off == 1 else n):
            col0 = (k + off) * m
            for i in range(m):
                for j in range(m):
                    r, c = k * m + i, col0 + j
                    ab[w + r - c, c] = blocks[k, i, j]
    import scipy.linalg  # deferred: SciPy is only needed on this rare path

    try:
        return scipy.linalg.solve_banded((w, w), ab, rhs.reshape(N), check_finite=False).reshape(n, m)
    except np.linalg.LinAlgError:
        raise SingularMatrixError("singular matrix") from None
