"""`lars up`'s one metrics listener: every part's families in one registry.

The names stay per daemon (lars_dns_*, lars_reporter_*, lars_agent_*, lars_console_*),
so dashboards work the same on `lars up` and on separate daemons. Ready means every part
is ready; /status nests each part's summary. Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

from typing import Any

from lars.agent.metrics import AgentCollector, agent_readiness, agent_status, module_handler
from lars.agent.service import AgentService
from lars.console.counters import ConsoleCounters
from lars.console.metrics import ConsoleCollector
from lars.dns.metrics import DnsCollector, dns_readiness, dns_status
from lars.dns.service import DnsService
from lars.obs.listen import MetricsConfig
from lars.obs.ready import Readiness
from lars.obs.registry import new_registry
from lars.obs.server import MetricsServer
from lars.reporter.metrics import ReporterCollector, reporter_readiness, reporter_status
from lars.reporter.service import ReporterService

__all__ = ["up_metrics_server"]


def up_metrics_server(
    config: MetricsConfig,
    dns: DnsService,
    reporter: ReporterService,
    agent: AgentService,
    console: ConsoleCounters | None = None,
) -> MetricsServer | None:
    if config.listen is None:
        return None
    registry = new_registry("up")
    registry.register(DnsCollector(dns))
    registry.register(ReporterCollector(reporter))
    registry.register(AgentCollector(agent))
    if console is not None:
        registry.register(ConsoleCollector(console))

    def ready() -> Readiness:
        parts = {
            "dns": dns_readiness(dns),
            "reporter": reporter_readiness(reporter),
            "agent": agent_readiness(agent),
        }
        reasons = tuple(f"{name}: {why}" for name, r in parts.items() for why in r.reasons)
        return Readiness(not reasons, reasons)

    def status() -> dict[str, Any]:
        # each part's status carries its readiness: the whole is ready when every part is
        parts = {
            "dns": dns_status(dns),
            "reporter": reporter_status(reporter),
            "agent": agent_status(agent),
        }
        reasons = [
            f"{name}: {why}" for name, doc in parts.items() for why in doc["ready"]["reasons"]
        ]
        return {"daemon": "up", "ready": {"ready": not reasons, "reasons": reasons}, **parts}

    return MetricsServer(
        config.listen,
        registry,
        daemon="up",
        ready=ready,
        status=status,
        handlers={"/debug/module": module_handler(agent)},
        threads=dns.threads,  # reported as the route service part's, stops `lars up`
    )
