"""``progress=True``: a tqdm bar when tqdm is importable, else plain lines on stderr."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A tqdm bar over the steps when tqdm is importable, else one line per sweep on stderr."""

    def __init__(self, enabled: bool, total: int, desc: str, unit: str = "step") -> None:
        self.bar = None
        self.enabled = enabled
        self.desc, self.unit = desc, unit
        self.done = 0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False)

    def update(self, sweep: int, prefix: int, total: int, residual: Any) -> None:
        if not self.enabled:
            return
        res = residual if isinstance(residual, float) else None
        if self.bar is not None:
            self.bar.update(prefix - self.done)
            self.bar.set_postfix(sweep=sweep, update=f"{res:.1e}" if res is not None else "-")
        else:
            shown = f"{res:.2e}" if res is not None else "not synchronised"
            print(
                f"{self.desc}: sweep {sweep}: max update {shown}, converged {self.unit}s {prefix}/{total}",
                file=sys.stderr,
            )
        self.done = prefix

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
