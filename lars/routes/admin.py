"""RouteAdmin: the one way lars edits routes (`lars route`, the console, tests).

Reads (the route list with each host's RouteHostMeta settings, the version, pending
RouteChange rows), a hold's release, and the edits: add, del, replace and del-module of
RouteData hosts here, drain, undrain and weight of RouteHostMeta in lars/routes/hostedit.py
(mixed in). Every edit is one transaction of lars/routes/routeedit.py: a version bump to
max(old + 1, unix time), one RouteChange row per module touched and one RouteAudit row
per host or module edited, by the caller's actor (the console user, or
`cli:<os user>`), committed or rolled back together. A new edit kind is an `edit`
callable that changes rows and returns its `Change`s.

Deleting a host deletes its RouteHostMeta row; replacing it moves the row to the new
address. On an original Lars database (no RouteAudit, no RouteHostMeta) edits work as
before, nothing is audited and drain and weights are refused (each logged once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import sqlalchemy
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_change, route_data, route_instance, route_version
from lars.errors import ValidationError
from lars.protocol import uint_to_dotted
from lars.protocol.limits import MAX_HOSTS_PER_MODULE
from lars.routes import hostmeta
from lars.routes.audit import AuditLog, Release, cli_actor
from lars.routes.changegc import DEFAULT_RETENTION, check_retention
from lars.routes.guardstate import GuardState, read_state
from lars.routes.hostedit import HostSettingsEdits
from lars.routes.hostmeta import MetaPresence
from lars.routes.restore import Restored, restore_served
from lars.routes.routeedit import (
    MAX_ID,
    Change,
    host_ids,
    run_edit,
    unavailable,
    validate_host,
    validate_ids,
)
from lars.routes.routelist import (
    RouteEntry,
    entry,
    instance_query,
    list_query,
    merge_registered,
)

__all__ = ["MAX_ID", "Change", "RouteAdmin", "RouteEntry", "validate_host", "validate_ids"]


class RouteAdmin(HostSettingsEdits):
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
        change_retention: int = DEFAULT_RETENTION,
    ) -> None:
        check_retention(change_retention)
        self._engine = engine
        self._clock = clock
        # each edit trims RouteChange rows older than this (seconds; lars.routes.changegc)
        self.change_retention = change_retention
        self.actor = actor if actor is not None else cli_actor()
        self.audit = audit if audit is not None else AuditLog(engine, clock=clock)
        self.meta = MetaPresence(engine, recheck=5.0)
        self._instances = False  # RouteInstance seen (registrations listed)

    # reads

    def list_routes(
        self, modid: int | None = None, cmdid: int | None = None, *, registered: bool = False
    ) -> list[RouteEntry]:
        """RouteData rows with their RouteHostMeta settings (drained hosts included);
        with `registered`, also the hosts agents registered (RouteInstance: source,
        owning agent, check and state; lars.routes.routelist)."""
        try:
            with_meta = self.meta.available()
            with_instances = registered and self._instances_available()
            with self._engine.connect() as conn:
                rows = conn.execute(list_query(with_meta, modid, cmdid)).all()
                instances = (
                    conn.execute(instance_query(with_meta, modid, cmdid)).all()
                    if with_instances
                    else []
                )
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
        static = [entry(row) for row in rows]
        return merge_registered(static, instances) if instances else static

    def _instances_available(self) -> bool:
        """Does RouteInstance exist (asked until it does, then remembered)?"""
        if not self._instances:
            self._instances = sqlalchemy.inspect(self._engine).has_table(route_instance.name)
        return self._instances

    def has_host_meta(self) -> bool:
        """Can hosts be drained and weighted here (the RouteHostMeta table exists)?"""
        return self._meta_present()

    def _meta_present(self) -> bool:
        try:
            return self.meta.available()
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def current_version(self) -> int:
        try:
            with self._engine.connect() as conn:
                value = conn.execute(
                    select(route_version.c.version).where(route_version.c.id == 1)
                ).scalar()
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
        return int(value or 0)

    def pending_changes(self) -> list[tuple[int, int, int]]:
        query = select(route_change.c.modid, route_change.c.cmdid, route_change.c.version)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query.order_by(route_change.c.id)).all()
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
        return [(int(m), int(c), int(v)) for m, c, v in rows]

    def release_hold(self, *, actor: str | None = None, force: bool = False) -> Release:
        """Ask the route services to apply a held table: a 'release' row at the current
        version (lars/routes/audit.py). NothingHeld when no table is held, unless `force`."""
        return self.audit.release(
            actor if actor is not None else self.actor, self.current_version(), force=force
        )

    def restore_served(self, *, actor: str | None = None, force: bool = False) -> Restored:
        """Write the table the route services serve back into RouteData and RouteHostMeta
        (lars/routes/restore.py), in the one edit transaction. NothingHeld when no table
        is held, unless `force`; NoServedTable when no route service saved one."""
        return restore_served(
            self._engine,
            self.audit,
            actor if actor is not None else self.actor,
            force=force,
            clock=self._clock,
            meta=self.meta,
        )

    def guard_state(self) -> GuardState | None:
        """What the route services saved (served table, hold); None when nothing is, or
        the saved state is unreadable. Raises StoreUnavailable."""
        try:
            return read_state(self._engine)
        except ValueError:
            return None

    # edits

    def add_host(
        self, modid: int, cmdid: int, ip: str, port: int, *, actor: str | None = None
    ) -> int:
        validate_ids(modid, cmdid)
        uip = validate_host(ip, port)

        def edit(conn: Connection) -> list[Change]:
            if host_ids(conn, modid, cmdid, uip, port):
                raise ValidationError(f"host {ip}:{port} is already in module {modid}:{cmdid}")
            count = len(host_ids(conn, modid, cmdid))
            if count >= MAX_HOSTS_PER_MODULE:
                raise ValidationError(
                    f"module {modid}:{cmdid} already has {count} hosts; a route reply holds "
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
            ids = host_ids(conn, modid, cmdid, uip, port)
            if not ids:
                raise ValidationError(f"host {ip}:{port} is not in module {modid}:{cmdid}")
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
            ids = host_ids(conn, modid, cmdid, old_uip, old_port)
            if not ids:
                raise ValidationError(f"host {old_ip}:{old_port} is not in module {modid}:{cmdid}")
            if (old_uip, old_port) != (new_uip, new_port) and host_ids(
                conn, modid, cmdid, new_uip, new_port
            ):
                raise ValidationError(
                    f"host {new_ip}:{new_port} is already in module {modid}:{cmdid}"
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
                raise ValidationError(f"module {modid}:{cmdid} has no hosts")
            conn.execute(delete(route_data).where(route_data.c.id.in_([r.id for r in rows])))
            if with_meta:
                hostmeta.forget(conn, modid, cmdid)
            hosts = ", ".join(f"{uint_to_dotted(int(r.serverip))}:{r.serverport}" for r in rows)
            return [Change("del-module", modid, cmdid, 0, 0, f"{len(rows)} host(s): {hosts}")]

        return self._edit([(modid, cmdid)], edit, actor)

    # the one transaction

    def _edit(
        self,
        modules: list[tuple[int, int]],
        edit: Callable[[Connection], Sequence[Change]],
        actor: str | None = None,
    ) -> int:
        """The one transaction (lars/routes/routeedit.py), by `actor` (default self.actor)."""
        who = actor if actor is not None else self.actor
        return run_edit(
            self._engine,
            self.audit,
            self._clock,
            modules,
            edit,
            who,
            retention=self.change_retention,
        )
