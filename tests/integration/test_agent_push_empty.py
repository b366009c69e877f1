"""Push-empty against the agent alone (a route service without any guard, like the
original's): the agent's mass-empty guard keeps serving the hosts it had (logged once,
counted), the cache file keeps them, an agent restarted while the route service still
answers empty serves the cached routes until the route service has hosts again for one
of them, and `[agent] mass_empty_delay` ends a hold by applying the empty answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from lars.agent.config import AgentConfig
from lars.agent.metrics import AgentCollector, agent_status
from lars.agent.service import AgentService
from lars.obs.status import render_status
from lars.protocol import RetCode, dotted_to_wire
from lars.reactor import backoff
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until

SUCC, NOEXIST = int(RetCode.SUCC), int(RetCode.NOEXIST)
H1, H2, H3 = (dotted_to_wire("10.0.0.1"), 9001), (dotted_to_wire("10.0.0.2"), 9002), (7, 7)
MODULES = {(1, 1): [H1, H2], (1, 2): [H2], (2, 2): [H1]}  # shards 2, 0 and 1


@pytest.fixture
def peers(no_leaks: None) -> Iterator[tuple[FakeRouteService, FakeReporter]]:
    dns, rep = FakeRouteService().start(), FakeReporter().start()
    yield dns, rep
    dns.stop()
    rep.stop()


def start_agent(
    dns: FakeRouteService, rep: FakeReporter, cache: Path, mass_empty_delay: float = 300.0
) -> AgentService:
    cfg = AgentConfig(
        mass_empty_delay=mass_empty_delay,
        base_port=0,
        dns_addresses=(dns.address,),
        reporter_addresses=(rep.address,),
        caller="10.1.2.3",
        cache_path=str(cache),
        cache_interval=0.1,
    )
    agent = AgentService(cfg, backoff_factory=lambda: backoff(0.01, 0.1))
    agent.start()
    return agent


def registry(agent: AgentService) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(AgentCollector(agent))
    return reg


def cached_hosts(cache: Path) -> dict[tuple[int, int], int]:
    doc = json.loads(cache.read_text())
    return {(r["modid"], r["cmdid"]): len(r["hosts"]) for r in doc["routes"]}


def all_succ(peer: UdpPeer) -> bool:
    return all(peer.get_host(*key).retcode == SUCC for key in MODULES)


def test_push_empty_is_held_then_restart_answers_succ_from_cache(
    peers: tuple[FakeRouteService, FakeReporter],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dns, rep = peers
    cache = tmp_path / "routes.json"
    for key, hosts in MODULES.items():
        dns.set_route(key, hosts)
    agent = start_agent(dns, rep, cache)
    try:
        with UdpPeer(agent.ports) as peer:
            for key in MODULES:
                peer.get_host(*key)
            wait_until(lambda: all_succ(peer))
            wait_until(
                lambda: cache.exists() and cached_hosts(cache) == {(1, 1): 2, (1, 2): 1, (2, 2): 1}
            )
            # DELETE FROM RouteData; UPDATE RouteVersion ...: every module pushed empty
            for key in MODULES:
                dns.set_route(key, [])
            wait_until(lambda: agent.stats().route_held_modules == len(MODULES))
            agent.sync()
            assert all_succ(peer)  # failed before issue 18: 3 of 3 modules NOEXIST
            assert agent.stats().route_mass_empty == 1
            doc = agent_status(agent)  # what `lars status` prints
            assert doc["route_service"]["held_modules"] == 3
            assert "MASS-EMPTY HOLD: 3 modules still served" in render_status(doc)
            writes = agent.stats().cache_writes
            wait_until(lambda: agent.stats().cache_writes > writes)  # written since
    finally:
        agent.stop()
    assert cached_hosts(cache) == {(1, 1): 2, (1, 2): 1, (2, 2): 1}
    mass = [r for r in caplog.records if "EMPTIED" in r.getMessage()]
    assert len(mass) == 1 and mass[0].levelno == logging.ERROR

    caplog.clear()
    agent = start_agent(dns, rep, cache)  # the route service still answers empty
    try:
        with UdpPeer(agent.ports) as peer:
            wait_until(lambda: agent.stats().route_held_modules == len(MODULES))
            assert all_succ(peer)
            assert peer.get_route(1, 1) == sorted([H1, H2])
            messages = [r.getMessage() for r in caplog.records]
            assert any("stale until the route service answers" in m for m in messages)
            assert any("still serving their last hosts" in m for m in messages)
            # the route service has a real table again (hosts for a held module): its
            # answers win, the other held modules are asked again and their empty applied
            dns.set_route((1, 2), [H3])
            wait_until(lambda: agent.stats().route_held_modules == 0)
            wait_until(lambda: peer.get_route(1, 2) == [H3])
            wait_until(lambda: peer.get_host(1, 1).retcode == NOEXIST)
            assert agent.stats().route_holds_released == 1
    finally:
        agent.stop()
    assert cached_hosts(cache)[(1, 2)] == 1 and cached_hosts(cache)[(1, 1)] == 2


def test_one_module_deleted_while_the_agent_was_down_is_not_held(
    peers: tuple[FakeRouteService, FakeReporter], tmp_path: Path
) -> None:
    dns, rep = peers
    cache = tmp_path / "routes.json"
    for key, hosts in MODULES.items():
        dns.set_route(key, hosts)
    agent = start_agent(dns, rep, cache)
    try:
        with UdpPeer(agent.ports) as peer:
            for key in MODULES:
                peer.get_host(*key)
            wait_until(lambda: all_succ(peer))
            wait_until(lambda: cache.exists() and len(cached_hosts(cache)) == 3)
    finally:
        agent.stop()
    dns.set_route((1, 1), [])  # a normal edit while the agent was down
    agent = start_agent(dns, rep, cache)
    try:
        with UdpPeer(agent.ports) as peer:
            wait_until(lambda: peer.get_host(1, 1).retcode == NOEXIST)
            assert peer.get_host(1, 2).retcode == SUCC
            assert agent.stats().route_held_modules == 0
    finally:
        agent.stop()


def test_mass_empty_delay_ends_a_hold_by_applying_the_empty_answers(
    peers: tuple[FakeRouteService, FakeReporter], tmp_path: Path
) -> None:
    dns, rep = peers
    for key, hosts in MODULES.items():
        dns.set_route(key, hosts)
    agent = start_agent(dns, rep, tmp_path / "routes.json", mass_empty_delay=1.0)
    try:
        with UdpPeer(agent.ports) as peer:
            for key in MODULES:
                peer.get_host(*key)
            wait_until(lambda: all_succ(peer))
            dns.set_route((1, 1), [])  # one module emptied: an edit, applied
            wait_until(lambda: peer.get_host(1, 1).retcode == NOEXIST)
            assert agent.stats().route_mass_empty == 0
            dns.set_route((1, 1), [H1])
            wait_until(lambda: all_succ(peer))
            for key in MODULES:
                dns.set_route(key, [])
            wait_until(lambda: agent.stats().route_mass_empty == 1)
            wait_until(lambda: all(peer.get_host(*k).retcode == NOEXIST for k in MODULES))
            stats = agent.stats()
            assert stats.route_holds_expired == 1 and stats.route_held_modules == 0
            text = generate_latest(registry(agent)).decode()
            assert "lars_agent_route_mass_empty_total 1.0" in text
            assert 'lars_agent_route_mass_empty_ends_total{how="delay"} 1.0' in text
            assert 'lars_agent_route_mass_empty_ends_total{how="hosts"} 0.0' in text
            assert "lars_agent_route_held_modules 0.0" in text
    finally:
        agent.stop()
