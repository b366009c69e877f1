"""`lars`: one command-line entry point; each component registers its own subcommands.

Every module in COMMAND_MODULES has `register(subparsers)`, which adds its parsers and
sets `func(args) -> int` on each. Objects are built inside those functions, never at
import time.

The global options (GLOBAL_OPTIONS: --log-level, --log-format) are accepted before and after the
command name: every (sub)command parser is a `_CommandParser`, which adds them with a
suppressed default, so a value given after the command overrides the one before it.
`main()` is the error boundary (lars.boundary): any failure of any command ends as one
line `lars <cmd>: <what>: <cause>` and a documented exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from lars import __version__
from lars.boundary import ExitCode, report_failure
from lars.extras import extra_for_import_error, missing_extra, register_missing
from lars.obs.logs import LOG_FORMATS, configure_logging
from lars.reload import LOG_LEVELS

__all__ = ["GLOBAL_OPTIONS", "build_parser", "main"]

# Options every command accepts before or after its name; all of them take a value.
GLOBAL_OPTIONS = ("--log-level", "--log-format")

# module -> the top-level commands it registers. Only the modules a command needs are
# imported, so `lars gethost` does not pay for the console's web stack or SQLAlchemy.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "lars.console.cli": ("console",),
    "lars.bench.cli": ("bench",),
    "lars.dns.cli": ("dns",),
    "lars.routes.cli": ("initdb", "route"),
    "lars.reporter.cli": ("reporter",),
    "lars.agent.cli": ("agent",),
    "lars.client.cli": ("gethost", "getroute", "report", "simulator", "qps", "bench"),
    "lars.client.regcli": ("register", "deregister", "heartbeat"),
    "lars.up": ("up",),
    "lars.sql": ("sql",),
    "lars.obs.status": ("status",),
}


def _command_name(argv: Sequence[str]) -> str | None:
    """The first word of argv that is neither an option nor a global option's value."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _modules_for(argv: Sequence[str]) -> list[str]:
    """The modules that register the command named in argv; all of them for help or typos."""
    command = _command_name(argv)
    chosen = [m for m, commands in COMMAND_MODULES.items() if command in commands]
    return chosen or list(COMMAND_MODULES)


class _GivenLevel(argparse.Action):
    """Stores --log-level and notes that it was given: a flag wins over a daemon's
    `[log] level` (lars.reload), at start and on SIGHUP."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.log_level_given = True


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """GLOBAL_OPTIONS on `parser`; below the top only a value actually given is stored."""
    if top:
        parser.set_defaults(log_level_given=False)
    parser.add_argument(
        "--log-level",
        action=_GivenLevel,
        type=str.upper,
        default="INFO" if top else argparse.SUPPRESS,
        choices=LOG_LEVELS,
        help="logging level (default INFO; DEBUG also prints tracebacks of failures)",
    )
    parser.add_argument(
        "--log-format",
        default="text" if top else argparse.SUPPRESS,
        choices=LOG_FORMATS,
        help="log lines as text (default) or one JSON object per line",
    )


class _CommandParser(argparse.ArgumentParser):
    """A (sub)command's parser: takes the global options too and records its own name
    (`route add`) for the error line. Nested subcommands inherit the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_options(self, top=False)
        self.set_defaults(_command=self.prog.removeprefix("lars").strip())


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with argv, only the modules that the named command needs are loaded."""
    parser = argparse.ArgumentParser(
        prog="lars",
        description="Lars-style service discovery and load balancing. Exit codes: "
        "0 ok, 1 failure, 2 usage, 3 the agent or daemon does not answer, "
        "4 the module is missing or overloaded, 5 the command's install extra is missing.",
    )
    parser.add_argument("--version", action="version", version=f"lars {__version__}")
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser
    )
    modules = list(COMMAND_MODULES) if argv is None else _modules_for(argv)
    for name in modules:
        # A light install (no [server]/[console] extra): the command says what to install.
        extra = missing_extra(name)
        if extra is None:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                extra = extra_for_import_error(name, exc)
                if extra is None:
                    raise
            else:
                module.register(subparsers)
                continue
        register_missing(subparsers, COMMAND_MODULES[name], extra)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    args.argv = tuple(arguments)  # `lars dns --processes N` starts its children with them
    command = str(getattr(args, "_command", args.command))
    configure_logging(args.log_level, args.log_format, daemon=args.command)
    try:
        code = int(args.func(args))
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        return int(report_failure(command, exc, debug=args.log_level == "DEBUG"))
    return code


if __name__ == "__main__":
    sys.exit(main())
