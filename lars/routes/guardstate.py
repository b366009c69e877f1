"""The route services' guard state: what they serve, the window baseline and the hold.

Written by the route service (lars/dns/guardstore.py) through its write connection after
every table it serves and every hold that begins or ends; read by a route service at start
(so a restart never serves less than the last good table, nor a held table), by
`lars route status` and `lars route restore`, and by the console. It lives here, in
lars/routes/, because the console and the CLI must not import lars.dns.

One row (id 1) of RouteGuardState (lars/db.py): a few headline columns and `state`, a
zlib-compressed JSON document:
    {"v": 1, "saved_at", "writer", "db", "version", "since",
     "routes": [[modid, cmdid, [[ip, port, weight], ...]], ...],
     "drained": [[modid, cmdid, ip, port, weight], ...],   # RouteData rows drained then
     "past": [[modid, cmdid, [[end, count], ...]], ...],   # the window's earlier peaks
     "held": null | {"version", "since", "audit_id", "reason", "detail", "digest",
                     "modules", "hosts"}}
The same bytes make the route service's local snapshot file. On a database without the
table (an original Lars one) reads answer None and writes do nothing.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lars.db import route_guard_state
from lars.errors import StoreUnavailable

__all__ = [
    "FORMAT",
    "GuardState",
    "HeldInfo",
    "decode",
    "encode",
    "has_table",
    "read_state",
    "routes_digest",
    "write_state",
]

FORMAT = 1
ROW_ID = 1
_DETAIL_MAX = 1024

Key = tuple[int, int]
HostW = tuple[int, int, int]  # (unsigned ip, port, weight)
Drained = tuple[int, int, int, int, int]  # (modid, cmdid, unsigned ip, port, weight)


@dataclass(frozen=True, slots=True)
class HeldInfo:
    """The table held back (not served) and why."""

    version: int
    since: float  # unix time the hold began (the baseline does not age from then on)
    audit_id: int | None  # its 'hold' row in RouteAudit
    reason: str
    detail: str
    digest: str  # routes_digest of the held table: the same table after a restart
    modules: int
    hosts: int


@dataclass(frozen=True, slots=True)
class GuardState:
    """The served (last good) table, the window's past peaks, and the hold."""

    saved_at: float
    writer: str
    version: int  # RouteVersion of the served table
    since: float  # unix time it began being served
    routes: Mapping[Key, tuple[HostW, ...]]
    drained: tuple[Drained, ...] = ()
    past: Mapping[Key, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    held: HeldInfo | None = None
    db: str = ""  # the database it belongs to (its URL without password), for the file

    @property
    def hosts(self) -> int:
        return sum(len(h) for h in self.routes.values())

    @property
    def modules(self) -> int:
        return len(self.routes)


def routes_digest(routes: Mapping[Key, Iterable[HostW]]) -> str:
    """A digest of a table's hosts and weights: equal tables, equal digests."""
    h = hashlib.sha256()
    for key in sorted(routes):
        h.update(f"{key[0]}:{key[1]}=".encode())
        for ip, port, weight in sorted(routes[key]):
            h.update(f"{ip},{port},{weight};".encode())
    return h.hexdigest()[:32]


def encode(state: GuardState) -> bytes:
    doc: dict[str, Any] = {
        "v": FORMAT,
        "saved_at": state.saved_at,
        "writer": state.writer,
        "db": state.db,
        "version": state.version,
        "since": state.since,
        "routes": [[m, c, [list(h) for h in hosts]] for (m, c), hosts in state.routes.items()],
        "drained": [list(d) for d in state.drained],
        "past": [[m, c, [list(p) for p in peaks]] for (m, c), peaks in state.past.items()],
        "held": None,
    }
    held = state.held
    if held is not None:
        doc["held"] = {
            "version": held.version,
            "since": held.since,
            "audit_id": held.audit_id,
            "reason": held.reason,
            "detail": held.detail,
            "digest": held.digest,
            "modules": held.modules,
            "hosts": held.hosts,
        }
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def decode(data: bytes) -> GuardState:
    """The state in `data`; ValueError when it is not one (corrupt, another format)."""
    try:
        doc = json.loads(zlib.decompress(data))
        if not isinstance(doc, dict) or doc.get("v") != FORMAT:
            raise ValueError(f"not a guard state of format {FORMAT}")
        routes = {
            (int(m), int(c)): tuple((int(ip), int(p), int(w)) for ip, p, w in hosts)
            for m, c, hosts in doc["routes"]
        }
        drained = tuple(
            (int(m), int(c), int(ip), int(p), int(w)) for m, c, ip, p, w in doc["drained"]
        )
        past = {
            (int(m), int(c)): tuple((float(t), int(n)) for t, n in peaks)
            for m, c, peaks in doc["past"]
        }
        held = None
        h = doc.get("held")
        if h is not None:
            held = HeldInfo(
                version=int(h["version"]),
                since=float(h["since"]),
                audit_id=None if h["audit_id"] is None else int(h["audit_id"]),
                reason=str(h["reason"]),
                detail=str(h["detail"]),
                digest=str(h["digest"]),
                modules=int(h["modules"]),
                hosts=int(h["hosts"]),
            )
        return GuardState(
            saved_at=float(doc["saved_at"]),
            writer=str(doc["writer"]),
            version=int(doc["version"]),
            since=float(doc["since"]),
            routes=routes,
            drained=drained,
            past=past,
            held=held,
            db=str(doc.get("db", "")),
        )
    except (zlib.error, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a guard state: {type(exc).__name__}: {exc}") from exc


def has_table(engine: sqlalchemy.Engine) -> bool:
    """Does the database have RouteGuardState (`lars initdb` creates it)?"""
    try:
        return sqlalchemy.inspect(engine).has_table(route_guard_state.name)
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from exc


def read_state(engine: sqlalchemy.Engine) -> GuardState | None:
    """The state the route services wrote; None when there is none (or no table).
    StoreUnavailable when the database fails; a corrupt row reads as ValueError."""
    if not has_table(engine):
        return None
    query = select(route_guard_state.c.state).where(route_guard_state.c.id == ROW_ID)
    try:
        with engine.connect() as conn:
            data = conn.execute(query).scalar()
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from exc
    return None if data is None else decode(bytes(data))


def write_state(engine: sqlalchemy.Engine, state: GuardState, data: bytes | None = None) -> None:
    """Replace the row with `state` (`data`: its encoding, when already made).
    StoreUnavailable when the database fails."""
    held = state.held
    values = {
        "saved_at": int(state.saved_at * 1000),
        "writer": state.writer[:128],
        "served_version": state.version,
        "served_modules": state.modules,
        "served_hosts": state.hosts,
        "served_since": int(state.since),
        "held_version": None if held is None else held.version,
        "held_since": None if held is None else int(held.since),
        "held_detail": "" if held is None else held.detail[:_DETAIL_MAX],
        "state": data if data is not None else encode(state),
    }
    row = route_guard_state.c.id == ROW_ID
    try:
        for _ in range(2):  # two route services inserting the first row at once
            with engine.begin() as conn:
                if conn.execute(update(route_guard_state).where(row).values(**values)).rowcount:
                    return
                try:
                    conn.execute(insert(route_guard_state).values(id=ROW_ID, **values))
                    return
                except IntegrityError:
                    continue
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"route database unavailable: {type(cause).__name__}: {cause}")
