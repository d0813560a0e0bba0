"""``python -m pcrsolve demo | config``.

The benchmarks are not part of the installed package: run ``make bench`` (or
``python benchmarks/run.py``) from a source checkout.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pcrsolve",
        description="pcrsolve: Parallel Cyclic Reduction and DeepPCR.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{demo,config}")
    sub.add_parser("demo", help="solve a few problems against SciPy and the sequential loop (< 1 minute)")
    sub.add_parser("config", help="print versions, available backends and threads")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    from ._config import show_config

    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
