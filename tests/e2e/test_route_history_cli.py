"""`lars route history`, `lars route release` and `lars route status` as real processes,
on SQLite and MariaDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from lars.db import route_audit
from lars.dbengine import make_engine
from lars.routes.audit import AuditLog, cli_actor

pytestmark = pytest.mark.e2e


def lars(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lars.db'}"
    url: str = request.getfixturevalue("mysql_url")
    return url


def write_hold(db: str, detail: str) -> None:
    engine = make_engine(db)
    try:
        audit = AuditLog(engine)
        audit.append([audit.row(actor="dns", action="hold", version=5, detail=detail)])
    finally:
        engine.dispose()


def test_history_of_route_edits(db: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = lars("route", *args, "--db", db, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return r

    assert lars("initdb", "--db", db, cwd=tmp_path).returncode == 0
    run("add", "7", "8", "10.0.0.5", "80")
    run("add", "7", "8", "10.0.0.7", "80")
    run("replace", "7", "8", "10.0.0.5", "80", "10.0.0.6", "80")
    run("add", "9", "1", "10.1.1.1", "81")
    run("del-module", "9", "1")
    version = int(run("version").stdout.split()[1])

    lines = [json.loads(line) for line in run("history", "--json").stdout.splitlines()]
    assert [(e["action"], e["modid"], e["cmdid"], e["ip"], e["port"]) for e in lines] == [
        ("del-module", 9, 1, "0.0.0.0", 0),
        ("add", 9, 1, "10.1.1.1", 81),
        ("replace", 7, 8, "10.0.0.6", 80),
        ("add", 7, 8, "10.0.0.7", 80),
        ("add", 7, 8, "10.0.0.5", 80),
    ]
    assert {e["actor"] for e in lines} == {cli_actor()}
    assert lines[0]["version"] == version
    assert lines[0]["detail"] == "1 host(s): 10.1.1.1:81"
    assert lines[2]["detail"] == "10.0.0.5:80 -> 10.0.0.6:80"

    r = run("history", "7", "8", "--limit", "2")
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [(row[2], row[3], row[4], row[5]) for row in rows] == [
        (cli_actor(), "replace", "7:8", "10.0.0.6:80"),
        (cli_actor(), "add", "7:8", "10.0.0.7:80"),
    ]
    assert rows[0][1].endswith(" UTC")
    assert "2 entries" in r.stderr
    older = run("history", "--json", "--before", str(lines[3]["id"])).stdout.splitlines()
    assert [json.loads(line)["id"] for line in older] == [lines[4]["id"]]

    bad = lars("route", "history", "--limit", "0", "--db", db, cwd=tmp_path)
    assert bad.returncode != 0 and "--limit must be in 1.." in bad.stderr
    bad = lars("route", "history", "--before", str(2**64), "--db", db, cwd=tmp_path)
    assert bad.returncode == 2 and "--before must be an entry id" in bad.stderr


def test_release_refuses_without_a_hold_and_releases_one(db: str, tmp_path: Path) -> None:
    assert lars("initdb", "--db", db, cwd=tmp_path).returncode == 0
    assert (
        lars("route", "add", "1", "1", "10.0.0.1", "80", "--db", db, cwd=tmp_path).returncode == 0
    )
    status = lars("route", "status", "--db", db, cwd=tmp_path)
    assert status.returncode == 0 and "hold: none" in status.stdout

    refused = lars("route", "release", "--db", db, cwd=tmp_path)
    assert refused.returncode != 0
    assert "no route table is held: nothing to release" in refused.stderr
    assert "--force" in refused.stderr

    write_hold(db, "modules 1->0, hosts 1->0, max_drop_ratio 0.5")
    status = lars("route", "status", "--db", db, cwd=tmp_path)
    assert "hold: route table held since" in status.stdout
    assert "hosts 1->0" in status.stdout

    done = lars("route", "release", "--db", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hosts 1->0" in done.stdout  # what was held
    assert "lars route release: release #" in done.stdout
    newest = json.loads(
        lars("route", "history", "--json", "--limit", "1", "--db", db, cwd=tmp_path).stdout
    )
    version = lars("route", "version", "--db", db, cwd=tmp_path).stdout.split()[1]
    assert (newest["action"], newest["actor"], newest["version"]) == (
        "release",
        cli_actor(),
        int(version),
    )
    status = lars("route", "status", "--db", db, cwd=tmp_path)
    assert f"asked by {cli_actor()}" in status.stdout and "not applied yet" in status.stdout

    forced = lars("route", "release", "--force", "--db", db, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr  # still held (not applied): a plain release


@pytest.mark.mysql
def test_original_database_without_route_audit(mysql_url: str, tmp_path: Path) -> None:
    assert lars("initdb", "--db", mysql_url, cwd=tmp_path).returncode == 0
    engine = make_engine(mysql_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {route_audit.name}"))
    finally:
        engine.dispose()
    r = lars("route", "add", "1", "1", "10.0.0.1", "80", "--db", mysql_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "not audited" in r.stderr  # logged once
    listed = lars("route", "list", "--db", mysql_url, cwd=tmp_path)
    assert listed.stdout == "1\t1\t10.0.0.1\t80\n"
    history = lars("route", "history", "--db", mysql_url, cwd=tmp_path)
    assert history.returncode == 0 and history.stdout == ""
    assert "no RouteAudit table" in history.stderr
    status = lars("route", "status", "--db", mysql_url, cwd=tmp_path)
    assert "audit: no RouteAudit table" in status.stdout
    release = lars("route", "release", "--db", mysql_url, cwd=tmp_path)
    assert release.returncode != 0 and "lars initdb" in release.stderr
    # `lars initdb` on that database adds the table, and edits are audited from then on
    assert lars("initdb", "--db", mysql_url, cwd=tmp_path).returncode == 0
    assert (
        lars("route", "del", "1", "1", "10.0.0.1", "80", "--db", mysql_url, cwd=tmp_path).returncode
        == 0
    )
    history = lars("route", "history", "--json", "--db", mysql_url, cwd=tmp_path)
    assert [json.loads(line)["action"] for line in history.stdout.splitlines()] == ["del"]
