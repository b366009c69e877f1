"""InstanceStore: RouteInstance and RouteInstanceMark reads and writes (issue 20).

One `write(batch, now)` is one transaction. A batch with changes or an expiry first
locks the one RouteInstanceMark row (SELECT ... FOR UPDATE), so registration writes of
all route services commit one after the other in mark order; then the changed agents'
rows are read, diffed against their full sets (lars.dns.instances.plan_sync) and
inserted, deleted or updated, each stamped `changed` = the new mark (deleted ids go to
RouteInstanceGone with it); with `expire`, rows unseen for a lease are deleted (SELECT ...
FOR UPDATE, so two route services expiring at once delete and audit each row once: the
second one's locking read waits, then finds the rows gone); the renewed agents'
`last_seen` is set in one UPDATE per 500 agents (a renewal-only batch takes no lock);
RouteAudit gets 'register', 'deregister' and 'expire' rows (check flaps only go to
metrics); and when anything changed the mark is raised, which every route service's poll
reads and whose loads then read only the rows changed since their last one
(lars.dns.instance_reads.InstanceCache). RouteVersion and RouteChange are never written.

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

from lars.db import route_instance, route_instance_gone, route_instance_mark
from lars.dbengine import is_sqlite
from lars.dns.instance_reads import InstancePresence, instance_row
from lars.dns.instances import GROUP, Instance, InstanceRow, expired, plan_sync
from lars.dns.leases import Batch
from lars.dns.store import unavailable
from lars.routes.audit import AuditLog

__all__ = ["InstanceStore", "WriteResult"]

log = logging.getLogger(__name__)

_CHUNK = 500
GONE_KEEP = 600  # seconds RouteInstanceGone rows are kept (a route service older loads all)
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
        if not (batch.changes or batch.expire):  # renewals only: no mark, no lock
            renewed = _renew(conn, sorted(batch.renewals), now)
            return WriteResult(renewed=renewed)
        # Writers take the mark row first (FOR UPDATE): changes commit in mark order, so a
        # load that reads mark M sees exactly the rows changed up to M (lars.dns.store).
        mark = _lock_mark(conn, self._sqlite) + 1
        audit: list[dict[str, object]] = []
        inserts: list[dict[str, object]] = []
        gone_ids: list[int] = []
        changes: list[dict[str, object]] = []
        registered = deregistered = updated = flaps = 0
        if batch.changes:
            stored: dict[str, list[InstanceRow]] = {a: [] for a in batch.changes}
            agents = sorted(batch.changes)
            for start in range(0, len(agents), _CHUNK):
                chunk = agents[start : start + _CHUNK]
                for r in conn.execute(select(route_instance).where(t.agent.in_(chunk))):
                    row = instance_row(r)
                    stored[row.agent].append(row)
            for agent in agents:
                plan = plan_sync(stored[agent], batch.changes[agent])
                for inst in plan.inserts:
                    inserts.append(_values(inst, agent, now, mark))
                    audit.append(self._audit_row("register", inst.key, agent, inst.check))
                for row in plan.deletes:
                    gone_ids.append(row.id)
                    audit.append(self._audit_row("deregister", row.key, agent, row.check))
                for row, inst in plan.updates:
                    since = row.since if inst.passing == row.passing else now
                    changes.append(
                        {
                            "b_id": row.id,
                            "b_check": inst.check,
                            "b_pass": inst.passing,
                            "b_since": since,
                            "b_changed": mark,
                        }
                    )
                registered += len(plan.inserts)
                deregistered += len(plan.deletes)
                updated += len(plan.updates)
                flaps += plan.flaps
        expired_rows: list[InstanceRow] = []
        if batch.expire:
            # One expiry takes every instance whose agent already missed two renewals
            # (unseen for GROUP x lease) along with those past the lease: agents cut off
            # together (a partition) expire in one step, which the guard then judges as
            # one mass removal, instead of one renewal period at a time.
            query = select(route_instance).where(t.last_seen < now - GROUP * lease)
            if not self._sqlite:
                query = query.with_for_update()
            candidates = [instance_row(r) for r in conn.execute(query)]
            alive = batch.changes.keys() | batch.renewals
            expired_rows = expired(candidates, now, lease, alive=alive)
            for row in expired_rows:
                gone_ids.append(row.id)
                detail = f"lease expired: agent {row.agent} unseen since {row.last_seen}"
                audit.append(self._audit_row("expire", row.key, row.agent, row.check, detail))
            conn.execute(
                delete(route_instance_gone).where(route_instance_gone.c.ts < now - GONE_KEEP)
            )
        if inserts:
            conn.execute(insert(route_instance), inserts)
        if gone_ids:
            _delete_ids(conn, gone_ids)
            conn.execute(
                insert(route_instance_gone),
                [{"mark": mark, "instance_id": i, "ts": now} for i in gone_ids],
            )
        if changes:
            conn.execute(
                update(route_instance)
                .where(t.id == bindparam("b_id"))
                .values(
                    check_kind=bindparam("b_check"),
                    passing=bindparam("b_pass"),
                    since=bindparam("b_since"),
                    changed=bindparam("b_changed"),
                ),
                changes,
            )
        _renew(conn, sorted(batch.changes), now)  # a change renews the agent's lease too
        renewed = _renew(conn, sorted(batch.renewals - batch.changes.keys()), now)
        changed = bool(inserts or gone_ids or changes)
        if changed:
            self._audit.write(conn, audit)
            conn.execute(
                update(route_instance_mark).where(route_instance_mark.c.id == 1).values(mark=mark)
            )
        return WriteResult(
            registered=registered,
            deregistered=deregistered,
            updated=updated,
            flaps=flaps,
            expired=len(expired_rows),
            renewed=renewed,
            expired_agents=tuple(sorted({r.agent for r in expired_rows})),
            mark=mark if changed else None,
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


def _values(inst: Instance, agent: str, now: int, mark: int) -> dict[str, object]:
    return {
        "changed": mark,
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


def _lock_mark(conn: Connection, sqlite: bool) -> int:
    """Lock the one mark row (created on first use: a concurrent creator makes this
    transaction fail and retry, which then finds the row) and return its value."""
    m = route_instance_mark.c
    query = select(m.mark).where(m.id == 1)
    if not sqlite:
        query = query.with_for_update()
    value = conn.execute(query).scalar()
    if value is None:
        conn.execute(insert(route_instance_mark).values(id=1, mark=0))
        return 0
    return int(value)
