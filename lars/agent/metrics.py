"""The agent's exporter: metric families, readiness, status and the per-module view.

Counters are read from `AgentService.stats()` (plain integers kept by the shards and
clients); modules by state, hosts by list and the oldest route come from
`AgentService.gauges()`, which reads the gauges each shard keeps up to date, on the
shard's own loop: a scrape costs each shard loop one short task whatever the number of
modules (lars.agent.view). Nothing here runs per datagram. Daemon-side only: imports
prometheus_client.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from lars.agent.regmetrics import registration_families
from lars.agent.service import AgentService, AgentStats
from lars.agent.view import ShardGauges
from lars.obs.families import counter, gauge, labelled_counter, labelled_gauge
from lars.obs.listen import MetricsConfig
from lars.obs.ready import Readiness, agent_ready, with_threads
from lars.obs.registry import new_registry
from lars.obs.server import Handler, HandlerError, MetricsServer
from lars.strictint import parse_uint

__all__ = ["AgentCollector", "agent_metrics_server", "agent_readiness", "agent_status"]

P = "lars_agent"


class AgentCollector(Collector):
    def __init__(self, agent: AgentService, *, wall: Callable[[], float] = time.time) -> None:
        self._agent = agent
        self._wall = wall

    def collect(self) -> Iterator[Metric]:
        agent = self._agent
        s = agent.stats()
        g = agent.gauges()
        sh = s.shards

        def total(field: str) -> int:
            return sum(getattr(x, field) for x in sh)

        get_host, overload, noexist = (
            total("get_host"),
            total("get_host_overload"),
            total("get_host_noexist"),
        )
        yield labelled_counter(
            f"{P}_get_host", "GetHostRequests answered, by result.", "result",
            {"succ": get_host - overload - noexist, "overload": overload, "noexist": noexist},
        )  # fmt: skip
        reports, errors = total("reports"), total("report_errors")
        yield labelled_counter(
            f"{P}_reports", "ReportRequests received, by the call result reported.", "result",
            {"succ": reports - errors, "error": errors},
        )  # fmt: skip
        yield counter(
            f"{P}_reports_ignored",
            "ReportRequests for a module or host the agent does not hold.",
            total("unknown_host_reports"),
        )
        yield counter(f"{P}_get_route", "API_GetRouteRequests answered.", total("get_route"))
        yield counter(
            f"{P}_noexist_route_down",
            "NOEXIST answers given while no route service was connected (of result noexist).",
            total("noexist_route_down"),
        )
        yield counter(f"{P}_datagrams_received", "UDP datagrams received.", s.datagrams)
        yield labelled_counter(
            f"{P}_datagrams_dropped", "Datagrams dropped unanswered, by reason.", "reason",
            {
                "bad_frame": s.dropped_datagrams,
                "unknown_msgid": s.unknown_msgids,
                "bad_body": s.bad_bodies,
                "handler_error": s.handler_errors,
            },
        )  # fmt: skip
        yield counter(f"{P}_udp_send_errors", "UDP replies the kernel refused.", s.send_errors)
        yield counter(
            f"{P}_modules_refused",
            "Requests for a new module past max_modules (answered NOEXIST).",
            total("refused_modules"),
        )
        yield counter(
            f"{P}_requests_misrouted",
            "Requests sent to another shard's port (answered NOEXIST).",
            total("misrouted"),
        )
        yield counter(
            f"{P}_modules_expired",
            "Known-empty modules forgotten after empty_module_ttl.",
            total("expired_modules"),
        )
        yield labelled_gauge(f"{P}_modules", "Modules held, by route state.", "state",
                             _modules(g))  # fmt: skip
        yield labelled_gauge(f"{P}_hosts", "Hosts of the modules held, by balancer list.",
                             "state", _hosts(g))  # fmt: skip
        yield gauge(f"{P}_hosts_weighted",
                    "Hosts of the modules held whose weight is not the default 1.",
                    sum(x.hosts_weighted for x in g))  # fmt: skip
        yield labelled_counter(
            f"{P}_host_transitions", "Hosts moved between the idle and overload lists.",
            "transition",
            {"idle_to_overload": total("to_overload"), "overload_to_idle": total("to_idle")},
        )  # fmt: skip
        yield counter(f"{P}_probes", "get_host answers that probed an overloaded host.",
                      total("probes"))  # fmt: skip
        yield counter(
            f"{P}_route_requests", "GetRouteRequests sent to the route service.",
            total("route_requests"),
        )  # fmt: skip
        yield counter(
            f"{P}_route_responses", "Route messages (replies and pushes) applied to a module.",
            total("routes_received"),
        )  # fmt: skip
        yield counter(
            f"{P}_route_pushes", "Route messages pushed for a module that was not waiting.",
            total("routes_pushed"),
        )  # fmt: skip
        yield counter(
            f"{P}_route_responses_ignored", "Route messages for a module the agent forgot.",
            total("routes_ignored"),
        )  # fmt: skip
        yield gauge(f"{P}_route_service_up", "Connected to a route service (0/1).",
                    int(s.route_connected))  # fmt: skip
        yield gauge(f"{P}_route_held_modules",
                    "Modules still served their last hosts while a mass-empty hold "
                    "withholds the route service's empty answers.",
                    s.route_held_modules)  # fmt: skip
        yield counter(f"{P}_route_mass_empty",
                      "Times route services emptied more than half of the modules with hosts "
                      "within 10 s (held unless mass_empty_delay is 0).",
                      s.route_mass_empty)  # fmt: skip
        yield labelled_counter(
            f"{P}_route_mass_empty_ends", "Mass-empty holds ended, by how.", "how",
            {"hosts": s.route_holds_released, "delay": s.route_holds_expired},
        )  # fmt: skip
        yield counter(f"{P}_route_older_answers",
                      "Route answers older than the module's table (a staler replica's route "
                      "service), not applied at once.",
                      s.route_older_answers)  # fmt: skip
        yield counter(f"{P}_route_rollbacks",
                      "Older tables applied after the route service kept them 30 s.",
                      s.route_rollbacks)  # fmt: skip
        yield counter(f"{P}_route_service_connects", "Connections made to a route service.",
                      s.route_connects)  # fmt: skip
        yield counter(f"{P}_route_service_connect_failures",
                      "Failed connection attempts to a route service.",
                      s.route_connect_failures)  # fmt: skip
        yield counter(f"{P}_route_service_silent_drops",
                      "Route service connections dropped: silent past route_dead_after.",
                      s.route_silent_drops)  # fmt: skip
        yield gauge(f"{P}_reporter_up", "Connected to a reporter (0/1).",
                    int(s.reporter_connected))  # fmt: skip
        yield counter(f"{P}_reporter_connects", "Connections made to a reporter.",
                      s.reporter_connects)  # fmt: skip
        yield counter(f"{P}_reporter_connect_failures",
                      "Failed connection attempts to a reporter.",
                      s.reporter_connect_failures)  # fmt: skip
        yield counter(f"{P}_report_messages_sent",
                      "ReportStatusRequests (one per module and interval) sent.",
                      s.reports_sent)  # fmt: skip
        yield gauge(f"{P}_report_messages_held",
                    "ReportStatusRequests held while the reporter is down.",
                    s.reports_pending)  # fmt: skip
        yield counter(f"{P}_report_messages_dropped",
                      "Held ReportStatusRequests dropped: the backlog was full.",
                      s.reports_dropped)  # fmt: skip
        yield counter(f"{P}_route_cache_writes", "Route cache file writes.", s.cache_writes)
        if s.cache_saved_at is not None:
            yield gauge(f"{P}_route_cache_age_seconds",
                        "Seconds since the route cache file's content was saved.",
                        max(0.0, self._wall() - s.cache_saved_at))  # fmt: skip
        oldest = [x.oldest_route_at for x in g if x.oldest_route_at is not None]
        if oldest:
            yield gauge(f"{P}_oldest_route_age_seconds",
                        "Seconds since the route service last confirmed the least recent "
                        "route held.", max(0.0, agent.clock() - min(oldest)))  # fmt: skip
        yield from registration_families(agent.registrations.stats())


def _modules(g: Sequence[ShardGauges]) -> dict[str, int]:
    return {
        "new": sum(x.modules_new for x in g),
        "empty": sum(x.modules_empty for x in g),
        "ready": sum(x.modules_ready for x in g),
    }


def _hosts(g: Sequence[ShardGauges]) -> dict[str, int]:
    return {"idle": sum(x.hosts_idle for x in g), "overload": sum(x.hosts_overloaded for x in g)}


def _ready(s: AgentStats, g: Sequence[ShardGauges]) -> Readiness:
    known = sum(x.modules_empty + x.modules_ready for x in g)
    return agent_ready(route_connected=s.route_connected, known_routes=known)


def agent_readiness(agent: AgentService) -> Readiness:
    if agent.threads.reasons():  # a dead loop thread: gauges() would wait on it
        return with_threads(Readiness(True), agent.threads.reasons())
    return _ready(agent.stats(), agent.gauges())


def agent_status(agent: AgentService) -> dict[str, Any]:
    """The summary `lars status` prints (plain JSON values), from ONE stats() and ONE
    gauges() (consistent with each other)."""
    s = agent.stats()
    dead = agent.threads.reasons()
    g = agent.gauges() if not dead else ()  # a dead shard loop would not answer
    sh = s.shards
    return {
        "daemon": "agent",
        "ready": with_threads(_ready(s, g), dead).as_dict(),
        "threads": [f.as_dict() for f in agent.threads.failures()],
        "ports": list(agent.ports),
        "mode": agent.config.mode.value,
        "route_service": {
            "connected": s.route_connected,
            "connects": s.route_connects,
            "held_modules": s.route_held_modules,  # a mass-empty hold (emptyguard)
        },
        "reporter": {
            "connected": s.reporter_connected,
            "sent": s.reports_sent,
            "held": s.reports_pending,
        },
        "modules": _modules(g),
        "hosts": _hosts(g),
        "get_host": sum(x.get_host for x in sh),
        "reports": sum(x.reports for x in sh),
        "dropped_datagrams": s.dropped_datagrams + s.unknown_msgids + s.bad_bodies,
        "registrations": agent.registrations.stats().instances,
    }


_ID_MAX = 2**31 - 1  # modid and cmdid are int32 on the wire


def module_handler(agent: AgentService) -> Handler:
    """GET /debug/module?modid=M&cmdid=C: the agent's view of one module, with the
    instances of it registered here and their check state ("registrations")."""

    def handle(query: Mapping[str, str]) -> tuple[int, Any]:
        # strict: ASCII digits within int32 (int() took ٣, +3, 3_0 and ids no wire carries)
        modid = parse_uint(query.get("modid", ""), 0, _ID_MAX)
        cmdid = parse_uint(query.get("cmdid", ""), 0, _ID_MAX)
        if modid is None or cmdid is None:
            raise HandlerError(400, f"give modid and cmdid as whole numbers 0..{_ID_MAX}")
        view = agent.module_view(modid, cmdid)
        registrations = agent.registrations_view(modid, cmdid)
        if view is None and not registrations:
            raise HandlerError(404, f"module {modid}:{cmdid} is not held by this agent")
        doc = dataclasses.asdict(view) if view is not None else _unheld(modid, cmdid)
        doc["registrations"] = registrations
        return 200, doc

    return handle


def _unheld(modid: int, cmdid: int) -> dict[str, Any]:
    """The module part of /debug/module for a module registered here but never asked for."""
    return {
        "modid": modid,
        "cmdid": cmdid,
        "shard": (modid + cmdid) % 3,
        "route_state": "not asked for on this agent",
        "waiting": False,
        "route_age": None,
        "hosts": [],
    }


def agent_metrics_server(agent: AgentService, config: MetricsConfig) -> MetricsServer | None:
    """The agent's listener (not started), or None when metrics are off."""
    if config.listen is None:
        return None
    registry = new_registry("agent")
    registry.register(AgentCollector(agent))
    return MetricsServer(
        config.listen,
        registry,
        daemon="agent",
        ready=lambda: agent_readiness(agent),
        status=lambda: agent_status(agent),
        handlers={"/debug/module": module_handler(agent)},
        threads=agent.threads,  # a dead listener thread is the daemon's
    )
