"""Where the guard state is kept (issue 18): the codec, the database row, the local
snapshot file and which one a starting route service believes; the settings' ranges."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lars.config import IniFile
from lars.dbengine import init_schema, make_engine
from lars.dns.guardstore import GuardStateStore
from lars.dns.service import DnsConfig
from lars.errors import ConfigError
from lars.routes.guardstate import GuardState, HeldInfo, decode, encode, read_state, write_state

DB = "sqlite:///x.db"


def state(saved_at: float, hosts: int = 3, held: bool = False, db: str = DB) -> GuardState:
    info = HeldInfo(9, saved_at, 42, "window", "modules 1->0", "abc", 0, 0) if held else None
    return GuardState(
        saved_at=saved_at,
        writer="dns test",
        version=7,
        since=saved_at - 10,
        routes={(1, 1): tuple((100 + i, 80, 1 + i % 2) for i in range(hosts))},
        drained=((1, 1, 500, 80, 1),),
        past={(1, 1): ((saved_at - 5, hosts + 2),)},
        held=info,
        db=db,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(eng)
    return eng


def test_the_codec_round_trips_and_refuses_garbage() -> None:
    s = state(1000.0, held=True)
    assert decode(encode(s)) == s
    for bad in (b"", b"not zlib", encode(s)[:-3]):
        with pytest.raises(ValueError):
            decode(bad)


def test_the_database_row_is_replaced(engine: Engine) -> None:
    assert read_state(engine) is None
    write_state(engine, state(1000.0))
    write_state(engine, state(2000.0, hosts=5, held=True))
    got = read_state(engine)
    assert got is not None and got.hosts == 5 and got.held is not None
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT served_hosts, held_version, held_detail FROM RouteGuardState")
        ).one()
    assert tuple(row) == (5, 9, "modules 1->0")
    engine.dispose()


def test_the_newer_of_database_and_file_wins(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dns.guard"
    store = GuardStateStore(engine, path, db=DB)
    store.save(state(1000.0, hosts=3))
    assert path.exists() and store.saves == 1
    loaded = store.load()
    assert loaded is not None and loaded.hosts == 3
    # the database cannot be written: only the file moves on
    GuardStateStore(None, path, db=DB).save(state(2000.0, hosts=4))
    loaded = store.load()
    assert loaded is not None and loaded.hosts == 4
    # another route service wrote a newer row
    write_state(engine, state(3000.0, hosts=5))
    loaded = store.load()
    assert loaded is not None and loaded.hosts == 5
    engine.dispose()


def test_the_file_alone_when_the_database_has_no_row_or_fails(tmp_path: Path) -> None:
    path = tmp_path / "dns.guard"
    GuardStateStore(None, path, db=DB).save(state(1000.0, hosts=3))
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    init_schema(fresh)
    loaded = GuardStateStore(fresh, path, db=DB).load()
    assert loaded is not None and loaded.hosts == 3
    fresh.dispose()
    broken = make_engine("sqlite:////nonexistent/dir/x.db")
    store = GuardStateStore(broken, path, db=DB)
    loaded = store.load()
    assert loaded is not None and loaded.hosts == 3
    store.save(state(2000.0))  # the database write fails: counted, the file still written
    assert store.db_failures == 1 and store.file_failures == 0
    broken.dispose()


def test_a_file_of_another_database_or_a_corrupt_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "dns.guard"
    other = "sqlite:///other.db"
    GuardStateStore(None, path, db=other).save(state(1000.0, db=other))
    assert GuardStateStore(None, path, db=DB).load() is None
    path.write_bytes(b"garbage")
    assert GuardStateStore(None, path, db=DB).load() is None
    unwritable = GuardStateStore(None, tmp_path / "missing-dir" / "dns.guard", db=DB)
    unwritable.save(state(1000.0))
    assert unwritable.file_failures == 1


def test_guard_window_and_snapshot_settings() -> None:
    assert DnsConfig().guard_window == 600.0 and DnsConfig().snapshot == ""
    assert DnsConfig().guard_policy.window == 600.0
    assert DnsConfig(guard_window=0).guard_policy.window == 0
    for bad in (-1.0, 0.5, float("nan"), float("inf"), 10**9):
        with pytest.raises(ConfigError, match=r"\[dns\] guard_window"):
            DnsConfig(guard_window=bad)
    cfg = DnsConfig.from_ini(IniFile.from_string("[dns]\nguard_window = 120\n"))
    assert cfg.guard_window == 120.0 and cfg.snapshot == "lars_dns.guard"
    off = DnsConfig.from_ini(IniFile.from_string("[dns]\nsnapshot = off\n"))
    assert off.snapshot == ""
    with pytest.raises(ConfigError):
        DnsConfig.from_ini(IniFile.from_string("[dns]\nguard_window = -5\n"))
    assert dataclasses.replace(DnsConfig(), guard_window=30).guard_window == 30


def test_guard_window_is_reloaded_on_sighup(tmp_path: Path) -> None:
    from lars.dns.service import DnsService

    svc = DnsService(DnsConfig(db_url=f"sqlite:///{tmp_path / 'x.db'}"))
    try:
        result = svc.reload(dataclasses.replace(svc.config, guard_window=60.0))
        assert result.values() == {"guard_window": 60.0} and not result.restart
        assert svc.config.guard_policy.window == 60.0
        moved = svc.reload(dataclasses.replace(svc.config, snapshot="elsewhere.guard"))
        assert not moved.applied and [c.name for c in moved.restart] == ["snapshot"]
    finally:
        svc.stop()
