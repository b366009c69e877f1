"""Scripted peers for agent tests: a fake route service and a fake reporter on TcpServer,
and a small blocking UDP client for the agent's three ports."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from lars.protocol import MsgId, lars_pb2
from lars.reactor import Connection, ReactorConfig, Router, TcpServer, encode
from lars.reactor.frame import decode_datagram

Key = tuple[int, int]


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {pred}")
        time.sleep(interval)


class FakeRouteService:
    """Answers GetRouteRequest from `routes`, remembers subscribers, pushes on demand."""

    def __init__(self, port: int = 0) -> None:
        self.routes: dict[Key, list[tuple[int, int]]] = {}
        self.weights: dict[Key, dict[tuple[int, int], int]] = {}  # HostInfo.weight (lars)
        self.requests: list[Key] = []
        self.version = 0  # GetRouteResponse.version (lars, issue 22); 0: an original's answer
        self._subs: dict[Key, set[Connection]] = {}
        self.server = TcpServer(
            ReactorConfig(ip="127.0.0.1", port=port),
            Router({int(MsgId.GET_ROUTE_REQUEST): self._on_request}),
            name="fake-dns",
            on_close=self._on_close,
        )

    def start(self) -> FakeRouteService:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def _body(self, key: Key) -> bytes:
        msg = lars_pb2.GetRouteResponse(modid=key[0], cmdid=key[1], version=self.version)
        weights = self.weights.get(key, {})
        for ip, port in self.routes.get(key, []):
            msg.host.add(ip=ip, port=port, weight=weights.get((ip, port), 0))
        return msg.SerializeToString()

    def _on_request(self, conn: Connection, msgid: int, body: bytes) -> None:
        req = lars_pb2.GetRouteRequest.FromString(body)
        key = (req.modid, req.cmdid)
        self.requests.append(key)
        self._subs.setdefault(key, set()).add(conn)
        conn.send(int(MsgId.GET_ROUTE_RESPONSE), self._body(key))

    def _on_close(self, conn: Connection) -> None:
        for subs in self._subs.values():
            subs.discard(conn)

    def subscribers(self, key: Key) -> int:
        return self.server.master.call(lambda: len(self._subs.get(key, ()))).result()

    def set_route(
        self,
        key: Key,
        hosts: list[tuple[int, int]],
        push: bool = True,
        weights: dict[tuple[int, int], int] | None = None,
    ) -> None:
        def run() -> None:
            self.routes[key] = hosts
            self.weights[key] = weights or {}
            if push:
                for conn in list(self._subs.get(key, ())):
                    conn.send(int(MsgId.GET_ROUTE_RESPONSE), self._body(key))

        self.server.master.call(run).result()


class FakeReporter:
    """Collects every ReportStatusRequest it receives."""

    def __init__(self, port: int = 0) -> None:
        self.reports: list[lars_pb2.ReportStatusRequest] = []
        self._lock = threading.Lock()
        self.server = TcpServer(
            ReactorConfig(ip="127.0.0.1", port=port),
            Router({int(MsgId.REPORT_STATUS_REQUEST): self._on_report}),
            name="fake-reporter",
        )

    def start(self) -> FakeReporter:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def _on_report(self, conn: Connection, msgid: int, body: bytes) -> None:
        with self._lock:
            self.reports.append(lars_pb2.ReportStatusRequest.FromString(body))

    def latest(self, key: Key) -> lars_pb2.ReportStatusRequest | None:
        with self._lock:
            for msg in reversed(self.reports):
                if (msg.modid, msg.cmdid) == key:
                    return msg
        return None


class UdpPeer:
    """A blocking UDP client of the agent (a stand-in for the client API)."""

    def __init__(self, ports: tuple[int, ...]) -> None:
        self.ports = ports
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5.0)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def port_for(self, modid: int, cmdid: int) -> int:
        return self.ports[(modid + cmdid) % 3]

    def send_raw(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def recv(self) -> tuple[int, bytes]:
        data, _ = self.sock.recvfrom(65536)
        return decode_datagram(data)

    def get_host(self, modid: int, cmdid: int, port: int | None = None) -> lars_pb2.GetHostResponse:
        self.seq += 1
        req = lars_pb2.GetHostRequest(seq=self.seq, modid=modid, cmdid=cmdid)
        self.send_raw(
            encode(int(MsgId.GET_HOST_REQUEST), req.SerializeToString()),
            port or self.port_for(modid, cmdid),
        )
        msgid, body = self.recv()
        assert msgid == MsgId.GET_HOST_RESPONSE
        rsp = lars_pb2.GetHostResponse.FromString(body)
        assert (rsp.seq, rsp.modid, rsp.cmdid) == (self.seq, modid, cmdid)
        return rsp

    def get_route(self, modid: int, cmdid: int) -> list[tuple[int, int]]:
        req = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid)
        self.send_raw(
            encode(int(MsgId.API_GET_ROUTE_REQUEST), req.SerializeToString()),
            self.port_for(modid, cmdid),
        )
        msgid, body = self.recv()
        assert msgid == MsgId.API_GET_ROUTE_RESPONSE
        rsp = lars_pb2.GetRouteResponse.FromString(body)
        assert (rsp.modid, rsp.cmdid) == (modid, cmdid)
        return sorted((h.ip, h.port) for h in rsp.host)

    def report(self, modid: int, cmdid: int, ip: int, port: int, retcode: int) -> None:
        req = lars_pb2.ReportRequest(
            modid=modid, cmdid=cmdid, host=lars_pb2.HostInfo(ip=ip, port=port), retcode=retcode
        )
        self.send_raw(
            encode(int(MsgId.REPORT_REQUEST), req.SerializeToString()),
            self.port_for(modid, cmdid),
        )
