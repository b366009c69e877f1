"""UDP endpoints speaking Lars frames: one frame per datagram (spec section 1).

A datagram that is not exactly one valid frame is dropped and counted, never answered.
Handlers get the endpoint itself as `conn`; `conn.send(msgid, body)` answers the peer
of the datagram being handled (no per-datagram object is allocated).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, cast

from lars.errors import ProtocolError
from lars.ratelog import RateLimitedLog
from lars.reactor.frame import decode_datagram, encode
from lars.reactor.loop import LoopThread
from lars.reactor.router import Router

__all__ = ["UdpClient", "UdpServer", "open_udp_socket"]

log = logging.getLogger(__name__)

RCVBUF = 4 * 1024 * 1024


def open_udp_socket(host: str, port: int, *, rcvbuf: int = RCVBUF) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, router: Router, name: str) -> None:
        self.router = router
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: Any = None
        self.received = 0
        self.dropped = 0
        self.send_errors = 0
        self._log_drop = RateLimitedLog(log)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not subclasses

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        try:
            msgid, body = decode_datagram(data)
        except ProtocolError as exc:
            self.dropped += 1
            self._log_drop("%s: dropped datagram from %s: %s", self.name, addr, exc)
            return
        self.peer = addr
        self.router.dispatch(self, msgid, body)

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class UdpServer(_UdpEndpoint):
    """Listens on one UDP port; `send` answers the current datagram's sender."""

    def __init__(self, router: Router, *, name: str = "udp") -> None:
        super().__init__(router, name)
        self.address: tuple[str, int] = ("", 0)

    async def open(self, host: str, port: int) -> None:
        """Bind and start receiving on the running loop."""
        sock = open_udp_socket(host, port)
        self.address = sock.getsockname()[:2]
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)

    def start_on(self, thread: LoopThread, host: str, port: int) -> None:
        thread.submit(self.open(host, port)).result()

    def send(self, msgid: int, body: bytes = b"") -> None:
        self.send_to(self.peer, msgid, body)

    def send_to(self, addr: Any, msgid: int, body: bytes = b"") -> None:
        if self.transport is not None:
            self.transport.sendto(encode(msgid, body), addr)


class UdpClient(_UdpEndpoint):
    """A connected UDP socket to one peer; replies go to the router."""

    async def open(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, remote_addr=(host, port))

    def send(self, msgid: int, body: bytes = b"") -> None:
        if self.transport is not None:
            self.transport.sendto(encode(msgid, body))
