"""`lars`: one command-line entry point; each component registers its own subcommands.

Every module in COMMAND_MODULES has `register(subparsers)`, which adds its parsers and
sets `func(args) -> int` on each. Objects are built inside those functions, never at
import time.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from lars.errors import LarsError

__all__ = ["build_parser", "main"]

COMMAND_MODULES: list[str] = [
    # one line per component, e.g. "lars.dns.cli"
    "lars.console.cli",
    "lars.bench.cli",
    "lars.dns.cli",
    "lars.reporter.cli",
    "lars.agent.cli",
    "lars.client.cli",
    "lars.up",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lars",
        description="Lars-style service discovery and load balancing.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except LarsError as exc:
        print(f"lars {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
