"""Lars INI files load unchanged into typed configs; flags override; defaults everywhere."""

# ruff: noqa: RUF001  (the agent file below has the original's Chinese comments)

from __future__ import annotations

from pathlib import Path

import pytest

from lars.config import DEFAULT_DB_URL, IniFile, db_url_from_ini, override
from lars.errors import ConfigError
from lars.reactor.config import BufferLimits, ReactorConfig

# Files in the form the original Lars daemons ship (UTF-8, ';' comments, mixed-case keys).
DNS_CONF = """\
[mysql]
db_host = 127.0.0.1
db_port = 3306
db_user = root
db_passwd = aceld
db_name = lars_dns

[reactor]
maxConn = 1024
threadNum = 5
ip = 127.0.0.1
port = 7778
"""

AGENT_CONF = """\
[reporter]
ip = 127.0.0.1
port = 7779

[dnsserver]
ip = 127.0.0.1
port = 7778

[loadbalance]

;经过若干次获取请求host节点后，试探选择一次overload过载节点
probe_num=10

;初始化host_info主机信息访问成功的个数，防止刚启动时少量失败就认为过载
init_succ_cnt=180

;当idle节点失败率高于此值，节点变overload状态
err_rate=0.1
# a hash comment too
idle_timeout=15
"""


def write(tmp_path: Path, text: str, name: str = "lars.conf", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_route_service_file_loads_into_reactor_config(tmp_path: Path) -> None:
    ini = IniFile.load(write(tmp_path, DNS_CONF))
    cfg = ReactorConfig.from_ini(ini, default_port=7778)
    assert (cfg.ip, cfg.port, cfg.threads, cfg.max_conns) == ("127.0.0.1", 7778, 5, 1024)
    # Settings the Lars file does not have keep their defaults.
    assert cfg.frame_timeout == 30.0
    assert cfg.buffers == BufferLimits()
    assert ini.source == str(tmp_path / "lars.conf")


def test_agent_file_with_chinese_comments_loads_typed_values(tmp_path: Path) -> None:
    ini = IniFile.load(write(tmp_path, AGENT_CONF))
    assert ini.get("loadbalance", "probe_num", 0) == 10
    assert ini.get("loadbalance", "init_succ_cnt", 0) == 180
    assert ini.get("loadbalance", "err_rate", 0.5) == pytest.approx(0.1)
    assert ini.get("loadbalance", "idle_timeout", 1.0) == 15.0
    assert ini.get("dnsserver", "ip", "") == "127.0.0.1"
    assert ini.get("reporter", "port", 0) == 7779
    # Absent key and absent section fall back to the default.
    assert ini.get("loadbalance", "update_timeout", 15) == 15
    assert ini.get("nosuch", "key", "dflt") == "dflt"
    assert ini.has_section("dnsserver") and not ini.has_section("reactor")
    assert ini.has("reporter", "port") and not ini.has("reporter", "nope")


def test_keys_are_case_insensitive_and_inline_comments_are_stripped(tmp_path: Path) -> None:
    text = "[reactor]\nTHREADNUM = 3 ; three workers\nmaxconn=9\nport = 7000   # hash comment\n"
    cfg = ReactorConfig.from_ini(IniFile.load(write(tmp_path, text)), default_port=1)
    assert (cfg.threads, cfg.max_conns, cfg.port) == (3, 9, 7000)


def test_windows_line_endings_and_byte_order_mark_load(tmp_path: Path) -> None:
    path = tmp_path / "win.conf"
    path.write_bytes(b"\xef\xbb\xbf" + DNS_CONF.replace("\n", "\r\n").encode())
    cfg = ReactorConfig.from_ini(IniFile.load(path), default_port=1)
    assert (cfg.ip, cfg.port, cfg.threads) == ("127.0.0.1", 7778, 5)


def test_no_file_gives_defaults() -> None:
    ini = IniFile.load(None)
    assert ini.source == "<defaults>"
    cfg = ReactorConfig.from_ini(ini, default_port=7779)
    assert cfg == ReactorConfig(port=7779)
    assert (cfg.ip, cfg.threads, cfg.max_conns) == ("0.0.0.0", 0, 10000)
    assert db_url_from_ini(ini) == DEFAULT_DB_URL == "sqlite:///lars.db"


def test_reactor_extras_are_read_when_present() -> None:
    ini = IniFile.from_string(
        "[reactor]\nframe_timeout = 2.5\nuvloop = no\nhigh_water = 1024\nmax_write_buffer = 4096\n"
    )
    cfg = ReactorConfig.from_ini(ini, default_port=1)
    assert cfg.frame_timeout == 2.5
    assert cfg.use_uvloop is False
    assert cfg.buffers == BufferLimits(high_water=1024, max_write_buffer=4096)


def test_other_section_name_for_reactor_settings() -> None:
    ini = IniFile.from_string("[server]\nport = 9000\n[reactor]\nport = 1\n")
    assert ReactorConfig.from_ini(ini, default_port=5, section="server").port == 9000


def test_flags_override_the_file_and_none_flags_do_not(tmp_path: Path) -> None:
    cfg = ReactorConfig.from_ini(IniFile.load(write(tmp_path, DNS_CONF)), default_port=7778)
    flagged = override(cfg, port=9999, threads=None, ip="0.0.0.0", max_conns=None)
    assert (flagged.ip, flagged.port, flagged.threads, flagged.max_conns) == (
        "0.0.0.0",
        9999,
        5,
        1024,
    )
    assert override(cfg, port=None, threads=None) is cfg
    assert cfg.port == 7778  # frozen original untouched


def test_override_validates_like_construction() -> None:
    with pytest.raises(ConfigError, match="port"):
        override(ReactorConfig(), port=70000)
    with pytest.raises(TypeError):
        override(ReactorConfig(), no_such_field=1)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[reactor]\nport = abc\n", "port"),
        ("[reactor]\nport = 70000\n", "port"),
        ("[reactor]\nport = -1\n", "port"),
        ("[reactor]\nthreadNum = -2\n", "threadNum"),
        ("[reactor]\nthreadNum = 2.5\n", "threadNum"),
        ("[reactor]\nmaxConn = 0\n", "maxConn"),
        ("[reactor]\nframe_timeout = 0\n", "frame_timeout"),
        ("[reactor]\nframe_timeout = soon\n", "frame_timeout"),
        ("[reactor]\nframe_timeout = nan\n", "frame_timeout"),
        ("[reactor]\nuvloop = maybe\n", "uvloop"),
        ("[reactor]\nhigh_water = 0\n", "high_water"),
        ("[reactor]\nhigh_water = 4096\nmax_write_buffer = 1024\n", "max_write_buffer"),
        ("[reactor]\nport=7778;comment without a space\n", "port"),
    ],
)
def test_bad_values_raise_config_error_naming_the_setting(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        ReactorConfig.from_ini(IniFile.from_string(text), default_port=1)
    assert needle in str(info.value)


def test_bad_value_error_names_file_section_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[reactor]\nport = seven\n")
    with pytest.raises(ConfigError) as info:
        ReactorConfig.from_ini(IniFile.load(path), default_port=1)
    message = str(info.value)
    assert str(path) in message and "[reactor]" in message and "'seven'" in message


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        IniFile.load(tmp_path / "absent.conf")


@pytest.mark.parametrize(
    "text",
    [
        "port = 7778\n",  # no section header
        "[reactor\nport = 1\n",  # broken header
        "[reactor]\n  = 5\n",  # empty key
    ],
)
def test_malformed_file_raises_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="invalid config"):
        IniFile.load(write(tmp_path, text))


def test_file_that_is_not_utf8_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"[mysql]\ndb_passwd = caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        IniFile.load(path)


def test_duplicate_keys_keep_the_last_value() -> None:
    ini = IniFile.from_string("[reactor]\nport = 1\nport = 2\n")
    assert ini.get("reactor", "port", 0) == 2


def test_custom_converter() -> None:
    ini = IniFile.from_string("[x]\nhosts = a:1, b:2\n")
    no_hosts: list[str] = []
    hosts = ini.get("x", "hosts", no_hosts, convert=lambda raw: [h.strip() for h in raw.split(",")])
    assert hosts == ["a:1", "b:2"]


def test_mysql_section_becomes_a_pymysql_url() -> None:
    ini = IniFile.from_string(DNS_CONF)
    assert db_url_from_ini(ini) == (
        "mysql+pymysql://root:aceld@127.0.0.1:3306/lars_dns?charset=utf8mb4"
    )


def test_mysql_password_is_quoted_and_defaults_fill_the_gaps() -> None:
    ini = IniFile.from_string("[mysql]\ndb_passwd = p@ss:w/rd\ndb_port = 3307\n")
    assert db_url_from_ini(ini) == (
        "mysql+pymysql://root:p%40ss%3Aw%2Frd@127.0.0.1:3307/lars_dns?charset=utf8mb4"
    )
    empty_pw = IniFile.from_string("[mysql]\ndb_user = lars\n")
    assert db_url_from_ini(empty_pw).startswith("mysql+pymysql://lars@127.0.0.1:3306/")


def test_mysql_port_must_be_a_number() -> None:
    with pytest.raises(ConfigError, match="db_port"):
        db_url_from_ini(IniFile.from_string("[mysql]\ndb_port = x\n"))
