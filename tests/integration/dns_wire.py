"""A blocking Lars route client for the dns tests: send GetRouteRequest, read frames."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

from lars.protocol import lars_pb2, wire_to_dotted

HEADER = struct.Struct("<ii")


class RouteConn:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RouteConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, modid: int, cmdid: int) -> None:
        body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        self.sock.sendall(HEADER.pack(1, len(body)) + body)

    def _exact(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the route service")
            data += chunk
        return data

    def read(self, timeout: float = 10.0) -> tuple[int, lars_pb2.GetRouteResponse]:
        msgid, n = HEADER.unpack(self._exact(8, timeout))
        msg = lars_pb2.GetRouteResponse()
        msg.ParseFromString(self._exact(n, timeout) if n else b"")
        return msgid, msg

    def get(self, modid: int, cmdid: int) -> list[tuple[str, int]]:
        self.request(modid, cmdid)
        msgid, msg = self.read()
        assert msgid == 2 and (msg.modid, msg.cmdid) == (modid, cmdid)
        return hosts_of(msg)


def hosts_of(msg: lars_pb2.GetRouteResponse) -> list[tuple[str, int]]:
    return [(wire_to_dotted(h.ip), h.port) for h in msg.host]


def wait_for(cond: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
