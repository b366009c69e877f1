"""Both clients against a real AgentService (and route service) on loopback, SQLite store."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from lars.agent.config import AgentConfig
from lars.agent.service import AgentService
from lars.client import AsyncLarsClient, HostResult, LarsClient, RetCode
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.reactor import ReactorConfig, new_event_loop
from lars.routes.admin import RouteAdmin

HOSTS_11 = {("10.0.0.1", 9001), ("10.0.0.2", 9002), ("192.168.1.177", 9003)}


@dataclass
class Platform:
    admin: RouteAdmin
    agent: AgentService

    @property
    def ports(self) -> tuple[int, int, int]:
        a, b, c = self.agent.ports
        return (a, b, c)


@pytest.fixture
def platform(sqlite_url: str, no_leaks: None) -> Iterator[Platform]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for ip, port in sorted(HOSTS_11):
        admin.add_host(1, 1, ip, port)
    admin.add_host(2, 1, "10.0.0.9", 80)
    dns = DnsService(
        DnsConfig(db_url=sqlite_url, reactor=ReactorConfig(ip="127.0.0.1"), poll_interval=0.1),
        engine=engine,
    )
    dns.start()
    with socket.socket() as s:  # a reporter that is not there: the agent keeps retrying
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    agent = AgentService(
        AgentConfig(
            base_port=0,
            dns_addresses=(("127.0.0.1", dns.port),),
            reporter_addresses=(("127.0.0.1", nobody),),
            caller="127.0.0.1",
        )
    )
    agent.start()
    try:
        yield Platform(admin, agent)
    finally:
        agent.stop()
        dns.stop()
        engine.dispose()


def eventually(check: Callable[[], bool], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def test_blocking_client(platform: Platform) -> None:
    with LarsClient(ports=platform.ports, timeout=5) as client:
        first = client.get_host(1, 1)
        assert first.retcode is RetCode.NOEXIST  # unknown to the agent: it asks the service
        assert client.reg_init(1, 1, attempts=100, delay=0.05) is RetCode.SUCC
        route = client.get_route(1, 1)
        assert {(h.ip, h.port) for h in route.hosts} == HOSTS_11
        answers = [client.get_host(1, 1) for _ in range(6)]
        assert all(a.ok for a in answers)
        assert {(a.ip, a.port) for a in answers} == HOSTS_11  # idle hosts rotate
        # 15 failures in a row overload a host (contin_err_limit): it leaves the rotation.
        for _ in range(15):
            client.report(1, 1, "192.168.1.177", 9003, 1)
        eventually(lambda: _rotation(client, 1, 1, 4) == {9001, 9002})
        # A host added to the table is pushed to the agent.
        platform.admin.add_host(2, 1, "10.0.0.10", 81)
        client.reg_init(2, 1, attempts=100, delay=0.05)
        eventually(lambda: len(client.get_route(2, 1).hosts) == 2)
        assert client.stats().timeouts == 0


def _rotation(client: LarsClient, modid: int, cmdid: int, n: int) -> set[int]:
    return {client.get_host(modid, cmdid).port for _ in range(n)}


class Flaky(Exception):
    pass


def test_call_helper_moves_a_failing_host_to_overload(platform: Platform) -> None:
    with LarsClient(ports=platform.ports, timeout=5) as client:
        assert client.reg_init(1, 1, attempts=100, delay=0.05) is RetCode.SUCC
        failing = 0
        for _ in range(60):
            try:
                with client.call(1, 1) as host:
                    if host.port == 9002:
                        raise Flaky
            except Flaky:
                failing += 1
        assert failing >= 15
        eventually(lambda: 9002 not in _rotation(client, 1, 1, 4))


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_async_client(platform: Platform, use_uvloop: bool) -> None:
    async def main() -> list[HostResult]:
        async with AsyncLarsClient(ports=platform.ports, timeout=5) as client:
            for _ in range(100):
                if await client.reg_init(1, 1) is RetCode.SUCC:
                    break
            route = await client.get_route(1, 1)
            assert {(h.ip, h.port) for h in route.hosts} == HOSTS_11
            results = await asyncio.gather(*(client.get_host(1, 1) for _ in range(300)))
            async with client.call(1, 1) as host:
                assert host.ok
            assert client.stats().timeouts == 0
            return results

    loop = new_event_loop(use_uvloop)
    try:
        results = loop.run_until_complete(main())
    finally:
        loop.close()
    assert all(r.ok for r in results)
    assert {(r.ip, r.port) for r in results} == HOSTS_11
