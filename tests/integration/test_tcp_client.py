"""TcpClient over loopback: reconnects forever, resubscribes, bounded queue, failover."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lars.errors import NotConnected, QueueFull
from lars.reactor import (
    LoopThread,
    ReactorConfig,
    Router,
    TcpClient,
    TcpServer,
    Worker,
    backoff,
)
from lars.reactor.frame import encode
from tests.conftest import free_port

ECHO = 1
FAST = {"backoff_factory": lambda: backoff(0.01, 0.05)}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def start_server(port: int = 0, *, use_uvloop: bool = True, **kw: Any) -> TcpServer:
    router = Router({ECHO: lambda conn, msgid, body: conn.send(msgid, body)})
    server = TcpServer(
        ReactorConfig(ip="127.0.0.1", port=port, use_uvloop=use_uvloop), router, **kw
    )
    server.start()
    return server


class Replies:
    """Collects what the client's router receives (on the client's loop thread)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.router = Router({ECHO: self.on_frame, 7: self.on_frame})

    def on_frame(self, conn: Any, msgid: int, body: bytes) -> None:
        self.frames.append((msgid, body))


class Hooks:
    def __init__(self) -> None:
        self.connects: list[tuple[str, int] | None] = []
        self.disconnects = 0

    def on_connect(self, client: TcpClient) -> None:
        self.connects.append(client.current_address)

    def on_disconnect(self, client: TcpClient) -> None:
        self.disconnects += 1


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def loop_thread(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[LoopThread]:
    thread = LoopThread("client-loop", use_uvloop=request.param)
    thread.start()
    yield thread
    thread.stop()


def make_client(
    thread: LoopThread, addresses: list[tuple[str, int]], replies: Replies, hooks: Hooks, **kw: Any
) -> TcpClient:
    options: dict[str, Any] = {**FAST, **kw}
    return TcpClient(
        thread,
        replies.router,
        addresses,
        on_connect=hooks.on_connect,
        on_disconnect=hooks.on_disconnect,
        **options,
    )


def send(client: TcpClient, msgid: int, body: bytes = b"") -> None:
    client.thread.call(client.send, msgid, body).result(5)


def test_connects_sends_and_routes_replies(loop_thread: LoopThread) -> None:
    server = start_server()
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", server.port)], replies, hooks)
    try:
        client.start()
        wait_until(lambda: client.connected)
        assert hooks.connects == [("127.0.0.1", server.port)]
        send(client, ECHO, b"hello")
        send(client, ECHO)
        client.send_threadsafe(ECHO, b"from another thread")
        wait_until(lambda: len(replies.frames) == 3)
        assert replies.frames == [(ECHO, b"hello"), (ECHO, b""), (ECHO, b"from another thread")]
        assert client.send_drops == 0
    finally:
        client.stop()
        server.stop()
    assert hooks.disconnects == 1


def test_resumes_after_the_server_restarts(loop_thread: LoopThread) -> None:
    server = start_server()
    port = server.port
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", port)], replies, hooks)
    try:
        client.start()
        wait_until(lambda: client.connected)
        server.stop()
        wait_until(lambda: not client.connected and hooks.disconnects == 1)
        with pytest.raises(NotConnected):
            send(client, ECHO, b"while down")
        time.sleep(0.2)  # a few failed attempts while the port is closed
        assert client.connect_failures >= 1
        server = start_server(port)
        wait_until(lambda: client.connected)
        # on_connect ran again: this is where an application resubscribes.
        assert hooks.connects == [("127.0.0.1", port)] * 2
        assert client.connects == 2
        send(client, ECHO, b"after restart")
        wait_until(lambda: replies.frames == [(ECHO, b"after restart")])
    finally:
        client.stop()
        server.stop()


def test_keeps_retrying_through_repeated_restarts(no_leaks: None) -> None:
    thread = LoopThread("client-loop")
    thread.start()
    server = start_server()
    port = server.port
    replies, hooks = Replies(), Hooks()
    client = make_client(thread, [("127.0.0.1", port)], replies, hooks)
    try:
        client.start()
        for round_ in range(1, 4):
            wait_until(lambda: client.connected)
            assert len(hooks.connects) == round_
            server.stop()
            wait_until(lambda: not client.connected)
            server = start_server(port)
        wait_until(lambda: len(hooks.connects) == 4)
    finally:
        client.stop()
        server.stop()
        thread.stop()


def test_a_server_that_closes_at_once_is_retried_with_growing_delays(
    loop_thread: LoopThread,
) -> None:
    """A full server (max_conns) accepts and closes: that is no reason to reset the backoff."""
    router = Router({ECHO: lambda conn, msgid, body: conn.send(msgid, body)})
    server = TcpServer(ReactorConfig(ip="127.0.0.1", port=0, max_conns=1), router)
    server.start()
    blocker = socket.create_connection(("127.0.0.1", server.port), 5)
    replies, hooks = Replies(), Hooks()
    client = make_client(
        loop_thread,
        [("127.0.0.1", server.port)],
        replies,
        hooks,
        backoff_factory=lambda: backoff(0.05, 0.4),
    )
    try:
        wait_until(lambda: server.stats().connections == 1)
        client.start()
        time.sleep(1.5)
        # Delays of 0.05, 0.1, 0.2, 0.4 s (jittered down to half) allow about ten attempts
        # in 1.5 s; resetting them after every refused connect would allow sixty.
        attempts = server.stats().refused
        assert 2 <= attempts <= 15
        # Once the server has room, the client gets in and is served.
        blocker.close()
        wait_until(lambda: client.connected and server.stats().accepted == 2, timeout=15)
        send(client, ECHO, b"in")
        wait_until(lambda: replies.frames == [(ECHO, b"in")])
    finally:
        client.stop()
        blocker.close()
        server.stop()


def test_fails_fast_when_down_with_queue_limit_0(loop_thread: LoopThread) -> None:
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", free_port())], replies, hooks)
    try:
        client.start()
        wait_until(lambda: client.connect_failures >= 2)
        assert not client.connected
        with pytest.raises(NotConnected):
            send(client, ECHO, b"x")
        # From other threads a refused send is counted, not raised.
        client.send_threadsafe(ECHO, b"y")
        client.send_threadsafe(ECHO, b"z")
        wait_until(lambda: client.send_drops == 2)
        assert hooks.connects == []
    finally:
        client.stop()


def test_queues_within_the_bound_and_delivers_in_order_on_connect(
    loop_thread: LoopThread,
) -> None:
    port = free_port()
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", port)], replies, hooks, queue_limit=3)
    server: TcpServer | None = None
    try:
        client.start()
        for body in (b"1", b"2", b"3"):
            send(client, ECHO, body)
        with pytest.raises(QueueFull):
            send(client, ECHO, b"4")
        client.send_threadsafe(ECHO, b"5")
        wait_until(lambda: client.send_drops == 1)
        server = start_server(port)
        wait_until(lambda: len(replies.frames) == 3)
        assert replies.frames == [(ECHO, b"1"), (ECHO, b"2"), (ECHO, b"3")]
        # Connected again: sends go straight out, no limit applies.
        for i in range(10):
            send(client, ECHO, b"%d" % i)
        wait_until(lambda: len(replies.frames) == 13)
    finally:
        client.stop()
        if server is not None:
            server.stop()


def first_index_seed(n: int, wanted: int) -> int:
    """A seed whose Random picks `wanted` first from range(n): the client starts there."""
    return next(s for s in range(1000) if random.Random(s).randrange(n) == wanted)


def test_moves_to_another_address_when_one_is_down(loop_thread: LoopThread) -> None:
    down_port = free_port()
    server = start_server()
    addresses = [("127.0.0.1", down_port), ("127.0.0.1", server.port)]
    replies, hooks = Replies(), Hooks()
    rng = random.Random(first_index_seed(2, 0))
    client = make_client(loop_thread, addresses, replies, hooks, rng=rng)
    other: TcpServer | None = None
    try:
        client.start()
        wait_until(lambda: client.connected)
        assert client.connect_failures >= 1  # it tried the down one first
        assert hooks.connects == [addresses[1]]
        # Now the serving one goes away and the other comes up: the client follows.
        server.stop()
        other = start_server(down_port)
        wait_until(lambda: len(hooks.connects) == 2)
        assert hooks.connects[1] == addresses[0]
        send(client, ECHO, b"failover")
        wait_until(lambda: replies.frames == [(ECHO, b"failover")])
    finally:
        client.stop()
        server.stop()
        if other is not None:
            other.stop()


def test_spreads_over_addresses_and_never_retries_the_one_that_just_failed() -> None:
    client = TcpClient(
        LoopThread("unused"),
        Router(),
        [("h", i) for i in range(4)],
        rng=random.Random(3),
    )
    nexts = [(failed, client._next_index(failed)) for failed in range(4) for _ in range(50)]
    assert all(failed != chosen for failed, chosen in nexts)
    assert {chosen for _, chosen in nexts} == {0, 1, 2, 3}
    client.thread.stop()


def test_start_twice_is_refused(loop_thread: LoopThread) -> None:
    server = start_server()
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", server.port)], replies, hooks)
    try:
        client.start()
        with pytest.raises(RuntimeError, match="already started"):
            client.start()
        wait_until(lambda: client.connected and server.stats().accepted >= 1)
        time.sleep(0.2)  # a second connection, if any, would be accepted by now
        assert server.stats().accepted == 1
    finally:
        client.stop()
        server.stop()


def test_needs_an_address() -> None:
    thread = LoopThread("unused")
    with pytest.raises(ValueError, match="address"):
        TcpClient(thread, Router(), [])
    thread.stop()


class ScriptedPeer:
    """A raw listening socket: each accepted connection gets `script(sock)` in a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._script = script
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with conn:
                self._script(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


def test_a_peer_sending_garbage_is_dropped_and_reconnected(loop_thread: LoopThread) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.sendall(struct.pack("<ii", 2, -7) + b"junk")
        conn.settimeout(5)
        try:
            conn.recv(1)  # until the client closes
        except OSError:
            pass

    peer = ScriptedPeer(garbage)
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", peer.port)], replies, hooks)
    try:
        client.start()
        wait_until(lambda: len(hooks.connects) >= 3)
        assert client.counters.frame_errors >= 2
        assert replies.frames == []
    finally:
        client.stop()
        peer.close()


def test_a_peer_stalling_mid_frame_is_dropped_after_frame_timeout(
    loop_thread: LoopThread,
) -> None:
    def stall(conn: socket.socket) -> None:
        conn.sendall(encode(ECHO, b"0123456789")[:10])
        conn.settimeout(5)
        try:
            conn.recv(1)
        except OSError:
            pass

    peer = ScriptedPeer(stall)
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", peer.port)], replies, hooks, frame_timeout=0.3)
    try:
        client.start()
        wait_until(lambda: len(hooks.connects) >= 2)
        assert client.counters.frame_timeouts >= 1
    finally:
        client.stop()
        peer.close()


def test_a_failing_on_connect_hook_does_not_stop_the_client(loop_thread: LoopThread) -> None:
    server = start_server()
    replies = Replies()
    calls: list[int] = []

    def bad_hook(client: TcpClient) -> None:
        calls.append(1)
        raise RuntimeError("hook bug")

    client = TcpClient(
        loop_thread, replies.router, [("127.0.0.1", server.port)], on_connect=bad_hook
    )
    try:
        client.start()
        wait_until(lambda: client.connected and calls == [1])
        send(client, ECHO, b"fine")
        wait_until(lambda: replies.frames == [(ECHO, b"fine")])
    finally:
        client.stop()
        server.stop()


def test_stop_while_backing_off_is_prompt_and_clean(loop_thread: LoopThread) -> None:
    replies, hooks = Replies(), Hooks()
    slow = {"backoff_factory": lambda: backoff(30.0, 30.0)}
    client = make_client(loop_thread, [("127.0.0.1", free_port())], replies, hooks, **slow)
    client.start()
    wait_until(lambda: client.connect_failures == 1)  # now asleep for 15-30 s
    started = time.monotonic()
    client.stop()
    assert time.monotonic() - started < 10  # not the 15-30 s backoff
    assert not client.connected


def test_stop_closes_the_connection_and_the_server_sees_it(loop_thread: LoopThread) -> None:
    server = start_server()
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", server.port)], replies, hooks)
    try:
        client.start()
        wait_until(lambda: server.stats().connections == 1)
        client.stop()
        wait_until(lambda: server.stats().connections == 0)
        assert not client.connected
        with pytest.raises(NotConnected):
            send(client, ECHO)
    finally:
        server.stop()


def test_stop_racing_the_connect_never_leaves_a_connection_open(
    loop_thread: LoopThread,
) -> None:
    """stop() just as the connect completes: Python 3.11's wait_for may swallow the cancel."""
    server = start_server()
    try:
        for i in range(200):
            client = TcpClient(loop_thread, Router(), [("127.0.0.1", server.port)])
            client.start()
            wait_until(lambda: server.stats().connections >= 1)  # the handshake is done
            started = time.monotonic()
            client.stop()
            assert time.monotonic() - started < 4, f"stop() hung on round {i}"
            wait_until(lambda: server.stats().connections == 0, timeout=5)
    finally:
        server.stop()


def test_a_server_push_reaches_the_router(loop_thread: LoopThread) -> None:
    server = start_server()
    replies, hooks = Replies(), Hooks()
    client = make_client(loop_thread, [("127.0.0.1", server.port)], replies, hooks)
    try:
        client.start()
        # accepted counts connections a worker has adopted, so broadcast can see them.
        wait_until(lambda: server.stats().accepted == 1)

        def push(worker: Worker) -> int:
            for conn in worker.connections.values():
                conn.send(7, b"route change")
            return len(worker.connections)

        assert sum(f.result(5) for f in server.broadcast(push)) == 1
        wait_until(lambda: replies.frames == [(7, b"route change")])
    finally:
        client.stop()
        server.stop()
