"""lars.reload: config diffs, what is applied, the log level rule, a reload never fatal."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lars.agent.config import AgentConfig, BalancerConfig
from lars.config import IniFile
from lars.errors import ConfigError
from lars.reload import (
    Change,
    ReloadResult,
    SignalWaiter,
    diff,
    file_log_level,
    reload_log_level,
    split,
)


def test_diff_walks_nested_config_dataclasses() -> None:
    old = AgentConfig()
    new = AgentConfig(max_modules=50, balancer=BalancerConfig(probe_num=3))
    assert diff(old, new) == [
        Change("balancer.probe_num", 10, 3),
        Change("max_modules", 20000, 50),
    ]
    assert diff(old, AgentConfig()) == []


def test_split_and_values() -> None:
    changes = [Change("balancer.probe_num", 10, 3), Change("max_modules", 20000, 50)]
    result = split(changes, lambda name: name.startswith("balancer."))
    assert result.applied == (changes[0],) and result.restart == (changes[1],)
    assert result.values("balancer.") == {"probe_num": 3}
    assert result.values() == {}
    both = result + ReloadResult(applied=(Change("x", 1, 2),))
    assert both.values() == {"x": 2} and len(both.applied) == 2


def test_secrets_never_reach_the_log_line() -> None:
    url = Change("db_url", "mysql+pymysql://root:s3cret@db:3306/x", "sqlite:///a.db")
    assert str(url) == "db_url mysql+pymysql://root:***@db:3306/x -> sqlite:///a.db"
    assert str(Change("password", "a", "b")) == "password (changed)"


@pytest.fixture
def root_level() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    yield root
    root.setLevel(before)


def test_the_file_log_level_applies_unless_the_flag_was_given(root_level: logging.Logger) -> None:
    ini = IniFile.from_string("[log]\nlevel = debug\n")
    assert file_log_level(ini) == "DEBUG"
    kept = reload_log_level(ini, flag_given=True)
    assert kept.restart == (Change("log level", "INFO", "DEBUG"),) and root_level.level == 20
    applied = reload_log_level(ini, flag_given=False)
    assert applied.applied == (Change("log level", "INFO", "DEBUG"),)
    assert root_level.level == logging.DEBUG
    assert reload_log_level(ini, flag_given=False) == ReloadResult()  # unchanged now
    assert reload_log_level(IniFile.empty(), flag_given=False) == ReloadResult()
    with pytest.raises(ConfigError, match="level = 'LOUD'"):
        file_log_level(IniFile.from_string("[log]\nlevel = loud\n"))


def test_a_failing_reload_is_logged_and_the_daemon_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> ReloadResult:
        raise ConfigError("x.conf: [dns] poll_interval = 'often': not a number")

    waiter = SignalWaiter("dns", reload=broken, source="x.conf")
    with caplog.at_level(logging.INFO):
        assert waiter.reload_now() is None
        ok = SignalWaiter("dns", reload=lambda: ReloadResult(), source="x.conf")
        assert ok.reload_now() == ReloadResult()
        assert SignalWaiter("up").reload_now() is None
    text = caplog.text
    assert "dns: SIGHUP: x.conf not reloaded, running settings kept: x.conf" in text
    assert "dns: SIGHUP: x.conf re-read, nothing changed" in text
    assert "up: SIGHUP: nothing to reload (no -c file)" in text
