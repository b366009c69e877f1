"""The command line's error boundary: every failure becomes one line and an exit code.

`lars <cmd>` ends in one of these codes (documented in README, section "Exit codes"):

- 0 OK
- 1 FAILURE: a known failure at run time (database unavailable, port in use, a file
  that cannot be read or written) or an unexpected internal error;
- 2 USAGE: a bad command line, argument value or configuration (argparse's own code:
  unknown flags, invalid ids or addresses, an unreadable -c file, a bad database URL);
- 3 NO_ANSWER: the agent, or the route service behind it, does not answer;
- 4 NO_HOST: the agent answered without a host: the module is missing (NOEXIST) or all
  its hosts are overloaded (OVERLOAD);
- 5 MISSING_EXTRA: the command needs an install extra that is not installed (`lars dns`
  on a client-only install: `pip install 'lars-platform[server]'`; lars.extras);
- 130 INTERRUPTED: Ctrl-C.

The line reads `lars <cmd>: <what>: <cause>`. A traceback is printed only with
`--log-level DEBUG`. Lars errors carry their own message; foreign ones that slipped past
the edges (OSError, SQLAlchemy's) are described here without importing their library,
so this module stays importable on a client-only install.
"""

from __future__ import annotations

import enum
import sys
import traceback
from typing import TextIO

from lars.errors import (
    ConfigError,
    LarsError,
    LarsTimeout,
    NoHost,
    NotAnswering,
    ValidationError,
)

__all__ = ["ExitCode", "describe", "exit_code_for", "report_failure"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    NO_ANSWER = 3
    NO_HOST = 4
    MISSING_EXTRA = 5
    INTERRUPTED = 130


# First match wins: subclasses before their bases.
_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (NoHost, ExitCode.NO_HOST),
    (NotAnswering, ExitCode.NO_ANSWER),
    (LarsTimeout, ExitCode.NO_ANSWER),
    (ValidationError, ExitCode.USAGE),
    (ConfigError, ExitCode.USAGE),
)


def exit_code_for(exc: BaseException) -> ExitCode:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    if _is_sqlalchemy(exc) and type(exc).__name__ in ("ArgumentError", "NoSuchModuleError"):
        return ExitCode.USAGE  # a bad database URL that reached us unmapped
    return ExitCode.FAILURE


def _is_sqlalchemy(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("sqlalchemy")


def _one_line(text: str) -> str:
    # SQLAlchemy appends "(Background on this error at: URL)" on a line of its own.
    text = text.split("\n(Background on this error")[0]
    return " ".join(text.split())


def describe(exc: BaseException) -> str:
    """`<what>: <cause>` for any exception, on one line."""
    if isinstance(exc, LarsError):
        return _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        cause = exc.strerror or str(exc) or type(exc).__name__
        what = exc.filename if exc.filename is not None else "system error"
        return _one_line(f"{what}: {cause}")
    if _is_sqlalchemy(exc):
        orig = getattr(exc, "orig", None)
        cause = _db_cause(orig) if orig is not None else str(exc)
        return _one_line(f"database: {cause}")
    return _one_line(f"internal error: {type(exc).__name__}: {exc}")


def _db_cause(orig: BaseException) -> str:
    args = orig.args
    # PyMySQL: (errno, message); sqlite3: (message,)
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]
    return str(orig)


def report_failure(
    command: str, exc: BaseException, *, debug: bool, stream: TextIO | None = None
) -> ExitCode:
    """Print the one line (and with `debug` the traceback first); return the exit code."""
    out = sys.stderr if stream is None else stream
    code = exit_code_for(exc)
    if debug:
        traceback.print_exception(exc, file=out)
    line = f"lars {command}: {describe(exc)}" if command else f"lars: {describe(exc)}"
    known = isinstance(exc, (LarsError, OSError)) or _is_sqlalchemy(exc)
    if not known and not debug:
        line += " (rerun with --log-level DEBUG for the traceback)"
    print(line, file=out, flush=True)
    return code
