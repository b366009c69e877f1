"""AgentService over loopback against a scripted route service and reporter."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.agent.config import AgentConfig, BalancerConfig, ShardMode
from lars.agent.service import AgentService, primary_ipv4
from lars.errors import NetworkError
from lars.protocol import MsgId, RetCode, dotted_to_wire, lars_pb2
from lars.reactor import backoff, encode
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.proxy import CuttableProxy

SUCC, OVERLOAD, NOEXIST = int(RetCode.SUCC), int(RetCode.OVERLOAD), int(RetCode.NOEXIST)
H1, H2, H3 = (dotted_to_wire("10.0.0.1"), 9001), (dotted_to_wire("192.168.1.177"), 9002), (5, 5)


def fast_backoff() -> Iterator[float]:
    return backoff(0.01, 0.2)


def make_agent(dns: tuple[str, int], reporter: tuple[str, int], **kw: object) -> AgentService:
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=(dns,),
        reporter_addresses=(reporter,),
        caller="10.1.2.3",
        report_interval=0.1,
        **kw,  # type: ignore[arg-type]
    )
    agent = AgentService(cfg, backoff_factory=fast_backoff)
    agent.start()
    return agent


def settle(agent: AgentService) -> None:
    """Wait for the route service connection and its resubscription to reach the shards."""
    wait_until(lambda: agent.stats().route_connected)
    agent.sync()


@pytest.fixture
def dns(no_leaks: None) -> Iterator[FakeRouteService]:
    svc = FakeRouteService().start()
    yield svc
    svc.stop()


@pytest.fixture
def reporter(no_leaks: None) -> Iterator[FakeReporter]:
    svc = FakeReporter().start()
    yield svc
    svc.stop()


@pytest.fixture(
    params=[
        (ShardMode.ONE_LOOP, True),
        (ShardMode.THREADS, True),
        (ShardMode.ONE_LOOP, False),
    ],
    ids=["one-loop", "threads", "one-loop-asyncio"],
)
def agent(
    request: pytest.FixtureRequest, no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> Iterator[AgentService]:
    mode, use_uvloop = request.param
    svc = make_agent(dns.address, reporter.address, mode=mode, use_uvloop=use_uvloop)
    settle(svc)
    yield svc
    svc.stop()


@pytest.fixture
def peer(agent: AgentService) -> Iterator[UdpPeer]:
    with UdpPeer(agent.ports) as p:
        yield p


def until_succ(peer: UdpPeer, modid: int, cmdid: int) -> lars_pb2.GetHostResponse:
    return wait_until(lambda: (r := peer.get_host(modid, cmdid)).retcode == SUCC and r)


def test_noexist_first_then_succ(dns: FakeRouteService, agent: AgentService, peer: UdpPeer) -> None:
    dns.set_route((1, 2), [H1])
    first = peer.get_host(1, 2)
    assert first.retcode == NOEXIST and not first.HasField("host")
    rsp = until_succ(peer, 1, 2)
    assert (rsp.host.ip, rsp.host.port) == H1
    assert dns.requests.count((1, 2)) == 1
    assert peer.get_route(1, 2) == [H1]


def test_each_port_serves_only_its_shard(
    dns: FakeRouteService, agent: AgentService, peer: UdpPeer
) -> None:
    assert len(set(agent.ports)) == 3
    for key in [(3, 0), (1, 0), (1, 1)]:
        dns.set_route(key, [H1])
        until_succ(peer, *key)
        right = peer.port_for(*key)
        for port in agent.ports:
            if port != right:
                assert peer.get_host(*key, port=port).retcode == NOEXIST
    assert [s.modules for s in agent.stats().shards] == [1, 1, 1]
    assert sum(s.misrouted for s in agent.stats().shards) == 6


def test_pushed_route_changes_answers(
    dns: FakeRouteService, agent: AgentService, peer: UdpPeer
) -> None:
    dns.set_route((4, 2), [H1])
    peer.get_host(4, 2)
    until_succ(peer, 4, 2)
    wait_until(lambda: dns.subscribers((4, 2)) == 1)
    dns.set_route((4, 2), [H2, H3])
    wait_until(lambda: (peer.get_host(4, 2).host.ip, peer.get_host(4, 2).host.port) != H1)
    answers = {(r.host.ip, r.host.port) for r in (peer.get_host(4, 2) for _ in range(6))}
    assert answers == {H2, H3}
    dns.set_route((4, 2), [])  # module emptied: known-empty, NOEXIST
    wait_until(lambda: peer.get_host(4, 2).retcode == NOEXIST)
    dns.set_route((4, 2), [H3])  # still subscribed: hosts come back at once
    assert (until_succ(peer, 4, 2).host.ip, until_succ(peer, 4, 2).host.port) == H3
    assert dns.requests.count((4, 2)) == 1


def test_unknown_module_asked_once_and_stays_known_empty(
    dns: FakeRouteService, agent: AgentService, peer: UdpPeer
) -> None:
    for _ in range(20):
        assert peer.get_host(7, 7).retcode == NOEXIST
    wait_until(lambda: agent.stats().route_responses >= 1)
    assert dns.requests.count((7, 7)) == 1


def test_overload_probe_and_recovery(
    dns: FakeRouteService, agent: AgentService, peer: UdpPeer
) -> None:
    """A host failing 80% of calls goes to overload, is probed every probe_num requests
    (default 10) and comes back to idle once it succeeds again."""
    dns.set_route((0, 0), [H1, H2])
    peer.get_host(0, 0)
    until_succ(peer, 0, 0)
    overloaded = False
    for i in range(400):
        rsp = peer.get_host(0, 0)
        host = (rsp.host.ip, rsp.host.port)
        failing = host == H1 and i % 5 != 0
        peer.report(0, 0, *host, 1 if failing else 0)
        shard = agent.shards[0]
        if shard.modules[(0, 0)].hosts[H1].overloaded:  # read-only peek at the counters
            overloaded = True
            break
    assert overloaded
    seq = [(r.host.ip, r.host.port) for r in (peer.get_host(0, 0) for _ in range(33))]
    probes = [i for i, h in enumerate(seq) if h == H1]
    assert len(probes) == 3 and probes[1] - probes[0] == 11 and probes[2] - probes[1] == 11
    for _ in range(200):  # H1 fixed: every call succeeds
        rsp = peer.get_host(0, 0)
        peer.report(0, 0, rsp.host.ip, rsp.host.port, 0)
        if not agent.shards[0].modules[(0, 0)].hosts[H1].overloaded:
            break
    assert not agent.shards[0].modules[(0, 0)].hosts[H1].overloaded
    seq = [(r.host.ip, r.host.port) for r in (peer.get_host(0, 0) for _ in range(4))]
    assert set(seq) == {H1, H2}


def test_reports_aggregated_to_reporter(
    dns: FakeRouteService, reporter: FakeReporter, agent: AgentService, peer: UdpPeer
) -> None:
    dns.set_route((2, 2), [H2])
    peer.get_host(2, 2)
    until_succ(peer, 2, 2)
    for code in (0, 0, 0, 2):
        peer.report(2, 2, *H2, code)
    msg = wait_until(lambda: reporter.latest((2, 2)))
    assert msg.caller == dotted_to_wire("10.1.2.3") and msg.ts > 1_600_000_000
    assert [(r.ip, r.port, r.succ, r.err, r.overload) for r in msg.results] == [(*H2, 3, 1, False)]


def test_hostile_datagrams_dropped_and_counted(
    dns: FakeRouteService, agent: AgentService, peer: UdpPeer
) -> None:
    port = agent.ports[0]
    hostile = [
        b"",
        b"\x04\x00\x00",  # shorter than a header
        struct.pack("<ii", 4, -1),  # negative length
        struct.pack("<ii", 4, 70000),  # length over the limit
        struct.pack("<ii", 4, 10) + b"abc",  # truncated body
        struct.pack("<ii", 4, 1) + b"ab",  # trailing bytes
        encode(4, b"\xff\xff\xff"),  # not a protobuf
        encode(99, b""),  # unknown msgid
        encode(int(MsgId.GET_HOST_RESPONSE), b""),  # a reply sent to the agent
        encode(6, b"\x0a\x80"),  # truncated varint in a report
        b"\x00" * 65000,
    ]
    for data in hostile:
        peer.send_raw(data, port)
    dns.set_route((0, 3), [H1])
    peer.get_host(0, 3)
    assert until_succ(peer, 0, 3).host.port == H1[1]
    stats = wait_until(lambda: (s := agent.stats()).dropped_datagrams >= 7 and s)
    assert stats.bad_bodies >= 2 and stats.unknown_msgids == 2
    # an empty GetHostRequest body is valid: module (0, 0), answered NOEXIST
    peer.send_raw(encode(int(MsgId.GET_HOST_REQUEST), b""), port)
    msgid, body = peer.recv()
    assert msgid == MsgId.GET_HOST_RESPONSE
    assert lars_pb2.GetHostResponse.FromString(body).retcode == NOEXIST


def test_unknown_module_flood_is_capped(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    agent = make_agent(dns.address, reporter.address, max_modules=5)
    try:
        with UdpPeer(agent.ports) as peer:
            for modid in range(0, 60, 3):
                assert peer.get_host(modid, 0).retcode == NOEXIST
            stats = agent.stats().shards[0]
            assert stats.modules == 5 and stats.refused_modules == 15
    finally:
        agent.stop()


def test_route_service_down_then_back(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    with CuttableProxy(dns.address) as proxy:
        agent = make_agent(proxy.address, reporter.address)
        try:
            with UdpPeer(agent.ports) as peer:
                dns.set_route((1, 1), [H1])
                peer.get_host(1, 1)
                until_succ(peer, 1, 1)
                proxy.cut()
                wait_until(lambda: not agent.stats().route_connected)
                # still answers from the routes it has; a new module waits
                assert peer.get_host(1, 1).retcode == SUCC
                dns.set_route((2, 0), [H2], push=False)
                assert peer.get_host(2, 0).retcode == NOEXIST
                dns.set_route((1, 1), [H3], push=False)
                proxy.restore()
                # on reconnection every module is asked again: the change and the new module
                wait_until(lambda: peer.get_host(1, 1).host.port == H3[1])
                assert until_succ(peer, 2, 0).host.port == H2[1]
                # and subscriptions resumed: pushes arrive again
                wait_until(lambda: dns.subscribers((1, 1)) >= 1)
                dns.set_route((1, 1), [H2])
                wait_until(lambda: peer.get_host(1, 1).host.port == H2[1])
        finally:
            agent.stop()


def test_route_service_failover_to_another_address(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    dead = ("127.0.0.1", free_port())
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=(dead, dns.address),
        reporter_addresses=(reporter.address,),
        caller="127.0.0.1",
    )
    agent = AgentService(cfg, backoff_factory=fast_backoff)
    agent.start()
    try:
        with UdpPeer(agent.ports) as peer:
            dns.set_route((5, 1), [H1])
            peer.get_host(5, 1)
            assert until_succ(peer, 5, 1).host.port == H1[1]
    finally:
        agent.stop()


def test_restart_from_cache_without_route_service(
    no_leaks: None, tmp_path: Path, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    cache = tmp_path / "routes.json"
    agent = make_agent(dns.address, reporter.address, cache_path=str(cache))
    try:
        with UdpPeer(agent.ports) as peer:
            dns.set_route((1, 2), [H1, H2])
            dns.set_route((3, 3), [])
            peer.get_host(1, 2)
            peer.get_host(3, 3)
            until_succ(peer, 1, 2)
            wait_until(cache.exists)
    finally:
        agent.stop()
    nowhere = ("127.0.0.1", free_port())
    agent = make_agent(nowhere, reporter.address, cache_path=str(cache))
    try:
        with UdpPeer(agent.ports) as peer:
            first = peer.get_host(1, 2)
            assert first.retcode == SUCC and (first.host.ip, first.host.port) in {H1, H2}
            assert peer.get_host(3, 3).retcode == NOEXIST
            assert peer.get_route(1, 2) == sorted([H1, H2])
            assert not agent.stats().route_connected
    finally:
        agent.stop()


def test_reporter_down_then_back_gets_latest(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    agent = make_agent(dns.address, reporter.address)
    port = reporter.address[1]
    try:
        with UdpPeer(agent.ports) as peer:
            dns.set_route((2, 1), [H1])
            peer.get_host(2, 1)
            until_succ(peer, 2, 1)
            wait_until(lambda: agent.stats().reporter_connected)
            reporter.stop()
            wait_until(lambda: not agent.stats().reporter_connected)
            for _ in range(3):
                for _ in range(5):
                    peer.report(2, 1, *H1, 0)
                n = agent.report_client.kept
                wait_until(lambda n=n: agent.report_client.kept > n)  # type: ignore[misc]
            assert agent.stats().reports_pending == 1  # only the latest per module
            back = FakeReporter(port).start()
            try:
                msg = wait_until(lambda: back.latest((2, 1)))
                assert [(r.succ, r.err) for r in msg.results] == [(15, 0)]
                assert len(back.reports) == 1
                assert agent.stats().reports_pending == 0
            finally:
                back.stop()
    finally:
        agent.stop()


def test_primary_ipv4_is_an_address() -> None:
    addr = primary_ipv4()
    assert dotted_to_wire(addr) is not None


def test_balancer_config_reaches_the_shards(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    agent = make_agent(dns.address, reporter.address, balancer=BalancerConfig(probe_num=2))
    try:
        assert all(s.config.probe_num == 2 for s in agent.shards)
    finally:
        agent.stop()


def test_counters_logged_when_they_change(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="lars.agent.service")
    agent = make_agent(dns.address, reporter.address, stats_interval=0.05)
    try:
        with UdpPeer(agent.ports) as peer:
            peer.get_host(0, 0)
            wait_until(lambda: "get_host 1," in caplog.text)
    finally:
        agent.stop()
    assert "route service up" in caplog.text


def test_port_in_use_fails_cleanly(
    no_leaks: None, dns: FakeRouteService, reporter: FakeReporter
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        base = busy.getsockname()[1]
        cfg = AgentConfig(
            base_port=base,
            dns_addresses=(dns.address,),
            reporter_addresses=(reporter.address,),
            caller="127.0.0.1",
        )
        agent = AgentService(cfg, backoff_factory=fast_backoff)
        with pytest.raises(NetworkError, match=f"cannot listen on 127.0.0.1:{base} \\(UDP\\)"):
            agent.start()
        agent.stop()  # harmless after a failed start
