"""The agent's tcp and http checks: one asyncio attempt each, bounded by a timeout.

tcp: a connection to ip:port is accepted (then closed at once). http: an HTTP/1.0 GET
of the check URL's path answered with a 2xx status line; the body is not read. Both
return (ok, detail); detail says why a check failed, for logs and `lars status`.
An http check's HOST may be a name: the event loop resolves it (uvloop: libuv's own
resolver pool; plain asyncio: the loop's default executor). Numeric addresses, and every
tcp check, resolve nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

__all__ = ["probe_http", "probe_tcp"]

_STATUS_LINE_MAX = 1024


async def probe_tcp(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"tcp connect timed out after {timeout:g} s"
    except OSError as exc:
        return False, f"tcp connect: {_why(exc)}"
    _close(writer)
    return True, ""


async def probe_http(host: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=_STATUS_LINE_MAX)
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: lars-agent\r\n"
                "Connection: close\r\n\r\n".encode("latin-1", "replace")
            )
            line = await reader.readline()
    except TimeoutError:
        return False, f"http check timed out after {timeout:g} s"
    except (OSError, ValueError) as exc:  # ValueError: a status line over the limit
        return False, f"http check: {_why(exc)}"
    finally:
        if writer is not None:
            _close(writer)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, "http check: no HTTP status line"
    status = int(parts[1])
    if 200 <= status <= 299:
        return True, ""
    return False, f"http status {status}"


def _why(exc: Exception) -> str:
    """The OS's words for a socket error (asyncio's own loop words refusals its way)."""
    number = getattr(exc, "errno", None)
    return os.strerror(number) if isinstance(number, int) and number > 0 else str(exc)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
