"""Engines for the one store: SQLite embedded by default, MySQL/MariaDB through PyMySQL.

All daemons build their engine here so that every connection gets the same settings:
SQLite in WAL mode with a busy timeout (several daemons and the console share one file),
MySQL with pre-ping and recycling (a database that blinked is reconnected, not fatal).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from lars.db import metadata

__all__ = ["init_schema", "is_sqlite", "make_engine", "scratch_database"]

SQLITE_BUSY_TIMEOUT_MS = 10_000
# PyMySQL reads and writes without a timeout by default: a frozen server or a network
# partition (no RST) would hang a poller or writer for the ~15 minutes TCP takes to give
# up, with no outage logged. Longer than InnoDB's default lock wait (50 s).
MYSQL_IO_TIMEOUT = 60.0
MYSQL_CONNECT_TIMEOUT = 5.0


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    io_timeout: float = MYSQL_IO_TIMEOUT,
    connect_timeout: float = MYSQL_CONNECT_TIMEOUT,
    **kwargs: Any,
) -> Engine:
    """An Engine for `url` (sqlite:///path or mysql+pymysql://user@host:port/db).

    `io_timeout` and `connect_timeout` bound every read, write and connect of a MySQL
    connection (PyMySQL socket timeouts); a small poll query wants an engine of its own
    with short ones, a large reload or batch write the long default.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 3600)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", connect_timeout)
    connect_args.setdefault("read_timeout", io_timeout)
    connect_args.setdefault("write_timeout", io_timeout)
    return create_engine(url, connect_args=connect_args, **kwargs)


def init_schema(engine: Engine) -> None:
    """Create the lars_dns tables that are missing (never alters existing ones)."""
    metadata.create_all(engine, checkfirst=True)


@contextmanager
def scratch_database(server_url: str, prefix: str = "lars_scratch") -> Iterator[str]:
    """A new, empty MySQL/MariaDB database on `server_url`, dropped on exit; yields its URL.

    For tests and benchmarks that must not touch anyone else's data on a shared server.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        url = make_url(server_url).set(database=name, query={"charset": "utf8mb4"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()
