"""The one transaction of every lars route edit, and what edits are made of.

`run_edit` changes RouteData (or RouteHostMeta) through an `edit` callable, inserts one
RouteChange row per module touched and raises RouteVersion to max(old + 1, unix time),
all in ONE transaction, exactly what a DBA does by hand (spec section 5): running route
services push it within a poll interval, and two edits in the same second never share a
version. Edits are serialised: SQLite takes its write lock first (BEGIN IMMEDIATE), MySQL
locks the RouteVersion row FOR UPDATE. The same transaction writes one RouteAudit row
per `Change` the edit returns (lars/routes/audit.py), with the bumped version and the
caller's actor, so an edit and its audit commit or fail together; on an original Lars
database without RouteAudit nothing is audited (logged once). RouteAdmin
(lars/routes/admin.py) is the one caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_change, route_data, route_version
from lars.dbengine import is_sqlite
from lars.errors import StoreUnavailable, ValidationError
from lars.protocol import dotted_to_uint
from lars.routes.audit import AuditLog

__all__ = [
    "MAX_ID",
    "Change",
    "host_ids",
    "run_edit",
    "unavailable",
    "validate_host",
    "validate_ids",
]

MAX_ID = 2_147_483_647  # ids travel as int32 on the wire


@dataclass(frozen=True, slots=True)
class Change:
    """What one edit did to one host (or, with serverip 0, to one module): an audit row
    without its actor, time and version, which the edit's transaction fills in."""

    action: str  # one of lars.routes.audit.ACTIONS
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


def run_edit(
    engine: sqlalchemy.Engine,
    audit: AuditLog,
    clock: Callable[[], float],
    modules: Sequence[tuple[int, int]],
    edit: Callable[[Connection], Sequence[Change]],
    actor: str,
) -> int:
    """Bump the version, run `edit`, add the RouteChange rows of `modules` and one audit
    row per Change that `edit` returns (by `actor`), all in ONE transaction; returns the
    new version. A ValidationError from `edit` rolls it back."""
    try:
        audited = audit.available()  # before the write lock: it may open a connection
        with engine.connect() as conn, conn.begin():
            if is_sqlite(engine):
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first
            version = _bump(conn, clock)
            changes = edit(conn)
            if modules:  # (read after edit(): a restore learns its modules inside it)
                conn.execute(
                    insert(route_change),
                    [{"modid": m, "cmdid": c, "version": version} for m, c in modules],
                )
            if audited:
                audit.write(conn, [_audit_row(audit, ch, actor, version) for ch in changes])
    except SQLAlchemyError as exc:
        raise unavailable(exc) from exc
    return version


def _audit_row(audit: AuditLog, change: Change, actor: str, version: int) -> dict[str, object]:
    return audit.row(
        actor=actor,
        action=change.action,
        modid=change.modid,
        cmdid=change.cmdid,
        serverip=change.serverip,
        serverport=change.serverport,
        version=version,
        detail=change.detail,
    )


def _bump(conn: Connection, clock: Callable[[], float]) -> int:
    old = conn.execute(
        select(route_version.c.version).where(route_version.c.id == 1).with_for_update()
    ).scalar()
    version = max(int(old or 0) + 1, int(clock()))
    if old is None:
        conn.execute(insert(route_version).values(id=1, version=version))
    else:
        conn.execute(update(route_version).where(route_version.c.id == 1).values(version=version))
    return version


def host_ids(
    conn: Connection, modid: int, cmdid: int, uip: int | None = None, port: int | None = None
) -> list[int]:
    """RouteData ids of the module's rows (of one host, with `uip` and `port`)."""
    cond = and_(route_data.c.modid == modid, route_data.c.cmdid == cmdid)
    if uip is not None:
        cond = and_(cond, route_data.c.serverip == uip, route_data.c.serverport == port)
    return [int(i) for i in conn.execute(select(route_data.c.id).where(cond)).scalars()]


def unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"route database unavailable: {type(cause).__name__}: {cause}")
