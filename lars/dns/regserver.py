"""The route service's INSTANCE_SYNC handler (msgid 9 -> 10; issue 20).

Runs on the reactor worker that owns the agent's connection: parse the agent's full set,
leave out (and count) instances that cannot be stored or served, hand the set to the
Registry, and answer INSTANCE_SYNC_ACK with the sync's seq and the lease. An agent sends
msgid 9 only on a connection whose GetRouteResponse advertised registrations; a sync that
arrives anyway while this service does not accept them (read-only, no tables) gets no
ack, so the agent keeps its registrations for a route service that does.
"""

from __future__ import annotations

import logging
import math

from lars.dns.instances import AGENT_MAX, Instance, invalid_reason
from lars.dns.registry import Registry
from lars.protocol import MsgId, lars_pb2
from lars.protocol.ipv4 import wire_to_uint
from lars.ratelog import RateLimitedLog
from lars.reactor import Connection

__all__ = ["SyncHandler", "parse_sync"]

log = logging.getLogger(__name__)

_ACK = int(MsgId.INSTANCE_SYNC_ACK)


def parse_sync(body: bytes) -> tuple[str, int, list[Instance], list[str]]:
    """(agent, seq, valid instances, reasons for the ones left out). DecodeError on a
    body that is not an InstanceSync (the Router counts and drops it)."""
    msg = lars_pb2.InstanceSync()
    msg.ParseFromString(body)
    valid: list[Instance] = []
    bad: list[str] = []
    for i in msg.instances:
        inst = Instance(
            modid=i.modid,
            cmdid=i.cmdid,
            ip=wire_to_uint(i.ip),
            port=i.port,
            check=i.check or "tcp",
            passing=i.passing,
        )
        reason = invalid_reason(inst)
        if reason is None:
            valid.append(inst)
        else:
            bad.append(reason)
    return msg.agent, msg.seq, valid, bad


def valid_agent(agent: str) -> bool:
    return 0 < len(agent) <= AGENT_MAX and agent.isprintable() and not agent.isspace()


class SyncHandler:
    """Bound to one Registry; `on_sync` is the Router handler for msgid 9."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._log_bad = RateLimitedLog(log, 30.0)

    def on_sync(self, conn: Connection, _msgid: int, body: bytes) -> None:
        registry = self._registry
        if not registry.accepting():
            registry.count_refused(refused=1)
            self._log_bad("%s: InstanceSync while registrations are not accepted", conn.peer)
            return
        agent, seq, instances, bad = parse_sync(body)
        if not valid_agent(agent):
            registry.count_refused(refused=1)
            self._log_bad("%s: InstanceSync with a bad agent id %r", conn.peer, agent[:80])
            return
        if bad:
            registry.count_refused(invalid_instances=len(bad))
            self._log_bad(
                "%s: agent %s: %d instance(s) left out, e.g. %s", conn.peer, agent, len(bad), bad[0]
            )
        if not registry.submit(agent, instances):
            self._log_bad("%s: agent %s: too many agents waiting for a write", conn.peer, agent)
            return
        lease = max(1, math.ceil(registry.lease))
        conn.send(_ACK, lars_pb2.InstanceSyncAck(seq=seq, lease=lease).SerializeToString())
