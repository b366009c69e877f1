"""The error boundary of `lars`: every known failure is one line and a documented code.

Each case is a stumble of issue 12, run through the real entry point (`python -m lars`):
the exact command, its one expected line on stderr and its exit code (lars.boundary:
1 failure, 2 usage, 3 no answer, 4 no host).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lars.agent.config import DEFAULT_MAX_MODULES

pytestmark = pytest.mark.e2e

# A daemon's own log lines (logging's format in lars.cli) are not part of the answer.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
BAD_URL = (
    "database URL 'nonsense': not a URL such as sqlite:///lars.db or "
    "mysql+pymysql://user@host:3306/lars_dns"
)
NO_DIALECT = "database URL postgres://x: unknown database kind (use sqlite:/// or mysql+pymysql://)"
NO_DIR = "database sqlite:////nonexistent/x.db: unable to open database file"


def lars(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LARS_CONSOLE_PASSWORD": "a-long-enough-test-password"}
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def answer(r: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the daemon's log lines."""
    return [ln for ln in r.stderr.splitlines() if ln.strip() and not LOG_LINE.match(ln)]


def check(r: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert answer(r) == [line], r.stderr
    assert r.returncode == code, r.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["route", "list"],
        ["dns"],
        ["reporter"],
        ["console"],
        ["initdb"],
        ["up", "--no-console"],
    ],
    ids=lambda c: " ".join(c),
)
def test_a_bad_database_url_is_one_usage_line(tmp_path: Path, command: list[str]) -> None:
    name = " ".join(command[:2] if command[0] == "route" else command[:1])
    check(lars(*command, "--db", "nonsense", cwd=tmp_path), 2, f"lars {name}: {BAD_URL}")
    check(lars(*command, "--db", "postgres://x", cwd=tmp_path), 2, f"lars {name}: {NO_DIALECT}")


def test_reporter_takes_db_and_keeps_db_url_as_a_hidden_alias(tmp_path: Path) -> None:
    check(lars("reporter", "--db-url", "nonsense", cwd=tmp_path), 2, f"lars reporter: {BAD_URL}")
    helptext = lars("reporter", "--help", cwd=tmp_path).stdout
    assert "--db URL" in helptext and "--db-url" not in helptext


@pytest.mark.parametrize("command", [["console"], ["up", "--no-console"], ["route", "list"]])
def test_a_database_that_cannot_be_opened_is_one_failure_line(
    tmp_path: Path, command: list[str]
) -> None:
    name = " ".join(command[:2] if command[0] == "route" else command[:1])
    r = lars(*command, "--db", "sqlite:////nonexistent/x.db", cwd=tmp_path)
    check(r, 1, f"lars {name}: {NO_DIR}")


def test_an_unreachable_database_is_one_failure_line(tmp_path: Path) -> None:
    r = lars("route", "list", "--db", "mysql+pymysql://root@127.0.0.1:1/lars_dns", cwd=tmp_path)
    assert r.returncode == 1 and len(answer(r)) == 1, r.stderr
    assert answer(r)[0].startswith("lars route list: route database unavailable: ")
    assert "Connection refused" in r.stderr and "Traceback" not in r.stderr


def test_traceback_only_with_log_level_debug_given_after_the_command(tmp_path: Path) -> None:
    r = lars("route", "list", "--db", "nonsense", "--log-level", "DEBUG", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" in r.stderr
    assert r.stderr.splitlines()[-1] == f"lars route list: {BAD_URL}"


def test_an_agent_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        base = port  # shard 0's port is the busy one
        r = lars("agent", "--base-port", str(base), cwd=tmp_path)
    check(r, 1, f"lars agent: cannot listen on 127.0.0.1:{port} (UDP): Address already in use")


def test_up_names_the_busy_port_of_each_part(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    common = ["up", "--no-console", "--db", db, "--reporter-port", "0"]
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = lars(*common, "--dns-port", str(port), "--agent-port", "0", cwd=tmp_path)
    busy_line = f"lars up: route service: cannot listen on 127.0.0.1:{port}: Address already in use"
    check(r, 1, busy_line)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        r = lars(*common, "--dns-port", "0", "--agent-port", str(port), cwd=tmp_path)
    check(r, 1, f"lars up: agent: cannot listen on 127.0.0.1:{port} (UDP): Address already in use")


def test_console_and_bench_busy_ports_are_failures_not_usage(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'c.db'}"
        console = lars("console", "--port", str(port), "--db", db, cwd=tmp_path)
        bench = lars("bench", "echo", "server", "--ip", "127.0.0.1", "--port", str(port),
                     cwd=tmp_path)  # fmt: skip
        up = lars("up", "--db", db, "--dns-port", "0", "--reporter-port", "0",
                  "--agent-port", "0", "--metrics", "off", "--console-port", str(port),
                  cwd=tmp_path)  # fmt: skip
    # The stage is named once ("lars up: console: console cannot listen" repeated it).
    check(up, 1, f"lars up: console: cannot listen on 127.0.0.1:{port}: Address already in use")
    check(console, 1, f"lars console: cannot listen on 127.0.0.1:{port}: "
                      "Address already in use")  # fmt: skip
    check(bench, 1, f"lars bench echo server: cannot listen on 127.0.0.1:{port}: "
                    "Address already in use")  # fmt: skip


def test_a_missing_config_file_is_one_usage_line(tmp_path: Path) -> None:
    r = lars("dns", "-c", str(tmp_path / "missing.conf"), cwd=tmp_path)
    check(r, 2, f"lars dns: cannot read config file {tmp_path / 'missing.conf'}: "
                "No such file or directory")  # fmt: skip


def test_global_options_are_accepted_after_the_command(tmp_path: Path) -> None:
    r = lars("route", "list", "--log-level", "WARNING", "--db", f"sqlite:///{tmp_path}/a.db",
             cwd=tmp_path)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    r = lars("sql", "schema", "--log-level", "DEBUG", cwd=tmp_path)
    assert r.returncode == 0 and "CREATE TABLE" in r.stdout
    # --log-format (lars.obs.logs) too, in either position
    r = lars("route", "list", "--log-format", "json", "--db", f"sqlite:///{tmp_path}/a.db",
             cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = lars("--log-format", "json", "sql", "schema", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # and before it, as before
    r = lars("--log-level", "WARNING", "route", "list", "--db", f"sqlite:///{tmp_path}/a.db",
             cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_version(tmp_path: Path) -> None:
    from lars import __version__

    r = lars("--version", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, f"lars {__version__}\n")


def test_agent_help_shows_the_defaults_the_code_uses(tmp_path: Path) -> None:
    r = lars("agent", "--help", cwd=tmp_path)
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    assert f"modules per shard (default {DEFAULT_MAX_MODULES})" in flat
    assert "100000" not in flat


def test_leading_zeros_in_an_address_are_refused_like_the_json_api(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    r = lars("route", "add", "9", "1", "010.0.0.1", "80", "--db", db, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert answer(r)[0].startswith("lars route add: not a dotted IPv4 address: '010.0.0.1'")
    assert lars("route", "list", "--db", db, cwd=tmp_path).stdout == ""


def test_sql_schema_prints_the_file_shipped_in_the_package(tmp_path: Path) -> None:
    from lars import sql as shipped_sql

    shipped = Path(shipped_sql.__file__).with_name("lars_dns.sql")
    r = lars("sql", "schema", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, shipped.read_text())
    r = lars("sql", "schema", "--database", "routes_2", cwd=tmp_path)
    assert "CREATE DATABASE IF NOT EXISTS `routes_2`" in r.stdout and "USE `routes_2`;" in r.stdout
    r = lars("sql", "schema", "--database", "x`; DROP", cwd=tmp_path)
    assert r.returncode == 2 and "letters, digits" in r.stderr
    r = lars("sql", "demo", cwd=tmp_path)
    assert r.returncode == 0 and "INSERT INTO RouteData" in r.stdout


def test_initdb_creates_a_missing_mysql_database(tmp_path: Path, mysql_server_url: str) -> None:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url

    name = f"lars_initdb_{os.getpid()}"
    url = make_url(mysql_server_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(mysql_server_url)
    try:
        r = lars("initdb", "--db", url, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "database created" in r.stdout
        engine = create_engine(url)
        try:
            assert {"RouteData", "RouteVersion", "RouteChange"} <= set(
                inspect(engine).get_table_names()
            )
        finally:
            engine.dispose()
        again = lars("initdb", "--db", url, cwd=tmp_path)
        assert again.returncode == 0 and "database created" not in again.stdout
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def test_daemon_help_defaults_are_the_configs(tmp_path: Path) -> None:
    from lars.dns.service import DnsConfig
    from lars.reporter.config import ReporterConfig

    dns, rep = DnsConfig(), ReporterConfig()
    expected = {
        "dns": [
            f"seconds between version polls (default {dns.poll_interval:g})",
            f"default {dns.reload_interval:g})",
            f"(default {dns.max_drop_ratio:g}; 1 = off)",
        ],
        "reporter": [
            f"writer threads (default {rep.writers})",
            f"rows per upsert batch (default {rep.batch_rows})",
            f"pending keys per writer (default {rep.max_pending})",
        ],
    }
    for command, phrases in expected.items():
        flat = " ".join(lars(command, "--help", cwd=tmp_path).stdout.split())
        for phrase in phrases:
            assert phrase in flat, (command, phrase)
