"""`lars initdb`, `lars route ...` and `lars dns` as real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.integration.dns_wire import RouteConn, hosts_of

pytestmark = pytest.mark.e2e


def lars(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_initdb_and_route_commands(tmp_path: Path) -> None:
    r = lars("initdb", "--demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lars.db").exists()  # the embedded default
    r = lars("route", "list", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.splitlines()[3] == "1\t2\t192.168.1.177\t9000"
    assert "6 host(s)" in r.stderr

    db = f"sqlite:///{tmp_path / 'other.db'}"
    assert lars("initdb", "--db", db, cwd=tmp_path).returncode == 0
    r = lars("route", "add", "7", "8", "200.1.2.3", "8080", "--db", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.match(r"lars route add: done, route version \d+", r.stdout)
    r = lars("route", "add", "7", "8", "10.0.0.1", "8080", "--db", db, cwd=tmp_path)
    r = lars(
        "route", "replace", "7", "8", "10.0.0.1", "8080", "10.0.0.2", "81", "--db", db, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    r = lars("route", "list", "--modid", "7", "--json", "--db", db, cwd=tmp_path)
    meta = (
        '"weight": 1, "enabled": true, "note": "", "updated_at": 0, "updated_by": "", '
        '"source": "static", "agent": "", "check": "", "state": "", "since": 0'
    )
    assert r.stdout.splitlines() == [
        '{"modid": 7, "cmdid": 8, "ip": "10.0.0.2", "port": 81, ' + meta + "}",
        '{"modid": 7, "cmdid": 8, "ip": "200.1.2.3", "port": 8080, ' + meta + "}",
    ]
    r = lars("route", "version", "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("pending change: module 7:8") == 3
    assert (
        lars("route", "del", "7", "8", "10.0.0.2", "81", "--db", db, cwd=tmp_path).returncode == 0
    )
    assert lars("route", "del-module", "7", "8", "--db", db, cwd=tmp_path).returncode == 0
    r = lars("route", "list", "--db", db, cwd=tmp_path)
    assert r.stdout == "" and "0 host(s)" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "1", "1", "1.2.3", "80"), "not a dotted IPv4 address: '1.2.3'"),
        (("add", "1", "1", "1.2.3.4", "0"), "port must be an integer in 1..65535"),
        (("add", "1", "3000000000", "1.2.3.4", "80"), "cmdid must be an integer in 0..2147483647"),
        (("del", "1", "1", "1.2.3.4", "80"), "host 1.2.3.4:80 is not in module 1:1"),
        (("del-module", "5", "5"), "module 5:5 has no hosts"),
        (("add", "x", "1", "1.2.3.4", "80"), "invalid int value: 'x'"),
    ],
)
def test_route_input_is_validated(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    r = lars("route", *args, "--db", f"sqlite:///{tmp_path / 'lars.db'}", cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    r = lars("route", "list", "--db", "mysql+pymysql://root@127.0.0.1:1/lars_dns", cwd=tmp_path)
    assert r.returncode == 1  # a failure, not a usage error (lars.boundary)
    assert "route database unavailable" in r.stderr
    assert "Traceback" not in r.stderr


class DnsProcess:
    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "dns", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.port = self._wait_port()

    def _wait_port(self) -> int:
        # Blocking readline: the process either prints the line or exits (EOF); a select()
        # here would miss lines already buffered by the text wrapper.
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"lars dns: listening on port (\d+)", line)
            if m:
                return int(m.group(1))
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        raise AssertionError("lars dns did not start: " + "".join(self.log))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stderr is not None
            self.log.append(self.proc.stderr.read())  # the process has ended: EOF
            self.proc.stderr.close()
        return code


def run_push_scenario(dns: DnsProcess, route_args: list[str], cwd: Path) -> None:
    try:
        with RouteConn(dns.port) as c:
            assert c.get(1, 1) == [("127.0.0.1", 9101), ("127.0.0.1", 9102), ("127.0.0.1", 9103)]
            r = lars("route", "del", "1", "1", "127.0.0.1", "9102", *route_args, cwd=cwd)
            assert r.returncode == 0, r.stderr
            msgid, msg = c.read(timeout=30)
            assert msgid == 2
            assert hosts_of(msg) == [("127.0.0.1", 9101), ("127.0.0.1", 9103)]
    finally:
        assert dns.stop() == 0


def test_lars_dns_on_the_embedded_default_pushes_route_edits(tmp_path: Path) -> None:
    cwd = tmp_path
    conf = cwd / "lars_dns.conf"
    conf.write_text(
        "; a Lars configuration file\n[reactor]\nmaxConn = 1024\nthreadNum = 2\n"
        "ip = 127.0.0.1\nport = 7778\n\n[dns]\npoll_interval = 0.2\n"
    )
    assert lars("initdb", "--demo", cwd=cwd).returncode == 0
    dns = DnsProcess(["-c", str(conf), "--port", "0"], cwd)  # the flag overrides the file
    run_push_scenario(dns, [], cwd)


@pytest.mark.mysql
def test_lars_dns_reads_a_lars_mysql_section(tmp_path: Path, mysql_url: str) -> None:
    cwd = tmp_path
    url = make_url(mysql_url)
    conf = cwd / "lars_dns.conf"
    conf.write_text(
        "[reactor]\nmaxConn = 1024\nthreadNum = 1\nip = 127.0.0.1\nport = 0\n\n"
        f"[mysql]\ndb_host = {url.host}\ndb_port = {url.port or 3306}\n"
        f"db_user = {url.username}\ndb_passwd = {url.password or ''}\n"
        f"db_name = {url.database}\n"
    )
    r = lars("initdb", "--demo", "-c", str(conf), cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert not (cwd / "lars.db").exists()
    dns = DnsProcess(["-c", str(conf)], cwd)
    run_push_scenario(dns, ["-c", str(conf)], cwd)


def test_sigint_while_waiting_for_the_database(tmp_path: Path) -> None:
    cwd = tmp_path
    env_url = "mysql+pymysql://root@127.0.0.1:1/lars_dns"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lars", "dns", "--db", env_url, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the one outage line
        assert "database unavailable" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "listening" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "lars", "dns", "--ip", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 1
    assert f"lars dns: cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_drain_undrain_and_weight_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'meta.db'}"
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert lars("route", "add", "5", "6", ip, "80", "--db", db, cwd=tmp_path).returncode == 0
    r = lars("route", "weight", "5", "6", "10.0.0.2", "80", "4", "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and "lars route weight: done" in r.stdout, r.stderr
    r = lars("route", "weight", "5", "6", "10.0.0.2", "80", "0", "--db", db, cwd=tmp_path)
    assert r.returncode == 2 and "drain" in r.stderr and "Traceback" not in r.stderr
    args = ("5", "6", "10.0.0.1", "80", "--note", "deploy 7", "--db", db)
    r = lars("route", "drain", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = lars("route", "drain", "5", "6", "10.0.0.2", "80", "--db", db, cwd=tmp_path)
    assert r.returncode == 2 and "last enabled host" in r.stderr and "--force" in r.stderr
    r = lars("route", "list", "--db", db, cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert re.fullmatch(
        r"5\t6\t10\.0\.0\.1\t80\tweight 1\tDRAINED by cli:\S+ at \d{4}-\d\d-\d\d [\d:]+ UTC"
        r"\tdeploy 7",
        lines[0],
    ), lines[0]
    assert lines[1] == "5\t6\t10.0.0.2\t80\tweight 4\tenabled"
    r = lars("route", "undrain", "5", "6", "10.0.0.1", "80", "--db", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = lars("route", "list", "--json", "--db", db, cwd=tmp_path)
    assert '"enabled": true' in r.stdout.splitlines()[0]


def _push_empty(db: Path) -> None:
    """The measured incident, in plain SQL."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM RouteData")
        conn.execute("UPDATE RouteVersion SET version = version + 1")


def test_lars_dns_holds_a_push_empty_until_lars_route_release(tmp_path: Path) -> None:
    cwd = tmp_path
    assert lars("initdb", "--demo", cwd=cwd).returncode == 0  # 3 modules, 6 hosts
    dns = DnsProcess(["--port", "0", "--ip", "127.0.0.1"], cwd)
    try:
        with RouteConn(dns.port) as c:
            assert len(c.get(1, 1)) == 3
            _push_empty(cwd / "lars.db")
            status = ""
            for _ in range(100):  # `lars route status` shows the hold once it is written
                status = lars("route", "status", cwd=cwd).stdout
                if "hold: none" not in status:
                    break
            assert "modules 3->0, hosts 6->0" in status, status
            assert len(c.get(1, 1)) == 3  # still served
            r = lars("route", "release", cwd=cwd)
            assert r.returncode == 0, r.stderr
            msgid, msg = c.read(timeout=30)
            assert msgid == 2 and hosts_of(msg) == []
    finally:
        assert dns.stop() == 0
    log = "".join(dns.log)
    assert log.count("HOLDING route table version") == 1, log
    assert "modules 3->0, hosts 6->0" in log and "released by cli:" in log


def test_lars_dns_max_drop_ratio_one_turns_the_guard_off(tmp_path: Path) -> None:
    cwd = tmp_path
    assert lars("initdb", "--demo", cwd=cwd).returncode == 0
    dns = DnsProcess(["--port", "0", "--ip", "127.0.0.1", "--max-drop-ratio", "1"], cwd)
    try:
        with RouteConn(dns.port) as c:
            assert len(c.get(1, 1)) == 3
            _push_empty(cwd / "lars.db")
            msgid, msg = c.read(timeout=30)
            assert msgid == 2 and hosts_of(msg) == []
    finally:
        assert dns.stop() == 0


def test_route_commands_never_guess_a_database(tmp_path: Path) -> None:
    """In a folder with no lars.db and nothing configured, `lars route` stops with exit 2
    and one line saying how to point it at a database, and creates nothing."""
    env = {k: v for k, v in os.environ.items() if k != "LARS_DB"}
    for args in (("list",), ("add", "5", "5", "1.2.3.4", "80"), ("version",), ("history",)):
        r = lars("route", *args, cwd=tmp_path, env=env)
        assert r.returncode == 2, r
        assert r.stderr.count("\n") == 1 and "no database selected" in r.stderr
        assert "LARS_DB" in r.stderr and "--db" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_route_commands_take_lars_db_then_an_existing_local_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "data" / "routes.db"
    elsewhere.parent.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "LARS_DB": f"sqlite:///{elsewhere}"}
    assert lars("route", "add", "5", "5", "1.2.3.4", "80", cwd=work, env=env).returncode == 0
    assert elsewhere.exists() and list(work.iterdir()) == []
    r = lars("route", "list", cwd=work, env=env)
    assert r.returncode == 0 and "1.2.3.4" in r.stdout
    # A config file without [mysql] selects nothing: LARS_DB still decides.
    conf = tmp_path / "agent.conf"
    conf.write_text("[loadbalance]\nprobeNum = 10\n")
    r = lars("route", "list", "-c", str(conf), cwd=work, env=env)
    assert r.returncode == 0 and "1.2.3.4" in r.stdout
    # Without LARS_DB, an existing ./lars.db is used and named on stderr.
    (work / "lars.db").write_bytes(elsewhere.read_bytes())
    env.pop("LARS_DB")
    r = lars("route", "list", cwd=work, env=env)
    assert r.returncode == 0 and "1.2.3.4" in r.stdout
    assert "using ./lars.db" in r.stderr
