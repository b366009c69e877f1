"""The route list as lars shows it: RouteData rows with their RouteHostMeta settings.

`list_query` joins each RouteData row with its RouteHostMeta row (drained hosts included:
`lars route list`, the console and the JSON API show them greyed); on an original Lars
database without RouteHostMeta it reads RouteData alone and every host has the defaults
(weight 1, enabled). `entry` turns a row of either query into a RouteEntry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy
from sqlalchemy import and_, select

from lars.db import route_data, route_host_meta
from lars.protocol import uint_to_dotted

__all__ = ["RouteEntry", "entry", "list_query"]


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
