"""Never backwards (issue 22) with a real agent and two route-service doubles: after a
failover from a fresher route service to a staler one (replicas lagging by different
amounts) the agent keeps the newer table of a module; it takes the staler service's
newer push at once (the replica caught up), an older table only once that service has
kept it (a rollback of the database; the 30 s wait is shortened here), and an answer
without a version (an original lars_dns) as today."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lars.agent.config import AgentConfig
from lars.agent.service import AgentService
from lars.protocol import dotted_to_wire
from lars.reactor import backoff
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until

H1, H2, H3 = (dotted_to_wire("10.0.0.1"), 9001), (dotted_to_wire("10.0.0.2"), 9002), (7, 7)
M = (1, 1)


@pytest.fixture
def setup(
    no_leaks: None,
) -> Iterator[tuple[FakeRouteService, FakeRouteService, AgentService, UdpPeer]]:
    fresh = FakeRouteService().start()
    stale = FakeRouteService(port=free_port())  # started at the failover
    rep = FakeReporter().start()
    fresh.version, stale.version = 1_800_000_200, 1_800_000_100
    fresh.set_route(M, [H1, H2])
    stale.routes[M] = [H1]  # the replica behind: the edit that added H2 not there yet
    cfg = AgentConfig(
        base_port=0,
        dns_addresses=(fresh.address, stale.address),
        reporter_addresses=(rep.address,),
        caller="10.1.2.3",
    )
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.1))
    agent.start()
    peer = UdpPeer(agent.ports)
    try:
        yield fresh, stale, agent, peer
    finally:
        peer.close()
        agent.stop()
        for svc in (fresh, stale):
            svc.stop()
        rep.stop()


def serves(peer: UdpPeer, *hosts: tuple[int, int]) -> bool:
    return sorted(peer.get_route(*M)) == sorted(hosts)


def test_failover_to_a_staler_route_service_never_goes_backwards(
    setup: tuple[FakeRouteService, FakeRouteService, AgentService, UdpPeer],
) -> None:
    fresh, stale, agent, peer = setup
    gate = agent.route_client.freshness
    wait_until(lambda: serves(peer, H1, H2), 30)
    assert gate.version(M) == fresh.version
    # fail over: the fresher route service dies, the staler one answers version - 100
    stale.start()
    fresh.stop()
    wait_until(lambda: M in stale.requests, 30)
    wait_until(lambda: gate.refused >= 1, 30)
    for _ in range(20):  # the older table is never applied meanwhile
        assert serves(peer, H1, H2)
        time.sleep(0.02)
    # the replica catches up: the staler service's push of a newer table is taken at once
    stale.version = 1_800_000_300
    stale.set_route(M, [H1, H2, H3])
    wait_until(lambda: serves(peer, H1, H2, H3), 30)
    assert gate.waiting == 0 and gate.rollbacks == 0
    # the database rolled back: an older table, kept by the connected service for `keep`
    # seconds (30 in production), is then applied
    gate.keep = 1.0
    stale.version = 1_800_000_250
    stale.set_route(M, [H3])
    wait_until(lambda: gate.refused >= 2, 30)
    assert serves(peer, H1, H2, H3)
    wait_until(lambda: serves(peer, H3), 30)
    assert gate.rollbacks == 1 and gate.version(M) == 1_800_000_250
    # an original lars_dns (no version) is applied as today
    stale.version = 0
    stale.set_route(M, [H2])
    wait_until(lambda: serves(peer, H2), 30)
    assert gate.version(M) is None
    stats = agent.stats()
    assert stats.route_older_answers == gate.refused >= 2 and stats.route_rollbacks == 1


def test_a_restarted_agent_does_not_go_back_to_a_staler_replicas_table(
    no_leaks: None, tmp_path: Path
) -> None:
    """The version each module's hosts came with is kept in the route cache; an agent that
    restarts and reaches only a staler replica's route service keeps the newer cached
    hosts, as a running agent would after a failover."""
    cache = str(tmp_path / "routes.json")
    fresh, rep = FakeRouteService().start(), FakeReporter().start()
    stale = FakeRouteService(port=free_port())
    fresh.version, stale.version = 1_800_000_200, 1_800_000_100
    fresh.set_route(M, [H1, H2])
    stale.routes[M] = [H1]

    def agent_for(addr: tuple[str, int]) -> AgentService:
        cfg = AgentConfig(
            base_port=0,
            dns_addresses=(addr,),
            reporter_addresses=(rep.address,),
            caller="10.1.2.3",
            cache_path=cache,
            cache_interval=0.05,
        )
        return AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.1))

    try:
        first = agent_for(fresh.address)
        first.start()
        peer = UdpPeer(first.ports)
        try:
            wait_until(lambda: serves(peer, H1, H2), 30)

            def saved() -> object:
                try:
                    doc = json.loads(Path(cache).read_text())
                except (FileNotFoundError, ValueError):
                    return None
                return [r.get("version") for r in doc["routes"] if (r["modid"], r["cmdid"]) == M]

            wait_until(lambda: saved() == [fresh.version], 30)
        finally:
            peer.close()
            first.stop()
        fresh.stop()
        stale.start()
        second = agent_for(stale.address)
        second.start()
        peer = UdpPeer(second.ports)
        try:
            gate = second.route_client.freshness
            assert gate.version(M) == 1_800_000_200  # seeded from the cache at start
            wait_until(lambda: M in stale.requests, 30)
            wait_until(lambda: gate.refused >= 1, 30)
            for _ in range(20):  # the staler table is not applied
                assert serves(peer, H1, H2)
                time.sleep(0.02)
            stale.version = 1_800_000_300  # the replica caught up
            stale.set_route(M, [H1, H2, H3])
            wait_until(lambda: serves(peer, H1, H2, H3), 30)
        finally:
            peer.close()
            second.stop()
    finally:
        for svc in (fresh, stale):
            svc.stop()
        rep.stop()
