"""Log output for every command: the classic text line, or one JSON object per line.

`--log-format json` makes each record one line such as
  {"time": "2026-12-01T23:40:00.123Z", "level": "INFO", "logger": "lars.dns.service",
   "message": "dns: loaded version 3: ...", "daemon": "dns"}
(plus "exception" with the traceback when there is one), for log shippers that index
fields instead of parsing text. Standard library only: the client install uses it too.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

from lars.ratelog import RateLimitedLog

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging", "route_uncaught_to_logging"]

_hooks_log = logging.getLogger("lars.uncaught")

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `daemon` names the command that runs (dns, agent...)."""

    def __init__(self, daemon: str) -> None:
        super().__init__()
        self.daemon = daemon

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        doc: dict[str, object] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "daemon": self.daemon,
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(level: str, fmt: str, daemon: str) -> None:
    """The root handler of the process (what logging.basicConfig does, in either format),
    and the hooks that make Python's own last-resort reports go through it too."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(daemon))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
    route_uncaught_to_logging()


def route_uncaught_to_logging() -> None:
    """An exception escaping a thread, or raised where Python can only ignore it (a
    __del__, a callback at shutdown), is printed raw to stderr by default: outside the
    log format and any rate limit. Send both through logging instead, at most one line a
    minute each. Hooks someone else installed (a test runner's) are left in place."""
    if threading.excepthook is threading.__excepthook__:
        log_thread = RateLimitedLog(_hooks_log, 60.0, level=logging.ERROR)

        def thread_hook(args: threading.ExceptHookArgs) -> None:
            if args.exc_type is SystemExit:
                return
            name = args.thread.name if args.thread is not None else "?"
            log_thread(
                "thread %s ended by %s: %s", name, args.exc_type.__name__, args.exc_value,
                exc_info=True,
            )  # fmt: skip

        threading.excepthook = thread_hook
    if sys.unraisablehook is sys.__unraisablehook__:
        log_unraisable = RateLimitedLog(_hooks_log, 60.0, level=logging.WARNING)

        def unraisable_hook(info: Any) -> None:
            log_unraisable(
                "exception ignored in %r: %s: %s", info.object,
                type(info.exc_value).__name__, info.exc_value,
            )  # fmt: skip

        sys.unraisablehook = unraisable_hook
