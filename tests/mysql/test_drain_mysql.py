"""Drain on the real MariaDB, end to end: RouteAdmin -> route service -> our agent.

A client thread keeps calling get_host and reporting success on a module of three hosts
(one of them overloaded) while the host is drained. The agent must stop answering it
within 1 s of the drain's commit (the route service polls every 50 ms here), keep
answering the others without a failed datagram, and, after undrain, take the host back
as a new one: idle, with the initial counters, not its overloaded past.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from lars.agent.config import BalancerConfig
from lars.agent.service import AgentService
from lars.client import LarsClient, RetCode
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsService
from lars.routes.admin import RouteAdmin
from tests.integration.agent_fakes import FakeReporter, wait_until
from tests.integration.test_agent_service import make_agent, settle
from tests.integration.test_dns_service import config

pytestmark = pytest.mark.mysql

KEY = (4, 2)
A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
CFG = BalancerConfig()


class Load:
    """get_host + report in a loop on one thread; every answer kept with its time."""

    def __init__(self, agent: AgentService) -> None:
        self.client = LarsClient(ports=agent.ports, timeout=1.0)  # type: ignore[arg-type]
        self.answers: list[tuple[float, str | None, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="drain-load")

    def _run(self) -> None:
        deadline = time.monotonic() + 60.0  # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            result = self.client.get_host(*KEY)
            host = result.ip if result.retcode == RetCode.SUCC else None
            self.answers.append((time.monotonic(), host, int(result.retcode)))
            if host is not None:
                self.client.report(*KEY, host, result.port, 0)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.client.close()


@pytest.fixture
def stack(mysql_url: str, no_leaks: None) -> Iterator[tuple[RouteAdmin, AgentService]]:
    engine = make_engine(mysql_url)
    init_schema(engine)
    admin = RouteAdmin(engine, actor="test:drain")
    for ip in (A, B, C):
        admin.add_host(*KEY, ip, 80)
    dns = DnsService(config(mysql_url))
    dns.start()
    reporter = FakeReporter().start()
    agent = make_agent(("127.0.0.1", dns.port), reporter.address, balancer=CFG)
    try:
        settle(agent)
        yield admin, agent
    finally:
        agent.stop()
        reporter.stop()
        dns.stop()
        engine.dispose()


def test_drain_under_load_then_undrain_with_fresh_state(
    stack: tuple[RouteAdmin, AgentService],
) -> None:
    admin, agent = stack
    with LarsClient(ports=agent.ports) as client:  # type: ignore[arg-type]
        client.reg_init(*KEY)
        wait_until(lambda: len(client.get_route(*KEY).hosts) == 3)
        for _ in range(CFG.contin_err_limit):  # A goes to overload
            client.report(*KEY, A, 80, 1)
    agent.sync()
    view = agent.module_view(*KEY)
    assert view is not None and {h.ip: h.state for h in view.hosts}[A] == "overload"

    with Load(agent) as load:
        wait_until(lambda: sum(1 for _, ip, _ in load.answers if ip == A) >= 2)  # probed
        admin.drain(*KEY, A, 80, note="deploy")
        committed = time.monotonic()
        wait_until(lambda: load.answers[-1][0] > committed + 1.5)
    answers = load.answers
    last_a = max(t for t, ip, _ in answers if ip == A)
    after = [(ip, code) for t, ip, code in answers if t > committed + 1.0]
    print(f"drain: last answer of the drained host {last_a - committed:+.3f} s after commit; "
          f"{len(answers)} get_host answers")  # fmt: skip
    assert last_a - committed < 1.0
    assert after and all(code == RetCode.SUCC and ip in (B, C) for ip, code in after)
    assert all(code == RetCode.SUCC for _, _, code in answers)  # never a failed answer
    stats = agent.stats()
    assert stats.handler_errors == 0 and stats.route_connected

    admin.undrain(*KEY, A, 80)
    wait_until(lambda: len(agent.module_view(*KEY).hosts) == 3)  # type: ignore[union-attr]
    fresh = {h.ip: h for h in agent.module_view(*KEY).hosts}[A]  # type: ignore[union-attr]
    assert fresh.state == "idle"
    assert (fresh.vsucc, fresh.verr, fresh.rsucc, fresh.rerr) == (CFG.init_succ_cnt, 0, 0, 0)
    assert (fresh.contin_succ, fresh.contin_err, fresh.weight) == (0, 0, 1)
    with LarsClient(ports=agent.ports) as client:  # type: ignore[arg-type]
        got = {client.get_host(*KEY).ip for _ in range(6)}
    assert got == {A, B, C}  # back in the rotation


def test_weights_reach_the_agent_through_mariadb(stack: tuple[RouteAdmin, AgentService]) -> None:
    admin, agent = stack
    with LarsClient(ports=agent.ports) as client:  # type: ignore[arg-type]
        client.reg_init(*KEY)
        wait_until(lambda: len(client.get_route(*KEY).hosts) == 3)
        admin.set_weight(*KEY, C, 80, 6)
        wait_until(
            lambda: {h.ip: h.weight for h in agent.module_view(*KEY).hosts}[C] == 6  # type: ignore[union-attr]
        )
        counts = {A: 0, B: 0, C: 0}
        for _ in range(80):
            counts[client.get_host(*KEY).ip] += 1
    assert counts == {A: 10, B: 10, C: 60}  # ten rounds of 1 + 1 + 6
