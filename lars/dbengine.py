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
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from lars.db import metadata
from lars.errors import ConfigError, StoreUnavailable

__all__ = [
    "db_cause",
    "ensure_database",
    "init_schema",
    "is_sqlite",
    "make_engine",
    "parse_db_url",
    "safe_url",
    "scratch_database",
]

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
    parsed = parse_db_url(url)
    try:
        return _create(url, parsed, io_timeout, connect_timeout, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"database URL {safe_url(parsed)}: {_no_dialect(exc)}") from exc
    except ImportError as exc:  # the dialect's driver (PyMySQL...) is not installed
        raise ConfigError(f"database URL {safe_url(parsed)}: {exc}") from exc


def parse_db_url(url: str) -> URL:
    """The parsed URL; ConfigError (one clear line) when it is not one."""
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"database URL {url!r}: not a URL such as sqlite:///lars.db or "
            "mysql+pymysql://user@host:3306/lars_dns"
        ) from None


def safe_url(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


def _no_dialect(exc: Exception) -> str:
    if isinstance(exc, NoSuchModuleError):
        return "unknown database kind (use sqlite:/// or mysql+pymysql://)"
    return str(exc)


def db_cause(exc: BaseException) -> str:
    """The driver's own words for a database error, without SQLAlchemy's wrapping."""
    orig = getattr(exc, "orig", None) or exc
    args = orig.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]  # PyMySQL: (errno, message)
    return str(orig).split("\n(Background on this error")[0]


def _create(
    url: str, parsed: URL, io_timeout: float, connect_timeout: float, **kwargs: Any
) -> Engine:
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
    """Create the lars_dns tables that are missing (never alters existing ones).

    Raises StoreUnavailable (naming the database and the driver's cause) when it fails.
    """
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"database {safe_url(engine.url)}: {db_cause(exc)}") from exc


MYSQL_UNKNOWN_DATABASE = 1049  # ER_BAD_DB_ERROR


def ensure_database(url: str) -> bool:
    """Create the MySQL/MariaDB database named in `url` when the server lacks it.

    True when it was created, False when it existed (or for SQLite, whose file appears
    on first use). StoreUnavailable when the server cannot be reached or refuses
    (e.g. no CREATE privilege: the message then names the statement a DBA can run).
    """
    parsed = parse_db_url(url)
    if parsed.get_backend_name() != "mysql" or not parsed.database:
        return False
    name = parsed.database
    engine = make_engine(url)
    try:
        with engine.connect():
            return False
    except DBAPIError as exc:
        orig = getattr(exc, "orig", None)
        errno = orig.args[0] if orig is not None and orig.args else None
        if errno != MYSQL_UNKNOWN_DATABASE:
            raise StoreUnavailable(f"database {safe_url(parsed)}: {db_cause(exc)}") from exc
    finally:
        engine.dispose()
    if "`" in name:
        raise StoreUnavailable(f"database {safe_url(parsed)}: does not exist")
    server = make_engine(parsed._replace(database=None).render_as_string(hide_password=False))
    statement = f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"
    try:
        with server.begin() as conn:
            conn.exec_driver_sql(statement)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"database {safe_url(parsed)}: does not exist and cannot be created "
            f"({db_cause(exc)}); a DBA can run: {statement}"
        ) from exc
    finally:
        server.dispose()
    return True


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
