"""Weights from the route service reach the agent's answers (loopback, fake route service)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from lars.agent.service import AgentService
from lars.protocol import RetCode, dotted_to_wire
from lars.protocol.weight import MAX_WEIGHT
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
