"""A route service that goes silent (a partition: nothing closes) is noticed by the
agent's heartbeat and left for the other one; without the heartbeat it never was."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lars.agent.config import AgentConfig
from lars.agent.liveness import HEARTBEAT_KEY
from lars.agent.service import AgentService
from lars.protocol import RetCode, dotted_to_wire
from lars.reactor import backoff
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.proxy import CuttableProxy

KEY = (1, 2)
HOST = (dotted_to_wire("10.0.0.1"), 9001)


def fast_backoff() -> Iterator[float]:
    return backoff(0.01, 0.05)


@pytest.fixture
def two_route_services() -> Iterator[list[tuple[FakeRouteService, CuttableProxy]]]:
    pairs = []
    for _ in range(2):
        dns = FakeRouteService().start()
        dns.set_route(KEY, [HOST])
        proxy = CuttableProxy(dns.address).__enter__()
        pairs.append((dns, proxy))
    yield pairs
    for dns, proxy in pairs:
        proxy.__exit__(None, None, None)
        dns.stop()


def start_agent(pairs: list[tuple[FakeRouteService, CuttableProxy]], reporter: FakeReporter,
                heartbeat: float) -> AgentService:  # fmt: skip
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=tuple(p.address for _, p in pairs),
        reporter_addresses=(reporter.address,),
        caller="10.1.2.3",
        route_heartbeat=heartbeat,
        route_dead_after=max(0.75, heartbeat * 3),
    )
    agent = AgentService(cfg, backoff_factory=fast_backoff)
    agent.start()
    return agent


@pytest.mark.parametrize("heartbeat", [0.25, 0.0])
def test_silent_route_service_is_left_for_the_other(
    no_leaks: None, two_route_services: list[tuple[FakeRouteService, CuttableProxy]],
    heartbeat: float,
) -> None:  # fmt: skip
    reporter = FakeReporter().start()
    agent = start_agent(two_route_services, reporter, heartbeat)
    try:
        with UdpPeer(agent.ports) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: peer.get_host(*KEY).retcode == int(RetCode.SUCC), 10)
            client = agent.route_client.client
            used = wait_until(lambda: client.current_address, 10)
            proxy = next(p for _, p in two_route_services if p.address == used)
            proxy.freeze()
            frozen_at = time.monotonic()
            if heartbeat:
                wait_until(lambda: client.current_address not in (None, used), 5)
                moved = time.monotonic() - frozen_at
                # not before dead_after (0.75 s); the 2 s target is measured in
                # tests/multihost (here the bound only says "noticed at all")
                assert 0.7 <= moved <= 5.0, moved
                assert agent.stats().route_silent_drops == 1
                other = next(d for d, p in two_route_services if p.address != used)
                # the agent asks the other one again (its asks arrive a moment later)
                wait_until(lambda: HEARTBEAT_KEY in other.requests or KEY in other.requests, 5)
            else:
                time.sleep(2.0)  # the defect: a silent peer is never noticed
                assert client.current_address == used
                assert agent.stats().route_silent_drops == 0
            # serving from the known routes all along
            assert peer.get_host(*KEY).retcode == int(RetCode.SUCC)
            proxy.thaw()
    finally:
        agent.stop()
        reporter.stop()


def test_probe_answers_are_not_delivered_as_a_module(
    no_leaks: None, two_route_services: list[tuple[FakeRouteService, CuttableProxy]],
) -> None:  # fmt: skip
    reporter = FakeReporter().start()
    agent = start_agent(two_route_services, reporter, 0.05)
    try:
        with UdpPeer(agent.ports) as peer:
            peer.sock.settimeout(0.5)
            wait_until(lambda: peer.get_host(*KEY).retcode == int(RetCode.SUCC), 10)
            probes = agent.route_client.heartbeat
            assert probes is not None
            wait_until(lambda: probes.probes >= 5, 5)
            assert agent.stats().route_silent_drops == 0
            modules = sum(s.modules for s in agent.stats().shards)
            assert modules == 1  # (0, 0) never became a module of a shard
    finally:
        agent.stop()
        reporter.stop()
