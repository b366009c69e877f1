"""Router: dispatch by msgid; unknown msgids, bad bodies and handler failures are counted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lars.protocol import MsgId, lars_pb2
from lars.reactor.router import Router


class FakeConn:
    def __init__(self, peer: Any = ("127.0.0.1", 5555)) -> None:
        self.peer = peer
        self.sent: list[tuple[int, bytes]] = []

    def send(self, msgid: int, body: bytes) -> None:
        self.sent.append((msgid, body))


def test_dispatch_calls_the_registered_handler_with_conn_msgid_body() -> None:
    calls: list[tuple[Any, int, bytes]] = []
    router = Router({1: lambda c, m, b: calls.append((c, m, b))})
    router.register(MsgId.GET_HOST_REQUEST, lambda c, m, b: c.send(m + 1, b[::-1]))
    conn = FakeConn()
    router.dispatch(conn, 1, b"one")
    router.dispatch(conn, 4, b"abc")
    assert calls == [(conn, 1, b"one")]
    assert conn.sent == [(5, b"cba")]
    assert router.handles(1) and router.handles(4) and not router.handles(2)
    assert (router.unknown_msgids, router.bad_bodies, router.handler_errors) == (0, 0, 0)


def test_register_replaces_a_handler_and_accepts_enum_msgids() -> None:
    seen: list[str] = []
    router = Router()
    router.register(MsgId.REPORT_REQUEST, lambda c, m, b: seen.append("old"))
    router.register(6, lambda c, m, b: seen.append("new"))
    router.dispatch(FakeConn(), 6, b"")
    assert seen == ["new"]


def test_handlers_passed_in_are_copied() -> None:
    handlers: dict[int, Any] = {1: lambda c, m, b: None}
    router = Router(handlers)
    handlers[2] = lambda c, m, b: None
    assert not router.handles(2)


def test_unknown_msgid_is_counted_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    hits: list[int] = []
    router = Router({1: lambda c, m, b: hits.append(m)})
    conn = FakeConn()
    with caplog.at_level(logging.WARNING, logger="lars.reactor.router"):
        for _ in range(100):
            router.dispatch(conn, 99, b"x")
        router.dispatch(conn, 1, b"")
    assert router.unknown_msgids == 100
    assert hits == [1]
    # Rate-limited: a flood of unknown msgids writes one line, naming the msgid and peer.
    lines = [r for r in caplog.records if "no handler" in r.getMessage()]
    assert len(lines) == 1
    assert "99" in lines[0].getMessage() and "5555" in lines[0].getMessage()


def test_protobuf_decode_error_is_counted_as_bad_body() -> None:
    parsed: list[int] = []

    def on_get_route(conn: Any, msgid: int, body: bytes) -> None:
        parsed.append(lars_pb2.GetRouteRequest.FromString(body).modid)

    router = Router({1: on_get_route})
    conn = FakeConn()
    router.dispatch(conn, 1, b"\xff\xff\xff")  # truncated varint key
    router.dispatch(conn, 1, b"\x0a\x05ab")  # length-delimited field longer than the body
    router.dispatch(conn, 1, lars_pb2.GetRouteRequest(modid=7, cmdid=1).SerializeToString())
    assert router.bad_bodies == 2
    assert router.handler_errors == 0
    assert parsed == [7]


def test_handler_exception_is_counted_and_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(conn: Any, msgid: int, body: bytes) -> None:
        raise RuntimeError("handler bug")

    router = Router({3: boom, 4: lambda c, m, b: c.send(m, b)})
    conn = FakeConn()
    with caplog.at_level(logging.ERROR, logger="lars.reactor.router"):
        router.dispatch(conn, 3, b"")
        router.dispatch(conn, 3, b"")
        router.dispatch(conn, 4, b"after")
    assert router.handler_errors == 2
    assert conn.sent == [(4, b"after")]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None
    assert "handler bug" in str(errors[0].exc_info[1])


def test_base_exceptions_are_not_swallowed() -> None:
    def interrupt(conn: Any, msgid: int, body: bytes) -> None:
        raise KeyboardInterrupt

    router = Router({1: interrupt})
    with pytest.raises(KeyboardInterrupt):
        router.dispatch(FakeConn(), 1, b"")


def test_conn_without_peer_is_logged_by_itself(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()
    with caplog.at_level(logging.WARNING, logger="lars.reactor.router"):
        router.dispatch("a-plain-object", 5, b"")
    assert router.unknown_msgids == 1
    assert "a-plain-object" in caplog.text
