"""RouteAudit: who changed which route and when (a table the original programs never read).

Writers: `RouteAdmin` (for `lars route`, the console and its API: actor is the console
user or `cli:<os user>`), and the route service (actor `sql` for edits found by its diff
that no lars tool recorded; actor `dns` for held and released tables). An original Lars
database has no RouteAudit table: `AuditLog` then records nothing and logs that once,
and every other part of lars works as before. `lars initdb` creates the table.

Actions: add, del, replace, del-module, drain, undrain, weight (route edits, one row per
host or module), hold (the route service held a table), release (an operator asked the
route services to apply a held table), apply (a route service applied a released table),
register, deregister (an agent's registration came or went, actor `agent:<agent id>`)
and expire (a route service removed an instance whose agent's lease ran out, actor `dns`),
restore (an operator wrote the served table back over a held one, lars/routes/restore.py),
renumber (an edit found RouteVersion at 4294967295 and set it to 1, lars/routes/routeedit.py).
A table is held while the newest row among 'hold' and 'apply' is a 'hold' (`hold_state`).

Release is idempotent: one 'release' row per hold. The check and the insert run in one
transaction serialised on the RouteVersion row (FOR UPDATE; SQLite: BEGIN IMMEDIATE), so
a second or concurrent release of the newest hold answers the release already written
(`Release.repeated`) instead of writing another.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_audit, route_version
from lars.errors import StoreUnavailable, ValidationError
from lars.protocol import uint_to_dotted

__all__ = [
    "ACTIONS",
    "EDIT_ACTIONS",
    "MAX_ENTRY_ID",
    "TABLE_ACTIONS",
    "AuditEntry",
    "AuditLog",
    "HoldState",
    "NothingHeld",
    "Release",
    "cli_actor",
]

log = logging.getLogger(__name__)

ACTIONS = (
    "add",
    "del",
    "replace",
    "del-module",
    "drain",
    "undrain",
    "weight",
    "hold",
    "release",
    "apply",
    "register",
    "deregister",
    "expire",
    "restore",
    "renumber",
)
# about the whole table: modid/cmdid are 0
TABLE_ACTIONS = ("hold", "release", "apply", "restore", "renumber")
EDIT_ACTIONS = tuple(a for a in ACTIONS if a not in TABLE_ACTIONS)  # about one module
MAX_ENTRY_ID = 2**63 - 1  # the largest id both databases can bind in a query
_DETAIL_MAX = 1024
_ACTOR_MAX = 128


def cli_actor() -> str:
    """The actor of an edit made with `lars route` on this machine."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry and no $USER: still audit the edit
        user = "unknown"
    return f"cli:{user}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: int  # unix seconds
    actor: str
    action: str
    modid: int
    cmdid: int
    ip: str  # dotted; "0.0.0.0" for module-wide actions
    port: int  # 0 for module-wide actions
    version: int
    detail: str


class NothingHeld(ValidationError):
    """A release was asked for while no table is held (or there is no RouteAudit table)."""


@dataclass(frozen=True, slots=True)
class HoldState:
    """A held table: the route services' 'hold' row, and the newest operator 'release'
    written after it (None until someone releases; the hold ends with an 'apply' row)."""

    hold: AuditEntry
    release: AuditEntry | None


@dataclass(frozen=True, slots=True)
class Release:
    """What `AuditLog.release` wrote, and the hold it released (None when forced);
    `repeated`: the hold was released already, `entry` is that earlier release row."""

    entry: AuditEntry
    held: HoldState | None
    repeated: bool = False


class AuditLog:
    """Reads and appends RouteAudit rows; a no-op (logged once) where the table is missing."""

    def __init__(
        self, engine: sqlalchemy.Engine, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._available: bool | None = None

    def available(self) -> bool:
        """True when the RouteAudit table exists (checked once, then remembered)."""
        if self._available is None:
            try:
                present = sqlalchemy.inspect(self._engine).has_table(route_audit.name)
            except SQLAlchemyError as exc:
                raise _unavailable(exc) from exc
            if not present:
                log.warning(
                    "no %s table (an original Lars database): route changes are not "
                    "audited; `lars initdb` creates it",
                    route_audit.name,
                )
            self._available = present
        return self._available

    def row(
        self,
        *,
        actor: str,
        action: str,
        modid: int = 0,
        cmdid: int = 0,
        serverip: int = 0,
        serverport: int = 0,
        version: int = 0,
        detail: str = "",
    ) -> dict[str, object]:
        """One row's values, for `write` (several rows go in one INSERT)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        return {
            "ts": int(self._clock()),
            "actor": actor[:_ACTOR_MAX],
            "action": action,
            "modid": modid,
            "cmdid": cmdid,
            "serverip": serverip,
            "serverport": serverport,
            "version": version,
            "detail": detail[:_DETAIL_MAX],
        }

    def write(self, conn: Connection, rows: Sequence[dict[str, object]]) -> None:
        """Insert rows inside the caller's transaction (so an edit and its audit commit
        together); nothing when the table is missing or rows is empty."""
        if rows and self.available():
            conn.execute(insert(route_audit), list(rows))

    def append(self, rows: Sequence[dict[str, object]]) -> None:
        """Insert rows in a transaction of their own. Raises StoreUnavailable."""
        if not rows or not self.available():
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(route_audit), list(rows))
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    def insert_one(self, row: dict[str, object]) -> int:
        """Insert one row in a transaction of its own and return its id (the caller
        checked `available()`). Raises StoreUnavailable."""
        try:
            with self._engine.begin() as conn:
                key = conn.execute(insert(route_audit).values(**row)).inserted_primary_key
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return int(key[0]) if key else 0

    def history(
        self,
        modid: int | None = None,
        cmdid: int | None = None,
        *,
        limit: int = 100,
        actions: Sequence[str] | None = None,
        after_id: int = 0,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first, with id in (after_id, before_id): of one module when
        modid and cmdid are given, of one modid when only it is. `before_id` pages back."""
        if not self.available():
            return []
        query = select(route_audit).where(route_audit.c.id > after_id)
        if before_id is not None:
            query = query.where(route_audit.c.id < before_id)
        if modid is not None:
            query = query.where(route_audit.c.modid == modid)
        if cmdid is not None:
            query = query.where(route_audit.c.cmdid == cmdid)
        if actions:
            query = query.where(route_audit.c.action.in_(list(actions)))
        query = query.order_by(route_audit.c.id.desc()).limit(limit)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return [_entry(r._mapping) for r in rows]

    def hold_state(self) -> HoldState | None:
        """The held table, if any: the newest row among 'hold'/'apply' is a 'hold'."""
        latest = self.history(limit=1, actions=("hold", "apply"))
        if not latest or latest[0].action != "hold":
            return None
        release = self.history(limit=1, actions=("release",), after_id=latest[0].id)
        return HoldState(latest[0], release[0] if release else None)

    def release(self, actor: str, version: int, *, force: bool = False) -> Release:
        """Write an operator's 'release' row (version: the current RouteVersion); a holding
        route service then applies its table. NothingHeld unless a table is held or `force`.

        Idempotent: when the newest hold was released already, that release is answered
        (`repeated`) and nothing is written (once that hold was applied, `force` writes a
        forced row again); concurrent calls are serialised on the RouteVersion row, so
        they write one row."""
        if not self.available():
            raise NothingHeld(
                f"no {route_audit.name} table: route services cannot hold or release a table "
                "here; `lars initdb` creates it"
            )
        try:
            with self._engine.connect() as conn, conn.begin():
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first
                else:  # edits and releases queue here; the reads below see their commits
                    conn.execute(
                        select(route_version.c.id).where(route_version.c.id == 1).with_for_update()
                    )
                hold = _newest(conn, ("hold",))
                released = None if hold is None else _newest(conn, ("release",), hold.id)
                ended = None if hold is None else _newest(conn, ("apply",), hold.id)
                held = None if hold is None else HoldState(hold, released)
                if held is not None and released is not None and (ended is None or not force):
                    return Release(released, held, repeated=True)  # (after it: --force writes)
                if ended is not None:
                    held = None  # the newest hold ended (without a release)
                if held is None and not force:
                    raise NothingHeld("no route table is held: nothing to release")
                detail = (
                    f"released hold #{held.hold.id} (version {held.hold.version}): "
                    f"{held.hold.detail}"
                    if held is not None
                    else "forced: no table was held"
                )
                row = self.row(actor=actor, action="release", version=version, detail=detail)
                key = conn.execute(insert(route_audit).values(**row)).inserted_primary_key
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return Release(_entry({"id": int(key[0]) if key else 0, **row}), held)


def _newest(conn: Connection, actions: Sequence[str], after_id: int = 0) -> AuditEntry | None:
    """The newest row with one of `actions` and an id above `after_id`, read on `conn`."""
    query = (
        select(route_audit)
        .where(route_audit.c.id > after_id, route_audit.c.action.in_(list(actions)))
        .order_by(route_audit.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _entry(row._mapping)


def _entry(r: Mapping[Any, Any]) -> AuditEntry:
    return AuditEntry(
        id=int(r["id"]),
        ts=int(r["ts"]),
        actor=str(r["actor"]),
        action=str(r["action"]),
        modid=int(r["modid"]),
        cmdid=int(r["cmdid"]),
        ip=uint_to_dotted(int(r["serverip"])),
        port=int(r["serverport"]),
        version=int(r["version"]),
        detail=str(r["detail"]),
    )


def _unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"route database unavailable: {type(cause).__name__}: {cause}")
