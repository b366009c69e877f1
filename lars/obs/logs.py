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
import time

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging"]

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
    """The root handler of the process (what logging.basicConfig does, in either format)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(daemon))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
