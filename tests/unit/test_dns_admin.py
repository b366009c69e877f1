"""RouteAdmin on SQLite: edits, versions, change rows and validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy

from lars.config import IniFile
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig
from lars.dns.table import MAX_HOSTS_PER_MODULE
from lars.errors import ConfigError, StoreUnavailable, ValidationError
from lars.routes.admin import RouteAdmin, RouteEntry


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


def test_edits_change_routes_versions_and_change_rows(engine: sqlalchemy.Engine) -> None:
    clock = Clock(1000.0)
    admin = RouteAdmin(engine, clock=clock)
    assert admin.current_version() == 0
    assert admin.add_host(1, 2, "192.168.1.177", 9000) == 1000
    assert admin.add_host(1, 2, "10.0.0.1", 80) == 1001  # same second: old + 1
    clock.now = 5000.5
    assert admin.add_host(3, 4, "10.0.0.2", 81) == 5000
    assert admin.list_routes() == [
        RouteEntry(1, 2, "10.0.0.1", 80),
        RouteEntry(1, 2, "192.168.1.177", 9000),
        RouteEntry(3, 4, "10.0.0.2", 81),
    ]
    assert admin.list_routes(modid=3) == [RouteEntry(3, 4, "10.0.0.2", 81)]
    assert admin.list_routes(cmdid=2, modid=1)[0].port == 80
    assert admin.replace_host(1, 2, "10.0.0.1", 80, "10.0.0.9", 8080) == 5001
    assert admin.del_host(1, 2, "192.168.1.177", 9000) == 5002
    assert admin.list_routes(1, 2) == [RouteEntry(1, 2, "10.0.0.9", 8080)]
    assert admin.del_module(3, 4) == 5003
    assert admin.list_routes(3, 4) == []
    assert admin.current_version() == 5003
    # the rows of versions 1000 and 1001 are more than an hour older than 5000: the edit
    # at 5000 trimmed them (lars/routes/changegc.py, issue 22)
    assert admin.pending_changes() == [
        (3, 4, 5000),
        (1, 2, 5001),
        (1, 2, 5002),
        (3, 4, 5003),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 1, "1.1.1.1", 1), "modid must be an integer in 0..2147483647"),
        ((1, 2**31, "1.1.1.1", 1), "cmdid must be an integer"),
        ((1, 1, "1.1.1", 1), "not a dotted IPv4 address"),
        ((1, 1, "256.1.1.1", 1), "not a dotted IPv4 address"),
        ((1, 1, "a.b.c.d", 1), "not a dotted IPv4 address"),
        ((1, 1, "1.1.1.1", 0), "port must be an integer in 1..65535"),
        ((1, 1, "1.1.1.1", 65536), "port must be"),
        ((True, 1, "1.1.1.1", 1), "modid must be"),
    ],
)
def test_invalid_input_is_refused_clearly(
    engine: sqlalchemy.Engine, args: tuple[int, int, str, int], message: str
) -> None:
    admin = RouteAdmin(engine)
    with pytest.raises(ValidationError, match=message):
        admin.add_host(*args)
    assert admin.current_version() == 0
    assert admin.pending_changes() == []


def test_duplicates_and_missing_hosts_roll_back(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine, clock=Clock(100))
    admin.add_host(1, 1, "1.1.1.1", 1)
    admin.add_host(1, 1, "2.2.2.2", 2)
    with pytest.raises(ValidationError, match="already in module 1:1"):
        admin.add_host(1, 1, "1.1.1.1", 1)
    with pytest.raises(ValidationError, match="is not in module 1:1"):
        admin.del_host(1, 1, "9.9.9.9", 1)
    with pytest.raises(ValidationError, match="is not in module"):
        admin.replace_host(1, 1, "9.9.9.9", 1, "3.3.3.3", 3)
    with pytest.raises(ValidationError, match="already in module"):
        admin.replace_host(1, 1, "1.1.1.1", 1, "2.2.2.2", 2)
    with pytest.raises(ValidationError, match="has no hosts"):
        admin.del_module(7, 7)
    assert admin.current_version() == 101
    assert len(admin.pending_changes()) == 2
    assert len(admin.list_routes()) == 2


def test_module_full_at_frame_limit_is_refused(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES (?, ?, ?, ?)",
            [(1, 1, i + 1, 80) for i in range(MAX_HOSTS_PER_MODULE)],
        )
    with pytest.raises(ValidationError, match="frame limit"):
        admin.add_host(1, 1, "200.0.0.1", 80)


def test_database_failure_is_store_unavailable(tmp_path: object) -> None:
    engine = make_engine("sqlite:////nonexistent-dir/x/lars.db")
    try:
        admin = RouteAdmin(engine)
        with pytest.raises(StoreUnavailable):
            admin.list_routes()
        with pytest.raises(StoreUnavailable):
            admin.add_host(1, 1, "1.1.1.1", 1)
        with pytest.raises(StoreUnavailable):
            admin.current_version()
    finally:
        engine.dispose()


def test_dns_config_reads_a_lars_ini_unchanged() -> None:
    ini = IniFile.from_string(
        "[reactor]\nmaxConn = 1024\nthreadNum = 5\nip = 127.0.0.1\nport = 7778\n"
        "[mysql]\ndb_host = 127.0.0.1\ndb_port = 3306\ndb_user = root\n"
        "db_passwd = aceld\ndb_name = lars_dns\n"
    )
    cfg = DnsConfig.from_ini(ini)
    assert cfg.db_url.startswith("mysql+pymysql://root:aceld@127.0.0.1:3306/lars_dns")
    assert (cfg.reactor.ip, cfg.reactor.port, cfg.reactor.threads) == ("127.0.0.1", 7778, 5)
    assert cfg.reactor.max_conns == 1024
    assert cfg.poll_interval == 0.1 and cfg.reload_interval == 10.0
    assert cfg.poll_timeout == 1.0 and cfg.max_drop_ratio == 0.5 and cfg.guard_policy.enabled
    defaults = DnsConfig.from_ini(IniFile.empty())
    assert defaults.db_url == "sqlite:///lars.db" and defaults.reactor.port == 7778
    tuned = DnsConfig.from_ini(
        IniFile.from_string(
            "[dns]\npoll_interval = 0.25\nmax_drop_ratio = 1\nmin_drop_hosts = 10\n"
            "reload_deadline = 30\n"
        )
    )
    assert tuned.poll_interval == 0.25 and tuned.reload_deadline == 30.0
    assert tuned.max_drop_ratio == 1.0 and not tuned.guard_policy.enabled
    assert tuned.guard_policy.min_drop_hosts == 10
    assert DnsConfig(poll_interval=2.0).poll_timeout == 5.0
    with pytest.raises(ConfigError, match="max_drop_ratio"):
        DnsConfig(max_drop_ratio=2.0)
    with pytest.raises(ConfigError):
        DnsConfig(poll_interval=0)
    with pytest.raises(ConfigError):
        DnsConfig.from_ini(IniFile.from_string("[dns]\nreload_interval = soon\n"))
