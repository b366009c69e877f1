"""Review findings: agent behaviour checked against the letter of the spec."""

from __future__ import annotations

from typing import Any

from lars.agent.balancer import ModuleBalancer
from lars.agent.config import BalancerConfig
from lars.agent.endpoint import ShardEndpoint
from lars.agent.shard import Shard
from lars.protocol import MsgId, RetCode, lars_pb2
from lars.reactor import decode_datagram, encode

PEER = ("127.0.0.1", 4242)
MAX_UDP_PAYLOAD = 65507  # IPv4: 65535 - 20 (IP header) - 8 (UDP header)


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass


def test_routes_are_refreshed_only_when_older_than_update_timeout() -> None:
    """Spec section 8: ask again when the routes are *older than* update_timeout."""
    mod = ModuleBalancer(1, 2, BalancerConfig(update_timeout=15))
    mod.asked(0.0)
    mod.update_routes([(1, 1)], 10.0)
    assert not mod.needs_route(25.0)
    assert mod.needs_route(25.5)

    asks: list[tuple[int, int]] = []
    shard = Shard(0, BalancerConfig(update_timeout=15), ask=lambda m, c: asks.append((m, c)),
                  max_modules=10)  # fmt: skip
    shard.get_host(0, 0, 0.0)
    shard.on_route(0, 0, [(1, 1)], 10.0)
    assert shard.get_host(0, 0, 25.0)[0] == int(RetCode.SUCC)
    assert asks == [(0, 0)]
    shard.get_host(0, 0, 25.5)
    assert asks == [(0, 0), (0, 0)]


def _route_reply(hosts: list[tuple[int, int]]) -> tuple[bytes, Transport]:
    shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=10)
    ep = ShardEndpoint(shard, caller=1, clock=lambda: 0.0, wall=lambda: 0.0)
    transport = Transport()
    ep.transport = transport  # type: ignore[assignment]
    shard.get_route(3, 0, 0.0)
    shard.on_route(3, 0, hosts, 0.0)
    req = lars_pb2.GetRouteRequest(modid=3, cmdid=0)
    ep.datagram_received(encode(int(MsgId.API_GET_ROUTE_REQUEST), req.SerializeToString()), PEER)
    assert len(transport.sent) == 1
    return transport.sent[0][0], transport


def test_api_get_route_reply_always_fits_one_udp_datagram() -> None:
    """A body of 65500..65527 bytes is a valid frame but no IPv4 datagram carries it:
    the answer must still be sendable (here: the empty list), not silently lost."""
    hosts = [(-1 - i, 1 + i % 127) for i in range(4367)]  # 15 bytes each on the wire
    body = lars_pb2.GetRouteResponse(
        modid=3, cmdid=0, host=[lars_pb2.HostInfo(ip=ip, port=port) for ip, port in hosts]
    ).SerializeToString()
    assert MAX_UDP_PAYLOAD - 8 < len(body) <= 65527
    data, _ = _route_reply(hosts)
    assert len(data) <= MAX_UDP_PAYLOAD
    msgid, reply = decode_datagram(data)
    assert msgid == MsgId.API_GET_ROUTE_RESPONSE
    rsp = lars_pb2.GetRouteResponse.FromString(reply)
    assert (rsp.modid, rsp.cmdid) == (3, 0)


def test_api_get_route_reply_just_below_the_datagram_limit_lists_every_host() -> None:
    hosts = [(-1 - i, 1 + i % 127) for i in range(4366)]
    data, _ = _route_reply(hosts)
    assert len(data) <= MAX_UDP_PAYLOAD
    rsp = lars_pb2.GetRouteResponse.FromString(decode_datagram(data)[1])
    assert len(rsp.host) == len(hosts)
