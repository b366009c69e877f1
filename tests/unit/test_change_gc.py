"""RouteChange retention (issue 22): every edit trims rows more than a retention older
than the version it writes, in serial-number order (a renumber past 4294967295 too);
`lars route gc` does it by hand. On SQLite; tests/mysql/test_replica_mysql.py runs the
same on MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import insert, select, update

from lars.db import route_change, route_version
from lars.dbengine import init_schema, make_engine
from lars.errors import ValidationError
from lars.routes.admin import RouteAdmin
from lars.routes.changegc import DEFAULT_RETENTION, MAX_TRIM, cut_for, gc, trim_changes

T0 = 1_800_000_000


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


def rows(engine: sqlalchemy.Engine) -> list[tuple[int, int, int]]:
    with engine.connect() as conn:
        return [
            (int(m), int(c), int(v))
            for m, c, v in conn.execute(
                select(route_change.c.modid, route_change.c.cmdid, route_change.c.version)
                .order_by(route_change.c.id)
            )
        ]


def put(engine: sqlalchemy.Engine, version: int, *changes: tuple[int, int, int]) -> None:
    with engine.begin() as conn:
        if conn.execute(select(route_version.c.id)).first() is None:
            conn.execute(insert(route_version).values(id=1, version=version))
        else:
            conn.execute(update(route_version).values(version=version))
        for m, c, v in changes:
            conn.execute(insert(route_change).values(modid=m, cmdid=c, version=v))


def test_an_edit_trims_rows_older_than_the_retention(engine: sqlalchemy.Engine) -> None:
    put(engine, T0, (1, 1, T0 - 7200), (2, 2, T0 - 3600), (3, 3, T0 - 3599), (4, 4, T0))
    now = [float(T0 + 1)]
    admin = RouteAdmin(engine, clock=lambda: now[0])
    version = admin.add_host(5, 5, "10.0.0.1", 80)
    assert version == T0 + 1
    # cut = T0 + 1 - 3600: rows older than it go; the one at the cut and newer stay
    assert rows(engine) == [(3, 3, T0 - 3599), (4, 4, T0), (5, 5, T0 + 1)]


def test_retention_is_a_setting_of_route_admin(engine: sqlalchemy.Engine) -> None:
    put(engine, T0, (1, 1, T0 - 20), (2, 2, T0 - 5))
    admin = RouteAdmin(engine, clock=lambda: float(T0), change_retention=10)
    admin.add_host(5, 5, "10.0.0.1", 80)
    assert rows(engine) == [(2, 2, T0 - 5), (5, 5, T0 + 1)]
    for bad in (-1, 10**9, True):
        with pytest.raises(ValidationError):
            RouteAdmin(engine, change_retention=bad)


def test_rows_ahead_of_the_version_are_kept(engine: sqlalchemy.Engine) -> None:
    """A DBA's row with a version above RouteVersion is newer, not older: kept."""
    put(engine, T0, (1, 1, T0 + 500), (2, 2, T0 - 4000))
    RouteAdmin(engine, clock=lambda: float(T0)).add_host(5, 5, "10.0.0.1", 80)
    assert rows(engine) == [(1, 1, T0 + 500), (5, 5, T0 + 1)]


def test_trim_across_a_wrap(engine: sqlalchemy.Engine) -> None:
    """Versions near 2**32 - 1 are older than 1 + 3600 (serial order): trimmed once the
    version after the renumber is a retention past them; never kept forever."""
    top = 2**32 - 1
    put(engine, 5000, (1, 1, top - 10), (2, 2, top), (3, 3, 1500), (4, 4, 4000))
    with engine.begin() as conn:
        assert trim_changes(conn, 5000, 3600) == 2  # top - 10 and top are older than 1400
    assert rows(engine) == [(3, 3, 1500), (4, 4, 4000)]
    # and the other way round: version 100 just after the wrap keeps the rows of the
    # last hour before it (cut = 100 - 3600 mod 2**32)
    put(engine, 100, (5, 5, top - 100), (6, 6, top - 4000))
    with engine.begin() as conn:
        assert cut_for(100, 3600) == 2**32 + 100 - 3600
        trim_changes(conn, 100, 3600)
    assert (5, 5, top - 100) in rows(engine) and (6, 6, top - 4000) not in rows(engine)


def test_the_renumbering_edit_itself_trims_nothing_it_must_keep(
    engine: sqlalchemy.Engine,
) -> None:
    top = 2**32 - 1
    put(engine, top, (1, 1, top))
    admin = RouteAdmin(engine, clock=lambda: float(T0))
    assert admin.add_host(5, 5, "10.0.0.1", 80) == 1  # renumbered
    # the row at `top` was moved to the new version (routeedit) and is kept
    assert rows(engine) == [(1, 1, 1), (5, 5, 1)]


def test_gc_by_hand_counts_and_loops_past_one_batch(engine: sqlalchemy.Engine) -> None:
    old = [(i % 7, 1, T0 - 7200) for i in range(MAX_TRIM + 5)]
    put(engine, T0, *old, (9, 9, T0))
    assert gc(engine, DEFAULT_RETENTION) == MAX_TRIM + 5
    assert rows(engine) == [(9, 9, T0)]
    assert gc(engine, 0) == 0  # nothing older than the version itself
    with pytest.raises(ValidationError):
        gc(engine, -5)


def test_gc_without_a_version_row_deletes_nothing(engine: sqlalchemy.Engine) -> None:
    assert gc(engine) == 0
