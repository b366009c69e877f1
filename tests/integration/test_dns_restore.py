"""`lars route restore` and the saved guard state with a real route service (issue 18):
SQLite here, MariaDB in tests/mysql/test_dns_guard_mysql.py (same checks)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, select, text

from lars.db import route_data, route_host_meta
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsService
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog, NothingHeld
from lars.routes.guardstate import read_state
from lars.routes.restore import NoServedTable
from tests.integration.dns_wire import RouteConn, wait_for
from tests.integration.test_dns_service import config

MODULES = [(m, 1) for m in range(1, 11)]  # 10 modules of 3 hosts


def fleet(engine: sqlalchemy.Engine) -> RouteAdmin:
    admin = RouteAdmin(engine, actor="cli:setup")
    for m, c in MODULES:
        for h in range(3):
            admin.add_host(m, c, f"10.0.{m}.{h + 1}", 80)
    return admin


def service(url: str, snapshot: Path | None = None) -> DnsService:
    cfg = dataclasses.replace(
        config(url), reload_interval=60.0, snapshot=str(snapshot) if snapshot else ""
    )
    return DnsService(cfg)


def rows(engine: sqlalchemy.Engine, table: sqlalchemy.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def actions(engine: sqlalchemy.Engine) -> list[str]:
    return [e.action for e in reversed(AuditLog(engine).history(limit=1000))]


def served_modules(port: int) -> int:
    with RouteConn(port) as c:
        return sum(1 for m, cm in MODULES if c.get(m, cm))


def check_restore_undoes_a_held_delete_and_drain(url: str) -> None:
    engine = make_engine(url)
    init_schema(engine)
    admin = fleet(engine)
    admin.drain(1, 1, "10.0.1.3", 80)  # drained before: written back drained
    admin.set_weight(2, 1, "10.0.2.1", 80, 5)
    svc = service(url)
    svc.start()
    try:
        wait_for(lambda: (read_state(engine) or _none()).hosts == 29, what="the state saved")
        with pytest.raises(NothingHeld):
            admin.restore_served()
        with engine.begin() as conn:  # the incident: a mass delete and a mass drain
            conn.execute(text("DELETE FROM RouteData WHERE modid > 4"))
            conn.execute(
                text(
                    "INSERT INTO RouteHostMeta (modid, cmdid, serverip, serverport, weight, "
                    "enabled, note, updated_at, updated_by) SELECT modid, cmdid, serverip, "
                    "serverport, 1, 0, '', 0, 'sql' FROM RouteData WHERE modid IN (3, 4)"
                )
            )
            conn.execute(text("UPDATE RouteHostMeta SET weight = 1 WHERE modid = 2"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: svc.stats().held is not None, what="the hold")
        state = read_state(engine)
        assert state is not None and state.held is not None and state.hosts == 29
        done = admin.restore_served(actor="cli:ops")
        assert (done.modules, done.hosts, done.drained) == (10, 29, 1)
        assert done.held_version == state.held.version
        wait_for(lambda: svc.stats().held is None, what="the hold ended by the restore")
        assert svc.stats().hosts == 29 and served_modules(svc.port) == 10
        assert rows(engine, route_data) == 30
        with engine.connect() as conn:
            meta = conn.execute(
                select(route_host_meta.c.modid, route_host_meta.c.weight, route_host_meta.c.enabled)
            ).all()
        settings = {(int(m), int(w), bool(e)) for m, w, e in meta}
        assert {s for s in settings if s != (3, 1, True) and s != (4, 1, True)} == {
            (1, 1, False),
            (2, 5, True),
        }
        wait_for(lambda: actions(engine)[-1] == "apply", what="the apply row")
        restore_row = AuditLog(engine).history(limit=1, actions=("restore",))[0]
        after = AuditLog(engine).history(after_id=restore_row.id)
        assert [e.action for e in after if e.version >= restore_row.version] == ["apply"]
        # (no 'sql' rows for the restore's own edits; the incident's may land after it)
        assert restore_row.actor == "cli:ops" and restore_row.version == done.version
        assert "restored the served table" in restore_row.detail
        forced = admin.restore_served(force=True)  # nothing held: only with --force
        assert forced.held_version is None and forced.added == forced.removed == 0
    finally:
        svc.stop()
        engine.dispose()


def _none():  # type: ignore[no-untyped-def]
    class Empty:
        hosts = -1

    return Empty()


def check_restart_serves_the_last_good_table(url: str, tmp: Path) -> None:
    """Repro 1 and 2 in process: a version-only bump during a hold, then a restart; and a
    restart, then one add."""
    engine = make_engine(url)
    init_schema(engine)
    fleet(engine)
    svc = service(url, tmp / "dns.guard")
    svc.start()
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM RouteData"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: svc.stats().held is not None, what="the hold")
        with engine.begin() as conn:
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: svc.stats().held.version == RouteAdmin(engine).current_version(),  # type: ignore[union-attr]
                 what="the bump seen")  # fmt: skip
    finally:
        svc.stop()
    svc = service(url, tmp / "dns.guard")
    svc.start()
    try:
        assert svc.stats().held is not None and served_modules(svc.port) == 10
        RouteAdmin(engine).add_host(1, 1, "127.0.1.1", 9001)
        wait_for(lambda: svc.stats().held.hosts_after == 1, what="the add held")  # type: ignore[union-attr]
        assert served_modules(svc.port) == 10
    finally:
        svc.stop()
    # the database's state row lost (or never writable): the snapshot file still knows
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM RouteGuardState"))
    svc = service(url, tmp / "dns.guard")
    svc.start()
    try:
        assert svc.stats().held is not None and served_modules(svc.port) == 10
    finally:
        svc.stop()
        engine.dispose()


def test_restore_undoes_a_held_delete_and_drain(tmp_path: Path) -> None:
    check_restore_undoes_a_held_delete_and_drain(f"sqlite:///{tmp_path / 'r.db'}")


def test_restart_serves_the_last_good_table(tmp_path: Path) -> None:
    check_restart_serves_the_last_good_table(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)


def test_restore_without_a_saved_state_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    init_schema(engine)
    try:
        with pytest.raises(NoServedTable):
            RouteAdmin(engine).restore_served(force=True)
    finally:
        engine.dispose()


def test_restore_cli_exits_2_with_nothing_held(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    init_schema(engine)
    fleet(engine)
    svc = service(url)
    svc.start()
    try:
        wait_for(lambda: read_state(engine) is not None, what="the state saved")

        def run(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "lars", "route", "restore", "--db", url, *extra],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ},
                cwd=tmp_path,
            )

        refused = run()
        assert refused.returncode == 2 and "nothing to restore" in refused.stderr
        forced = run("--force")
        assert forced.returncode == 0, forced.stderr
        assert "10 modules, 30 hosts" in forced.stdout and "route version" in forced.stdout
        status = subprocess.run(
            [sys.executable, "-m", "lars", "route", "status", "--db", url],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert status.returncode == 0 and "served: version" in status.stdout
        assert "10 modules, 30 hosts" in status.stdout
    finally:
        svc.stop()
        engine.dispose()
