"""RouteAdmin drain, undrain and weights on SQLite: the rules, versions, audit rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import select

from lars.db import route_change, route_host_meta
from lars.dbengine import init_schema, make_engine
from lars.dns.store import RouteStore
from lars.dns.table import RouteTable
from lars.errors import ValidationError
from lars.protocol.weight import MAX_WEIGHT
from lars.routes.admin import RouteAdmin


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def admin(engine: sqlalchemy.Engine) -> RouteAdmin:
    admin = RouteAdmin(engine, clock=Clock(1000.0), actor="cli:ops")
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.add_host(1, 1, "10.0.0.2", 80)
    admin.add_host(2, 2, "10.0.0.3", 80)
    return admin


def served(engine: sqlalchemy.Engine) -> RouteTable:
    snap = RouteStore(engine).load()
    return RouteTable.from_rows(snap.version, snap.routes, snap.meta)


def test_drain_leaves_the_host_out_bumps_the_version_and_audits(
    admin: RouteAdmin, engine: sqlalchemy.Engine
) -> None:
    before = admin.current_version()
    version = admin.drain(1, 1, "10.0.0.1", 80, note="deploy 42")
    assert version == before + 1 == admin.current_version()
    assert [c for c in admin.pending_changes() if c[2] == version] == [(1, 1, version)]
    entry = next(e for e in admin.list_routes(1, 1) if e.ip == "10.0.0.1")
    assert (entry.enabled, entry.note, entry.updated_by, entry.updated_at) == (
        False, "deploy 42", "cli:ops", 1000
    )  # fmt: skip
    table = served(engine)
    assert table.hosts((1, 1)) == ((167772162, 80),)  # 10.0.0.2 only
    (row,) = admin.audit.history(1, 1, actions=["drain"])
    assert (row.actor, row.ip, row.port, row.version) == ("cli:ops", "10.0.0.1", 80, version)
    assert "deploy 42" in row.detail and "forced" not in row.detail


def test_the_last_enabled_host_needs_force_and_a_forced_drain_is_audited(
    admin: RouteAdmin, engine: sqlalchemy.Engine
) -> None:
    admin.drain(1, 1, "10.0.0.1", 80)
    version = admin.current_version()
    with pytest.raises(ValidationError, match=r"last enabled host.*--force"):
        admin.drain(1, 1, "10.0.0.2", 80)
    with pytest.raises(ValidationError, match="last enabled host"):
        admin.drain(2, 2, "10.0.0.3", 80)
    assert admin.current_version() == version  # refused edits change nothing
    admin.drain(2, 2, "10.0.0.3", 80, force=True, actor="alice")
    (row,) = admin.audit.history(2, 2, actions=["drain"])
    assert row.actor == "alice" and "forced" in row.detail
    assert (2, 2) not in served(engine)


def test_nothing_to_change_and_unknown_hosts_are_refused(admin: RouteAdmin) -> None:
    with pytest.raises(ValidationError, match="not drained"):
        admin.undrain(1, 1, "10.0.0.1", 80)
    admin.drain(1, 1, "10.0.0.1", 80)
    with pytest.raises(ValidationError, match="already drained"):
        admin.drain(1, 1, "10.0.0.1", 80)
    with pytest.raises(ValidationError, match="not in module"):
        admin.drain(1, 1, "10.9.9.9", 80)
    with pytest.raises(ValidationError, match="not in module"):
        admin.set_weight(3, 3, "10.0.0.1", 80, 2)
    with pytest.raises(ValidationError, match="printable"):
        admin.drain(1, 1, "10.0.0.2", 80, note="x" * 300, force=True)


def test_undrain_serves_the_host_again_and_keeps_the_note_unless_given(
    admin: RouteAdmin, engine: sqlalchemy.Engine
) -> None:
    admin.drain(1, 1, "10.0.0.1", 80, note="disk")
    version = admin.undrain(1, 1, "10.0.0.1", 80, actor="bob")
    entry = next(e for e in admin.list_routes(1, 1) if e.ip == "10.0.0.1")
    assert entry.enabled and entry.note == "disk" and entry.updated_by == "bob"
    assert len(served(engine).hosts((1, 1))) == 2
    (row,) = admin.audit.history(1, 1, actions=["undrain"])
    assert row.version == version and row.actor == "bob"


def test_weights_are_set_validated_served_and_audited(
    admin: RouteAdmin, engine: sqlalchemy.Engine
) -> None:
    with pytest.raises(ValidationError, match="drain"):
        admin.set_weight(1, 1, "10.0.0.1", 80, 0)
    with pytest.raises(ValidationError, match=f"1..{MAX_WEIGHT}"):
        admin.set_weight(1, 1, "10.0.0.1", 80, MAX_WEIGHT + 1)
    with pytest.raises(ValidationError, match="already has weight 1"):
        admin.set_weight(1, 1, "10.0.0.1", 80, 1)
    version = admin.set_weight(1, 1, "10.0.0.1", 80, 5)
    assert served(engine).weights((1, 1)) == {(167772161, 80): 5}
    entry = next(e for e in admin.list_routes(1, 1) if e.ip == "10.0.0.1")
    assert entry.weight == 5 and entry.enabled
    (row,) = admin.audit.history(1, 1, actions=["weight"])
    assert row.version == version and "1 -> 5" in row.detail
    admin.drain(1, 1, "10.0.0.1", 80)  # a drained host keeps its weight for later
    admin.undrain(1, 1, "10.0.0.1", 80)
    assert served(engine).weights((1, 1)) == {(167772161, 80): 5}


def test_deleting_a_host_forgets_its_settings_and_replacing_moves_them(
    admin: RouteAdmin, engine: sqlalchemy.Engine
) -> None:
    admin.set_weight(1, 1, "10.0.0.1", 80, 3)
    admin.drain(1, 1, "10.0.0.2", 80)
    admin.replace_host(1, 1, "10.0.0.1", 80, "10.0.0.9", 81)
    entry = next(e for e in admin.list_routes(1, 1) if e.ip == "10.0.0.9")
    assert entry.weight == 3
    admin.del_host(1, 1, "10.0.0.2", 80)
    admin.add_host(1, 1, "10.0.0.2", 80)  # re-added: a fresh host, not drained
    assert all(e.enabled for e in admin.list_routes(1, 1))
    admin.del_module(1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(route_host_meta)).all() == []


def test_an_original_database_without_the_table_serves_as_today(sqlite_url: str) -> None:
    eng = make_engine(sqlite_url)
    try:
        init_schema(eng)
        with eng.begin() as conn:
            conn.exec_driver_sql('DROP TABLE "RouteHostMeta"')
        admin = RouteAdmin(eng, clock=Clock(10.0))
        admin.add_host(1, 1, "10.0.0.1", 80)
        assert admin.list_routes()[0].enabled and not admin.has_host_meta()
        with pytest.raises(ValidationError, match="lars initdb"):
            admin.drain(1, 1, "10.0.0.1", 80, force=True)
        admin.del_host(1, 1, "10.0.0.1", 80)  # plain edits work as before
        snap = RouteStore(eng).load()
        assert snap.meta == [] and snap.routes == []
        with eng.connect() as conn:
            assert len(conn.execute(select(route_change)).all()) == 2
    finally:
        eng.dispose()
