"""fetch_route stops as soon as the agent's answer is final (no sockets: a scripted client)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lars.client.answers import fetch_route
from lars.client.result import HostResult, RouteResult
from lars.protocol import NoHostReason, RetCode


@dataclass
class ScriptedAgent:
    """Answers NOEXIST to get_route and `reasons` in turn to get_host."""

    reasons: list[NoHostReason]
    routes: int = 0
    hosts: int = 0
    sleeps: list[float] = field(default_factory=list)

    def get_route(self, modid: int, cmdid: int) -> RouteResult:
        self.routes += 1
        return RouteResult(RetCode.NOEXIST, modid, cmdid)

    def get_host(self, modid: int, cmdid: int) -> HostResult:
        reason = self.reasons[min(self.hosts, len(self.reasons) - 1)]
        self.hosts += 1
        return HostResult(RetCode.NOEXIST, modid, cmdid, reason=int(reason))


def _fetch(agent: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("lars.client.answers.time.sleep", agent.sleeps.append)
    fetch_route(agent, 9, 9, attempts=20, delay=0.1, clock=lambda: 0.0)


def test_a_module_the_route_service_does_not_have_is_final_at_once(monkeypatch: Any) -> None:
    """`lars gethost 9 9` took 2.02 s: it kept asking after the route service had said
    the module has no hosts (reason EMPTY)."""
    agent = ScriptedAgent([NoHostReason.PENDING, NoHostReason.PENDING, NoHostReason.EMPTY])
    _fetch(agent, monkeypatch)
    assert (agent.routes, agent.hosts, len(agent.sleeps)) == (3, 3, 2)


def test_pending_keeps_asking_until_the_attempts_run_out(monkeypatch: Any) -> None:
    agent = ScriptedAgent([NoHostReason.PENDING])
    _fetch(agent, monkeypatch)
    assert (agent.routes, len(agent.sleeps)) == (20, 19)


def test_module_limit_and_wrong_port_are_final(monkeypatch: Any) -> None:
    for reason in (NoHostReason.MODULE_LIMIT, NoHostReason.WRONG_PORT):
        agent = ScriptedAgent([reason])
        _fetch(agent, monkeypatch)
        assert agent.routes == 1
