"""A private MariaDB primary and GTID replica for tests, never the machine's own server.

Each server runs `mariadbd --no-defaults --user=root` on its own datadir (made by
`mariadb-install-db`), socket, pid file and free port under a temp folder; the pair is
started and stopped by the test session that asks for it. The replica runs with
`read_only=1` and replicates everything, users included, so a SELECT-only `reader`
account made on the primary exists on both.

    with MariaPair.start(tmp) as pair:
        pair.primary_url("lars")        # root on the primary
        pair.replica_url("lars")        # the SELECT-only reader on the replica
        pair.sync()                     # wait until the replica has all the primary wrote
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

__all__ = ["MariaPair", "PrivateMariaDB", "mariadb_available"]

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
READER = ("reader", "reader-pw")
REPL = ("repl", "repl-pw")


def mariadb_available() -> str | None:
    """None when private servers can be started here, else why not."""
    for binary in (MARIADBD, INSTALL_DB):
        if not os.access(binary, os.X_OK):
            return f"{binary} not found (Debian's mariadb-server package)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateMariaDB:
    """One mariadbd on a temp datadir; `start()` returns once it accepts connections."""

    base: Path
    server_id: int
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_path(self) -> Path:
        return self.base / "mysqld.sock"

    def start(self, *, replica: bool = False, timeout: float = 60.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "mysql").exists():
            subprocess.run(
                [
                    INSTALL_DB,
                    "--no-defaults",
                    "--user=root",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        self.port = self.port or _free_port()
        args = [
            MARIADBD,
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.base / 'mysqld.pid'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--server-id={self.server_id}",
            "--log-bin=mysql-bin",
            "--binlog-format=ROW",
            "--log-slave-updates",
            "--gtid-strict-mode=1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--max-connections=500",
            f"--log-error={self.base / 'error.log'}",
        ]
        if replica:
            args += ["--read-only=1", "--relay-log=relay-bin"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.base / "error.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"private mariadbd did not start: {log}") from None
                time.sleep(0.1)

    def connect(self, user: str = "root", password: str = "") -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            autocommit=True,
            connect_timeout=2,
        )

    def execute(self, *statements: str) -> list[tuple[object, ...]]:
        conn = self.connect()
        try:
            rows: list[tuple[object, ...]] = []
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: connections hang as on a frozen server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@dataclass
class MariaPair:
    """A primary and its GTID replica (read_only), both private."""

    primary: PrivateMariaDB
    replica: PrivateMariaDB

    @classmethod
    @contextlib.contextmanager
    def start(cls, base: Path) -> Iterator[MariaPair]:
        pair = cls(PrivateMariaDB(base / "primary", 1), PrivateMariaDB(base / "replica", 2))
        try:
            pair.primary.start()
            pair.replica.start(replica=True)
            user, pw = REPL
            reader, reader_pw = READER
            pair.primary.execute(
                f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{pw}'",
                f"GRANT REPLICATION SLAVE ON *.* TO '{user}'@'127.0.0.1'",
                f"CREATE USER '{reader}'@'127.0.0.1' IDENTIFIED BY '{reader_pw}'",
                f"GRANT SELECT ON *.* TO '{reader}'@'127.0.0.1'",
            )
            pair.replica.execute(
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={pair.primary.port}, "
                f"MASTER_USER='{user}', MASTER_PASSWORD='{pw}', MASTER_USE_GTID=slave_pos",
                "START SLAVE",
            )
            pair.sync()
            yield pair
        finally:
            pair.replica.stop()
            pair.primary.stop()

    def primary_url(self, database: str = "") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.primary.port}/{database}"

    def replica_url(self, database: str = "") -> str:
        user, pw = READER
        return f"mysql+pymysql://{user}:{pw}@127.0.0.1:{self.replica.port}/{database}"

    def replica_root_url(self, database: str = "") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.replica.port}/{database}"

    def sync(self, timeout: float = 30.0) -> None:
        """Wait until the replica has applied everything the primary has written."""
        ((pos,),) = self.primary.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        if not pos:
            return
        ((waited,),) = self.replica.execute(f"SELECT MASTER_GTID_WAIT('{pos}', {timeout})")
        if waited != 0:
            status = self.replica.execute("SHOW SLAVE STATUS")
            raise RuntimeError(f"the replica did not reach {pos} in {timeout} s: {status}")

    def pause_replication(self) -> None:
        self.replica.execute("STOP SLAVE SQL_THREAD")

    def resume_replication(self) -> None:
        self.replica.execute("START SLAVE SQL_THREAD")
