"""ReporterConfig: a Lars reporter INI file loads unchanged; flags override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lars.cli import build_parser
from lars.config import IniFile
from lars.errors import ConfigError
from lars.reporter.cli import build_config
from lars.reporter.service import ReporterConfig

LARS_REPORTER_CONF = """\
[reactor]
ip = 127.0.0.1
port = 7779
maxConn = 1024
threadNum = 5

[mysql]
db_host = 127.0.0.1
db_port = 3306
db_user = root
db_passwd = aceld
db_name = lars_dns

[repoter]
;db_thread_cnt: number of database writer threads
db_thread_cnt = 4
"""


def test_defaults_without_a_file() -> None:
    cfg = ReporterConfig.from_ini(IniFile.empty())
    assert cfg.db_url == "sqlite:///lars.db"
    assert cfg.reactor.port == 7779
    assert cfg.writers == 3
    assert cfg.batch_rows == 1000
    assert cfg.batch_interval == pytest.approx(0.05)


def test_a_lars_reporter_file_loads_unchanged() -> None:
    cfg = ReporterConfig.from_ini(IniFile.from_string(LARS_REPORTER_CONF))
    assert cfg.writers == 4
    assert cfg.reactor.ip == "127.0.0.1"
    assert cfg.reactor.port == 7779
    assert cfg.reactor.threads == 5
    assert cfg.reactor.max_conns == 1024
    assert cfg.db_url == "mysql+pymysql://root:aceld@127.0.0.1:3306/lars_dns?charset=utf8mb4"


def test_flags_override_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "lars_reporter.conf"
    conf.write_text(LARS_REPORTER_CONF)
    args = build_parser().parse_args(
        [
            "reporter",
            "-c",
            str(conf),
            "--port",
            "0",
            "--writers",
            "2",
            "--batch-ms",
            "5",
            "--db-url",
            "sqlite:///x.db",
        ]
    )
    cfg = build_config(args)
    assert cfg.reactor.port == 0
    assert cfg.reactor.threads == 5
    assert cfg.writers == 2
    assert cfg.batch_interval == pytest.approx(0.005)
    assert cfg.db_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    "text",
    [
        "[repoter]\ndb_thread_cnt = 0\n",
        "[repoter]\ndb_thread_cnt = many\n",
        "[repoter]\nbatch_rows = 0\n",
        "[reactor]\nport = 70000\n",
    ],
)
def test_invalid_values_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        ReporterConfig.from_ini(IniFile.from_string(text))
