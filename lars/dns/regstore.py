"""InstanceStore: RouteInstance and RouteInstanceMark reads and writes (issue 20).

One `write(batch, now)` is one transaction: the changed agents' rows are read, diffed
against their full sets (lars.dns.instances.plan_sync) and inserted, deleted or updated;
the renewed agents' `last_seen` is set in one UPDATE; with `expire`, rows unseen for a
lease are deleted (SELECT ... FOR UPDATE first on MySQL, so two route services expiring
at once delete and audit each row once: the second one's locking read waits, then finds
the rows gone); RouteAudit gets 'register', 'deregister' and 'expire' rows (check flaps
only go to metrics); and when anything changed the one mark row is raised, which every
route service's poll reads. RouteVersion and RouteChange are never written.

Where the tables are missing (an original Lars database, `lars initdb` not run) the
store is unavailable: the route service then does not advertise registrations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_instance, route_instance_mark
from lars.dbengine import is_sqlite
from lars.dns.instance_reads import InstancePresence, instance_row, read_mark
from lars.dns.instances import Instance, InstanceRow, plan_sync
from lars.dns.leases import Batch
from lars.dns.store import unavailable
from lars.routes.audit import AuditLog

__all__ = ["InstanceStore", "WriteResult"]

log = logging.getLogger(__name__)

_CHUNK = 500
ACTOR = "dns"


@dataclass(frozen=True, slots=True)
class WriteResult:
    registered: int = 0
    deregistered: int = 0
    updated: int = 0  # check kind or state changed
    flaps: int = 0  # of which only the state changed
    expired: int = 0
    renewed: int = 0  # rows whose last_seen was renewed
    expired_agents: tuple[str, ...] = ()
    mark: int | None = None  # the mark after the write (None: not raised)

    @property
    def changed(self) -> bool:
        return bool(self.registered or self.deregistered or self.updated or self.expired)


class InstanceStore:
    """The route service's registration writes (one thread: the registry's)."""

    def __init__(self, engine: sqlalchemy.Engine, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine)
        self._audit = audit if audit is not None else AuditLog(engine)
        self._presence = InstancePresence(engine)

    @property
    def engine(self) -> sqlalchemy.Engine:
        return self._engine

    def available(self) -> bool:
        """Both tables exist (asked every 30 s until they do, then remembered). Raises
        StoreUnavailable when the database cannot be asked."""
        try:
            return self._presence.available()
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def write(self, batch: Batch, now: int, lease: float) -> WriteResult:
        """Apply a batch in one transaction. Raises StoreUnavailable."""
        try:
            with self._engine.begin() as conn:
                return self._write(conn, batch, now, lease)
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def _write(self, conn: Connection, batch: Batch, now: int, lease: float) -> WriteResult:
        t = route_instance.c
        audit: list[dict[str, object]] = []
        registered = deregistered = updated = flaps = expired = 0
        if batch.changes:
            stored: dict[str, list[InstanceRow]] = {a: [] for a in batch.changes}
            agents = sorted(batch.changes)
            for start in range(0, len(agents), _CHUNK):
                chunk = agents[start : start + _CHUNK]
                for r in conn.execute(select(route_instance).where(t.agent.in_(chunk))):
                    row = instance_row(r)
                    stored[row.agent].append(row)
            inserts: list[dict[str, object]] = []
            delete_ids: list[int] = []
            changes: list[dict[str, object]] = []
            for agent in agents:
                plan = plan_sync(stored[agent], batch.changes[agent])
                for inst in plan.inserts:
                    inserts.append(_values(inst, agent, now))
                    audit.append(self._audit_row("register", inst.key, agent, inst.check))
                for row in plan.deletes:
                    delete_ids.append(row.id)
                    audit.append(self._audit_row("deregister", row.key, agent, row.check))
                for row, inst in plan.updates:
                    since = row.since if inst.passing == row.passing else now
                    changes.append(
                        {
                            "b_id": row.id,
                            "b_check": inst.check,
                            "b_pass": inst.passing,
                            "b_since": since,
                        }
                    )
                registered += len(plan.inserts)
                deregistered += len(plan.deletes)
                updated += len(plan.updates)
                flaps += plan.flaps
            if inserts:
                conn.execute(insert(route_instance), inserts)
            _delete_ids(conn, delete_ids)
            if changes:
                conn.execute(
                    update(route_instance)
                    .where(t.id == bindparam("b_id"))
                    .values(
                        check_kind=bindparam("b_check"),
                        passing=bindparam("b_pass"),
                        since=bindparam("b_since"),
                    ),
                    changes,
                )
        _renew(conn, sorted(batch.changes), now)  # a change renews the agent's lease too
        renewed = _renew(conn, sorted(batch.renewals - batch.changes.keys()), now)
        expired_agents: set[str] = set()
        if batch.expire:
            cutoff = now - lease
            query = select(route_instance).where(t.last_seen < cutoff)
            if not self._sqlite:
                query = query.with_for_update()
            gone = [instance_row(r) for r in conn.execute(query)]
            _delete_ids(conn, [r.id for r in gone])
            for row in gone:
                expired_agents.add(row.agent)
                detail = f"lease expired: agent {row.agent} unseen since {row.last_seen}"
                audit.append(self._audit_row("expire", row.key, row.agent, row.check, detail))
            expired = len(gone)
        result = WriteResult(
            registered=registered,
            deregistered=deregistered,
            updated=updated,
            flaps=flaps,
            expired=expired,
            renewed=renewed,
            expired_agents=tuple(sorted(expired_agents)),
        )
        if not result.changed:
            return result
        self._audit.write(conn, audit)
        mark = _raise_mark(conn)
        return WriteResult(
            registered=registered,
            deregistered=deregistered,
            updated=updated,
            flaps=flaps,
            expired=expired,
            renewed=renewed,
            expired_agents=result.expired_agents,
            mark=mark,
        )

    def _audit_row(
        self,
        action: str,
        key: tuple[int, int, int, int],
        agent: str,
        check: str,
        detail: str = "",
    ) -> dict[str, object]:
        return self._audit.row(
            actor=f"agent:{agent}" if action != "expire" else ACTOR,
            action=action,
            modid=key[0],
            cmdid=key[1],
            serverip=key[2],
            serverport=key[3],
            detail=detail or f"check {check}",
        )

    def rows(self, agents: Iterable[str] | None = None) -> list[InstanceRow]:
        """Rows (of some agents, or all), for tests and tools. Raises StoreUnavailable."""
        query = select(route_instance).order_by(route_instance.c.id)
        if agents is not None:
            query = query.where(route_instance.c.agent.in_(list(agents)))
        try:
            with self._engine.connect() as conn:
                return [instance_row(r) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc


def _values(inst: Instance, agent: str, now: int) -> dict[str, object]:
    return {
        "modid": inst.modid,
        "cmdid": inst.cmdid,
        "serverip": inst.ip,
        "serverport": inst.port,
        "agent": agent,
        "check_kind": inst.check,
        "passing": inst.passing,
        "registered_at": now,
        "since": now,
        "last_seen": now,
    }


def _renew(conn: Connection, agents: Sequence[str], now: int) -> int:
    """Set last_seen of every row of `agents`; returns the rows renewed."""
    renewed = 0
    for start in range(0, len(agents), _CHUNK):
        chunk = list(agents[start : start + _CHUNK])
        stmt = update(route_instance).where(route_instance.c.agent.in_(chunk))
        renewed += conn.execute(stmt.values(last_seen=now)).rowcount
    return renewed


def _delete_ids(conn: Connection, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        conn.execute(delete(route_instance).where(route_instance.c.id.in_(chunk)))


def _raise_mark(conn: Connection) -> int:
    """Raise the one mark row (created on first use; a concurrent creator makes the
    transaction fail and retry, which then finds the row)."""
    m = route_instance_mark.c
    done = conn.execute(
        update(route_instance_mark).where(m.id == 1).values(mark=m.mark + 1)
    ).rowcount
    if not done:
        conn.execute(insert(route_instance_mark).values(id=1, mark=1))
    return read_mark(conn) or 1
