"""Trimming RouteChange: rows older than a retention are deleted by the edits themselves.

The original lars_dns deletes the RouteChange rows it has pushed. A route service that
reads a replica or a SELECT-only user cannot (issue 22), and no route service needs a
row once every route service has pushed it: a poll interval later, or a replica's lag
later. So every lars route edit (lars/routes/routeedit.py run_edit: CLI, console,
restore) deletes, in its own transaction, the rows whose version is more than
`retention` seconds older than the version it writes (versions are unix seconds), and
`lars route gc` does the same by hand.

Versions are `int unsigned` and wrap (lars.protocol.version): "older" is serial-number
order, so the rows written just before a renumber to 1 are older than 1 + retention
and are trimmed, never kept forever. Rows whose version is *newer* than the cut (a
DBA's row ahead of RouteVersion) are kept.

The rows are found with a plain read and deleted by id, in chunks, so the edit locks
only the rows it deletes (a cleaning route service deletes other rows at the same
time), and at most MAX_TRIM rows per call: a backlog is trimmed over several edits.
"""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_change, route_version
from lars.errors import StoreUnavailable, ValidationError

__all__ = [
    "DEFAULT_RETENTION",
    "MAX_RETENTION",
    "MAX_TRIM",
    "gc",
    "older_than",
    "trim_changes",
]

DEFAULT_RETENTION = 3600  # seconds
MAX_RETENTION = 366 * 86400  # a year; half the serial space (68 years) is the real bound
MAX_TRIM = 10_000  # rows per call
_CHUNK = 500
_MOD = 2**32
_HALF = 2**31


def older_than(cut: int) -> sqlalchemy.ColumnElement[bool]:
    """RouteChange.version older than `cut` in serial-number order:
    0 < (cut - version) mod 2**32 < 2**31. Written as (cut + 2**32 - version) so MySQL's
    unsigned arithmetic never goes below zero."""
    base = sqlalchemy.literal(cut + _MOD, sqlalchemy.BigInteger)
    distance = (base - route_change.c.version) % _MOD
    return sqlalchemy.and_(distance > 0, distance < _HALF)


def cut_for(version: int, retention: int) -> int:
    """The oldest version kept when the newest is `version`."""
    return (version - retention) % _MOD


def trim_changes(conn: Connection, version: int, retention: int) -> int:
    """Delete (in the caller's transaction) the rows more than `retention` seconds older
    than `version`, at most MAX_TRIM; returns how many were deleted."""
    check_retention(retention)
    ids = [
        int(i)
        for (i,) in conn.execute(
            select(route_change.c.id)
            .where(older_than(cut_for(version, retention)))
            .order_by(route_change.c.id)
            .limit(MAX_TRIM)
        )
    ]
    deleted = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        deleted += conn.execute(delete(route_change).where(route_change.c.id.in_(chunk))).rowcount
    return deleted


def gc(engine: sqlalchemy.Engine, retention: int = DEFAULT_RETENTION) -> int:
    """`lars route gc`: trim against the current RouteVersion until nothing is left to
    trim; returns the rows deleted. StoreUnavailable when the database fails."""
    check_retention(retention)
    total = 0
    try:
        while True:
            with engine.begin() as conn:
                version = conn.execute(
                    select(route_version.c.version).where(route_version.c.id == 1)
                ).scalar()
                if version is None:
                    return total
                deleted = trim_changes(conn, int(version), retention)
            total += deleted
            if deleted < MAX_TRIM:
                return total
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise StoreUnavailable(f"{type(cause).__name__}: {cause}") from exc


def check_retention(retention: int) -> None:
    if isinstance(retention, bool) or not isinstance(retention, int):
        raise ValidationError(f"retention must be whole seconds, got {retention!r}")
    if not 0 <= retention <= MAX_RETENTION:
        raise ValidationError(
            f"retention must be in 0..{MAX_RETENTION} seconds, got {retention}"
        )
