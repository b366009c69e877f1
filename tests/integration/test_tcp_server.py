"""TcpServer over loopback: exact echoes, hostile clients, limits, timeouts, hooks, stop."""

from __future__ import annotations

import asyncio
import os
import random
import resource
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lars.protocol import lars_pb2
from lars.reactor import BufferLimits, Connection, ReactorConfig, Router, TcpServer, Worker
from lars.reactor.frame import MAX_BODY, encode

ECHO = 1


def config(**kw: Any) -> ReactorConfig:
    kw.setdefault("port", 0)
    return ReactorConfig(ip="127.0.0.1", **kw)


def echo_router() -> Router:
    return Router({ECHO: lambda conn, msgid, body: conn.send(msgid, body)})


@contextmanager
def serving(cfg: ReactorConfig, router: Router | None = None, **kw: Any) -> Iterator[TcpServer]:
    server = TcpServer(cfg, router or echo_router(), **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def connect(server: TcpServer, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[int, bytes]:
    msgid, msglen = struct.unpack("<ii", recv_exact(sock, 8))
    return msgid, recv_exact(sock, msglen)


def assert_echo(sock: socket.socket, body: bytes = b"ping") -> None:
    sock.sendall(encode(ECHO, body))
    assert recv_frame(sock) == (ECHO, body)


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True once the server closed (EOF or reset); False if it stays open for `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


LOOPS = pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])


# exact echoes under concurrency


async def _client(port: int, rng: random.Random, frames: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stream = b"".join(
        encode(ECHO, rng.randbytes(rng.choice([0, 1, 7, 100, 3000]))) for _ in range(frames)
    )
    cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randrange(1, 12)))

    async def send() -> None:
        start = 0
        for cut in [*cuts, len(stream)]:
            writer.write(stream[start:cut])
            await writer.drain()
            await asyncio.sleep(rng.choice([0, 0, 0.001]))
            start = cut

    sender = asyncio.create_task(send())
    echoed = await reader.readexactly(len(stream))
    await sender
    writer.close()
    await writer.wait_closed()
    assert echoed == stream
    return echoed


@LOOPS
@pytest.mark.parametrize("threads", [0, 2])
def test_200_concurrent_clients_get_exact_echoes_of_randomly_split_frames(
    no_leaks: None, use_uvloop: bool, threads: int
) -> None:
    with serving(config(threads=threads, use_uvloop=use_uvloop)) as server:

        async def main() -> list[bytes]:
            rngs = [random.Random(i) for i in range(200)]
            return await asyncio.gather(*(_client(server.port, r, 6) for r in rngs))

        results = asyncio.run(main())
        assert len(results) == 200
        wait_until(lambda: server.stats().connections == 0)
        stats = server.stats()
        assert stats.accepted == 200 and stats.closed == 200
        assert stats.frames_in == 200 * 6
        assert stats.frame_errors == stats.refused == 0
        if threads:
            # Round-robin spread the connections over the worker loops.
            assert [w.counters.accepted for w in server.workers] == [100, 100]


@LOOPS
def test_zero_length_and_maximum_bodies_echo(use_uvloop: bool) -> None:
    with serving(config(use_uvloop=use_uvloop)) as server, connect(server) as sock:
        assert_echo(sock, b"")
        big = random.Random(1).randbytes(MAX_BODY)
        assert_echo(sock, big)
        # Several frames in one write get their replies in order.
        sock.sendall(encode(ECHO) + encode(ECHO, b"a") + encode(ECHO))
        assert [recv_frame(sock) for _ in range(3)] == [(ECHO, b""), (ECHO, b"a"), (ECHO, b"")]


@LOOPS
def test_a_client_that_half_closes_still_gets_every_answer(use_uvloop: bool) -> None:
    with serving(config(use_uvloop=use_uvloop)) as server, connect(server) as sock:
        bodies = [b"%d" % i * 1000 for i in range(50)]
        sock.sendall(b"".join(encode(ECHO, b) for b in bodies))
        sock.shutdown(socket.SHUT_WR)
        assert [recv_frame(sock) for _ in bodies] == [(ECHO, b) for b in bodies]
        assert closed_by_peer(sock)
        wait_until(lambda: server.stats().connections == 0)


@LOOPS
def test_a_reply_sent_just_before_close_is_delivered(use_uvloop: bool) -> None:
    def goodbye(conn: Connection, msgid: int, body: bytes) -> None:
        conn.send(msgid, b"goodbye")
        conn.close()
        conn.send(msgid, b"after close")  # dropped: the connection is closing

    router = Router({3: goodbye})
    with serving(config(use_uvloop=use_uvloop), router) as server, connect(server) as sock:
        sock.sendall(encode(3) + encode(3))
        assert recv_frame(sock) == (3, b"goodbye")
        assert closed_by_peer(sock)
        wait_until(lambda: server.stats().connections == 0)


# hostile clients


BAD_INPUTS = {
    "http-garbage": b"GET / HTTP/1.1\r\nHost: lars\r\n\r\n",
    "negative-length": struct.pack("<ii", ECHO, -1),
    "10MB-length": struct.pack("<ii", ECHO, 10 * 1024 * 1024) + b"x" * 1000,
    "65528-length": struct.pack("<ii", ECHO, MAX_BODY + 1),
    "valid-then-garbage": encode(ECHO, b"ok") + b"\xff" * 64,
}


@LOOPS
@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_invalid_frames_close_only_the_offender(use_uvloop: bool, kind: str) -> None:
    with serving(config(threads=2, use_uvloop=use_uvloop)) as server:
        victims = [connect(server) for _ in range(3)]
        try:
            for v in victims:
                assert_echo(v)
            with connect(server) as bad:
                bad.sendall(BAD_INPUTS[kind])
                assert closed_by_peer(bad)
            for v in victims:
                assert_echo(v, b"still here")
            wait_until(lambda: server.stats().connections == 3)
            assert server.stats().frame_errors == 1
        finally:
            for v in victims:
                v.close()


@LOOPS
def test_good_frames_before_a_bad_header_are_answered_then_closed(use_uvloop: bool) -> None:
    with serving(config(threads=0, use_uvloop=use_uvloop)) as server, connect(server) as bad:
        bad.sendall(encode(ECHO, b"first") + encode(ECHO, b"second") + struct.pack("<ii", 1, -1))
        assert recv_frame(bad) == (ECHO, b"first")
        assert recv_frame(bad) == (ECHO, b"second")
        assert closed_by_peer(bad)
        wait_until(lambda: server.stats().frame_errors == 1)


CHUNKS = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.builds(encode, st.integers(-(2**31), 2**31 - 1), st.binary(max_size=64)),
    ),
    max_size=6,
)


def test_arbitrary_byte_streams_never_disturb_the_server() -> None:
    with serving(config(threads=1)) as server, connect(server) as victim:

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(chunks=CHUNKS)
        def hostile(chunks: list[bytes]) -> None:
            with connect(server) as sock:
                for chunk in chunks:
                    try:
                        sock.sendall(chunk)
                    except (ConnectionResetError, BrokenPipeError):
                        break  # the server already closed it: fine

        hostile()
        assert_echo(victim, b"unharmed")
        wait_until(lambda: server.stats().connections == 1)
        stats = server.stats()
        assert stats.accepted == stats.closed + 1


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_half_a_frame_then_vanishing_does_not_disturb_others(rst: bool) -> None:
    with serving(config(threads=2)) as server:
        victims = [connect(server) for _ in range(3)]
        try:
            for v in victims:
                assert_echo(v)
            bad = connect(server)
            bad.sendall(encode(ECHO, b"x" * 1000)[:500])
            if rst:
                bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            bad.close()
            wait_until(lambda: server.stats().closed == 1)
            for v in victims:
                assert_echo(v, b"unaffected")
            assert server.stats().connections == 3
            assert server.stats().frame_errors == 0
        finally:
            for v in victims:
                v.close()


@LOOPS
@pytest.mark.parametrize("threads", [0, 2])
def test_clients_resetting_right_after_connect_leave_nothing_behind(
    no_leaks: None, use_uvloop: bool, threads: int
) -> None:
    with serving(config(threads=threads, use_uvloop=use_uvloop)) as server:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), 5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST, possibly before the server even accepted it
        # Every slot comes back, whether the socket died before or after adoption.
        wait_until(lambda: server.stats().connections == 0)
        with connect(server) as sock:
            assert_echo(sock)


def test_unknown_msgid_bad_body_and_failing_handler_keep_the_connection() -> None:
    def get_route(conn: Connection, msgid: int, body: bytes) -> None:
        req = lars_pb2.GetRouteRequest.FromString(body)
        conn.send(2, lars_pb2.GetRouteResponse(modid=req.modid).SerializeToString())

    def boom(conn: Connection, msgid: int, body: bytes) -> None:
        raise RuntimeError("handler bug")

    router = echo_router()
    router.register(1001, get_route)
    router.register(1002, boom)
    with serving(config(), router) as server, connect(server) as sock:
        sock.sendall(encode(99, b"who?") + encode(1001, b"\xff\xff") + encode(1002))
        assert_echo(sock, b"after")
        good = lars_pb2.GetRouteRequest(modid=5).SerializeToString()
        sock.sendall(encode(1001, good))
        assert lars_pb2.GetRouteResponse.FromString(recv_frame(sock)[1]).modid == 5
        stats = server.stats()
        assert (stats.unknown_msgids, stats.bad_bodies, stats.handler_errors) == (1, 1, 1)
        assert stats.connections == 1


# timeouts


@pytest.mark.parametrize("threads", [0, 2])
def test_incomplete_frame_is_closed_after_frame_timeout_idle_stays_open(threads: int) -> None:
    with serving(config(frame_timeout=0.5, threads=threads)) as server:
        idle = connect(server)
        stuck = connect(server)
        try:
            assert_echo(idle)
            stuck.sendall(encode(ECHO, b"0123456789")[:12])
            assert closed_by_peer(stuck)
            assert server.stats().frame_timeouts == 1
            # The idle connection has been quiet at least as long, and is still served.
            assert not closed_by_peer(idle, timeout=0.6)
            assert_echo(idle, b"still open")
            assert server.stats().frame_timeouts == 1
        finally:
            idle.close()
            stuck.close()


def test_a_frame_trickled_byte_by_byte_still_times_out() -> None:
    with serving(config(frame_timeout=0.5)) as server, connect(server) as slow:
        frame = encode(ECHO, b"x" * 100)
        deadline = time.monotonic() + 10
        closed = False
        for i in range(len(frame) - 1):
            try:
                slow.sendall(frame[i : i + 1])
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            time.sleep(0.05)
            if server.stats().frame_timeouts or time.monotonic() > deadline:
                break
        assert closed or closed_by_peer(slow)
        assert server.stats().frame_timeouts == 1


def test_a_busy_stream_whose_reads_end_mid_frame_is_not_timed_out() -> None:
    """Progress resets the timer: only one frame held incomplete too long counts."""
    with serving(config(frame_timeout=0.5)) as server, connect(server) as sock:
        frame = encode(ECHO, b"y" * 20)
        half = len(frame) // 2
        sock.sendall(frame[:half])
        end = time.monotonic() + 1.5
        sent = 0
        while time.monotonic() < end:
            time.sleep(0.1)
            # Completes the previous frame and starts the next one: every read ends mid-frame.
            sock.sendall(frame[half:] + frame[:half])
            sent += 1
        sock.sendall(frame[half:])
        for _ in range(sent + 1):
            assert recv_frame(sock) == (ECHO, b"y" * 20)
        assert server.stats().frame_timeouts == 0


# limits


def test_max_conns_holds_and_refusals_are_counted() -> None:
    with serving(config(max_conns=3, threads=1)) as server:
        admitted = [connect(server) for _ in range(3)]
        try:
            for sock in admitted:
                assert_echo(sock)
            for _ in range(2):
                with connect(server) as extra:
                    assert closed_by_peer(extra)
            stats = server.stats()
            assert (stats.refused, stats.connections) == (2, 3)
            for sock in admitted:
                assert_echo(sock)
            # Closing one frees its slot.
            admitted.pop().close()
            wait_until(lambda: server.stats().connections == 2)
            admitted.append(connect(server))
            assert_echo(admitted[-1])
            assert server.stats().refused == 2
        finally:
            for sock in admitted:
                sock.close()


@LOOPS
def test_accept_survives_running_out_of_file_descriptors(
    use_uvloop: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(config(use_uvloop=use_uvloop)) as server:
        clients = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(8)]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        try:
            # Every fd number below the limit is taken: accept() gets EMFILE.
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
            for c in clients:
                c.settimeout(10)
                c.connect(("127.0.0.1", server.port))  # completes in the kernel's backlog
            time.sleep(0.5)
            assert server.stats().accepted == 0
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            # Accepting resumes by itself once descriptors are available again.
            wait_until(lambda: server.stats().accepted == 8)
            for c in clients:
                assert_echo(c)
        finally:
            for c in clients:
                c.close()
    assert "pausing accepts" in caplog.text


def test_a_peer_that_never_reads_is_dropped_past_max_write_buffer() -> None:
    limits = BufferLimits(high_water=64 * 1024, max_write_buffer=1024 * 1024)
    pushed = {"bytes": 0, "max_buffered": 0}
    chunk = b"z" * 60_000

    def flood(conn: Connection, msgid: int, body: bytes) -> None:
        loop = asyncio.get_running_loop()

        def push() -> None:
            if conn.closed:
                return
            for _ in range(8):
                conn.send(2, chunk)
                pushed["bytes"] += len(chunk)
                if conn.transport is not None and not conn.closed:
                    buffered = conn.transport.get_write_buffer_size()
                    pushed["max_buffered"] = max(pushed["max_buffered"], buffered)
            loop.call_soon(push)

        loop.call_soon(push)

    router = echo_router()
    router.register(2, flood)
    with serving(config(buffers=limits), router) as server:
        reader = connect(server)
        with connect(server, rcvbuf=4096) as sink:
            sink.sendall(encode(2))
            wait_until(lambda: server.stats().backpressure_drops == 1)
            # Others are served while and after the sink is dropped.
            assert_echo(reader)
            wait_until(lambda: server.stats().connections == 1)
            assert server.stats().backpressure_pauses >= 1
        # Memory stayed bounded: our unsent bytes never passed the limit by more than the
        # frame that crossed it, and in all we accepted the limit plus what the kernel socket
        # buffers hold, not an ever-growing backlog.
        assert 0 < pushed["max_buffered"] <= limits.max_write_buffer + len(chunk) + 8
        assert pushed["bytes"] < 32 * 1024 * 1024
        assert_echo(reader)
        reader.close()


def test_a_slow_reader_is_paused_not_dropped_and_gets_every_echo() -> None:
    limits = BufferLimits(high_water=64 * 1024, max_write_buffer=8 * 1024 * 1024)
    frames = [encode(ECHO, bytes([i]) * 60_000) for i in range(100)]  # 6 MB of requests
    with serving(config(buffers=limits)) as server, connect(server, rcvbuf=8192) as sock:
        sender = threading.Thread(target=lambda: sock.sendall(b"".join(frames)))
        sender.start()  # blocks while the server, paused, stops reading from us
        wait_until(lambda: server.stats().backpressure_pauses >= 1)
        got = recv_exact(sock, sum(map(len, frames)))
        sender.join(10)
        assert got == b"".join(frames)
        stats = server.stats()
        assert stats.backpressure_drops == 0
        assert stats.connections == 1


# hooks, per-connection state, threads


def test_hooks_run_on_the_worker_loop_and_user_state_follows_the_connection() -> None:
    events: list[tuple[str, int, str]] = []

    def on_connect(conn: Connection) -> None:
        conn.user = {"frames": 0}
        events.append(("connect", conn.id, threading.current_thread().name))

    def on_close(conn: Connection) -> None:
        events.append(("close", conn.user["frames"], threading.current_thread().name))

    def count(conn: Connection, msgid: int, body: bytes) -> None:
        conn.user["frames"] += 1
        conn.send(msgid, str(conn.user["frames"]).encode())

    router = Router({5: count})
    with serving(config(threads=2), router, on_connect=on_connect, on_close=on_close) as server:
        a, b = connect(server), connect(server)
        for expected in (b"1", b"2", b"3"):
            a.sendall(encode(5))
            assert recv_frame(a) == (5, expected)
        b.sendall(encode(5))
        assert recv_frame(b) == (5, b"1")
        a.close()
        b.close()
        wait_until(lambda: len(events) == 4)
    workers = {"tcp-worker0", "tcp-worker1"}
    assert {name for _, _, name in events} == workers
    assert sorted(n for kind, n, _ in events if kind == "close") == [1, 3]


@LOOPS
def test_a_failing_on_connect_hook_is_logged_and_the_connection_served(
    use_uvloop: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_hook(conn: Connection) -> None:
        raise RuntimeError("hook bug")

    cfg = config(use_uvloop=use_uvloop)
    with serving(cfg, on_connect=bad_hook) as server:
        with connect(server) as sock:
            assert_echo(sock)
        wait_until(lambda: server.stats().connections == 0)
        assert server.stats().closed == 1
    assert "on_connect hook failed" in caplog.text


def test_send_threadsafe_from_another_thread() -> None:
    conns: list[Connection] = []
    with serving(config(threads=1), on_connect=conns.append) as server, connect(server) as sock:
        wait_until(lambda: len(conns) == 1)
        conns[0].send_threadsafe(7, b"pushed")
        conns[0].send_threadsafe(7)
        assert recv_frame(sock) == (7, b"pushed")
        assert recv_frame(sock) == (7, b"")


def test_broadcast_reaches_every_worker_on_its_own_thread() -> None:
    with serving(config(threads=3)) as server:
        clients = [connect(server) for _ in range(6)]
        try:
            wait_until(lambda: server.stats().accepted == 6)

            def where(w: Worker) -> tuple[int, str, int]:
                w.state["seen"] = w.index
                return w.index, threading.current_thread().name, len(w.connections)

            results = [f.result(5) for f in server.broadcast(where)]
            assert results == [(i, f"tcp-worker{i}", 2) for i in range(3)]
            assert [w.state["seen"] for w in server.workers] == [0, 1, 2]

            def push(w: Worker) -> int:
                for conn in w.connections.values():
                    conn.send(9, f"from {w.index}".encode())
                return len(w.connections)

            assert sum(f.result(5) for f in server.broadcast(push)) == 6
            got = sorted(recv_frame(c)[1] for c in clients)
            assert got == sorted([f"from {i}".encode() for i in range(3)] * 2)
        finally:
            for c in clients:
                c.close()


def test_broadcast_with_threads_0_runs_on_the_master() -> None:
    with serving(config(threads=0), name="solo") as server:
        names = [f.result(5) for f in server.broadcast(lambda w: threading.current_thread().name)]
        assert names == ["solo-master"]


# stop


@LOOPS
@pytest.mark.parametrize("threads", [0, 2])
def test_stop_leaves_no_thread_or_fd(no_leaks: None, use_uvloop: bool, threads: int) -> None:
    server = TcpServer(config(threads=threads, use_uvloop=use_uvloop), echo_router())
    server.start()
    clients = [connect(server) for _ in range(5)]
    for c in clients:
        assert_echo(c)
    clients[0].sendall(encode(ECHO, b"x" * 100)[:50])  # one holds a partial frame
    server.stop()
    for c in clients:
        assert closed_by_peer(c)
        c.close()
    server.stop()  # idempotent


def _stop_during_a_connect_storm() -> None:
    server = TcpServer(config(threads=2, drain_timeout=20.0), echo_router())
    server.start()
    stop = threading.Event()
    socks: list[socket.socket] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                socks.append(socket.create_connection(("127.0.0.1", server.port), 1))
            except OSError:
                pass

    hammers = [threading.Thread(target=hammer) for _ in range(3)]
    for t in hammers:
        t.start()
    wait_until(lambda: server.stats().accepted >= 20)
    started = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - started
    stop.set()
    for t in hammers:
        t.join()
    for sock in socks:
        sock.close()
    assert elapsed < 10, f"stop waited {elapsed:.1f}s for connections it never closed"
    stats = server.stats()
    assert stats.connections == 0
    assert stats.closed == stats.accepted


def test_stop_while_clients_keep_connecting_is_prompt_and_clean(no_leaks: None) -> None:
    """Sockets handed to a worker just before stop are closed too, not left to time out."""
    for _ in range(5):
        _stop_during_a_connect_storm()


def test_stop_flushes_what_was_sent_before_closing() -> None:
    frames = 64
    body = b"f" * 60_000

    def greet(conn: Connection) -> None:
        for _ in range(frames):
            conn.send(3, body)

    server = TcpServer(config(drain_timeout=10.0), echo_router(), on_connect=greet)
    server.start()
    with connect(server) as sock:
        wait_until(lambda: server.stats().accepted == 1)
        stopper = threading.Thread(target=server.stop)
        stopper.start()  # stops while ~4 MB are still unsent; we read only now
        got = [recv_frame(sock) for _ in range(frames)]
        assert got == [(3, body)] * frames
        assert closed_by_peer(sock)
        stopper.join(15)
        assert not stopper.is_alive()


def test_after_stop_broadcast_raises_and_start_is_refused() -> None:
    from lars.errors import LoopClosed

    server = TcpServer(config(threads=1), echo_router())
    server.start()
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    with pytest.raises(LoopClosed):
        server.broadcast(lambda w: None)
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    assert server.stats().connections == 0


def test_stop_stops_accepting() -> None:
    server = TcpServer(config(), echo_router())
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_shared_master_is_not_stopped_by_the_server(no_leaks: None) -> None:
    from lars.reactor import LoopThread

    master = LoopThread("shared")
    master.start()
    try:
        with serving(config(), master=master) as server, connect(server) as sock:
            assert server.master is master
            assert_echo(sock)
        assert master.running
        assert master.call(lambda: 42).result(5) == 42
    finally:
        master.stop()


def test_port_in_use_raises_and_leaks_nothing(no_leaks: None) -> None:
    with serving(config()) as first:
        second = TcpServer(config(port=first.port), echo_router())
        with pytest.raises(OSError):
            second.start()
        second.stop()


# SO_REUSEPORT (`lars dns --processes N`: several listeners on one port)


def test_reuse_port_lets_two_servers_share_a_port_and_both_serve() -> None:
    with (
        serving(config(reuse_port=True)) as first,
        serving(config(reuse_port=True, port=first.port)) as second,
    ):
        assert second.port == first.port
        socks = [connect(first) for _ in range(40)]
        try:
            for sock in socks:
                assert_echo(sock)
            wait_until(lambda: first.stats().connections + second.stats().connections == 40)
            shares = (first.stats().connections, second.stats().connections)
            assert min(shares) >= 1, shares  # the kernel spread them (all on one: 2**-39)
        finally:
            for sock in socks:
                sock.close()


def test_without_reuse_port_a_second_listener_is_refused() -> None:
    with serving(config(reuse_port=True)) as first:
        refused = TcpServer(config(port=first.port), echo_router())
        with pytest.raises(OSError):
            refused.start()  # its loops are released when the bind fails
