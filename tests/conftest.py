"""Shared fixtures: a fresh MariaDB database per test, leak checks, free ports."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lars.dbengine import scratch_database

DEFAULT_MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"


@pytest.fixture(autouse=True, scope="session")
def _ephemeral_metrics_ports() -> Iterator[None]:
    """Every daemon a test starts (in-process or `python -m lars`, which inherits the
    environment) binds its metrics listener to a free port, so parallel runs on one
    machine never collide on 7781-7783. A test that wants a fixed port passes --metrics."""
    old = os.environ.get("LARS_METRICS_LISTEN")
    os.environ["LARS_METRICS_LISTEN"] = "127.0.0.1:0"
    yield
    if old is None:
        del os.environ["LARS_METRICS_LISTEN"]
    else:
        os.environ["LARS_METRICS_LISTEN"] = old


def _mysql_server_url() -> str:
    return os.environ.get("LARS_TEST_MYSQL_URL", DEFAULT_MYSQL_SERVER)


def _mysql_reachable(url: str) -> str | None:
    """None when a server answers, else why not."""
    engine = create_engine(url, pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    """The MariaDB/MySQL server the mysql tests use.

    With LARS_TEST_MYSQL_URL set (CI sets it) an unreachable server fails the tests;
    without it, a missing local server skips them with a loud reason.
    """
    url = _mysql_server_url()
    problem = _mysql_reachable(url)
    if problem is None:
        return url
    if "LARS_TEST_MYSQL_URL" in os.environ:
        pytest.fail(f"LARS_TEST_MYSQL_URL={url} is set but unreachable: {problem}")
    pytest.skip(f"NO MYSQL SERVER: tests needing MariaDB skipped ({url}: {problem})")


@pytest.fixture
def mysql_url(mysql_server_url: str) -> Iterator[str]:
    """A URL of a fresh, empty database that is dropped after the test."""
    with scratch_database(mysql_server_url, "lars_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lars.db'}"


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _open_process_globals() -> None:
    """Open what libraries keep once per process (libuv's signal pipe) before counting fds."""
    import uvloop

    uvloop.new_event_loop().close()


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test if it leaves threads or file descriptors behind."""
    _open_process_globals()
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    yield
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leaked_threads, f"leaked threads: {leaked_threads}"
    leaked = {fd for fd in _open_fds() - fds_before if os.path.exists(f"/proc/self/fd/{fd}")}
    targets = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked}
    assert not leaked, f"leaked fds: {targets}"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
