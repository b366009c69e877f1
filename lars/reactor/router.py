"""msgid -> handler dispatch shared by every TCP and UDP endpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from lars.ratelog import RateLimitedLog

__all__ = ["Handler", "Router", "Sender"]

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What a handler may answer through: a TCP connection or a UDP endpoint."""

    def send(self, msgid: int, body: bytes) -> None: ...


Handler = Callable[[Any, int, bytes], None]


class Router:
    """Calls the handler registered for a msgid.

    An unknown msgid is counted and logged (rate-limited) and skipped; a body that fails
    to parse (protobuf DecodeError) is counted as a bad body; any other exception from a
    handler is counted and logged with its traceback. None of them reach the transport,
    so one bad frame never costs a connection or a listener.
    """

    __slots__ = (
        "_handlers",
        "_log_bad",
        "_log_error",
        "_log_unknown",
        "bad_bodies",
        "handler_errors",
        "unknown_msgids",
    )

    def __init__(self, handlers: dict[int, Handler] | None = None) -> None:
        self._handlers: dict[int, Handler] = dict(handlers or {})
        self.unknown_msgids = 0
        self.bad_bodies = 0
        self.handler_errors = 0
        self._log_unknown = RateLimitedLog(log)
        self._log_bad = RateLimitedLog(log)
        self._log_error = RateLimitedLog(log, level=logging.ERROR)

    def register(self, msgid: int, handler: Handler) -> None:
        self._handlers[int(msgid)] = handler

    def handles(self, msgid: int) -> bool:
        return msgid in self._handlers

    def dispatch(self, conn: Any, msgid: int, body: bytes) -> None:
        handler = self._handlers.get(msgid)
        if handler is None:
            self.unknown_msgids += 1
            self._log_unknown("no handler for msgid %d from %s; skipped", msgid, _peer(conn))
            return
        try:
            handler(conn, msgid, body)
        except DecodeError:
            self.bad_bodies += 1
            self._log_bad("unparsable body for msgid %d from %s; dropped", msgid, _peer(conn))
        except Exception:
            self.handler_errors += 1
            self._log_error("handler for msgid %d failed", msgid, exc_info=True)


def _peer(conn: Any) -> object:
    return getattr(conn, "peer", conn)
