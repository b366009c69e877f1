"""reload(new_config) of the running services applies what is safe, on the owners'
threads, and names every other change as needing a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lars.agent.config import BalancerConfig
from lars.dns.service import DnsConfig, DnsService
from lars.reactor import ReactorConfig
from lars.reload import Change
from lars.reporter.service import ReporterConfig, ReporterService
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until
from tests.integration.test_agent_service import make_agent, settle


def test_dns_service_reload(tmp_path: Path, no_leaks: None) -> None:
    config = DnsConfig(
        db_url=f"sqlite:///{tmp_path / 'd.db'}", reactor=ReactorConfig(ip="127.0.0.1", port=0)
    )
    service = DnsService(config)
    service.start()
    try:
        new = replace(
            config,
            poll_interval=0.05,
            max_drop_ratio=0.2,
            reactor=ReactorConfig(ip="127.0.0.1", port=1234),
        )
        result = service.reload(new)
        assert result.applied == (
            Change("poll_interval", 0.1, 0.05),
            Change("max_drop_ratio", 0.5, 0.2),
        )
        assert result.restart == (Change("reactor.port", 0, 1234),)
        assert service.config.poll_interval == 0.05 and service.config.reactor.port == 0
        assert service._poller._policy.max_drop_ratio == 0.2
        assert service.reload(new).applied == ()  # applied once
        polls = service.stats().poller.polls
        wait_until(lambda: service.stats().poller.polls > polls + 3)  # still polling
    finally:
        service.stop()


def test_agent_service_reload_applies_loadbalance_on_every_shard(no_leaks: None) -> None:
    dns, reporter = FakeRouteService().start(), FakeReporter().start()
    dns.routes[(1, 1)] = [(167772161, 80)]
    agent = make_agent(dns.address, reporter.address)
    try:
        settle(agent)
        with UdpPeer(agent.ports) as peer:
            peer.get_host(1, 1)
            wait_until(lambda: peer.get_host(1, 1).host.port == 80)
        new = replace(agent.config, balancer=BalancerConfig(probe_num=2), max_modules=7)
        result = agent.reload(new)
        assert result.applied == (Change("balancer.probe_num", 10, 2),)
        assert result.restart == (Change("max_modules", 20000, 7),)
        agent.sync()
        for shard in agent.shards:
            assert shard.config.probe_num == 2
            assert all(mod.config.probe_num == 2 for mod in shard.modules.values())
        assert agent.shards[2].modules  # (1, 1) lives in shard 2, with the new config
    finally:
        agent.stop()
        dns.stop()
        reporter.stop()


def test_reporter_service_reload(tmp_path: Path, no_leaks: None) -> None:
    config = ReporterConfig(
        db_url=f"sqlite:///{tmp_path / 'r.db'}",
        reactor=ReactorConfig(ip="127.0.0.1", port=0),
        stats_interval=10.0,
    )
    service = ReporterService(config)
    service.start()
    try:
        result = service.reload(replace(config, stats_interval=0.5, writers=5))
        assert result.applied == (Change("stats_interval", 10.0, 0.5),)
        assert result.restart == (Change("writers", 3, 5),)
        assert service.config.stats_interval == 0.5
    finally:
        service.stop()
