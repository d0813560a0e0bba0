"""What every chunk task shares: where it sits, and the errors it raises.

Chunk tasks are module-level functions (they pickle by reference) that receive plain NumPy
or CuPy blocks and call the single-machine solvers inside :func:`~._threads.kernel_slot`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .._errors import SingularMatrixError

__all__ = ["RECHUNK_HINT", "Where", "breakdown", "located", "where"]

RECHUNK_HINT = (
    "Chunks along the sequence axis are joined without pivoting, which needs a diagonally dominant, "
    "SPD or M-matrix; rechunk the sequence axis into one chunk (e.g. x.rechunk({{{axis}: -1}}) for "
    "every input), where method='auto' can pivot."
)


class Where:
    """A chunk's place: its first index along each axis and its block index.

    Of the output, or of input number ``ref`` (the right-hand side, for tasks whose output is
    not laid out like the result); axes may be counted from the end.
    """

    def __init__(self, block_info: dict | None, ref: int | None = None) -> None:
        info = (block_info or {}).get(ref, {})
        loc = info.get("array-location")
        self.start = tuple(s for s, _ in loc) if loc else None
        self.block = tuple(info.get("chunk-location", ()))
        self.blocks = tuple(info.get("num-chunks", ()))

    def first(self, axis: int) -> bool:
        return not self.block or self.block[axis] == 0

    def last(self, axis: int) -> bool:
        return not self.block or self.block[axis] == self.blocks[axis] - 1

    def describe(self) -> str:
        if self.start is None:
            return "a chunk"
        return f"the chunk starting at index {self.start} (block {self.block})"


def where(block_info: dict | None, ref: int | None = None) -> Where:
    return Where(block_info, ref)


def located(ref: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a chunk task: its errors name the chunk (of input ``ref``, else of the output).

    Batch indices inside the single-machine messages are relative to that chunk.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args, block_info=None, **kwargs):
            try:
                return func(*args, block_info=block_info, **kwargs)
            except (SingularMatrixError, FloatingPointError, ValueError) as exc:
                if getattr(exc, "_pcrsolve_located", False):
                    raise
                new = type(exc)(f"{exc} [in {where(block_info, ref).describe()} of the Dask array]")
                new._pcrsolve_located = True  # type: ignore[attr-defined]
                raise new from None

        return wrapper

    return decorate


def breakdown(what: str, detail: str, axis: int, chunks: int) -> SingularMatrixError:
    """The error of a non-pivoting join of ``chunks`` sequence chunks that broke down."""
    err = SingularMatrixError(
        f"the {what}, split into {chunks} chunks along its sequence axis, broke down: {detail}. "
        + RECHUNK_HINT.format(axis=axis)
    )
    err._pcrsolve_located = False  # type: ignore[attr-defined]
    return err
