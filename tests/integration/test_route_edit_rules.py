"""Edits that cannot get stuck (issue 18 item 5), on SQLite and MariaDB: release is
idempotent (one release row per hold), RouteVersion renumbers to 1 past 4294967295 with a
'renumber' audit row, and serialisation failures are retried before an edit fails."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
import sqlalchemy
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from lars.db import route_audit, route_change, route_data, route_version
from lars.dbengine import init_schema, make_engine
from lars.errors import EditConflict, StoreUnavailable
from lars.protocol.version import MAX_VERSION
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog, NothingHeld
from lars.routes.routeedit import RETRIES, Change, run_edit, unavailable


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def engine(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "mysql_url")
    eng = make_engine(url)
    init_schema(eng)
    yield eng
    eng.dispose()


def count(engine: sqlalchemy.Engine, action: str) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(route_audit).where(route_audit.c.action == action)
        return int(conn.execute(query).scalar_one())


def set_version(engine: sqlalchemy.Engine, version: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(route_version))
        conn.execute(route_version.insert().values(id=1, version=version))


def hold(audit: AuditLog, version: int = 9) -> int:
    audit.append([audit.row(actor="dns", action="hold", version=version, detail="1->0")])
    return audit.history(limit=1)[0].id


# release


def test_a_second_release_answers_the_first_and_writes_nothing(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine, actor="cli:a")
    admin.add_host(1, 1, "10.0.0.1", 80)
    hold_id = hold(admin.audit)
    first = admin.release_hold()
    assert not first.repeated and first.held is not None and first.held.hold.id == hold_id
    second = admin.release_hold(actor="cli:b")
    third = admin.release_hold(force=True)
    assert second.repeated and third.repeated
    assert second.entry == third.entry == first.entry  # the same result
    assert count(engine, "release") == 1  # failed before: 3 rows
    # applied by a route service: a repeated release still answers it ...
    admin.audit.append([admin.audit.row(actor="dns", action="apply", version=9)])
    assert admin.audit.hold_state() is None
    again = admin.release_hold()
    assert again.repeated and again.entry == first.entry
    # ... and --force writes a row of its own, as before
    forced = admin.release_hold(force=True)
    assert not forced.repeated and forced.entry.detail == "forced: no table was held"
    # a new hold gets its own release
    hold(admin.audit)
    fresh = admin.release_hold()
    assert not fresh.repeated and fresh.entry.id > forced.entry.id
    assert count(engine, "release") == 3


def test_with_no_hold_ever_release_still_refuses(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine)
    with pytest.raises(NothingHeld, match="nothing to release"):
        admin.release_hold()
    admin.audit.append([admin.audit.row(actor="dns", action="hold", version=1)])
    admin.audit.append([admin.audit.row(actor="dns", action="apply", version=2)])
    with pytest.raises(NothingHeld):  # that hold ended without a release
        admin.release_hold()
    assert count(engine, "release") == 0


# renumber


def test_route_version_past_the_top_renumbers_to_one(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine, actor="cli:ops")
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.add_host(1, 1, "10.0.0.2", 80)
    set_version(engine, MAX_VERSION)
    with engine.begin() as conn:  # a change row a route service has not loaded yet
        conn.execute(route_change.insert().values(modid=7, cmdid=7, version=MAX_VERSION))
    # failed before: StoreUnavailable "route database unavailable: DataError 1264"
    assert admin.drain(1, 1, "10.0.0.1", 80) == 1
    assert admin.current_version() == 1
    renumber = admin.audit.history(limit=5, actions=("renumber",))
    assert len(renumber) == 1
    assert renumber[0].version == 1 and renumber[0].actor == "cli:ops"
    assert f"from {MAX_VERSION} to 1" in renumber[0].detail
    with engine.connect() as conn:  # every pending change row is at the new version
        versions = set(conn.execute(select(route_change.c.version)).scalars())
    assert versions == {1}
    v_add = admin.add_host(2, 2, "10.0.0.3", 80)
    v_del = admin.del_host(1, 1, "10.0.0.2", 80)
    assert 1 < v_add < v_del <= MAX_VERSION  # unix time again
    assert count(engine, "renumber") == 1


def test_route_version_one_below_the_top_is_used(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine)
    set_version(engine, MAX_VERSION - 1)
    assert admin.add_host(1, 1, "10.0.0.1", 80) == MAX_VERSION
    assert count(engine, "renumber") == 0
    assert admin.add_host(1, 1, "10.0.0.2", 80) == 1


def test_a_database_refusal_is_not_called_unavailable() -> None:
    refused = IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate entry"))
    assert "refused the operation" in str(unavailable(refused))
    down = OperationalError("SELECT", {}, pymysql.err.OperationalError(2003, "Can't connect"))
    assert "unavailable" in str(unavailable(down))


# serialisation failures


class Flaky:
    """An edit that fails with MySQL error `code` the first `fails` times it runs."""

    def __init__(self, code: int, fails: int) -> None:
        self.code, self.fails, self.runs = code, fails, 0

    def __call__(self, conn: Connection) -> list[Change]:
        self.runs += 1
        conn.execute(route_data.insert().values(modid=5, cmdid=5, serverip=1, serverport=80))
        if self.runs <= self.fails:
            err = pymysql.err.OperationalError(self.code, "Deadlock found when trying to get lock")
            raise OperationalError("UPDATE RouteVersion", {}, err)
        return [Change("add", 5, 5, 1, 80, "0.0.0.1:80")]


def hosts(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(route_data)).scalar_one())


@pytest.mark.parametrize("code", [1213, 1205])
def test_a_serialisation_failure_is_retried(engine: sqlalchemy.Engine, code: int) -> None:
    audit, sleeps = AuditLog(engine), []
    edit = Flaky(code, fails=RETRIES)
    modules = [(5, 5)]
    version = run_edit(engine, audit, lambda: 0.0, modules, edit, "t", sleep=sleeps.append)
    assert edit.runs == RETRIES + 1 and len(sleeps) == RETRIES
    assert sleeps == sorted(sleeps) or all(0 < s < 1 for s in sleeps)
    assert version == 1 and hosts(engine) == 1  # the failed attempts were rolled back
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(route_change)).scalar_one() == 1
    assert count(engine, "add") == 1


def test_an_edit_failing_every_time_says_what_happened(engine: sqlalchemy.Engine) -> None:
    edit, sleeps = Flaky(1213, fails=99), []
    with pytest.raises(EditConflict) as info:
        run_edit(engine, AuditLog(engine), lambda: 0.0, [(5, 5)], edit, "t", sleep=sleeps.append)
    assert isinstance(info.value, StoreUnavailable)  # CLI exit 1, API 503
    text = str(info.value)
    assert "deadlock (error 1213)" in text and f"{RETRIES + 1} attempts" in text
    assert "nothing was changed" in text and "unavailable" not in text
    assert edit.runs == RETRIES + 1 and hosts(engine) == 0


def test_other_database_errors_are_not_retried(engine: sqlalchemy.Engine) -> None:
    edit, sleeps = Flaky(1062, fails=1), []
    with pytest.raises(StoreUnavailable) as info:
        run_edit(engine, AuditLog(engine), lambda: 0.0, [(5, 5)], edit, "t", sleep=sleeps.append)
    assert not isinstance(info.value, EditConflict)
    assert edit.runs == 1 and sleeps == []
