"""Echo benchmark: request ring and reply checker, the server's answers, and a short
bounded smoke run of server + multi-process client (no timing thresholds)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.bench.echo_client import MAX_DEPTH, ClientConfig
from lars.bench.echo_ring import ID_BASE, ID_LIMIT, EchoChecker, EchoRing
from lars.bench.echo_run import run_client
from lars.bench.echo_server import EchoServer
from lars.errors import ConfigError, NetworkError
from lars.protocol.echo_pb2 import EchoMessage
from lars.reactor import FrameDecoder, ReactorConfig, encode

RING = EchoRing(size=50, window=8, content="hi")


def test_ring_frames_have_one_length_and_consecutive_ids() -> None:
    data = RING.frames(45, 8)  # wraps past the end of the ring
    frames = FrameDecoder().feed(data)
    assert len(data) == 8 * RING.frame_len
    assert [msgid for msgid, _ in frames] == [1] * 8
    ids = [EchoMessage.FromString(body).id for _, body in frames]
    assert ids == [ID_BASE + (45 + i) % 50 for i in range(8)]
    assert {EchoMessage.FromString(body).content for _, body in frames} == {"hi"}


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30), st.integers(0, 200))
def test_checker_accepts_exact_echoes_split_anywhere(cuts: list[int], start: int) -> None:
    stream = b"".join(RING.frames(start + i, 1) for i in range(20))
    checker = EchoChecker(RING, start)
    got, off = 0, 0
    for cut in [*cuts, len(stream)]:
        chunk, off = stream[off : off + cut], off + cut
        if chunk:
            got += checker.feed(chunk, 20 - got)
    assert got == 20
    assert checker.pos == start + 20


def test_checker_parses_equal_messages_encoded_differently() -> None:
    # id (field 2) before content (field 1): same message, other bytes.
    def swapped(pos: int) -> bytes:
        body = EchoMessage(id=RING.id_at(pos)).SerializeToString()
        body += EchoMessage(content="hi").SerializeToString()
        return encode(1, body)

    checker = EchoChecker(RING, 3)
    assert checker.feed(swapped(3) + swapped(4)[:5], 2) == 1
    assert checker.feed(swapped(4)[5:], 1) == 1
    assert checker.pos == 5


@pytest.mark.parametrize(
    "reply",
    [
        EchoMessage(content="hi", id=ID_BASE + 9),  # wrong id
        EchoMessage(content="ho", id=ID_BASE + 3),  # wrong content
    ],
)
def test_checker_rejects_wrong_replies(reply: EchoMessage) -> None:
    checker = EchoChecker(RING, 3)
    with pytest.raises(ValueError, match="bad echo reply"):
        checker.feed(encode(1, reply.SerializeToString()), 1)


@pytest.mark.parametrize(
    "kwargs",
    [{"size": 0}, {"size": ID_LIMIT}, {"window": 0}],
)
def test_ring_rejects_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        EchoRing(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conns": 0}, "--conns = 0: out of range"),
        ({"depth": 0}, "--depth = 0: out of range"),
        ({"conns": 2, "procs": 3}, "cannot exceed"),
        ({"depth": MAX_DEPTH + 1}, "--depth = 4097: out of range"),
        ({"seconds": 0}, "--seconds = 0: out of range"),
        ({"seconds": float("nan")}, "--seconds = nan: out of range"),
    ],
)
def test_client_config_rejects_bad_values(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises((ValueError, ConfigError), match=message):
        ClientConfig(**kwargs)


def test_client_config_spreads_connections_over_processes() -> None:
    cfg = ClientConfig(conns=10, procs=3)
    assert [cfg.conns_of(i) for i in range(3)] == [4, 3, 3]


def test_cli_rejects_bad_arguments() -> None:
    lars = [sys.executable, "-m", "lars", "bench", "echo"]
    bad_cpus = subprocess.run(
        [*lars, "client", "--cpus", "x"], capture_output=True, text=True, timeout=60
    )
    assert bad_cpus.returncode == 2
    assert "bad CPU list 'x'" in bad_cpus.stderr
    bad_procs = subprocess.run(
        [*lars, "client", "--conns", "1", "--procs", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_procs.returncode == 2
    assert "procs (2) cannot exceed conns (1)" in bad_procs.stderr


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (RING.frames(0, 2), "2 replies for 1 requests"),  # unsolicited second reply
        (b"\x01\x00\x00\x00\xff\xff\xff\xff" + b"x" * 20, "bad echo reply stream"),
        (encode(1, b"\xff" * 15), "unparsable body"),
    ],
)
def test_checker_rejects_bad_streams(stream: bytes, message: str) -> None:
    checker = EchoChecker(RING, 0)
    with pytest.raises(ValueError, match=message):
        checker.feed(stream, 1)


def test_checker_rejects_wrong_msgid() -> None:
    checker = EchoChecker(RING, 0)
    body = RING.frames(0, 1)[8:]
    with pytest.raises(ValueError, match="msgid 2"):
        checker.feed(encode(2, body), 1)


@pytest.fixture(params=[(0, False), (2, False), (0, True)], ids=["t0", "t2", "t0-raw"])
def echo_server(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[EchoServer]:
    threads, raw = request.param
    server = EchoServer(ReactorConfig(ip="127.0.0.1", port=0, threads=threads), raw=raw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _exchange(port: int, data: bytes, want: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        got = b""
        while len(got) < want:
            chunk = sock.recv(65536)
            assert chunk, f"server closed after {len(got)} of {want} bytes"
            got += chunk
        return got


def test_server_echoes_content_and_id_and_survives_bad_bodies(echo_server: EchoServer) -> None:
    request = encode(1, EchoMessage(content="ping", id=-5).SerializeToString())
    empty = encode(1, b"")  # a zero-length body is a valid frame: an empty EchoMessage
    reply = _exchange(echo_server.port, request + empty + request, 2 * len(request) + 8)
    assert reply == request + empty + request
    if not echo_server.raw:
        garbage = encode(1, b"\xff\xff\xff")  # not protobuf: counted, dropped, not fatal
        assert _exchange(echo_server.port, garbage + request, len(request)) == request
        assert echo_server.server.stats().bad_bodies == 1


@pytest.mark.parametrize(
    ("threads", "raw", "procs", "depth"),
    [(0, False, 1, 1), (2, False, 2, 4), (0, True, 1, 3)],
    ids=["t0-pingpong", "t2-2procs-depth4", "t0-raw-depth3"],
)
def test_smoke_run_replies_match(
    no_leaks: None, threads: int, raw: bool, procs: int, depth: int
) -> None:
    server = EchoServer(ReactorConfig(ip="127.0.0.1", port=0, threads=threads), raw=raw)
    server.start()
    try:
        cfg = ClientConfig(port=server.port, conns=4, procs=procs, depth=depth, seconds=1.2)
        lines: list[str] = []
        result = run_client(cfg, lines.append)
        assert result.errors == 0
        assert result.replies > 0
        assert result.median_qps > 0
        assert len(result.samples) == len(lines) >= 1
        assert server.frames_in() >= result.replies
        assert result.summary(cfg).endswith(" 0 errors")
    finally:
        server.stop()


def test_client_counts_connections_the_server_drops(no_leaks: None) -> None:
    server = EchoServer(ReactorConfig(ip="127.0.0.1", port=0))
    server.start()
    try:
        cfg = ClientConfig(port=server.port, conns=3, procs=1, seconds=2.0)
        # The first per-second report means every connection is open and busy: stop then.
        result = run_client(cfg, lambda _line: server.stop())
    finally:
        server.stop()
    assert result.replies > 0
    assert result.errors == 3
    assert result.summary(cfg).endswith(" 3 errors")


def test_client_fails_clearly_without_a_server(no_leaks: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        cfg = ClientConfig(port=port, conns=2, procs=1, seconds=1.0, connect_timeout=2.0)
        with pytest.raises(NetworkError, match="connections to 127"):
            run_client(cfg, lambda _line: None)


def test_cli_server_and_client_commands() -> None:
    """The documented commands: `lars bench echo server` and `lars bench echo client`."""
    lars = [sys.executable, "-m", "lars", "--log-level", "WARNING", "bench", "echo"]
    server = subprocess.Popen(
        [*lars, "server", "--port", "0", "--seconds", "60", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+), 0 worker loop\(s\), parse \+ serialise", first)
        assert match, first
        client = subprocess.run(
            [*lars, "client", "--port", match.group(1), "--conns", "2", "--seconds", "1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
        assert re.search(
            r"summary: ping-pong, 2 conns in 1 procs: median [\d,]+ QPS", client.stdout
        )
        assert client.stdout.rstrip().endswith(" 0 errors")
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
        assert server.returncode == 0
        assert "echo server stopped; rss" in rest
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
