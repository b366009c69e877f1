"""What the route service itself writes to and reads from RouteAudit.

- Held tables (the protocol of the COMMON contract): one 'hold' row per held version,
  actor 'dns' (not written again when an identical hold row for that version is already
  the newest hold/apply row: several route services share one database); an operator's
  'release' row with a larger id makes a holding service apply the table and write an
  'apply' row ('released by <actor>'); a hold that ends because the table changed again
  writes 'apply' too ('table changed').
- Edits made in plain SQL: for the modules a load's diff finds changed, one row per host
  added or removed, actor 'sql', unless a lars tool or another route service (its 'sql'
  rows: several route services share one database) already audited that module with a
  version in (old version, new version]. At most MAX_SQL_ROWS rows per load (a mass
  delete of 100,000 hosts is logged with the count, not written 100,000 times).
  Two route services that load the same change at the same moment may both write it
  (check, then insert; no unique key): rare, and accepted.
Reads go through the read engine (which may be a replica); writes through the route
service's write engine, and none while it may not write (lars.dns.writeaccess: a route
service on a read-only database without `--write-db` writes no audit row; a hold it
finds recorded by a writing service is the same hold, so a release reaches it).
On an original Lars database (no RouteAudit) every call is a no-op; AuditLog logs that
once. Errors surface as StoreUnavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import sqlalchemy
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_audit
from lars.dns.store import unavailable
from lars.dns.table import Key, RouteTable
from lars.protocol.version import is_newer
from lars.routes.audit import EDIT_ACTIONS, AuditEntry, AuditLog

__all__ = ["MAX_SQL_ROWS", "ServiceAudit", "sql_change_rows"]

log = logging.getLogger(__name__)

ACTOR = "dns"
SQL_ACTOR = "sql"
MAX_SQL_ROWS = 1000


def sql_change_rows(
    audit: AuditLog,
    old: RouteTable,
    new: RouteTable,
    modules: Iterable[Key],
    limit: int = MAX_SQL_ROWS,
) -> tuple[list[dict[str, object]], int]:
    """actor='sql' add/del rows for the hosts that differ in `modules`, at most `limit`;
    returns (rows, how many were left out). Hosts served only because an agent
    registered them are not plain-SQL edits (their register, deregister and expire rows
    are written by the registration writer): they are left out."""
    rows: list[dict[str, object]] = []
    left_out = 0
    registered = old.registered | new.registered
    for key in sorted(modules):
        before, after = set(old.hosts(key)), set(new.hosts(key))
        for action, hosts in (("del", before - after), ("add", after - before)):
            for ip, port in sorted(hosts):
                if registered and (key[0], key[1], ip, port) in registered:
                    continue
                if len(rows) >= limit:
                    left_out += 1
                    continue
                rows.append(
                    audit.row(
                        actor=SQL_ACTOR,
                        action=action,
                        modid=key[0],
                        cmdid=key[1],
                        serverip=ip,
                        serverport=port,
                        version=new.version,
                        detail="found by the route service (plain SQL edit)",
                    )
                )
    return rows, left_out


class ServiceAudit:
    """The route service's RouteAudit reads and writes, through one AuditLog."""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        audit: AuditLog | None = None,
        *,
        write_engine: sqlalchemy.Engine | None = None,
        writable: Callable[[], bool] = lambda: True,
    ) -> None:
        self._engine = engine  # reads (may be a replica: issue 22)
        self._audit = audit if audit is not None else AuditLog(engine)
        # writes, through the route service's write engine, only while `writable()`
        # (lars.dns.writeaccess): a service that may not write writes no audit row
        if write_engine is None or write_engine is engine:
            self._writer = self._audit
        else:
            self._writer = AuditLog(write_engine)
        self._writable = writable

    @property
    def available(self) -> bool:
        return self._audit.available()

    def record_hold(self, version: int, detail: str) -> int | None:
        """The id of the 'hold' row for `version` (written unless an identical one is
        already the newest hold/apply row); None without a RouteAudit table."""
        writable = self._writable()
        audit = self._writer if writable else self._audit  # read-only: another's row
        if not audit.available():
            return None
        latest = audit.history(actions=("hold", "apply"), limit=1)
        newest = latest[0] if latest else None
        if newest and (newest.action, newest.version, newest.detail) == ("hold", version, detail):
            return newest.id
        if not writable:
            # Held here alone (the local snapshot file keeps it): no row of our own, so a
            # release written from now on ends it (`lars route release --force`, or a
            # plain release of a writing service's row); older release rows do not.
            everything = audit.history(limit=1)
            return everything[0].id if everything else 0
        row = audit.row(actor=ACTOR, action="hold", version=version, detail=detail)
        return audit.insert_one(row)

    def active_hold(self) -> AuditEntry | None:
        """The 'hold' row in force (the newest hold/apply row is a hold and nobody has
        released it since), for a service that starts while a table is held."""
        if not self._audit.available():
            return None
        state = self._audit.hold_state()
        return state.hold if state is not None and state.release is None else None

    def release_after(self, hold_id: int) -> AuditEntry | None:
        """The newest 'release' row with an id above the hold row's, if any."""
        rows = self._audit.history(actions=("release",), after_id=hold_id, limit=1)
        return rows[0] if rows else None

    def record_apply(self, version: int, detail: str) -> None:
        if not self._writable():
            return
        self._writer.append(
            [self._writer.row(actor=ACTOR, action="apply", version=version, detail=detail)]
        )

    def restored_between(self, old_version: int, new_version: int) -> bool:
        """Is there a 'restore' row with a version in (old_version, new_version]?"""
        versions = _versions_after(old_version, new_version)
        if versions is None:
            return False
        query = (
            select(route_audit.c.id)
            .where(and_(route_audit.c.action == "restore", versions))
            .limit(1)
        )
        try:
            with self._engine.connect() as conn:
                return conn.execute(query).first() is not None
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def covered_modules(self, old_version: int, new_version: int) -> set[Key]:
        """Modules a lars tool or a route service ('sql' rows) audited with a version in
        (old_version, new_version]. A module counts as covered for the whole range: if
        service A audited (v1, v2] and we load (v0, v3], changes to it in (v2, v3] are
        A's to write when it loads v3 (its next range starts at v2, and our skip wrote
        no row there); changes in (v0, v1] were written by A's load before, unless A was
        not running then (those go unaudited: rare, accepted). Nothing is covered when
        new_version is not newer (two plain-SQL edits in one second keep the version):
        every route service writes those rows."""
        versions = _versions_after(old_version, new_version)
        if versions is None or not self._audit.available():
            return set()
        query = (
            select(route_audit.c.modid, route_audit.c.cmdid)
            .where(
                and_(
                    versions,
                    route_audit.c.actor != ACTOR,  # lars tools and 'sql' rows
                    route_audit.c.action.in_(EDIT_ACTIONS),  # not table-wide rows,
                )
            )
            .group_by(route_audit.c.modid, route_audit.c.cmdid)
        )
        try:
            with self._engine.connect() as conn:
                return {(int(m), int(c)) for m, c in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def record_sql_edits(self, old: RouteTable, new: RouteTable, changed: set[Key]) -> int:
        """Write 'sql' rows for `changed` modules no lars tool or other route service has
        audited in (old.version, new.version]; returns rows written."""
        if not changed or not self._writable() or not self._audit.available():
            return 0
        if self.restored_between(old.version, new.version):
            return 0  # `lars route restore` wrote these rows, audited with one 'restore' row
        modules = changed - self.covered_modules(old.version, new.version)
        rows, left_out = sql_change_rows(self._writer, old, new, modules)
        self._writer.append(rows)
        if left_out:
            log.warning(
                "dns: %d more host changes made in plain SQL at version %d were not "
                "audited one by one (at most %d rows per load)",
                left_out,
                new.version,
                MAX_SQL_ROWS,
            )
        return len(rows)


def _versions_after(old: int, new: int) -> ColumnElement[bool] | None:
    """RouteAudit.version in (old, new], in serial-number order: across a renumber past
    4294967295 (new 1, old 4294967295) that is above old OR up to new; None when `new`
    is not newer than `old` (lars.protocol.version)."""
    v = route_audit.c.version
    if new > old:
        return and_(v > old, v <= new)
    if is_newer(new, old):  # wrapped
        return or_(v > old, v <= new)
    return None
