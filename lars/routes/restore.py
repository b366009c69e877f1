"""Restore: write the table the route services serve back into the database (issue 18).

While a table is held the route services keep serving the last good one; Release applies
the held table, Restore goes the other way: it makes RouteData and RouteHostMeta what the
route services serve (the served table of RouteGuardState, lars/routes/guardstate.py),
so a held mass delete or mass drain is undone. It is one route edit (lars/routes/
routeedit.py: one transaction, version bump, one RouteChange row per module it changes
and one 'restore' RouteAudit row), after which every route service loads a table equal
to the one it serves: the guard passes it and the hold ends ('apply', table changed).

What is written: every served host (with its weight) and every host that was drained
when the table was served (drained again), nothing else; RouteData rows of other hosts
are deleted, RouteHostMeta rows are set to the served weight and drain (a note is kept)
or deleted when the host is gone. Unchanged rows are not touched.

With nothing held it refuses (NothingHeld, exit 2) unless forced, like release.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, and_, delete, insert, select, update

from lars.db import route_data, route_host_meta
from lars.errors import ValidationError
from lars.protocol.weight import DEFAULT_WEIGHT
from lars.routes.audit import AuditLog, NothingHeld
from lars.routes.guardstate import GuardState, read_state
from lars.routes.hostmeta import MetaPresence
from lars.routes.routeedit import Change, run_edit

__all__ = ["NoServedTable", "Restored", "restore_served"]

Host4 = tuple[int, int, int, int]  # (modid, cmdid, unsigned ip, port)


class NoServedTable(ValidationError):
    """No route service has saved the table it serves here (no RouteGuardState row)."""


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore wrote."""

    version: int  # the new RouteVersion
    served_version: int  # the version of the served table it restored
    modules: int
    hosts: int  # served hosts written back
    drained: int  # drained hosts written back drained
    added: int  # RouteData rows inserted
    removed: int  # RouteData rows deleted
    settings: int  # RouteHostMeta rows changed
    changed_modules: int
    held_version: int | None  # the hold it undid (None when forced with nothing held)


def restore_served(
    engine: sqlalchemy.Engine,
    audit: AuditLog,
    actor: str,
    *,
    force: bool = False,
    clock: Callable[[], float] = time.time,
    meta: MetaPresence | None = None,
) -> Restored:
    """Write the served table back (see the module docstring); raises NoServedTable,
    NothingHeld (nothing held and not `force`), StoreUnavailable."""
    state = read_state(engine)
    if state is None:
        raise NoServedTable(
            "no served table is recorded here: no route service has saved its guard state "
            "(RouteGuardState; `lars initdb` creates the table, a running `lars dns` fills it)"
        )
    if state.held is None and not force:
        raise NothingHeld("no route table is held: nothing to restore")
    with_meta = (meta if meta is not None else MetaPresence(engine)).available()
    wanted = _wanted(state)
    modules: list[tuple[int, int]] = []  # filled by the edit, read by run_edit after it
    counts = {"added": 0, "removed": 0, "settings": 0}

    def edit(conn: Connection) -> list[Change]:
        modules.clear()
        touched: set[tuple[int, int]] = set()
        added, removed = _write_routes(conn, set(wanted), touched)
        settings = _write_meta(conn, wanted, touched, actor, int(clock())) if with_meta else 0
        modules.extend(sorted(touched))
        counts.update(added=added, removed=removed, settings=settings)
        held = state.held
        what = (
            f"undid the hold of version {held.version} ({held.detail})"
            if held is not None
            else "forced: nothing was held"
        )
        detail = (
            f"restored the served table of version {state.version}: {state.modules} modules, "
            f"{state.hosts} hosts, {len(state.drained)} drained; {added} rows added, "
            f"{removed} removed, {settings} host settings reset; {what}"
        )
        return [Change("restore", 0, 0, detail=detail)]

    version = run_edit(engine, audit, clock, modules, edit, actor)
    return Restored(
        version=version,
        served_version=state.version,
        modules=state.modules,
        hosts=state.hosts,
        drained=len(state.drained),
        added=counts["added"],
        removed=counts["removed"],
        settings=counts["settings"],
        changed_modules=len(modules),
        held_version=state.held.version if state.held is not None else None,
    )


def _wanted(state: GuardState) -> dict[Host4, tuple[int, bool]]:
    """Every host to write back: (weight, enabled)."""
    wanted: dict[Host4, tuple[int, bool]] = {}
    for (m, c), hosts in state.routes.items():
        for ip, port, weight in hosts:
            wanted[(m, c, ip, port)] = (weight, True)
    for m, c, ip, port, weight in state.drained:
        wanted[(m, c, ip, port)] = (weight, False)
    return wanted


def _write_routes(
    conn: Connection, wanted: set[Host4], touched: set[tuple[int, int]]
) -> tuple[int, int]:
    t = route_data.c
    present: dict[Host4, list[int]] = {}
    for row_id, m, c, ip, port in conn.execute(
        select(t.id, t.modid, t.cmdid, t.serverip, t.serverport)
    ):
        present.setdefault((int(m), int(c), int(ip), int(port)), []).append(int(row_id))
    gone = [i for host, ids in present.items() if host not in wanted for i in ids]
    for host in present:
        if host not in wanted:
            touched.add(host[:2])
    for start in range(0, len(gone), 500):
        conn.execute(delete(route_data).where(t.id.in_(gone[start : start + 500])))
    missing = sorted(wanted - present.keys())
    if missing:
        conn.execute(
            insert(route_data),
            [{"modid": m, "cmdid": c, "serverip": ip, "serverport": p} for m, c, ip, p in missing],
        )
        touched.update(h[:2] for h in missing)
    return len(missing), len(gone)


def _write_meta(
    conn: Connection,
    wanted: dict[Host4, tuple[int, bool]],
    touched: set[tuple[int, int]],
    actor: str,
    now: int,
) -> int:
    t = route_host_meta.c
    by = actor[:128]
    changed = 0
    seen: set[Host4] = set()
    rows = conn.execute(
        select(t.modid, t.cmdid, t.serverip, t.serverport, t.weight, t.enabled)
    ).all()
    for m, c, ip, port, weight, enabled in rows:
        host = (int(m), int(c), int(ip), int(port))
        seen.add(host)
        cond = and_(t.modid == host[0], t.cmdid == host[1], t.serverip == host[2])
        cond = and_(cond, t.serverport == host[3])
        want = wanted.get(host)
        if want is None:
            conn.execute(delete(route_host_meta).where(cond))
        elif (int(weight), bool(enabled)) != want:
            conn.execute(
                update(route_host_meta)
                .where(cond)
                .values(weight=want[0], enabled=want[1], updated_at=now, updated_by=by)
            )
        else:
            continue
        changed += 1
        touched.add(host[:2])
    extra = [
        (h, w, e)
        for h, (w, e) in sorted(wanted.items())
        if h not in seen and (w != DEFAULT_WEIGHT or not e)
    ]
    if extra:
        conn.execute(
            insert(route_host_meta),
            [
                {
                    "modid": h[0],
                    "cmdid": h[1],
                    "serverip": h[2],
                    "serverport": h[3],
                    "weight": w,
                    "enabled": e,
                    "note": "",
                    "updated_at": now,
                    "updated_by": by,
                }
                for h, w, e in extra
            ],
        )
        touched.update(h[:2] for h, _w, _e in extra)
    return changed + len(extra)
