"""The route list as lars shows it: RouteData rows with their RouteHostMeta settings.

`list_query` joins each RouteData row with its RouteHostMeta row (drained hosts included:
`lars route list`, the console and the JSON API show them greyed); on an original Lars
database without RouteHostMeta it reads RouteData alone and every host has the defaults
(weight 1, enabled). `entry` turns a row of either query into a RouteEntry.

Registered instances (issue 20: RouteInstance, written by the route services): with
`registered`, the listing also shows them. A RouteData host is listed once with source
`static` (and its registration's agent, check and state when an agent registered it
too); each registration of a host that is not in RouteData is listed with source
`registered`, its owning agent, check kind, state (`passing`/`failing`) and `since` (unix
seconds of the last state change). Drain and weight apply to both. A database without
the table lists RouteData alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy
from sqlalchemy import and_, select

from lars.db import route_data, route_host_meta, route_instance
from lars.protocol import uint_to_dotted

__all__ = ["RouteEntry", "entry", "instance_query", "list_query", "merge_registered"]

SOURCE_STATIC = "static"
SOURCE_REGISTERED = "registered"


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
    # where the host comes from: "static" (RouteData) or "registered" (RouteInstance)
    source: str = SOURCE_STATIC
    agent: str = ""  # the owning agent ("<ip>:<udp base port>"), "" when not registered
    check: str = ""  # tcp, http://HOST:PORT/PATH or ttl:SECONDS ("" when not registered)
    state: str = ""  # passing or failing ("" when not registered)
    since: int = 0  # unix seconds of the last state change (0 when not registered)


def list_query(with_meta: bool, modid: int | None, cmdid: int | None) -> sqlalchemy.Select[Any]:
    """RouteData rows (of one modid, or one module), with the RouteHostMeta columns
    when `with_meta`, ordered by module and address."""
    d, m = route_data.c, route_host_meta.c
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
        select(*columns).select_from(source).order_by(d.modid, d.cmdid, d.serverip, d.serverport)
    )
    if modid is not None:
        query = query.where(d.modid == modid)
    if cmdid is not None:
        query = query.where(d.cmdid == cmdid)
    return query


def entry(row: Sequence[Any]) -> RouteEntry:
    """A RouteEntry from a list_routes row (with or without the RouteHostMeta columns)."""
    modid, cmdid, ip, port = (int(v) for v in row[:4])
    base = RouteEntry(modid, cmdid, uint_to_dotted(ip), port)
    if len(row) == 4 or row[4] is None:  # no table, or no row for this host
        return base
    weight, enabled, note, updated_at, updated_by = row[4:]
    return RouteEntry(
        modid,
        cmdid,
        base.ip,
        port,
        weight=int(weight),
        enabled=bool(enabled),
        note=str(note),
        updated_at=int(updated_at),
        updated_by=str(updated_by),
    )


def instance_query(with_meta: bool, modid: int | None, cmdid: int | None) -> sqlalchemy.Select[Any]:
    """RouteInstance rows (of one modid, or one module) with their hosts' RouteHostMeta
    columns when `with_meta`, ordered by module, address and agent."""
    i, m = route_instance.c, route_host_meta.c
    columns: list[sqlalchemy.ColumnElement[Any]] = [i.modid, i.cmdid, i.serverip, i.serverport]
    source: sqlalchemy.FromClause = route_instance
    if with_meta:
        columns += [m.weight, m.enabled, m.note, m.updated_at, m.updated_by]
        source = route_instance.outerjoin(
            route_host_meta,
            and_(
                m.modid == i.modid,
                m.cmdid == i.cmdid,
                m.serverip == i.serverip,
                m.serverport == i.serverport,
            ),
        )
    else:
        columns += [sqlalchemy.null()] * 5
    columns += [i.agent, i.check_kind, i.passing, i.since]
    query = select(*columns).select_from(source)
    query = query.order_by(i.modid, i.cmdid, i.serverip, i.serverport, i.agent)
    if modid is not None:
        query = query.where(i.modid == modid)
    if cmdid is not None:
        query = query.where(i.cmdid == cmdid)
    return query


def merge_registered(
    static: Sequence[RouteEntry], instance_rows: Sequence[Sequence[Any]]
) -> list[RouteEntry]:
    """The static entries (with their registration, if any, passing first) plus one
    entry per registration of a host not in RouteData; ordered by module and address."""
    by_host: dict[tuple[int, int, str, int], list[RouteEntry]] = {}
    for row in instance_rows:
        base = entry(row[:9])
        agent, check, passing, since = row[9:]
        e = replace(
            base,
            source=SOURCE_REGISTERED,
            agent=str(agent),
            check=str(check),
            state="passing" if passing else "failing",
            since=int(since),
        )
        by_host.setdefault((e.modid, e.cmdid, e.ip, e.port), []).append(e)
    result: list[RouteEntry] = []
    for e in static:
        regs = by_host.pop((e.modid, e.cmdid, e.ip, e.port), None)
        if regs:
            reg = sorted(regs, key=lambda r: r.state != "passing")[0]
            e = replace(e, agent=reg.agent, check=reg.check, state=reg.state, since=reg.since)
        result.append(e)
    for regs in by_host.values():
        result.extend(regs)
    result.sort(key=lambda e: (e.modid, e.cmdid, _ip_key(e.ip), e.port, e.source, e.agent))
    return result


def _ip_key(dotted: str) -> tuple[int, ...]:
    return tuple(int(part) for part in dotted.split("."))
