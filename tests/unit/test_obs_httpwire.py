"""The metrics listener's HTTP wire, sans I/O: head boundaries, request lines, answers."""

from __future__ import annotations

import pytest

from lars.obs.httpwire import (
    MAX_HEAD,
    MAX_QUERY_PARAMS,
    HttpError,
    Request,
    head_end,
    parse_request,
    render_response,
)


def test_head_end_with_crlf_bare_lf_and_incomplete_heads() -> None:
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest") == 27
    assert head_end(b"GET / HTTP/1.1\n\n") == 16
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1
    assert head_end(b"") == -1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"GET /metrics HTTP/1.1", Request("GET", "/metrics", {})),
        (b"HEAD /readyz HTTP/1.0", Request("HEAD", "/readyz", {})),
        (b"GET /debug/module?modid=1&cmdid=2 HTTP/1.1",
         Request("GET", "/debug/module", {"modid": "1", "cmdid": "2"})),
        (b"GET //metrics HTTP/1.1", Request("GET", "//metrics", {})),
        (b"GET /a%20b?x=%C2%B2#frag HTTP/1.1", Request("GET", "/a b", {"x": "\u00b2"})),
    ],
)  # fmt: skip
def test_request_lines(line: bytes, expected: Request) -> None:
    assert parse_request(line + b"\r\nHost: x\r\n\r\n") == expected


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"GET metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"POST /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GET / HTTP/2\r\n\r\n", 505),
        (b"GET /?" + b"&".join(b"a=1" for _ in range(MAX_QUERY_PARAMS + 1)) + b" HTTP/1.1\r\n\r\n",
         414),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
    ],
)  # fmt: skip
def test_bad_requests_are_http_errors(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        parse_request(head)
    assert caught.value.status == status and str(caught.value)


def test_responses_close_the_connection_and_head_has_no_body() -> None:
    full = render_response(200, "application/json", b"{}\n")
    assert full.startswith(b"HTTP/1.1 200 OK\r\n") and full.endswith(b"\r\n\r\n{}\n")
    assert b"Content-Length: 3\r\n" in full and b"Connection: close\r\n" in full
    assert render_response(200, "application/json", b"{}\n", head_only=True).endswith(b"\r\n\r\n")
    assert b"Allow: GET, HEAD" in render_response(405, "application/json", b"")
    assert render_response(599, "text/plain", b"").startswith(b"HTTP/1.1 599 Unknown")
