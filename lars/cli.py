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

# module -> the top-level commands it registers. Only the modules a command needs are
# imported, so `lars gethost` does not pay for the console's web stack or SQLAlchemy.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "lars.console.cli": ("console",),
    "lars.bench.cli": ("bench",),
    "lars.dns.cli": ("dns", "initdb", "route"),
    "lars.reporter.cli": ("reporter",),
    "lars.agent.cli": ("agent",),
    "lars.client.cli": ("gethost", "getroute", "report", "simulator", "qps", "bench"),
    "lars.up": ("up",),
}


def _modules_for(argv: Sequence[str]) -> list[str]:
    """The modules that register the command named in argv; all of them for help or typos."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    # The only option before the command takes a value: skip it.
    if command is not None and "--log-level" in argv:
        rest = list(argv)
        at = rest.index("--log-level")
        if at + 1 < len(rest) and rest[at + 1] == command:
            command = next((a for a in rest[at + 2 :] if not a.startswith("-")), None)
    chosen = [m for m, commands in COMMAND_MODULES.items() if command in commands]
    return chosen or list(COMMAND_MODULES)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with argv, only the modules that the named command needs are loaded."""
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
    modules = list(COMMAND_MODULES) if argv is None else _modules_for(argv)
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
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
