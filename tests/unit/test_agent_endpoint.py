"""ShardEndpoint without sockets: frame checks, answers, the report parse cache."""

from __future__ import annotations

import struct
from typing import Any

from lars.agent import endpoint as endpoint_mod
from lars.agent.config import BalancerConfig
from lars.agent.endpoint import ShardEndpoint
from lars.agent.shard import Shard
from lars.protocol import MsgId, lars_pb2
from lars.reactor import decode_datagram, encode

PEER = ("127.0.0.1", 4242)


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass


def make() -> tuple[ShardEndpoint, Transport]:
    shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=10)
    ep = ShardEndpoint(shard, caller=1, clock=lambda: 0.0, wall=lambda: 0.0)
    transport = Transport()
    ep.transport = transport  # type: ignore[assignment]
    shard.get_host(3, 0, 0.0)
    shard.on_route(3, 0, [(-1, 80), (7, 81)], 0.0)
    return ep, transport


def report(ip: int, port: int, code: int, modid: int = 3) -> bytes:
    host = lars_pb2.HostInfo(ip=ip, port=port)
    body = lars_pb2.ReportRequest(modid=modid, cmdid=0, host=host, retcode=code)
    return encode(int(MsgId.REPORT_REQUEST), body.SerializeToString())


def test_get_host_answer_matches_request() -> None:
    ep, transport = make()
    req = lars_pb2.GetHostRequest(seq=4000000000, modid=3, cmdid=0)
    ep.datagram_received(encode(int(MsgId.GET_HOST_REQUEST), req.SerializeToString()), PEER)
    ((data, addr),) = transport.sent
    assert addr == PEER
    msgid, body = decode_datagram(data)
    rsp = lars_pb2.GetHostResponse.FromString(body)
    assert msgid == MsgId.GET_HOST_RESPONSE
    assert (rsp.seq, rsp.modid, rsp.cmdid, rsp.retcode) == (4000000000, 3, 0, 0)
    assert (rsp.host.ip, rsp.host.port) == (-1, 80)


def test_reports_counted_through_the_cache() -> None:
    ep, _ = make()
    ok, bad = report(-1, 80, 0), report(-1, 80, 2)
    for data in (ok, ok, bytes(ok), bad):
        ep.datagram_received(data, PEER)
    host = ep.shard.modules[(3, 0)].hosts[(-1, 80)]
    assert (host.rsucc, host.rerr) == (3, 1)
    assert len(ep._reports) == 2


def test_report_cache_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(endpoint_mod, "_REPORT_CACHE_LIMIT", 4)
    ep, _ = make()
    for port in range(10):
        ep.datagram_received(report(9, port, 0), PEER)
        assert len(ep._reports) <= 4
    assert ep.shard.unknown_host_reports == 10


def test_bad_datagrams_are_counted_not_answered() -> None:
    ep, transport = make()
    for data in (
        b"",
        b"\x04\x00",
        struct.pack("<ii", 4, 5) + b"abc",
        struct.pack("<ii", 4, -8),
        struct.pack("<ii", 4, 0x7FFFFFFF),
    ):
        ep.datagram_received(data, PEER)
    ep.datagram_received(encode(int(MsgId.REPORT_REQUEST), b"\x0a\xff"), PEER)
    ep.datagram_received(encode(int(MsgId.GET_HOST_REQUEST), b"\x08"), PEER)
    ep.datagram_received(encode(77, b""), PEER)
    assert (ep.dropped, ep.bad_bodies, ep.unknown_msgids) == (5, 2, 1)
    assert not ep._reports and not transport.sent


def test_api_get_route_lists_hosts() -> None:
    ep, transport = make()
    req = lars_pb2.GetRouteRequest(modid=3, cmdid=0)
    ep.datagram_received(encode(int(MsgId.API_GET_ROUTE_REQUEST), req.SerializeToString()), PEER)
    msgid, body = decode_datagram(transport.sent[0][0])
    rsp = lars_pb2.GetRouteResponse.FromString(body)
    assert msgid == MsgId.API_GET_ROUTE_RESPONSE
    assert sorted((h.ip, h.port) for h in rsp.host) == [(-1, 80), (7, 81)]
