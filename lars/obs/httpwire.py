"""The metrics listener's HTTP/1.x wire, sans I/O: find the end of a request head, parse
it, build a response. No sockets, threads or clock here, so every byte sequence a client
can send is testable (and fuzzed, tests/fuzz) without a listener.

Only what scrapes and probes need: GET and HEAD, a path and a query string, no body, one
request per connection (`Connection: close`). Anything else is an `HttpError` carrying
the status to answer with; nothing here raises anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

__all__ = [
    "MAX_HEAD",
    "MAX_QUERY_PARAMS",
    "HttpError",
    "Request",
    "head_end",
    "parse_request",
    "render_response",
]

MAX_HEAD = 16 * 1024  # request line and headers; a longer head is answered 431
MAX_QUERY_PARAMS = 32
_METHODS = ("GET", "HEAD")


class HttpError(Exception):
    """A request that cannot be served: answer `status` with the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]


def head_end(buffer: bytes | bytearray) -> int:
    """Index just past the blank line ending the head in `buffer`, or -1 while incomplete.

    Accepts CRLF and bare LF line ends (netcat, hand-typed probes)."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
    return min(ends) if ends else -1


def parse_request(head: bytes | bytearray) -> Request:
    """The request line of `head` (headers are read past: none changes the answer).

    Raises HttpError(400/405/414/431/505) for anything not a small GET or HEAD."""
    if len(head) > MAX_HEAD:
        raise HttpError(431, f"request head larger than {MAX_HEAD} bytes")
    line, _, _ = bytes(head).partition(b"\n")
    try:
        text = line.rstrip(b"\r").decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "request line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) != 3 or not all(parts):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1")
    if not target.startswith("/"):
        raise HttpError(400, "the target must be a path")
    if method not in _METHODS:
        raise HttpError(405, f"method {method} not allowed (GET, HEAD)")
    # not urlsplit: it reads "//x/metrics" as a host x and an empty path
    raw_path, _, query = target.partition("#")[0].partition("?")
    path = unquote(raw_path, errors="replace")
    try:
        pairs = parse_qsl(
            query, errors="replace", max_num_fields=MAX_QUERY_PARAMS, keep_blank_values=True
        )
    except ValueError:
        raise HttpError(414, f"more than {MAX_QUERY_PARAMS} query parameters") from None
    return Request(method, path, dict(pairs))


def render_response(
    status: int, content_type: str, body: bytes, *, head_only: bool = False
) -> bytes:
    """One complete HTTP/1.1 response that closes the connection."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Server: lars-metrics",
    ]
    if status == 405:
        lines.append("Allow: GET, HEAD")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body
