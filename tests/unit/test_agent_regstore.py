"""The registrations file and [register] settings: round trip, bad files, paths, ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lars.agent.checks import CheckState
from lars.agent.config import AgentConfig
from lars.agent.regconfig import RegisterConfig, registrations_path
from lars.agent.registry import Registry
from lars.agent.regstore import RegistrationFile
from lars.config import IniFile
from lars.errors import ConfigError
from lars.protocol import dotted_to_wire
from lars.protocol.checks import Check


def test_round_trip_keeps_checks_settings_and_states(tmp_path: Path) -> None:
    reg = Registry(RegisterConfig())
    a = (1, 2, dotted_to_wire("10.0.0.200"), 80)
    b = (3, 4, dotted_to_wire("192.168.1.177"), 8080)
    reg.add(a, Check(), 0.0, 1000.0, CheckState.PASSING)
    reg.add(b, Check.http("http://192.168.1.177:8080/h", fail_after=4), 0.0, 1001.0)
    store = RegistrationFile(tmp_path / "sub" / "regs.json")
    assert store.save(list(reg.entries.values()), 1002.0) and store.writes == 1
    loaded = {s.key: s for s in RegistrationFile(store.path).load()}
    assert set(loaded) == {a, b}
    assert loaded[a].state is CheckState.PASSING and loaded[a].check == Check()
    assert loaded[b].check == Check.http("http://192.168.1.177:8080/h", fail_after=4)
    assert loaded[b].registered_at == 1001.0 and loaded[b].state is CheckState.PENDING
    assert not list(store.path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"format": 2, "instances": []}', '{"format": 1}', "\xff"]
)
def test_a_bad_file_is_logged_and_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "regs.json"
    path.write_text(text, encoding="latin-1")
    assert RegistrationFile(path).load() == []
    assert RegistrationFile(tmp_path / "missing.json").load() == []


def test_bad_entries_are_skipped_the_good_kept(tmp_path: Path) -> None:
    good = {
        "modid": 1,
        "cmdid": 2,
        "ip": "127.0.0.1",
        "port": 9,
        "check": "ttl:3",
        "state": "failing",
    }
    bad = [
        {**good, "port": 0},
        {**good, "ip": "1.2.3"},
        {**good, "check": "udp"},
        {**good, "state": "weird"},
        {**good, "modid": "1"},
        {**good, "interval": 0.0},
        {k: v for k, v in good.items() if k != "ip"},
        "not an object",
    ]
    path = tmp_path / "regs.json"
    path.write_text(json.dumps({"format": 1, "instances": [*bad, good]}))
    loaded = RegistrationFile(path).load()
    assert len(loaded) == 1 and loaded[0].state is CheckState.FAILING and loaded[0].check.ttl == 3


def test_an_unwritable_path_is_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = RegistrationFile(blocker / "regs.json")
    assert not store.save([], 0.0) and store.write_errors == 1


def test_paths() -> None:
    cfg = RegisterConfig()
    home = Path("/home/u")
    assert registrations_path(cfg, "/var/lib/c.json", 8888) == Path("/var/lib/c.json.registrations")
    assert registrations_path(cfg, None, 8888, home=home) == Path(
        "/home/u/.local/state/lars/agent-8888.registrations.json"
    )
    assert registrations_path(cfg, None, 8888, 1, home=home) == Path(
        "/home/u/.local/state/lars/agent-8888.1.registrations.json"
    )
    assert registrations_path(cfg, None, 0) is None  # ephemeral ports: memory only
    explicit = RegisterConfig(path="/tmp/r.json")
    assert registrations_path(explicit, "/c", 0) == Path("/tmp/r.json")
    assert registrations_path(explicit, "/c", 0, 2) == Path("/tmp/r.json.2")


def test_register_section(tmp_path: Path) -> None:
    ini = tmp_path / "agent.conf"
    ini.write_text(
        "[register]\ncheck_interval = 2\ncheck_timeout = 0.25\nfail_after = 3\npass_after = 2\n"
        "max_instances = 50\npath = /tmp/x.json\n"
    )
    cfg = AgentConfig.from_ini(IniFile.load(str(ini))).register
    assert (cfg.check_interval, cfg.check_timeout, cfg.fail_after, cfg.pass_after) == (
        2.0,
        0.25,
        3,
        2,
    )
    assert cfg.max_instances == 50 and cfg.path == "/tmp/x.json"
    assert AgentConfig().register == RegisterConfig()
    s = cfg.settings_for(Check.ttl_of(9, interval=0.5))
    assert (s.interval, s.timeout, s.fail_after, s.pass_after, s.ttl) == (0.5, 0.25, 3, 2, 9.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("check_interval", 0.0), ("check_interval", float("nan")), ("check_timeout", 61.0),
     ("fail_after", 0), ("pass_after", 1000), ("max_instances", 0), ("max_checks", -1),
     ("check_interval", float("inf"))],
)  # fmt: skip
def test_register_ranges(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"\\[register\\] {name}"):
        RegisterConfig(**{name: value})  # type: ignore[arg-type]
