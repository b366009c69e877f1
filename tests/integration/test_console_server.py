"""ConsoleServer over real loopback HTTP, and `lars console` as a process."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lars.console import ConsoleServer, build_console
from lars.console.server import listen_socket
from lars.dbengine import init_schema, make_engine
from lars.errors import ConfigError, NetworkError

PASSWORD = "server-password-1"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


def request(
    port: int, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"content-type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_server_serves_on_an_ephemeral_port_and_stops_clean(engine: Engine, no_leaks: None) -> None:
    server = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)
    server.start()
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        status, _, body = request(server.port, "GET", "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        assert request(server.port, "GET", "/api/modules")[0] == 401
        status, headers, body = request(server.port, "POST", "/api/login", {"password": PASSWORD})
        assert status == 200
        cookie = headers["set-cookie"].split(";")[0]
        token = json.loads(body)["csrf_token"]
        status, _, body = request(
            server.port,
            "POST",
            "/api/modules",
            {"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80},
            {"cookie": cookie, "x-csrf-token": token},
        )
        assert status == 201
        status, _, body = request(server.port, "GET", "/api/modules", None, {"cookie": cookie})
        assert status == 200 and json.loads(body)[0]["modid"] == 1
        # Garbage on the socket gets an HTTP error, and the server keeps serving.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.connect()
        assert conn.sock is not None
        conn.sock.sendall(b"\x00\xff garbage \r\n\r\n")
        conn.sock.recv(1024)
        conn.close()
        assert request(server.port, "GET", "/healthz")[0] == 200
    finally:
        server.stop()
        server.stop()  # twice is harmless


def test_busy_port_is_a_config_error(engine: Engine) -> None:
    first = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)
    first.start()
    try:
        second = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", first.port)
        with pytest.raises(NetworkError, match="cannot listen"):
            second.start()
    finally:
        first.stop()


def test_serve_on_a_loop_the_caller_owns(engine: Engine) -> None:
    server = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)

    async def main() -> int:
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            await asyncio.sleep(0.02)
            try:
                status = (await asyncio.to_thread(request, server.port, "GET", "/healthz"))[0]
                break
            except Exception:
                continue
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return status

    assert asyncio.run(main()) == 200


def test_no_password_no_console(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="password"):
        build_console(engine, "")


def _spawn(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lars",
            "console",
            "--db",
            f"sqlite:///{tmp_path / 'l.db'}",
            "--port",
            "0",
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )


@pytest.mark.e2e
def test_lars_console_process_refuses_without_a_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LARS_CONSOLE_PASSWORD"}
    proc = _spawn(tmp_path, env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "LARS_CONSOLE_PASSWORD" in err


@pytest.mark.e2e
def test_lars_console_process_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, {**os.environ, "LARS_CONSOLE_PASSWORD": PASSWORD})
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        port = 0
        while time.monotonic() < deadline and not port:
            line = proc.stderr.readline()
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else 0
            assert line or proc.poll() is None, "lars console exited early"
        assert port, "lars console did not report its port"
        assert request(port, "GET", "/healthz")[0] == 200
        assert request(port, "POST", "/api/login", {"password": PASSWORD})[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read whatever the server answers."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_hostile_requests_are_refused_and_the_server_keeps_serving(engine: Engine) -> None:
    server = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)
    server.start()
    try:
        port = server.port
        big = b"x" * (65 * 1024)
        head = b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        oversized = _raw_exchange(port, head + b"Content-Length: %d\r\n\r\n" % len(big) + big)
        assert oversized.startswith(b"HTTP/1.1 413")
        chunked = _raw_exchange(
            port, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        assert chunked.startswith(b"HTTP/1.1 411")
        # Truncated: the headers promise more body than ever arrives.
        truncated = _raw_exchange(port, head + b'Content-Length: 100\r\n\r\n{"pass')
        assert not truncated.startswith(b"HTTP/1.1 5")
        # Headers that never end, a huge header, binary garbage, an absurd method.
        for junk in (
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
            bytes(range(256)) * 4,
            b"BREW /coffee HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            answer = _raw_exchange(port, junk)
            assert not answer.startswith(b"HTTP/1.1 5"), answer[:80]
        assert request(port, "GET", "/healthz")[0] == 200
        assert request(port, "POST", "/api/login", {"password": PASSWORD})[0] == 200
    finally:
        server.stop()


def test_the_listening_socket_disables_nagle_for_every_connection() -> None:
    """Each console request on a kept-alive connection took ~44 ms: the response went out
    in two writes and the second waited for the client's delayed ACK. Accepted sockets
    inherit TCP_NODELAY from the listener; the exchange below counts the replies."""
    sock = listen_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        sock.setblocking(True)
        with socket.create_connection(sock.getsockname()) as client:
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                accepted.sendall(b"head")
                accepted.sendall(b"body")  # not held back behind an unacknowledged write
                received = b""
                while len(received) < 8:
                    received += client.recv(16)
                assert received == b"headbody"
    finally:
        sock.close()
