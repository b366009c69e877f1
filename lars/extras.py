"""Which install extra a command needs, and the one-line answer when it is missing.

`pip install lars-platform` is the client side only (protobuf): `lars.client` and the
client commands. The daemons need the `server` extra (uvloop, mmh3, SQLAlchemy, PyMySQL,
prometheus-client) and the console the `console` extra. `lars` imports a command's module
only when the command runs; when a package of the command's extra is not installed
(checked before the import, and any import failing for want of one), the command is still
listed in `lars --help`, and running it prints one line naming the extra and exits with
EXIT_MISSING_EXTRA (5) instead of a traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from lars.boundary import ExitCode
from lars.cli_help import lookup

__all__ = [
    "EXIT_MISSING_EXTRA",
    "extra_for_import_error",
    "missing_extra",
    "missing_extra_message",
    "register_missing",
]

EXIT_MISSING_EXTRA = int(ExitCode.MISSING_EXTRA)

# Top-level import names -> the extra that installs them.
_EXTRA_OF_PACKAGE: dict[str, str] = {
    "sqlalchemy": "server",
    "pymysql": "server",
    "mmh3": "server",
    "uvloop": "server",
    "prometheus_client": "server",
    "fastapi": "console",
    "starlette": "console",
    "uvicorn": "console",
    "jinja2": "console",
    "multipart": "console",
    "python_multipart": "console",
}

# Command modules whose commands all need at least this extra (`lars up` runs the console).
_EXTRA_OF_MODULE: dict[str, str] = {
    "lars.dns.cli": "server",
    "lars.routes.cli": "server",
    "lars.reporter.cli": "server",
    "lars.agent.cli": "server",
    "lars.console.cli": "console",
    "lars.up": "console",
}


# What each extra installs, by import name (uvloop is not installed on Windows).
_PACKAGES_OF_EXTRA: dict[str, tuple[str, ...]] = {
    "server": ("sqlalchemy", "pymysql", "mmh3", "prometheus_client")
    + (() if sys.platform == "win32" else ("uvloop",)),
    "console": ("fastapi", "uvicorn", "jinja2", "python_multipart"),
}
_INCLUDES: dict[str, tuple[str, ...]] = {"server": ("server",), "console": ("server", "console")}


def needs_extra(module: str) -> bool:
    """True when command module `module` needs an install extra at all."""
    return module in _EXTRA_OF_MODULE


def missing_extra(module: str) -> str | None:
    """The extra that command module `module` needs and lacks, or None.

    Checked before importing, so a daemon that could limp along without a package (the
    agent runs on the stdlib loop without uvloop) still asks for its whole extra: the
    supported installs are the documented ones.
    """
    needed = _EXTRA_OF_MODULE.get(module)
    if needed is None:
        return None
    for extra in _INCLUDES[needed]:
        if any(importlib.util.find_spec(name) is None for name in _PACKAGES_OF_EXTRA[extra]):
            return needed
    return None


def missing_extra_message(command: str, extra: str) -> str:
    """The one line printed when `lars <command>` lacks its extra."""
    return f"lars {command}: needs the {extra} extra: pip install 'lars-platform[{extra}]'"


def extra_for_import_error(module: str, exc: ModuleNotFoundError) -> str | None:
    """The extra that would have made importing `module` work, or None (a real bug)."""
    top = (exc.name or "").partition(".")[0]
    extra = _EXTRA_OF_PACKAGE.get(top)
    if extra is None:
        return None
    # The console extra includes the server one: name the larger of the two.
    return "console" if _EXTRA_OF_MODULE.get(module) == "console" else extra


def register_missing(subparsers: Any, commands: tuple[str, ...], extra: str) -> None:
    """Stand-ins for `commands`: listed in --help, take any arguments, print the line."""
    for command in commands:
        if command in subparsers.choices:
            continue  # another module (e.g. `bench`) registered it for real
        parser = subparsers.add_parser(command, help=f"(needs the {extra} extra)", add_help=False)
        parser.set_defaults(func=_printer(command, extra), _extra=extra)
        # Whatever follows the command (`lars dns --db URL -h`) is ignored: the answer is
        # the same line. The subparsers action calls this method of the parser it chose.
        setattr(parser, "parse_known_args", functools.partial(_ignore_arguments, parser))  # noqa: B010


def _ignore_arguments(
    parser: argparse.ArgumentParser, args: Any = None, namespace: Any = None
) -> tuple[argparse.Namespace, list[str]]:
    """The parser's defaults (func included), whatever `args` holds; with -h or --help,
    the command's real help (lars/cli_help.json) and exit 0."""
    words = list(args or [])
    if "-h" in words or "--help" in words:
        _print_help(parser, words)
    return type(parser).parse_known_args(parser, [], namespace)


def _print_help(parser: argparse.ArgumentParser, words: list[str]) -> None:
    command = parser.prog.removeprefix("lars").strip()
    text = lookup([command, *words])
    extra = parser.get_default("_extra")
    note = missing_extra_message(command, extra) if extra else ""
    sys.stdout.write((text or parser.format_help()) + f"\n{note.split(': ', 1)[-1]}\n")
    sys.exit(0)


def _printer(command: str, extra: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(missing_extra_message(command, extra), file=sys.stderr)
        return EXIT_MISSING_EXTRA

    return run
