"""``python -m pcrsolve demo | bench [--quick] | config``."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pcrsolve",
        description="pcrsolve: Parallel Cyclic Reduction and DeepPCR.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{demo,bench,config}")
    sub.add_parser("demo", help="solve a few problems against SciPy and the sequential loop (< 1 minute)")
    bench = sub.add_parser("bench", help="run the benchmarks; write JSON and PNG plots")
    bench.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    bench.add_argument("--out", default=None, help="directory for the results (default: benchmarks/results/)")
    bench.add_argument(
        "--only",
        default=None,
        help="comma-separated suites to run: linear, chain, adapters (default: all available)",
    )
    sub.add_parser("config", help="print versions, available backends and threads")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    if args.command == "bench":
        from ._bench import main as bench

        only = None if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
        return bench(quick=args.quick, out=args.out, only=only)
    from ._config import show_config

    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
