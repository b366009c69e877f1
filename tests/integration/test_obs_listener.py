"""The metrics/health listener under clients that try to hold it (issue 19 item 4):
slow clients, scrape storms, a connection cap, the listen backlog, deadlines.

Assertions count answers and connections; the only timing is a generous deadline.
Before: one client sending a byte every 3 s kept /healthz unanswered (a single-threaded
HTTPServer with a 5 s read timeout), and the backlog of 5 dropped SYNs under a storm.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from lars.obs.ready import Readiness
from lars.obs.server import ListenerLimits, MetricsServer
from tests.obs_util import get


def make_server(limits: ListenerLimits | None = None) -> MetricsServer:
    registry = CollectorRegistry()
    counter = Counter("lars_test_things", "things", ["kind"], registry=registry)
    for i in range(50):
        counter.labels(kind=f"k{i}").inc(i)
    kwargs = {} if limits is None else {"limits": limits}
    return MetricsServer(
        ("127.0.0.1", 0), registry, daemon="test", ready=lambda: Readiness(True),
        status=lambda: {"daemon": "test"}, **kwargs,
    )  # fmt: skip


@pytest.fixture
def server(no_leaks: None) -> Iterator[MetricsServer]:
    server = make_server()
    server.start()
    yield server
    server.stop()


class SlowClient:
    """Sends a request head one byte every `every` seconds, reconnecting when cut off."""

    def __init__(self, port: int, every: float) -> None:
        self.port = port
        self.every = every
        self.cut_off = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris")
        self._thread.start()

    def _run(self) -> None:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 1000
        while not self._stop.is_set():
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                for byte in head:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        self.cut_off += 1
                        break
                    if self._stop.wait(self.every):
                        return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


async def _scrape(port: int, path: str) -> int:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (OSError, TimeoutError):
        return 0


def scrape_storm(port: int, count: int) -> list[int]:
    """`count` concurrent GET /metrics; each one's status (0: no answer)."""

    async def storm() -> list[int]:
        return list(await asyncio.gather(*(_scrape(port, "/metrics") for _ in range(count))))

    return asyncio.run(storm())


def test_slow_clients_and_a_scrape_storm_leave_every_probe_answered(
    server: MetricsServer,
) -> None:
    slow = [SlowClient(server.port, every=3.0) for _ in range(2)]
    results: list[list[int]] = []
    storms = [
        threading.Thread(target=lambda: results.append(scrape_storm(server.port, 300)))
        for _ in range(2)
    ]
    probes: list[int] = []
    try:
        time.sleep(0.5)  # the slow clients hold their connections
        for t in storms:
            t.start()
        for _ in range(12):  # a liveness probe twice a second, for 6 s
            status, _, _ = get_or_zero(server.url + "/healthz", timeout=10.0)
            probes.append(status)
            time.sleep(0.5)
    finally:
        for t in storms:
            t.join(120)
        for s in slow:
            s.close()
    assert probes == [200] * 12
    assert [sorted(set(r)) for r in results] == [[200], [200]]  # every scrape answered
    assert sum(s.cut_off for s in slow) >= 2  # each slow client was cut off at least once
    assert server.dropped >= 2


def get_or_zero(url: str, timeout: float) -> tuple[int, str, bytes]:
    try:
        return get(url, timeout=timeout)
    except OSError:
        return 0, "", b""


def test_a_partial_head_is_cut_off_at_the_header_deadline(no_leaks: None) -> None:
    """A byte every 0.3 s passes every read deadline, but not the head's."""
    server = make_server(ListenerLimits(header_deadline=1.0, read_deadline=1.0))
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sent = 0
            start = time.monotonic()
            try:
                while time.monotonic() - start < 30:
                    sock.sendall(b"G" if sent == 0 else b"a")
                    sent += 1
                    time.sleep(0.3)
            except OSError:
                pass  # reset by the server: the deadline passed
            assert time.monotonic() - start < 30, "never cut off"
        assert server.dropped == 1 and server.requests == 0
        assert get(server.url + "/healthz")[0] == 200
    finally:
        server.stop()


def test_the_connection_cap_leaves_the_rest_queued(no_leaks: None) -> None:
    """At the cap the listener accepts nothing more; a queued client is served as soon
    as a slot frees, not refused."""
    server = make_server(ListenerLimits(max_connections=4, header_deadline=60, read_deadline=60))
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        wait_until(lambda: server.open_connections == 4)
        results: list[tuple[int, str, bytes]] = []
        probe = threading.Thread(
            target=lambda: results.append(get_or_zero(server.url + "/healthz", timeout=60))
        )
        probe.start()
        time.sleep(1.0)
        assert results == [] and server.connections == 4 and server.open_connections == 4
        idle.pop().close()  # a slot frees
        probe.join(60)
        assert [r[0] for r in results] == [200]
        wait_until(lambda: server.connections == 5)
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_the_listen_backlog_holds_a_storm_of_connects(no_leaks: None) -> None:
    """With the one slot taken, 1,000 connects still complete their handshake: they wait in
    the kernel's accept queue (backlog >= 2,048), where a backlog of 5 dropped SYNs."""
    server = make_server(ListenerLimits(max_connections=1, header_deadline=60, read_deadline=60))
    server.start()
    holder = socket.create_connection(("127.0.0.1", server.port))
    socks: list[socket.socket] = []
    try:
        wait_until(lambda: server.open_connections == 1)
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", server.port))
            socks.append(s)
        deadline = time.monotonic() + 30
        connected = 0
        while time.monotonic() < deadline:
            connected = sum(
                1
                for s in socks
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _peer(s)
            )
            if connected == len(socks):
                break
            time.sleep(0.2)
        assert connected == 1000
    finally:
        for s in socks:
            s.close()
        holder.close()
        server.stop()


def _peer(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


def test_methods_paths_and_oversized_heads(server: MetricsServer) -> None:
    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    assert raw(b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
    assert raw(b"GET /healthz HTTP/1.0\n\n").startswith(b"HTTP/1.1 200 OK")  # bare LF
    head = raw(b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
    assert raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw(b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505")
    big = b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 40_000 + b"\r\n\r\n"
    assert raw(big).startswith(b"HTTP/1.1 431")
    assert get(server.url + "/healthz")[0] == 200


def test_a_slow_handler_does_not_delay_healthz(no_leaks: None) -> None:
    """/readyz stuck in a handler (a database call hanging): /healthz still answers, and
    the stuck path answers 503 after the handler deadline."""
    release = threading.Event()

    def stuck() -> Readiness:
        release.wait(30)
        return Readiness(True)

    server = MetricsServer(
        ("127.0.0.1", 0), CollectorRegistry(), daemon="test", ready=stuck, status=dict,
        limits=ListenerLimits(handler_deadline=1.0),
    )  # fmt: skip
    server.start()
    try:
        results: list[int] = []
        t = threading.Thread(
            target=lambda: results.append(get_or_zero(server.url + "/readyz", 30)[0])
        )
        t.start()
        answers = [get(server.url + "/healthz", timeout=10)[0] for _ in range(5)]
        t.join(30)
        assert answers == [200] * 5 and results == [503]
    finally:
        release.set()
        server.stop()


def wait_until(cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_the_cap_is_at_most_half_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    from lars.obs import server as server_module

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    assert server_module._fd_cap(4096) == 512
    assert server_module._fd_cap(100) == 100
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (10, 4096))
    assert server_module._fd_cap(4096) == 16
