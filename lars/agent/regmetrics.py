"""The agent's self-registration metric families (issue 20), for AgentCollector.

Instances by check state, checks run and failed, syncs sent and acknowledged by a route
service, requests and refusals, registrations-file writes. Read from one
RegistrationStats snapshot (plain counters; nothing here runs per check).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from lars.agent.regservice import RegistrationStats
from lars.obs.families import counter, gauge, labelled_gauge

__all__ = ["registration_families"]

P = "lars_agent"


def registration_families(s: RegistrationStats) -> Iterator[Metric]:
    yield labelled_gauge(
        f"{P}_registered_instances",
        "Instances registered with this agent, by check state.",
        "state",
        s.instances,
    )
    yield counter(f"{P}_register_checks", "Registration checks judged (tcp, http, ttl).",
                  s.checks_run)  # fmt: skip
    yield counter(f"{P}_register_checks_failed", "Registration checks that failed.",
                  s.checks_failed)  # fmt: skip
    yield counter(f"{P}_register_requests", "Register/deregister/heartbeat requests answered.",
                  s.requests)  # fmt: skip
    yield counter(f"{P}_register_refused", "Registrations refused (bad check, limit).",
                  s.refused)  # fmt: skip
    yield counter(f"{P}_instance_syncs_sent",
                  "InstanceSync messages sent to a route service that accepts registrations.",
                  s.syncs_sent)  # fmt: skip
    yield counter(f"{P}_instance_syncs_acked", "InstanceSyncAck messages received.",
                  s.syncs_acked)  # fmt: skip
    yield gauge(f"{P}_instance_lease_seconds",
                "The lease the route service grants this agent's instances.", s.lease)  # fmt: skip
    yield counter(f"{P}_registrations_file_writes", "Registrations file writes.", s.file_writes)
    yield counter(f"{P}_registrations_file_errors",
                  "Registrations file writes that failed (logged).", s.file_errors)  # fmt: skip
