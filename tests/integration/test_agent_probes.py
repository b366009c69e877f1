"""The agent's tcp and http checks (lars.agent.probes) against loopback servers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from lars.agent.probes import probe_http, probe_tcp


async def serve(reply: bytes | None) -> tuple[asyncio.Server, int, list[bytes]]:
    """A server that reads the request head and answers `reply` (None: never answers)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            if reply is None:
                await reader.read()  # silent until the checker gives up and closes
            else:
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


@pytest.mark.parametrize(
    ("reply", "ok", "detail"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True, ""),
        (b"HTTP/1.0 204 No Content\r\n\r\n", True, ""),
        (b"HTTP/1.1 299 Whatever\r\n\r\n", True, ""),
        (b"HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n", False, "http status 301"),
        (b"HTTP/1.1 503 Busy\r\n\r\n", False, "http status 503"),
        (b"SSH-2.0-OpenSSH\r\n", False, "no HTTP status line"),
        (b"", False, "no HTTP status line"),
        (b"HTTP/1.1 200 " + b"x" * 5000 + b"\r\n\r\n", False, "http check"),
    ],
)
def test_http_check_passes_on_2xx_only(reply: bytes, ok: bool, detail: str) -> None:
    async def main() -> None:
        server, port, seen = await serve(reply)
        async with server:
            got, why = await probe_http("127.0.0.1", port, "/health?x=1", 1.0)
        assert got is ok and detail in why
        assert seen and seen[0].startswith(b"GET /health?x=1 HTTP/1.0\r\n")
        assert f"Host: 127.0.0.1:{port}".encode() in seen[0]

    asyncio.run(main())


def test_http_check_times_out() -> None:
    async def main() -> None:
        server, port, _ = await serve(None)
        async with server:
            ok, why = await probe_http("127.0.0.1", port, "/", 0.2)
            assert not ok and "timed out after 0.2 s" in why
            server.close()

    asyncio.run(main())


def test_tcp_check() -> None:
    async def main() -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            assert await probe_tcp("127.0.0.1", port, 1.0) == (True, "")
        ok, why = await probe_tcp("127.0.0.1", port, 1.0)  # closed now
        assert not ok and "refused" in why.lower()
        ok, why = await probe_http("127.0.0.1", port, "/", 1.0)
        assert not ok and "refused" in why.lower()

    asyncio.run(main())
