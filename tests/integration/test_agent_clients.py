"""The agent's TCP clients on their own: bounded report backlog, hostile route service."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lars.agent.report_client import ReportClient
from lars.agent.route_client import RouteClient
from lars.protocol import MsgId, lars_pb2
from lars.reactor import Connection, LoopThread, ReactorConfig, Router, TcpServer, backoff
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, wait_until


def fast_backoff() -> Iterator[float]:
    return backoff(0.01, 0.1)


@pytest.fixture
def loop(no_leaks: None) -> Iterator[LoopThread]:
    thread = LoopThread("test-agent-clients")
    thread.start()
    yield thread
    thread.stop()


def test_report_backlog_keeps_latest_per_module_and_is_bounded(loop: LoopThread) -> None:
    dead = ("127.0.0.1", free_port())
    client = ReportClient(loop, [dead], backlog=3, backoff_factory=fast_backoff)
    client.start()
    try:
        client.submit([((1, 1), b"a1"), ((2, 2), b"b1")])
        client.submit([((1, 1), b"a2"), ((3, 3), b"c1")])  # a2 replaces a1
        loop.call(lambda: None).result()
        assert (client.pending, client.dropped) == (3, 0)
        client.submit([((4, 4), b"d1")])  # full: the oldest (b1) goes
        loop.call(lambda: None).result()
        assert (client.pending, client.dropped) == (3, 1)
        assert loop.call(lambda: list(client._pending.items())).result() == [
            ((1, 1), b"a2"),
            ((3, 3), b"c1"),
            ((4, 4), b"d1"),
        ]
    finally:
        client.stop()


def test_reports_flushed_in_order_on_connection(loop: LoopThread) -> None:
    port = free_port()
    client = ReportClient(loop, [("127.0.0.1", port)], backlog=10, backoff_factory=fast_backoff)
    client.start()
    reporter = None
    try:
        bodies = [
            lars_pb2.ReportStatusRequest(modid=m, cmdid=0).SerializeToString() for m in (1, 2)
        ]
        client.submit([((1, 0), bodies[0]), ((2, 0), bodies[1])])
        wait_until(lambda: client.pending == 2)
        reporter = FakeReporter(port).start()
        wait_until(lambda: len(reporter.reports) == 2)
        assert [r.modid for r in reporter.reports] == [1, 2]
        assert client.sent == 2 and client.pending == 0
    finally:
        client.stop()
        if reporter is not None:
            reporter.stop()


def test_hostile_route_service_does_not_break_the_client(loop: LoopThread) -> None:
    """Garbage bodies are counted; an invalid frame length closes the connection and the
    client reconnects and asks again."""
    got: list[tuple[int, int, list[tuple[int, int]]]] = []
    connects = threading.Semaphore(0)
    seen: list[Connection] = []

    def on_request(conn: Connection, msgid: int, body: bytes) -> None:
        seen.append(conn)
        if len(seen) == 1:
            conn.send(int(MsgId.GET_ROUTE_RESPONSE), b"\xff\xff\xff")  # unparsable
            conn.send(99, b"")  # unknown msgid
        elif len(seen) == 2:
            assert conn.transport is not None
            conn.transport.write(b"\x02\x00\x00\x00\xff\xff\xff\x7f")  # msglen too large
        else:
            conn.send(int(MsgId.GET_ROUTE_RESPONSE), b"\x08\x05\x10\x06\x1a\x04\x08\x01\x10\x02")

    server = TcpServer(
        ReactorConfig(ip="127.0.0.1", port=0),
        Router({int(MsgId.GET_ROUTE_REQUEST): on_request}),
        name="hostile-dns",
    )
    server.start()
    client = RouteClient(
        loop,
        [("127.0.0.1", server.port)],
        deliver=lambda m, c, h, w: got.append((m, c, h)),
        on_connected=connects.release,
        backoff_factory=fast_backoff,
    )
    client.start()
    try:
        assert connects.acquire(timeout=20)
        client.ask(5, 6)
        wait_until(lambda: client.router.bad_bodies == 1 and client.router.unknown_msgids == 1)
        assert client.connected  # a bad body or msgid does not cost the connection
        client.ask(5, 6)
        assert connects.acquire(timeout=20)  # the bad frame length did: reconnected
        client.ask(5, 6)
        wait_until(lambda: got == [(5, 6, [(1, 2)])])
        assert client.router.bad_bodies == 1 and client.router.unknown_msgids == 1
    finally:
        client.stop()
        server.stop()
