"""Weights from the route service reach the agent's answers (loopback, fake route service)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.agent.service import AgentService
from lars.protocol import RetCode, dotted_to_wire
from lars.protocol.weight import MAX_WEIGHT
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.integration.test_agent_service import make_agent, settle

H1, H2, H3 = (dotted_to_wire("10.0.0.1"), 9001), (dotted_to_wire("192.168.1.177"), 9002), (5, 5)
KEY = (4, 2)  # shard 0


@pytest.fixture
def setup(no_leaks: None) -> Iterator[tuple[FakeRouteService, AgentService, UdpPeer]]:
    dns = FakeRouteService().start()
    reporter = FakeReporter().start()
    agent = make_agent(dns.address, reporter.address)
    try:
        settle(agent)
        with UdpPeer(agent.ports) as peer:
            yield dns, agent, peer
    finally:
        agent.stop()
        reporter.stop()
        dns.stop()


def answers(peer: UdpPeer, n: int) -> Counter[tuple[int, int]]:
    out: Counter[tuple[int, int]] = Counter()
    for _ in range(n):
        rsp = peer.get_host(*KEY)
        assert rsp.retcode == RetCode.SUCC
        out[(rsp.host.ip, rsp.host.port)] += 1
    return out


def test_pushed_weights_set_the_shares_and_a_weight_change_keeps_serving(
    setup: tuple[FakeRouteService, AgentService, UdpPeer],
) -> None:
    dns, agent, peer = setup
    dns.set_route(KEY, [H1, H2, H3], weights={H2: 3, H3: MAX_WEIGHT + 5})
    assert peer.get_host(*KEY).retcode == RetCode.NOEXIST  # first ask
    wait_until(lambda: peer.get_route(*KEY) == sorted([H1, H2, H3]))
    mod = agent.shards[0].modules[KEY]
    agent.sync()
    assert mod.weights() == {H2: 3, H3: MAX_WEIGHT}  # past the cap: capped, not refused
    dns.set_route(KEY, [H1, H2, H3], weights={H2: 3, H3: 4})  # a push changing one weight
    wait_until(lambda: mod.weights() == {H2: 3, H3: 4})
    assert answers(peer, 80) == {H1: 10, H2: 30, H3: 40}  # 8 rounds of 1 + 3 + 4
    dns.set_route(KEY, [H1, H2, H3])  # back to the defaults: plain rotation
    wait_until(lambda: mod.weights() == {})
    assert answers(peer, 9) == {H1: 3, H2: 3, H3: 3}


def test_weights_survive_a_restart_from_the_route_cache(no_leaks: None, tmp_path: Path) -> None:
    """A restarted agent that cannot reach the route service serves its cached routes
    with their weights, not at weight 1."""
    cache = tmp_path / "routes.json"
    dns = FakeRouteService().start()
    reporter = FakeReporter().start()
    try:
        agent = make_agent(dns.address, reporter.address, cache_path=str(cache))
        try:
            settle(agent)
            with UdpPeer(agent.ports) as peer:
                dns.set_route(KEY, [H1, H2], weights={H2: 3})
                peer.get_host(*KEY)
                wait_until(lambda: peer.get_route(*KEY) == sorted([H1, H2]))
                wait_until(lambda: cache.exists() and '"weights"' in cache.read_text())
        finally:
            agent.stop()
        doc = json.loads(cache.read_text())
        assert doc["routes"][0]["weights"] == [["192.168.1.177", 9002, 3]]
        nowhere = ("127.0.0.1", free_port())
        agent = make_agent(nowhere, reporter.address, cache_path=str(cache))
        try:
            with UdpPeer(agent.ports) as peer:
                assert answers(peer, 8) == {H1: 2, H2: 6}
                assert not agent.stats().route_connected
        finally:
            agent.stop()
    finally:
        reporter.stop()
        dns.stop()
