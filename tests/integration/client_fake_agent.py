"""A scripted stand-in for the agent's UDP side (spec sections 4 and 8 replies).

Three UdpServers on ephemeral loopback ports, on one LoopThread. Each answers
GetHostRequest from a per-module host list (round robin; NOEXIST without hosts),
API_GetRouteRequest with the list, and records ReportRequests. `mode` scripts misbehaviour:
"answer", "silent" (never reply: timeouts), "stale" (first a reply with seq - 1 and another
host), "other_module" (first a reply for another module), "garbage" (first undecodable bytes).
`route_after` makes get_route answer empty for the first N requests of a module, like an
agent still fetching the route.
"""

from __future__ import annotations

import threading
from typing import Any

from lars.protocol import MsgId, RetCode, dotted_to_wire, lars_pb2, wire_to_dotted
from lars.reactor import LoopThread, Router, UdpServer
from lars.reactor.frame import encode

__all__ = ["FakeAgent"]


class FakeAgent:
    def __init__(self, hosts: dict[tuple[int, int], list[tuple[str, int]]] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self.mode = "answer"
        self.retcode: RetCode | None = None  # force a retcode instead of answering hosts
        self.route_after = 0
        self.lock = threading.Lock()
        self.requests: list[tuple[int, int, int, int]] = []  # (shard, msgid, modid, cmdid)
        self.reports: list[tuple[int, int, int, str, int, int]] = []  # shard, m, c, ip, port, rc
        self._route_asks: dict[tuple[int, int], int] = {}
        self._next: dict[tuple[int, int], int] = {}
        self._thread = LoopThread("fake-agent", use_uvloop=False)
        self._servers: list[UdpServer] = []

    @property
    def ports(self) -> tuple[int, int, int]:
        a, b, c = (s.address[1] for s in self._servers)
        return (a, b, c)

    def start(self) -> FakeAgent:
        self._thread.start()
        for shard in range(3):
            router = Router()
            router.register(MsgId.GET_HOST_REQUEST, self._handler(shard, self._get_host))
            router.register(MsgId.API_GET_ROUTE_REQUEST, self._handler(shard, self._get_route))
            router.register(MsgId.REPORT_REQUEST, self._handler(shard, self._report))
            server = UdpServer(router, name=f"fake-agent-{shard}")
            server.start_on(self._thread, "127.0.0.1", 0)
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            self._thread.call(server.close).result()
        self._thread.stop()

    def __enter__(self) -> FakeAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self, shard: int, fn: Any) -> Any:
        def handle(conn: UdpServer, msgid: int, body: bytes) -> None:
            fn(shard, conn, msgid, body)

        return handle

    def _get_host(self, shard: int, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = lars_pb2.GetHostRequest.FromString(body)
        key = (req.modid, req.cmdid)
        with self.lock:
            self.requests.append((shard, msgid, req.modid, req.cmdid))
            mode = self.mode
            hosts = self.hosts.get(key, [])
            i = self._next.get(key, 0)
            self._next[key] = i + 1
        if mode == "silent":
            return
        reply = lars_pb2.GetHostResponse(seq=req.seq, modid=req.modid, cmdid=req.cmdid)
        if self.retcode is not None:
            reply.retcode = int(self.retcode)
        elif hosts:
            ip, port = hosts[i % len(hosts)]
            reply.retcode = int(RetCode.SUCC)
            reply.host.ip = dotted_to_wire(ip)
            reply.host.port = port
        else:
            reply.retcode = int(RetCode.NOEXIST)
        if mode == "stale":
            stale = lars_pb2.GetHostResponse()
            stale.CopyFrom(reply)
            stale.seq = (req.seq - 1) & 0xFFFFFFFF
            stale.host.ip = dotted_to_wire("10.66.66.66")
            stale.host.port = 6666
            conn.send(MsgId.GET_HOST_RESPONSE, stale.SerializeToString())
        elif mode == "other_module":
            other = lars_pb2.GetHostResponse()
            other.CopyFrom(reply)
            other.modid = req.modid + 1
            other.host.port = 7777
            conn.send(MsgId.GET_HOST_RESPONSE, other.SerializeToString())
        elif mode == "garbage":
            assert conn.transport is not None
            conn.transport.sendto(b"\x05\x00\x00\x00\xff\xff", conn.peer)  # truncated frame
            conn.send(MsgId.GET_HOST_RESPONSE, b"\xff\xff\xff")  # undecodable body
        conn.send(MsgId.GET_HOST_RESPONSE, reply.SerializeToString())

    def _get_route(self, shard: int, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = lars_pb2.GetRouteRequest.FromString(body)
        key = (req.modid, req.cmdid)
        with self.lock:
            self.requests.append((shard, msgid, req.modid, req.cmdid))
            asked = self._route_asks.get(key, 0)
            self._route_asks[key] = asked + 1
            mode = self.mode
            hosts = self.hosts.get(key, []) if asked >= self.route_after else []
        if mode == "silent":
            return
        reply = lars_pb2.GetRouteResponse(modid=req.modid, cmdid=req.cmdid)
        for ip, port in hosts:
            reply.host.add(ip=dotted_to_wire(ip), port=port)
        if mode == "other_module":
            other = lars_pb2.GetRouteResponse(modid=req.modid + 1, cmdid=req.cmdid)
            other.host.add(ip=dotted_to_wire("10.66.66.66"), port=6666)
            conn.send(MsgId.API_GET_ROUTE_RESPONSE, other.SerializeToString())
        conn.send(MsgId.API_GET_ROUTE_RESPONSE, reply.SerializeToString())

    def _report(self, shard: int, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = lars_pb2.ReportRequest.FromString(body)
        with self.lock:
            self.reports.append(
                (
                    shard,
                    req.modid,
                    req.cmdid,
                    wire_to_dotted(req.host.ip),
                    req.host.port,
                    req.retcode,
                )
            )


def encode_reply(reply: lars_pb2.GetHostResponse) -> bytes:
    return encode(MsgId.GET_HOST_RESPONSE, reply.SerializeToString())
