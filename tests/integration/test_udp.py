"""UdpServer and UdpClient over loopback: one frame per datagram, bad datagrams dropped."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lars.reactor import LoopThread, Router, UdpClient, UdpServer
from lars.reactor.frame import MAX_BODY, decode_datagram, encode
from tests.conftest import free_port

ECHO = 4


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def boom(conn: Any, msgid: int, body: bytes) -> None:
    raise RuntimeError("handler bug")


@pytest.fixture(params=[True, False], ids=["uvloop", "asyncio"])
def thread(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[LoopThread]:
    lt = LoopThread("udp-loop", use_uvloop=request.param)
    lt.start()
    yield lt
    lt.stop()


@pytest.fixture
def server(thread: LoopThread) -> Iterator[UdpServer]:
    router = Router({ECHO: lambda conn, msgid, body: conn.send(msgid + 1, body), 9: boom})
    udp = UdpServer(router, name="test-udp")
    udp.start_on(thread, "127.0.0.1", 0)
    yield udp
    thread.call(udp.close).result(5)


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    yield sock
    sock.close()


def ask(sock: socket.socket, server: UdpServer, data: bytes) -> tuple[int, bytes]:
    sock.sendto(data, server.address)
    reply, addr = sock.recvfrom(65536)
    assert addr == server.address
    return decode_datagram(reply)


def assert_silent(sock: socket.socket, seconds: float = 0.3) -> None:
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return
    finally:
        sock.settimeout(5)
    raise AssertionError(f"unexpected datagram {data!r}")


def test_answers_valid_frames_including_empty_and_large_bodies(
    server: UdpServer, client: socket.socket
) -> None:
    assert server.address[0] == "127.0.0.1" and server.address[1] > 0
    assert ask(client, server, encode(ECHO, b"hello")) == (ECHO + 1, b"hello")
    assert ask(client, server, encode(ECHO)) == (ECHO + 1, b"")
    big = bytes(range(256)) * 234  # 59904 bytes: a frame near the UDP payload limit
    assert ask(client, server, encode(ECHO, big)) == (ECHO + 1, big)
    assert server.received == 3 and server.dropped == 0


BAD_DATAGRAMS = {
    "empty": b"",
    "3-bytes": b"\x04\x00\x00",
    "7-bytes": encode(ECHO)[:7],
    "negative-length": struct.pack("<ii", ECHO, -1) + b"x",
    "length-past-max": struct.pack("<ii", ECHO, MAX_BODY + 1) + b"x" * 100,
    "10MB-length": struct.pack("<ii", ECHO, 10 * 1024 * 1024),
    "body-shorter-than-msglen": encode(ECHO, b"0123456789")[:-3],
    "body-longer-than-msglen": encode(ECHO, b"abc") + b"extra",
    "two-frames": encode(ECHO, b"a") + encode(ECHO, b"b"),
}


@pytest.mark.parametrize("kind", sorted(BAD_DATAGRAMS))
def test_bad_datagram_is_dropped_counted_and_never_answered(
    server: UdpServer, client: socket.socket, kind: str
) -> None:
    client.sendto(BAD_DATAGRAMS[kind], server.address)
    # One loop handles datagrams in order: an answer to the bad one would come first.
    assert ask(client, server, encode(ECHO, b"valid")) == (ECHO + 1, b"valid")
    assert (server.received, server.dropped) == (2, 1)


def test_a_flood_of_bad_datagrams_is_logged_rate_limited(
    server: UdpServer, client: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="lars.reactor.udp"):
        for i in range(500):
            client.sendto(
                BAD_DATAGRAMS[sorted(BAD_DATAGRAMS)[i % len(BAD_DATAGRAMS)]], server.address
            )
        assert ask(client, server, encode(ECHO, b"alive")) == (ECHO + 1, b"alive")
    assert server.dropped == 500
    drops = [r for r in caplog.records if "dropped datagram" in r.getMessage()]
    assert 1 <= len(drops) <= 2
    assert "test-udp" in drops[0].getMessage()


def test_unknown_msgid_and_failing_handler_get_no_answer(
    server: UdpServer, client: socket.socket
) -> None:
    client.sendto(encode(77, b"?"), server.address)
    client.sendto(encode(9, b"boom"), server.address)
    assert ask(client, server, encode(ECHO, b"next")) == (ECHO + 1, b"next")
    assert_silent(client)
    assert server.router.unknown_msgids == 1
    assert server.router.handler_errors == 1
    assert server.dropped == 0


def test_each_answer_goes_to_its_own_sender(server: UdpServer) -> None:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    try:
        for i, s in enumerate(socks):
            s.settimeout(5)
            s.sendto(encode(ECHO, b"client %d" % i), server.address)
        for i, s in enumerate(socks):
            assert decode_datagram(s.recv(65536)) == (ECHO + 1, b"client %d" % i)
    finally:
        for s in socks:
            s.close()


def test_send_to_an_explicit_address(
    thread: LoopThread, server: UdpServer, client: socket.socket
) -> None:
    client.bind(("127.0.0.1", 0))
    thread.call(server.send_to, client.getsockname(), 8, b"unsolicited").result(5)
    assert decode_datagram(client.recv(65536)) == (8, b"unsolicited")


def test_binding_a_port_in_use_raises(thread: LoopThread, server: UdpServer) -> None:
    other = UdpServer(Router())
    with pytest.raises(OSError):
        other.start_on(thread, "127.0.0.1", server.address[1])


def test_udp_client_round_trip_and_drops_bad_replies(thread: LoopThread) -> None:
    got: list[tuple[int, bytes]] = []
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    udp = UdpClient(Router({5: lambda conn, msgid, body: got.append((msgid, body))}), "cli")
    try:
        thread.submit(udp.open(*peer.getsockname())).result(5)
        thread.call(udp.send, ECHO, b"question").result(5)
        data, addr = peer.recvfrom(65536)
        assert decode_datagram(data) == (ECHO, b"question")
        peer.sendto(b"\x05\x00\x00\x00\xff\xff", addr)  # truncated header
        peer.sendto(encode(5, b"answer"), addr)
        wait_until(lambda: got == [(5, b"answer")])
        assert (udp.received, udp.dropped) == (2, 1)
    finally:
        thread.call(udp.close).result(5)
        peer.close()


def test_udp_client_to_a_closed_port_counts_the_error(thread: LoopThread) -> None:
    udp = UdpClient(Router(), "cli")
    try:
        thread.submit(udp.open("127.0.0.1", free_port(socket.SOCK_DGRAM))).result(5)
        for _ in range(3):
            thread.call(udp.send, ECHO, b"anyone?").result(5)
            time.sleep(0.05)
        wait_until(lambda: udp.send_errors >= 1)
    finally:
        thread.call(udp.close).result(5)


def test_udp_server_against_udp_client(thread: LoopThread) -> None:
    router = Router({ECHO: lambda conn, msgid, body: conn.send(msgid + 1, body[::-1])})
    udp_server = UdpServer(router)
    udp_server.start_on(thread, "127.0.0.1", 0)
    got: list[bytes] = []
    udp = UdpClient(Router({ECHO + 1: lambda c, m, b: got.append(b)}), "cli")
    try:
        thread.submit(udp.open(*udp_server.address)).result(5)
        for i in range(20):
            thread.call(udp.send, ECHO, b"%02d" % i).result(5)
        wait_until(lambda: len(got) == 20)
        assert sorted(g[::-1] for g in got) == [b"%02d" % i for i in range(20)]
    finally:
        thread.call(udp.close).result(5)
        thread.call(udp_server.close).result(5)
