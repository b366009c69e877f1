"""RouteAdmin: the one way lars edits routes (`lars route`, the console, tests).

Every edit changes RouteData, inserts one RouteChange row per module touched and raises
RouteVersion to max(old + 1, unix time) in ONE transaction, exactly what a DBA does by
hand (spec section 5), so running route services push it within a poll interval and
two edits in the same second never share a version. Edits are serialised: SQLite takes
its write lock first (BEGIN IMMEDIATE), MySQL locks the RouteVersion row FOR UPDATE.

The same transaction writes one RouteAudit row per host or module edited (lars/dns/audit.py),
with the bumped version and the caller's actor (the console user, or `cli:<os user>`), so
an edit and its audit commit or fail together. On an original Lars database without
RouteAudit, edits work as before and nothing is audited (logged once). A new edit kind
(drain, weight, ...) is an `edit` callable that changes rows and returns its `Change`s.

Drain, undrain and weight edit RouteHostMeta (lars/dns/hostmeta.py, its rules there) in
the same one transaction with a version bump and a RouteChange row, so route services
push them as any route edit. Deleting a host deletes its RouteHostMeta row; replacing it
moves the row to the new address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_change, route_data, route_host_meta, route_version
from lars.dbengine import is_sqlite
from lars.dns import hostmeta
from lars.dns.audit import AuditLog, Release, cli_actor
from lars.dns.hostmeta import MetaPresence
from lars.dns.table import MAX_HOSTS_PER_MODULE
from lars.errors import StoreUnavailable, ValidationError
from lars.protocol import dotted_to_uint, uint_to_dotted
from lars.protocol.weight import validate_weight

__all__ = ["MAX_ID", "Change", "RouteAdmin", "RouteEntry", "validate_host", "validate_ids"]

MAX_ID = 2_147_483_647  # ids travel as int32 on the wire


@dataclass(frozen=True, slots=True)
class RouteEntry:
    modid: int
    cmdid: int
    ip: str  # dotted
    port: int
    # RouteHostMeta (defaults when the host has no row or the table is missing)
    weight: int = 1
    enabled: bool = True  # False: drained, left out of every route reply and push
    note: str = ""
    updated_at: int = 0  # unix seconds of the last drain/undrain/weight edit
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """What one edit did to one host (or, with serverip 0, to one module): an audit row
    without its actor, time and version, which the edit's transaction fills in."""

    action: str  # one of lars.dns.audit.ACTIONS
    modid: int
    cmdid: int
    serverip: int = 0  # unsigned
    serverport: int = 0
    detail: str = ""


def validate_ids(modid: int, cmdid: int) -> None:
    for name, value in (("modid", modid), ("cmdid", cmdid)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise ValidationError(f"{name} must be an integer in 0..{MAX_ID}, got {value!r}")


def validate_host(ip: str, port: int) -> int:
    """The unsigned address of a dotted IPv4 `ip`; ValidationError on a bad ip or port."""
    if not isinstance(ip, str):
        raise ValidationError(f"ip must be a dotted IPv4 string, got {ip!r}")
    uip = dotted_to_uint(ip.strip())
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValidationError(f"port must be an integer in 1..65535, got {port!r}")
    return uip


class RouteAdmin:
    """Reads and edits the route table. Safe to share between threads (one engine).

    `actor` names who edits in the audit log (default `cli:<os user>`); each edit may name
    another with its `actor=` keyword (a console with several users, a test).
    """

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        clock: Callable[[], float] = time.time,
        actor: str | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.actor = actor if actor is not None else cli_actor()
        self.audit = audit if audit is not None else AuditLog(engine, clock=clock)
        self.meta = MetaPresence(engine, recheck=5.0)

    # reads

    def list_routes(self, modid: int | None = None, cmdid: int | None = None) -> list[RouteEntry]:
        """RouteData rows with their RouteHostMeta settings (drained hosts included)."""
        d, m = route_data.c, route_host_meta.c
        try:
            with_meta = self.meta.available()
            columns = [d.modid, d.cmdid, d.serverip, d.serverport]
            source: sqlalchemy.FromClause = route_data
            if with_meta:
                columns += [m.weight, m.enabled, m.note, m.updated_at, m.updated_by]
                source = route_data.outerjoin(
                    route_host_meta,
                    and_(
                        m.modid == d.modid,
                        m.cmdid == d.cmdid,
                        m.serverip == d.serverip,
                        m.serverport == d.serverport,
                    ),
                )
            query = (
                select(*columns)
                .select_from(source)
                .order_by(d.modid, d.cmdid, d.serverip, d.serverport)
            )
            if modid is not None:
                query = query.where(d.modid == modid)
            if cmdid is not None:
                query = query.where(d.cmdid == cmdid)
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return [_entry(row) for row in rows]

    def has_host_meta(self) -> bool:
        """Can hosts be drained and weighted here (the RouteHostMeta table exists)?"""
        return self._meta_present()

    def _meta_present(self) -> bool:
        try:
            return self.meta.available()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    def current_version(self) -> int:
        try:
            with self._engine.connect() as conn:
                value = conn.execute(
                    select(route_version.c.version).where(route_version.c.id == 1)
                ).scalar()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return int(value or 0)

    def pending_changes(self) -> list[tuple[int, int, int]]:
        query = select(route_change.c.modid, route_change.c.cmdid, route_change.c.version)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query.order_by(route_change.c.id)).all()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return [(int(m), int(c), int(v)) for m, c, v in rows]

    def release_hold(self, *, actor: str | None = None, force: bool = False) -> Release:
        """Ask the route services to apply a held table: a 'release' row at the current
        version (lars/dns/audit.py). NothingHeld when no table is held, unless `force`."""
        return self.audit.release(
            actor if actor is not None else self.actor, self.current_version(), force=force
        )

    # edits

    def add_host(
        self, modid: int, cmdid: int, ip: str, port: int, *, actor: str | None = None
    ) -> int:
        validate_ids(modid, cmdid)
        uip = validate_host(ip, port)

        def edit(conn: Connection) -> list[Change]:
            if _host_ids(conn, modid, cmdid, uip, port):
                raise ValidationError(f"host {ip}:{port} is already in module {modid}/{cmdid}")
            count = len(_host_ids(conn, modid, cmdid))
            if count >= MAX_HOSTS_PER_MODULE:
                raise ValidationError(
                    f"module {modid}/{cmdid} already has {count} hosts; a route reply holds "
                    f"at most {MAX_HOSTS_PER_MODULE} (frame limit)"
                )
            conn.execute(
                insert(route_data).values(modid=modid, cmdid=cmdid, serverip=uip, serverport=port)
            )
            return [Change("add", modid, cmdid, uip, port, f"{uint_to_dotted(uip)}:{port}")]

        return self._edit([(modid, cmdid)], edit, actor)

    def del_host(
        self, modid: int, cmdid: int, ip: str, port: int, *, actor: str | None = None
    ) -> int:
        validate_ids(modid, cmdid)
        uip = validate_host(ip, port)

        with_meta = self._meta_present()  # before the write lock

        def edit(conn: Connection) -> list[Change]:
            ids = _host_ids(conn, modid, cmdid, uip, port)
            if not ids:
                raise ValidationError(f"host {ip}:{port} is not in module {modid}/{cmdid}")
            conn.execute(delete(route_data).where(route_data.c.id.in_(ids)))
            if with_meta:
                hostmeta.forget(conn, modid, cmdid, (uip, port))
            return [Change("del", modid, cmdid, uip, port, f"{uint_to_dotted(uip)}:{port}")]

        return self._edit([(modid, cmdid)], edit, actor)

    def replace_host(
        self,
        modid: int,
        cmdid: int,
        old_ip: str,
        old_port: int,
        new_ip: str,
        new_port: int,
        *,
        actor: str | None = None,
    ) -> int:
        """Replace one host by another; the audit row names the new host, its detail both."""
        validate_ids(modid, cmdid)
        old_uip = validate_host(old_ip, old_port)
        new_uip = validate_host(new_ip, new_port)

        with_meta = self._meta_present()  # before the write lock

        def edit(conn: Connection) -> list[Change]:
            ids = _host_ids(conn, modid, cmdid, old_uip, old_port)
            if not ids:
                raise ValidationError(f"host {old_ip}:{old_port} is not in module {modid}/{cmdid}")
            if (old_uip, old_port) != (new_uip, new_port) and _host_ids(
                conn, modid, cmdid, new_uip, new_port
            ):
                raise ValidationError(
                    f"host {new_ip}:{new_port} is already in module {modid}/{cmdid}"
                )
            conn.execute(
                update(route_data)
                .where(route_data.c.id.in_(ids))
                .values(serverip=new_uip, serverport=new_port)
            )
            if with_meta:
                hostmeta.move(conn, modid, cmdid, (old_uip, old_port), (new_uip, new_port))
            detail = f"{uint_to_dotted(old_uip)}:{old_port} -> {uint_to_dotted(new_uip)}:{new_port}"
            return [Change("replace", modid, cmdid, new_uip, new_port, detail)]

        return self._edit([(modid, cmdid)], edit, actor)

    def del_module(self, modid: int, cmdid: int, *, actor: str | None = None) -> int:
        """Remove every host of a module: one audit row for the module, listing them."""
        validate_ids(modid, cmdid)

        with_meta = self._meta_present()  # before the write lock

        def edit(conn: Connection) -> list[Change]:
            cond = and_(route_data.c.modid == modid, route_data.c.cmdid == cmdid)
            rows = conn.execute(
                select(route_data.c.id, route_data.c.serverip, route_data.c.serverport)
                .where(cond)
                .order_by(route_data.c.serverip, route_data.c.serverport)
            ).all()
            if not rows:
                raise ValidationError(f"module {modid}/{cmdid} has no hosts")
            conn.execute(delete(route_data).where(route_data.c.id.in_([r.id for r in rows])))
            if with_meta:
                hostmeta.forget(conn, modid, cmdid)
            hosts = ", ".join(f"{uint_to_dotted(int(r.serverip))}:{r.serverport}" for r in rows)
            return [Change("del-module", modid, cmdid, 0, 0, f"{len(rows)} host(s): {hosts}")]

        return self._edit([(modid, cmdid)], edit, actor)

    # drain and weights (RouteHostMeta)

    def drain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None = None,
        force: bool = False,
        actor: str | None = None,
    ) -> int:
        """Take a host out of every route reply and push, keeping its RouteData row.
        The last enabled host of a module needs `force` (audited as forced)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, enabled=False, note=note, force=force)

    def undrain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Serve a drained host again (agents take it as a new host: fresh idle state)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, enabled=True, note=note)

    def set_weight(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        weight: int,
        *,
        note: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Set a host's weight, 1..MAX_WEIGHT (0 is refused: drain the host instead)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, weight=weight, note=note)

    def _meta_edit(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        actor: str | None,
        *,
        note: str | None,
        enabled: bool | None = None,
        weight: int | None = None,
        force: bool = False,
    ) -> int:
        validate_ids(modid, cmdid)
        uip = validate_host(ip, port)
        note = hostmeta.validate_note(note)
        if weight is not None:
            validate_weight(weight)
        if not self._meta_present():
            raise ValidationError(
                f"this database has no {route_host_meta.name} table (an original Lars "
                "database): run `lars initdb` to add it, then drain and weights work"
            )
        who = actor if actor is not None else self.actor
        now = int(self._clock())

        def edit(conn: Connection) -> list[Change]:
            if weight is not None:
                action, detail = hostmeta.weight_change(
                    conn, modid, cmdid, (uip, port), weight, note=note, actor=who, now=now
                )
            else:
                action, detail = hostmeta.drain_change(
                    conn, modid, cmdid, (uip, port), enabled=bool(enabled), note=note,
                    force=force, actor=who, now=now,
                )  # fmt: skip
            return [Change(action, modid, cmdid, uip, port, detail)]

        return self._edit([(modid, cmdid)], edit, actor)

    # the one transaction

    def _edit(
        self,
        modules: list[tuple[int, int]],
        edit: Callable[[Connection], Sequence[Change]],
        actor: str | None = None,
    ) -> int:
        """Bump the version, run `edit`, add the RouteChange rows of `modules` and one audit
        row per Change that `edit` returns (by `actor`, default self.actor), all in ONE
        transaction; returns the new version. A ValidationError from `edit` rolls it back."""
        who = actor if actor is not None else self.actor
        try:
            audited = self.audit.available()  # before the write lock: it may open a connection
            with self._engine.connect() as conn, conn.begin():
                if is_sqlite(self._engine):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first
                version = self._bump(conn)
                changes = edit(conn)
                conn.execute(
                    insert(route_change),
                    [{"modid": m, "cmdid": c, "version": version} for m, c in modules],
                )
                if audited:
                    self.audit.write(conn, [self._audit_row(ch, who, version) for ch in changes])
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return version

    def _audit_row(self, change: Change, actor: str, version: int) -> dict[str, object]:
        return self.audit.row(
            actor=actor,
            action=change.action,
            modid=change.modid,
            cmdid=change.cmdid,
            serverip=change.serverip,
            serverport=change.serverport,
            version=version,
            detail=change.detail,
        )

    def _bump(self, conn: Connection) -> int:
        old = conn.execute(
            select(route_version.c.version).where(route_version.c.id == 1).with_for_update()
        ).scalar()
        version = max(int(old or 0) + 1, int(self._clock()))
        if old is None:
            conn.execute(insert(route_version).values(id=1, version=version))
        else:
            conn.execute(
                update(route_version).where(route_version.c.id == 1).values(version=version)
            )
        return version


def _entry(row: Sequence[Any]) -> RouteEntry:
    """A RouteEntry from a list_routes row (with or without the RouteHostMeta columns)."""
    modid, cmdid, ip, port = (int(v) for v in row[:4])
    entry = RouteEntry(modid, cmdid, uint_to_dotted(ip), port)
    if len(row) == 4 or row[4] is None:  # no table, or no row for this host
        return entry
    weight, enabled, note, updated_at, updated_by = row[4:]
    return RouteEntry(
        modid,
        cmdid,
        entry.ip,
        port,
        weight=int(weight),
        enabled=bool(enabled),
        note=str(note),
        updated_at=int(updated_at),
        updated_by=str(updated_by),
    )


def _host_ids(
    conn: Connection, modid: int, cmdid: int, uip: int | None = None, port: int | None = None
) -> list[int]:
    cond = and_(route_data.c.modid == modid, route_data.c.cmdid == cmdid)
    if uip is not None:
        cond = and_(cond, route_data.c.serverip == uip, route_data.c.serverport == port)
    return [int(i) for i in conn.execute(select(route_data.c.id).where(cond)).scalars()]


def _unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"route database unavailable: {type(cause).__name__}: {cause}")
