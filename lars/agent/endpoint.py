"""The UDP face of one shard: decode a request, ask the Shard, answer the peer.

Runs on the shard's loop thread only. Messages are parsed into and serialized from
per-endpoint protobuf objects reused for every datagram (no per-request allocation
beyond the bytes themselves). A periodic tick hands the shard's aggregated reports and,
when routes changed, its route snapshot to callbacks that post them to other threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from lars.agent.balancer import HostKey
from lars.agent.shard import ModuleKey, Shard
from lars.protocol import MsgId, lars_pb2
from lars.reactor import Router, UdpServer

__all__ = ["ShardEndpoint"]

log = logging.getLogger(__name__)

ReportSink = Callable[[list[tuple[ModuleKey, bytes]]], None]
SnapshotSink = Callable[[int, list[tuple[int, int, list[HostKey]]]], None]

_GET_HOST_RESPONSE = int(MsgId.GET_HOST_RESPONSE)
_API_GET_ROUTE_RESPONSE = int(MsgId.API_GET_ROUTE_RESPONSE)


class ShardEndpoint:
    """One shard behind one UDP port. Build, `await open()` on its loop, `close()` there."""

    def __init__(
        self,
        shard: Shard,
        *,
        caller: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.shard = shard
        self.caller = caller
        self._clock = clock
        self._wall = wall
        router = Router(
            {
                int(MsgId.GET_HOST_REQUEST): self._on_get_host,
                int(MsgId.REPORT_REQUEST): self._on_report,
                int(MsgId.API_GET_ROUTE_REQUEST): self._on_get_route,
            }
        )
        self.router = router
        self.server = UdpServer(router, name=f"agent-udp{shard.index}")
        self._get_host_req = lars_pb2.GetHostRequest()
        self._get_host_rsp = lars_pb2.GetHostResponse()
        self._report_req = lars_pb2.ReportRequest()
        self._route_req = lars_pb2.GetRouteRequest()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        return self.server.address[1]

    async def open(self, host: str, port: int) -> None:
        await self.server.open(host, port)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.close()

    # handlers (shard loop)

    def _on_get_host(self, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = self._get_host_req
        req.ParseFromString(body)
        modid = req.modid
        cmdid = req.cmdid
        code, host = self.shard.get_host(modid, cmdid, self._clock())
        rsp = self._get_host_rsp
        rsp.seq = req.seq
        rsp.modid = modid
        rsp.cmdid = cmdid
        rsp.retcode = code
        if host is None:
            rsp.ClearField("host")
        else:
            h = rsp.host
            h.ip = host.ip
            h.port = host.port
        conn.send(_GET_HOST_RESPONSE, rsp.SerializeToString())

    def _on_report(self, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = self._report_req
        req.ParseFromString(body)
        host = req.host
        self.shard.report(req.modid, req.cmdid, host.ip, host.port, req.retcode, self._clock())

    def _on_get_route(self, conn: UdpServer, msgid: int, body: bytes) -> None:
        req = self._route_req
        req.ParseFromString(body)
        hosts = self.shard.get_route(req.modid, req.cmdid, self._clock())
        rsp = lars_pb2.GetRouteResponse(modid=req.modid, cmdid=req.cmdid)
        for ip, port in hosts:
            rsp.host.add(ip=ip, port=port)
        conn.send(_API_GET_ROUTE_RESPONSE, rsp.SerializeToString())

    # from the route client (posted to this loop)

    def on_route(self, modid: int, cmdid: int, hosts: list[HostKey]) -> None:
        self.shard.on_route(modid, cmdid, hosts, self._clock())

    def on_connected(self) -> None:
        self.shard.on_connected(self._clock())

    # periodic work

    def start_ticker(
        self, interval: float, reports: ReportSink, snapshots: SnapshotSink | None
    ) -> None:
        """Every `interval`: hand over aggregated reports and a changed route snapshot."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self._timer = loop.call_later(interval, tick)
            try:
                self.tick(reports, snapshots)
            except Exception:
                log.exception("agent shard %d: periodic work failed", self.shard.index)

        self._timer = loop.call_later(interval, tick)

    def tick(self, reports: ReportSink, snapshots: SnapshotSink | None) -> None:
        items = self.shard.collect_reports(self.caller, self._wall())
        if items:
            reports(items)
        if snapshots is not None and self.shard.routes_changed:
            snapshots(self.shard.index, self.shard.snapshot())
