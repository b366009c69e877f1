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

The same transaction trims RouteChange rows more than `retention` (1 h) older than the
new version (lars/routes/changegc.py): route services that read a replica cannot delete
the rows they pushed (issue 22), so the edits keep the table small.

Edits cannot get stuck:
- RouteVersion is `int unsigned`: the bump after 4294967295 sets 1 (lars.protocol.version)
  and writes a 'renumber' audit row; change rows left above the new version are moved to
  it, so route services (which compare versions for inequality) load and push them.
- A serialisation failure (MySQL/MariaDB deadlock 1213, lock wait timeout 1205; two first
  edits of a database without its RouteVersion row deadlock on the gap lock) rolls the
  transaction back and runs it again, up to RETRIES more times, then fails with
  EditConflict (StoreUnavailable: CLI exit 1, API 503) saying what happened.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lars.db import route_change, route_data, route_version
from lars.dbengine import is_sqlite
from lars.errors import EditConflict, StoreUnavailable, ValidationError
from lars.protocol import dotted_to_uint
from lars.protocol.version import MAX_VERSION, next_version
from lars.routes.audit import AuditLog
from lars.routes.changegc import DEFAULT_RETENTION, check_retention, trim_changes

__all__ = [
    "MAX_ID",
    "RETRIES",
    "Change",
    "host_ids",
    "run_edit",
    "unavailable",
    "validate_host",
    "validate_ids",
]

MAX_ID = 2_147_483_647  # ids travel as int32 on the wire
RETRIES = 3  # more attempts after a serialisation failure
# MySQL/MariaDB errors that mean "run the transaction again": nothing was changed
SERIALISATION_FAILURES = {1213: "a deadlock (error 1213)", 1205: "a lock wait timeout (error 1205)"}
_BACKOFF = 0.05  # seconds before the first retry, doubled each time, jittered

log = logging.getLogger(__name__)


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
    *,
    sleep: Callable[[float], None] = time.sleep,
    retention: int = DEFAULT_RETENTION,
) -> int:
    """Bump the version, run `edit`, add the RouteChange rows of `modules` and one audit
    row per Change that `edit` returns (by `actor`), and trim the RouteChange rows more
    than `retention` seconds older than the new version (lars/routes/changegc.py), all
    in ONE transaction; returns the new version. A ValidationError from `edit` rolls it
    back. A serialisation failure runs it again (`edit` too) up to RETRIES times, then
    raises EditConflict."""
    check_retention(retention)
    try:
        audited = audit.available()  # before the write lock: it may open a connection
    except SQLAlchemyError as exc:
        raise unavailable(exc) from exc
    for attempt in range(RETRIES + 1):
        try:
            return _transaction(engine, audit, clock, modules, edit, actor, audited, retention)
        except DBAPIError as exc:
            what = SERIALISATION_FAILURES.get(db_error_code(exc) or 0)
            if what is None:
                raise unavailable(exc) from exc
            if attempt == RETRIES:
                raise EditConflict(
                    f"route edit not made: the database reported {what} on each of "
                    f"{RETRIES + 1} attempts (concurrent edits); nothing was changed, "
                    "try again"
                ) from exc
            log.info("route edit: %s, attempt %d; running it again", what, attempt + 1)
            sleep(_BACKOFF * 2**attempt * random.uniform(0.5, 1.5))
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
    raise AssertionError("unreachable")  # the loop returns or raises


def _transaction(
    engine: sqlalchemy.Engine,
    audit: AuditLog,
    clock: Callable[[], float],
    modules: Sequence[tuple[int, int]],
    edit: Callable[[Connection], Sequence[Change]],
    actor: str,
    audited: bool,
    retention: int,
) -> int:
    with engine.connect() as conn, conn.begin():
        if is_sqlite(engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first
        version, renumbered_from = _bump(conn, clock)
        changes = edit(conn)
        # (read after edit(): a restore learns its modules inside it; unique, since an
        # edit run again after a serialisation failure may have added them twice)
        touched = list(dict.fromkeys(modules))
        if touched:
            conn.execute(
                insert(route_change),
                [{"modid": m, "cmdid": c, "version": version} for m, c in touched],
            )
        trim_changes(conn, version, retention)  # rows every route service has pushed
        if audited:
            rows = [_audit_row(audit, ch, actor, version) for ch in changes]
            if renumbered_from is not None:
                detail = (
                    f"RouteVersion passed {MAX_VERSION} (int unsigned): renumbered from "
                    f"{renumbered_from} to {version}"
                )
                rows.insert(
                    0, audit.row(actor=actor, action="renumber", version=version, detail=detail)
                )
            audit.write(conn, rows)
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


def _bump(conn: Connection, clock: Callable[[], float]) -> tuple[int, int | None]:
    """The new version, and the old one when it wrapped (renumbered to 1)."""
    old = conn.execute(
        select(route_version.c.version).where(route_version.c.id == 1).with_for_update()
    ).scalar()
    version, renumbered = next_version(int(old or 0), clock())
    if old is None:
        conn.execute(insert(route_version).values(id=1, version=version))
    else:
        conn.execute(update(route_version).where(route_version.c.id == 1).values(version=version))
    if renumbered:  # change rows not loaded yet would sit above the version: move them
        conn.execute(
            update(route_change).where(route_change.c.version > version).values(version=version)
        )
    return version, (int(old or 0) if renumbered else None)


def host_ids(
    conn: Connection, modid: int, cmdid: int, uip: int | None = None, port: int | None = None
) -> list[int]:
    """RouteData ids of the module's rows (of one host, with `uip` and `port`)."""
    cond = and_(route_data.c.modid == modid, route_data.c.cmdid == cmdid)
    if uip is not None:
        cond = and_(cond, route_data.c.serverip == uip, route_data.c.serverport == port)
    return [int(i) for i in conn.execute(select(route_data.c.id).where(cond)).scalars()]


def db_error_code(exc: DBAPIError) -> int | None:
    """The MySQL/MariaDB error number of a driver error (pymysql: args[0]), or None."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    """A database error as lars reports it: 'unavailable' only when the database could
    not be reached or used; 'refused' when it answered no to the statement."""
    cause = getattr(exc, "orig", None) or exc
    reached = not isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    if isinstance(exc, DBAPIError) and reached:
        return StoreUnavailable(
            f"route database refused the operation: {type(cause).__name__}: {cause}"
        )
    return StoreUnavailable(f"route database unavailable: {type(cause).__name__}: {cause}")
