"""A real `lars reporter` process: SIGTERM flushes pending rows; Lars config files load."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import free_port
from tests.integration.test_reporter_service import HOSTILE, report_frame, table_rows, wait_for

pytestmark = pytest.mark.e2e


class Reporter:
    """`python -m lars reporter ...` with its log in a file the test reads."""

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = tmp_path / "reporter.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lars", "reporter", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )

    def wait_listening(self) -> None:
        wait_for(self._listening, 60, "the reporter to listen")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"reporter exited: {self.log()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def received(self) -> int:
        counts = re.findall(r"stats: received (\d+)", self.log())
        return int(counts[-1]) if counts else 0

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[list[Reporter]]:
    started: list[Reporter] = []
    yield started
    for reporter in started:
        reporter.stop()


def send_reports(port: int, modules: int, seq: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        frames = [
            report_frame(m, 1, -5, seq, [(-h - 1, 8000 + h, seq, h, h == 0) for h in range(5)])
            for m in range(modules)
        ]
        sock.sendall(b"".join(frames))


def test_sigterm_writes_every_pending_row_before_exit(
    tmp_path: Path, spawn: list[Reporter], sqlite_url: str
) -> None:
    # Batches never fill and never time out: only the SIGTERM flush can write the rows.
    reporter = Reporter(
        tmp_path,
        "--db", sqlite_url,
        "--batch-rows", "1000000",
        "--batch-ms", "3600000",
        "--stats-interval", "0.1",
    )  # fmt: skip
    spawn.append(reporter)
    reporter.wait_listening()
    send_reports(reporter.port, 200, 1)
    send_reports(reporter.port, 200, 2)
    wait_for(lambda: reporter.received() == 2000, what="2000 rows received")
    assert reporter.terminate() == 0
    assert "final: received 2000 (+0) written 1000 (+1000)" in reporter.log()
    engine = create_engine(sqlite_url)
    try:
        rows = table_rows(engine)
    finally:
        engine.dispose()
    assert len(rows) == 1000
    assert rows[(199, 1, 2**32 - 5, 8004, 2**32 - 5)] == (2, 4, 2, "0")
    assert rows[(0, 1, 2**32 - 1, 8000, 2**32 - 5)] == (2, 0, 2, "1")


LARS_CONF = """\
; lars_reporter.conf as shipped with Lars, pointed at the test database
[reactor]
ip = 127.0.0.1
port = {port}
maxConn = 1024
threadNum = 2

[mysql]
db_host = {host}
db_port = {db_port}
db_user = {user}
db_passwd = {password}
db_name = {name}

[repoter]
db_thread_cnt = 2
"""


@pytest.mark.mysql
def test_lars_config_file_mariadb_hostile_frames_and_sigterm(
    tmp_path: Path, spawn: list[Reporter], mysql_url: str
) -> None:
    url = make_url(mysql_url)
    port = free_port()
    conf = tmp_path / "lars_reporter.conf"
    conf.write_text(
        LARS_CONF.format(
            port=port,
            host=url.host,
            db_port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            name=url.database,
        )
    )
    reporter = Reporter(tmp_path, "-c", str(conf), "--stats-interval", "0.1", port=port)
    spawn.append(reporter)
    reporter.wait_listening()
    # the start-up line is logged just after the port opens
    wait_for(lambda: "2 writers" in reporter.log(), what="the start-up log line")
    for payload in HOSTILE:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(payload)
    send_reports(port, 100, 7)
    engine = create_engine(mysql_url)
    try:
        wait_for(lambda: len(table_rows(engine)) == 500, what="500 rows in MariaDB")
        wait_for(
            lambda: "dropped 5 (invalid 4, bad bodies 1," in reporter.log(),
            what="the hostile frames counted in the log",
        )
        assert reporter.terminate() == 0
        assert re.search(r"final: received 500 \(\+\d+\) written 500 ", reporter.log())
        rows = table_rows(engine)
    finally:
        engine.dispose()
    assert rows[(99, 1, 2**32 - 3, 8002, 2**32 - 5)] == (7, 2, 7, "0")


def test_a_busy_port_or_a_bad_config_is_a_clear_error(tmp_path: Path, sqlite_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "lars", "reporter", "--ip", "127.0.0.1", "--port", str(port),
             "--db", sqlite_url],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert run.returncode == 1
    assert f"lars reporter: cannot listen on 127.0.0.1:{port}: Address already in use" in run.stderr
    conf = tmp_path / "bad.conf"
    conf.write_text("[repoter]\ndb_thread_cnt = lots\n")
    run = subprocess.run(
        [sys.executable, "-m", "lars", "reporter", "-c", str(conf)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert "db_thread_cnt = 'lots'" in run.stderr
