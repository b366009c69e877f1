"""Where a route service writes (issue 22), on SQLite: [dns] write_db and clean_changes
from the file and the flags (restart-only on SIGHUP), the one write engine, and a
service that may not write: no audit row, no guard state row, and a hold it keeps alone
that a release written after it still ends."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, select

from lars.config import IniFile
from lars.db import route_audit, route_guard_state
from lars.dbengine import init_schema, make_engine
from lars.dns.cli import build_dns_config, register
from lars.dns.guardstore import GuardStateStore
from lars.dns.service import DnsConfig, DnsService
from lars.dns.service_audit import ServiceAudit
from lars.dns.table import RouteTable
from lars.dns.writeaccess import WriteAccess, denied
from lars.errors import ConfigError
from lars.routes.audit import AuditLog


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


def rows(engine: sqlalchemy.Engine, table: sqlalchemy.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_settings_from_the_file_and_the_flags() -> None:
    ini = IniFile.from_string(
        "[dns]\nwrite_db = mysql+pymysql://lars:pw@db1:3306/lars_dns\nclean_changes = OFF\n",
        "t.conf",
    )
    cfg = DnsConfig.from_ini(ini)
    assert cfg.write_db == "mysql+pymysql://lars:pw@db1:3306/lars_dns"
    assert cfg.clean_changes == "off"
    with pytest.raises(ConfigError, match="clean_changes"):
        DnsConfig.from_ini(IniFile.from_string("[dns]\nclean_changes = sometimes\n", "t.conf"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["dns", "--write-db", "sqlite:///w.db", "--clean-changes", "on"])
    flagged = build_dns_config(args, ini)
    assert (flagged.write_db, flagged.clean_changes) == ("sqlite:///w.db", "on")
    assert DnsConfig().write_db == "" and DnsConfig().clean_changes == "auto"


def test_write_db_is_restart_only_on_sighup(tmp_path: Path) -> None:
    cfg = DnsConfig(db_url=f"sqlite:///{tmp_path / 'r.db'}")
    svc = DnsService(cfg)
    try:
        result = svc.reload(
            replace(cfg, write_db="mysql+pymysql://lars:secret@db1/x", clean_changes="off")
        )
        assert {c.name for c in result.restart} == {"write_db", "clean_changes"}
        assert not result.applied
        assert "secret" not in " ".join(str(c) for c in result.restart)
        assert svc.config.write_db == ""
    finally:
        svc.stop()


def test_a_separate_write_engine_receives_the_writes(tmp_path: Path) -> None:
    read_url, write_url = f"sqlite:///{tmp_path / 'r.db'}", f"sqlite:///{tmp_path / 'w.db'}"
    svc = DnsService(DnsConfig(db_url=read_url, write_db=write_url))
    try:
        svc.start()  # SQLite: the schema is made through the write engine
        assert svc.access.writable and svc.access.separate
        assert svc.stats().writes == "writable" and svc.stats().write_db
        # the guard state of the first table went to the write database
        assert rows(make_engine(write_url), route_guard_state) == 1
    finally:
        svc.stop()


def test_sqlite_is_writable_and_denied_codes(engine: sqlalchemy.Engine) -> None:
    access = WriteAccess(engine, separate=False)
    assert not access.known and not access.writable and access.describe() == "unknown"
    assert access.probe() is True and access.writable and access.describe() == "writable"
    import pymysql

    assert denied(pymysql.err.OperationalError(1290, "read-only")) == 1290
    assert denied(pymysql.err.OperationalError(1142, "DELETE command denied")) == 1142
    assert denied(pymysql.err.OperationalError(2003, "cannot connect")) is None


def test_a_service_that_may_not_write_writes_no_audit_and_no_state(
    engine: sqlalchemy.Engine, tmp_path: Path
) -> None:
    audit = ServiceAudit(engine, writable=lambda: False)
    log = AuditLog(engine)
    log.append([log.row(actor="cli:ops", action="release", version=1, detail="old")])
    before = rows(engine, route_audit)
    hold_id = audit.record_hold(7, "modules 3->0, hosts 6->0, max_drop_ratio 0.5")
    # no row of its own: the threshold is the newest row, so the OLD release does not end it
    assert hold_id is not None and audit.release_after(hold_id) is None
    audit.record_apply(7, "table changed")
    old = RouteTable.from_rows(6, [(1, 1, 10, 80)])
    new = RouteTable.from_rows(7, [(1, 1, 11, 80)])
    assert audit.record_sql_edits(old, new, {(1, 1)}) == 0
    assert rows(engine, route_audit) == before
    # a release written after the hold (lars route release --force) ends it
    log.release("cli:ops", 7, force=True)
    release = audit.release_after(hold_id)
    assert release is not None and release.actor == "cli:ops"
    # a writing service's hold row for the same table is the same hold
    writer = ServiceAudit(engine)
    row = writer.record_hold(8, "modules 3->0, hosts 6->0, max_drop_ratio 0.5")
    assert audit.record_hold(8, "modules 3->0, hosts 6->0, max_drop_ratio 0.5") == row
    # the guard state: the snapshot file alone
    store = GuardStateStore(engine, tmp_path / "g", writable=lambda: False)
    from lars.routes.guardstate import GuardState

    store.save(GuardState(saved_at=1.0, writer="t", version=7, since=1.0, routes={}))
    assert (tmp_path / "g").exists() and rows(engine, route_guard_state) == 0
    assert store.db_failures == 0
