"""The UDP face of one shard: check a datagram, ask the Shard, answer the peer.

Runs on the shard's loop thread only. This is the agent's hot path, so it is its own
DatagramProtocol rather than the generic UdpServer + Router: the frame check and the
msgid dispatch are inlined, and GetHostResponse frames are joined from pre-encoded
parts (lars.agent.wire). Every request is parsed into a FRESH protobuf message: with the
upb backend a reused message keeps each parse's unknown-field bytes in its arena for
ever (Clear() and DiscardUnknownFields() give none of it back), so a client sending
fields this agent does not know grew its memory without bound; a fresh message frees
its arena with it, for about 0.1 us per request (benchmarks/RESULTS.md). No parse keeps
state from one datagram to the next but the small-report cache below, which holds only
datagrams of at most _REPORT_CACHE_MAX_BYTES bytes. Bad input
follows spec section 1: a datagram that is not exactly one frame, an unknown msgid or
an unparsable body is dropped, counted and logged at a limited rate, never answered.

A periodic tick hands the shard's aggregated reports and, when routes changed, its
route snapshot to callbacks that post them to other threads.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, cast

from google.protobuf.message import DecodeError

from lars.agent.balancer import HostKey
from lars.agent.shard import ModuleKey, Shard
from lars.agent.wire import get_host_response, host_part, module_part
from lars.protocol import MsgId, RetCode, lars_pb2
from lars.ratelog import RateLimitedLog
from lars.reactor.frame import MAX_BODY, encode
from lars.reactor.udp import open_udp_socket

__all__ = ["ShardEndpoint"]

log = logging.getLogger(__name__)

ReportSink = Callable[[list[tuple[ModuleKey, bytes]]], None]
# (shard index, routes, weights of the modules with a host weight != 1)
SnapshotSink = Callable[
    [int, list[tuple[int, int, list[HostKey]]], dict[ModuleKey, dict[HostKey, int]]], None
]

_unpack_header = struct.Struct("<ii").unpack_from
_GET_HOST = int(MsgId.GET_HOST_REQUEST)
_REPORT = int(MsgId.REPORT_REQUEST)
_API_GET_ROUTE = int(MsgId.API_GET_ROUTE_REQUEST)
_API_GET_ROUTE_RESPONSE = int(MsgId.API_GET_ROUTE_RESPONSE)
_REGISTER = int(MsgId.REGISTER_REQUEST)  # lars only: handed to the agent's registrations
_NOEXIST = int(RetCode.NOEXIST)
_MODULE_PARTS_LIMIT = 1 << 14  # cached encodings of (modid, cmdid); cleared when full
_REPORT_CACHE_LIMIT = 1 << 13  # parsed ReportRequest datagrams; cleared when full
# A ReportRequest from any client is under 70 bytes (ints of at most 10 bytes each);
# larger datagrams (unknown fields) are parsed but never kept: the cache stays < 1.5 MB.
_REPORT_CACHE_MAX_BYTES = 128
_new_get_host = lars_pb2.GetHostRequest.FromString
_new_report = lars_pb2.ReportRequest.FromString
_new_get_route = lars_pb2.GetRouteRequest.FromString
# An IPv4 UDP payload is at most 65507 bytes (65535 - 20 - 8): a frame body between
# this and MAX_BODY is valid but cannot be sent in one datagram.
_MAX_UDP_BODY = 65507 - 8


class ShardEndpoint(asyncio.DatagramProtocol):
    """One shard behind one UDP port. Build, `await open()` on its loop, `close()` there."""

    def __init__(
        self,
        shard: Shard,
        *,
        caller: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_register: Callable[[bytes, Any], None] | None = None,
    ) -> None:
        self.shard = shard
        # (RegisterRequest body, peer): posts to the registrations' loop, which answers
        # through send_frame on this loop; None: msgid 11 is an unknown msgid here
        self.on_register = on_register
        self.caller = caller
        self._clock = clock
        self._wall = wall
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("", 0)
        self._module_parts: dict[ModuleKey, bytes] = {}
        self._reports: dict[bytes, tuple[int, int, int, int, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._log_drop = RateLimitedLog(log)
        # counters (read from other threads as a snapshot)
        self.received = 0
        self.dropped = 0  # not exactly one valid frame
        self.unknown_msgids = 0
        self.bad_bodies = 0
        self.handler_errors = 0
        self.send_errors = 0

    @property
    def port(self) -> int:
        return self.address[1]

    async def open(self, host: str, port: int) -> None:
        sock = open_udp_socket(host, port)
        self.address = sock.getsockname()[:2]
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # asyncio.DatagramProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not subclasses

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        size = len(data)
        if size < 8:
            self._drop(addr, f"{size}-byte datagram is shorter than a frame header")
            return
        msgid, msglen = _unpack_header(data)
        if msglen != size - 8 or msglen > MAX_BODY:
            self._drop(addr, f"{size}-byte datagram carries msglen {msglen}")
            return
        try:
            if msgid == _GET_HOST:
                self._get_host(data, addr)
            elif msgid == _REPORT:
                fields = self._reports.get(data)
                if fields is None:
                    fields = self._parse_report(data)
                modid, cmdid, ip, port, retcode = fields
                self.shard.report(modid, cmdid, ip, port, retcode, self._clock())
            elif msgid == _API_GET_ROUTE:
                self._get_route(data, addr)
            elif msgid == _REGISTER and self.on_register is not None:
                self.on_register(data[8:], addr)
            else:
                self.unknown_msgids += 1
                self._log_drop("agent shard %d: msgid %d from %s skipped", self.shard.index,
                               msgid, addr)  # fmt: skip
        except DecodeError:
            self.bad_bodies += 1
            self._log_drop("agent shard %d: unparsable body (msgid %d) from %s dropped",
                           self.shard.index, msgid, addr)  # fmt: skip
        except Exception:
            self.handler_errors += 1
            log.exception("agent shard %d: msgid %d failed", self.shard.index, msgid)

    def _parse_report(self, data: bytes) -> tuple[int, int, int, int, int]:
        """Parse a ReportRequest and remember it: a client sends the same bytes for every
        report of one host and outcome, so most reports skip protobuf altogether."""
        req = _new_report(data[8:])
        host = req.host
        fields = (req.modid, req.cmdid, host.ip, host.port, req.retcode)
        if len(data) > _REPORT_CACHE_MAX_BYTES:
            return fields
        reports = self._reports
        if len(reports) >= _REPORT_CACHE_LIMIT:
            reports.clear()
        reports[data] = fields
        return fields

    def _drop(self, addr: Any, why: str) -> None:
        self.dropped += 1
        self._log_drop("agent shard %d: dropped datagram from %s: %s", self.shard.index, addr, why)

    def _get_host(self, data: bytes, addr: Any) -> None:
        req = _new_get_host(data[8:])
        modid = req.modid
        cmdid = req.cmdid
        code, host = self.shard.get_host(modid, cmdid, self._clock())
        parts = self._module_parts
        module = parts.get((modid, cmdid))
        if module is None:
            if len(parts) >= _MODULE_PARTS_LIMIT:
                parts.clear()
            module = parts[(modid, cmdid)] = module_part(modid, cmdid)
        wire: bytes | None
        reason = 0
        if host is None:
            wire = b""
            if code == _NOEXIST:
                reason = self.shard.noexist_reason(modid, cmdid)
        else:
            wire = host.wire
            if wire is None:
                wire = host.wire = host_part(host.ip, host.port)
        transport = self.transport
        if transport is not None:
            transport.sendto(get_host_response(req.seq, module, code, wire, reason), addr)

    def _get_route(self, data: bytes, addr: Any) -> None:
        req = _new_get_route(data[8:])
        hosts = self.shard.get_route(req.modid, req.cmdid, self._clock())
        rsp = lars_pb2.GetRouteResponse(modid=req.modid, cmdid=req.cmdid)
        for ip, port in hosts:
            rsp.host.add(ip=ip, port=port)
        body = rsp.SerializeToString()
        if len(body) > _MAX_UDP_BODY:  # ~4,000+ hosts: more than one datagram can carry
            del rsp.host[:]
            body = rsp.SerializeToString()
            self._log_drop("agent shard %d: route of %d:%d too large for a datagram",
                           self.shard.index, req.modid, req.cmdid)  # fmt: skip
        if self.transport is not None:
            self.transport.sendto(encode(_API_GET_ROUTE_RESPONSE, body), addr)

    def send_frame(self, frame: bytes, addr: Any) -> None:
        """Send a frame built elsewhere (a RegisterResponse) from this shard's port."""
        if self.transport is not None:
            self.transport.sendto(frame, addr)

    # from the route client (posted to this loop)

    def on_route(
        self,
        modid: int,
        cmdid: int,
        hosts: list[HostKey],
        weights: dict[HostKey, int] | None = None,
    ) -> None:
        self.shard.on_route(modid, cmdid, hosts, self._clock(), weights)

    def on_connected(self) -> None:
        self.shard.on_connected(self._clock())

    def on_route_down(self) -> None:
        self.shard.on_route_down()

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
        self.shard.sweep(self._clock())
        items = self.shard.collect_reports(self.caller, self._wall())
        if items:
            reports(items)
        if snapshots is not None and self.shard.routes_changed:
            routes = self.shard.snapshot()
            snapshots(self.shard.index, routes, self.shard.snapshot_weights())
