"""Every numeric setting has a range, checked in one place (issue 19, item 2).

Each numeric setting of every daemon is fed NaN, infinities, negatives, huge and valid
values through each entry path: the INI file at start (`from_ini`), the command-line flags
(the daemon's own argparse parser and build function, which a SIGHUP runs again), and a
SIGHUP reload through `SignalWaiter` (refused: the running settings are kept, one log
line). Refuse-or-accept must match the range declared with `lars.config.ranged`. A sweep
fails for any numeric field of a config dataclass that declares no range, so a setting
added later cannot slip past.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import math
import os
import pkgutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lars
from lars.agent.cli import build_config as build_agent
from lars.agent.config import AgentConfig, BalancerConfig
from lars.cli import build_parser
from lars.client.config import ClientConfig
from lars.config import RANGE_KEY, IniFile, Range, check_ranges, ranged, setting_ranges
from lars.console.cli import _console_config
from lars.console.config import ConsoleConfig
from lars.dns.cli import build_dns_config
from lars.dns.service import DnsConfig
from lars.errors import ConfigError
from lars.reactor.config import BufferLimits, ReactorConfig
from lars.reload import ReloadResult, SignalWaiter, diff, split
from lars.reporter.cli import build_config as build_reporter
from lars.reporter.config import ReporterConfig

NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class Setting:
    daemon: str
    path: tuple[str, ...]  # field names from the daemon's root config
    rng: Range

    @property
    def section_key(self) -> tuple[str, str] | None:
        """("dns", "poll_interval") for a setting written in the file, else None."""
        name = self.rng.name
        if not name.startswith("[") or "]" not in name:
            return None
        section, _, key = name[1:].partition("] ")
        return section, key

    def __str__(self) -> str:
        return f"{self.daemon}:{'.'.join(self.path)}"


ROOTS: dict[str, type] = {
    "dns": DnsConfig,
    "reporter": ReporterConfig,
    "agent": AgentConfig,
    "console": ConsoleConfig,
    "client": ClientConfig,
}


def _walk(cls: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Range]]:
    defaults = cls(password="x" * 8) if cls is ConsoleConfig else cls()
    for f in fields(cls):
        rng = f.metadata.get(RANGE_KEY)
        if rng is not None:
            yield (*prefix, f.name), rng
        value = getattr(defaults, f.name)
        if is_dataclass(value):
            yield from _walk(type(value), (*prefix, f.name))


SETTINGS = [Setting(d, path, rng) for d, cls in ROOTS.items() for path, rng in _walk(cls)]
INI_SETTINGS = [s for s in SETTINGS if s.section_key is not None and s.daemon != "client"]


def _get(config: object, path: tuple[str, ...]) -> Any:
    for name in path:
        config = getattr(config, name)
    return config


# Rules between two settings, checked after the ranges: the other setting keeps its default.
def _relation_ok(setting: Setting, value: float) -> bool:
    name = setting.rng.name
    if name == "[agent] route_heartbeat":
        return value == 0 or value < AgentConfig().route_dead_after
    if name == "[agent] route_dead_after":
        return value > AgentConfig().route_heartbeat
    if name == "[dns] retry_initial":
        return value <= DnsConfig().retry_max
    if name == "[dns] retry_max":
        return value >= DnsConfig().retry_initial
    if name == "[reactor] high_water":
        return value <= BufferLimits().max_write_buffer
    if name == "[reactor] max_write_buffer":
        return value >= BufferLimits().high_water
    return True


def expected_ok(setting: Setting, value: float) -> bool:
    return setting.rng.accepts(value) and _relation_ok(setting, value)


def values(rng: Range) -> st.SearchStrategy[Any]:
    """Hostile and valid values for one range, in the stored unit."""
    if rng.integer:
        lo, hi = int(rng.lo), int(rng.hi)
        return st.one_of(
            st.sampled_from([-1, 0, lo, hi, hi + 1, lo - 1, 10**20, 2**63, -(2**63)]),
            st.integers(lo, hi),
            st.integers(),
        )
    return st.one_of(
        st.sampled_from([NAN, INF, -INF, -1.0, -1e-9, 0.0, rng.lo, rng.hi, rng.hi * 1.5, 9.3e9]),
        st.sampled_from([1e10, 1e20, 1e300]),
        st.floats(rng.lo, rng.hi),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def ini_text(setting: Setting, value: float) -> str:
    section_key = setting.section_key
    assert section_key is not None
    section, key = section_key
    shown = value * setting.rng.scale if setting.rng.scale != 1 else value
    return f"[{section}]\n{key} = {shown!r}\n"


def from_ini(daemon: str, ini: IniFile) -> object:
    if daemon == "dns":
        return DnsConfig.from_ini(ini)
    if daemon == "reporter":
        return ReporterConfig.from_ini(ini)
    if daemon == "agent":
        return AgentConfig.from_ini(ini)
    return ConsoleConfig.from_ini(ini, {"LARS_CONSOLE_PASSWORD": "x" * 8})


def check_outcome(setting: Setting, value: float, build: Callable[[], object]) -> None:
    ok = expected_ok(setting, value)
    try:
        config = build()
    except ConfigError as exc:
        assert not ok, f"{setting} = {value!r} refused: {exc}"
        if not setting.rng.accepts(value):  # the one line names the setting and its range
            assert setting.rng.name in str(exc) and setting.rng.describe() in str(exc)
            assert "\n" not in str(exc)
        return
    assert ok, f"{setting} = {value!r} accepted"
    stored = _get(config, setting.path)
    assert math.isclose(stored, value, rel_tol=1e-9, abs_tol=1e-12), (stored, value)


# --- the declarations themselves ---


def _config_dataclasses() -> list[type]:
    """Every dataclass named *Config or *Policy in the lars package."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(lars.__path__, "lars."):
        if info.name.endswith("__main__"):  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and is_dataclass(obj)
                and obj.__module__ == info.name
                and obj.__name__.endswith(("Config", "Policy"))
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


# Numeric fields that are not settings a user gives: say why here.
NOT_SETTINGS = {
    # the ports are handed to ReactorConfig/AgentConfig/ConsoleConfig, which check them
    "lars.up.stack.UpConfig": {"dns_port", "reporter_port", "agent_port", "console_port"},
    # built from DnsConfig's ranged max_drop_ratio, min_drop_hosts and guard_window
    "lars.dns.guard.GuardPolicy": {"max_drop_ratio", "min_drop_hosts", "window"},
    # code constants of the reconnecting clients: no file or flag sets them
    "lars.reactor.backoff.ReconnectPolicy": {
        "initial",
        "maximum",
        "factor",
        "recent_max",
        "recent",
    },
}


def test_every_numeric_field_of_every_config_declares_a_range() -> None:
    missing = []
    classes = _config_dataclasses()
    assert {DnsConfig, ReporterConfig, AgentConfig, ConsoleConfig, ClientConfig} <= set(classes)
    for cls in classes:
        qual = f"{cls.__module__}.{cls.__qualname__}"
        for f in fields(cls):
            numeric = str(f.type) in ("int", "float", "int | None", "float | None")
            exempt = f.name in NOT_SETTINGS.get(qual, set())
            if numeric and RANGE_KEY not in f.metadata and not exempt:
                missing.append(f"{qual}.{f.name}")
    assert missing == [], "declare these with lars.config.ranged: " + ", ".join(missing)


def test_every_ranged_class_checks_its_ranges() -> None:
    """A class that declares ranges must call check_ranges (else they are documentation)."""
    for cls in _config_dataclasses():
        ranges = setting_ranges(cls)
        if not ranges:
            continue
        name, rng = next(iter(ranges.items()))
        bad: Any = NAN if not rng.integer else 10**20
        base = _instance(cls)
        with pytest.raises(ConfigError, match=r"out of range"):
            replace(base, **{name: bad})


def _instance(cls: type) -> Any:
    if cls is ConsoleConfig:
        return cls(password="x" * 8)
    return cls()


def test_every_default_is_inside_its_range() -> None:
    for setting in SETTINGS:
        default = _get(_instance(ROOTS[setting.daemon]), setting.path)
        assert setting.rng.accepts(default), setting


def test_the_known_findings_are_refused() -> None:
    """The values the issue found accepted, each refused with a line naming it."""
    cases: list[tuple[Callable[..., object], dict[str, Any], str]] = [
        (DnsConfig, {"poll_interval": INF}, "[dns] poll_interval = inf"),
        (DnsConfig, {"poll_interval": 9.3e9}, "[dns] poll_interval"),
        (DnsConfig, {"poll_interval": NAN}, "[dns] poll_interval = nan"),
        (DnsConfig, {"reload_interval": 1e-9}, "[dns] reload_interval"),
        (AgentConfig, {"report_interval": NAN}, "[agent] report_interval = nan"),
        (BalancerConfig, {"idle_timeout": NAN}, "[loadbalance] idle_timeout = nan"),
        (BalancerConfig, {"idle_timeout": INF}, "[loadbalance] idle_timeout = inf"),
        (BalancerConfig, {"update_timeout": 1e10}, "[loadbalance] update_timeout"),
        (BalancerConfig, {"init_succ_cnt": 10**20}, "[loadbalance] init_succ_cnt"),
        (ReporterConfig, {"batch_interval": INF}, "[repoter] batch_ms = inf"),
    ]
    for cls, kwargs, needle in cases:
        with pytest.raises(ConfigError) as info:
            cls(**kwargs)
        assert needle in str(info.value) and "expected" in str(info.value)


def test_range_describe_and_message() -> None:
    rng = Range(0.01, 86400.0, "[agent] stats_interval", zero_ok=True, unit="s")
    assert rng.describe() == "0 or 0.01..86400 s"
    assert rng.accepts(0.0) and rng.accepts(0) and not rng.accepts(0.001)
    assert not rng.accepts(True) and not rng.accepts("1") and not rng.accepts(NAN)
    assert str(rng.error(-INF)) == (
        "[agent] stats_interval = -inf: out of range, expected 0 or 0.01..86400 s"
    )
    ms = Range(0.0, 10.0, "[repoter] batch_ms", scale=1000, unit="ms")
    assert str(ms.error(20.0)) == "[repoter] batch_ms = 20000: out of range, expected 0..10000 ms"
    assert Range(1, 5, "n", integer=True).accepts(3) and not Range(1, 5, "n", integer=True).accepts(
        3.0
    )


def test_a_default_outside_its_own_range_is_a_bug() -> None:
    with pytest.raises(AssertionError):

        @dataclass(frozen=True)
        class _Broken:
            x: float = ranged(5.0, 0.0, 1.0, name="[x] x")

    @dataclass(frozen=True)
    class Fine:
        x: float = ranged(0.5, 0.0, 1.0, name="[x] x")

        def __post_init__(self) -> None:
            check_ranges(self)

    with pytest.raises(ConfigError, match=r"^\[x\] x = 2: out of range, expected 0\.\.1$"):
        Fine(x=2.0)


# --- entry path 1: the INI file at start ---

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("setting", INI_SETTINGS, ids=str)
@FAST
@given(data=st.data())
def test_ini_file_at_start(setting: Setting, data: st.DataObject) -> None:
    value = data.draw(values(setting.rng), label="value")
    ini = IniFile.from_string(ini_text(setting, value), "test.conf")
    check_outcome(setting, value, lambda: from_ini(setting.daemon, ini))


# --- entry path 2: command-line flags (the same build runs again on SIGHUP) ---

# flag -> the setting it overrides, per command; every numeric flag of a daemon is listed
# (test_every_numeric_daemon_flag_is_covered).
FLAGS: dict[str, dict[str, str]] = {
    "dns": {
        "--port": "[reactor] port",
        "--threads": "[reactor] threadNum",
        "--poll-interval": "[dns] poll_interval",
        "--reload-interval": "[dns] reload_interval",
        "--max-drop-ratio": "[dns] max_drop_ratio",
        "--guard-window": "[dns] guard_window",
        "--processes": "[dns] processes",
    },
    "reporter": {
        "--port": "[reactor] port",
        "--threads": "[reactor] threadNum",
        "--writers": "[repoter] db_thread_cnt",
        "--batch-rows": "[repoter] batch_rows",
        "--batch-ms": "[repoter] batch_ms",
        "--max-pending": "[repoter] max_pending",
        "--stats-interval": "[repoter] stats_interval",
    },
    "agent": {
        "--base-port": "[agent] base_port",
        "--max-modules": "[agent] max_modules",
        "--report-interval": "[agent] report_interval",
        "--probe-num": "[loadbalance] probe_num",
        "--update-timeout": "[loadbalance] update_timeout",
    },
    "console": {
        "--port": "[console] port",
        "--stale-after": "[console] stale_after",
    },
}
HIDDEN_FLAGS = {"--only-shard"}  # the agent's internal shard index: checked by AgentConfig


def _build_from_argv(daemon: str, argv: list[str]) -> object:
    args = build_parser([daemon]).parse_args([daemon, *argv])
    if daemon == "dns":
        return build_dns_config(args, IniFile.load(args.config))
    if daemon == "reporter":
        return build_reporter(args)
    if daemon == "agent":
        return build_agent(args)
    os.environ.setdefault("LARS_CONSOLE_PASSWORD", "x" * 8)
    return _console_config(args, IniFile.load(args.config))


def _numeric_flags(daemon: str) -> set[str]:
    parser = build_parser([daemon])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[daemon]
    return {
        a.option_strings[-1]
        for a in command._actions
        if a.type in (int, float) and a.option_strings
    } - HIDDEN_FLAGS


def test_every_numeric_daemon_flag_is_covered() -> None:
    for daemon, flags in FLAGS.items():
        assert _numeric_flags(daemon) == set(flags), daemon


FLAG_CASES = [
    (daemon, flag, next(s for s in SETTINGS if s.daemon == daemon and s.rng.name == name))
    for daemon, flags in FLAGS.items()
    for flag, name in flags.items()
]


@pytest.mark.parametrize(("daemon", "flag", "setting"), FLAG_CASES, ids=lambda x: str(x))
@FAST
@given(data=st.data())
def test_flags(daemon: str, flag: str, setting: Setting, data: st.DataObject) -> None:
    value = data.draw(values(setting.rng), label="value")
    shown = value * setting.rng.scale if setting.rng.scale != 1 else value
    check_outcome(setting, value, lambda: _build_from_argv(daemon, [f"{flag}={shown!r}"]))


# --- entry path 3: SIGHUP (the file edited, the running settings kept when refused) ---


class Running:
    """A service's reload(): applies every change of a config that could be built."""

    def __init__(self, config: object) -> None:
        self.config = config

    def reload(self, new: object) -> ReloadResult:
        result = split(diff(self.config, new), lambda _name: True)
        self.config = new
        return result


@pytest.mark.parametrize("setting", INI_SETTINGS, ids=str)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_sighup_reload(setting: Setting, data: st.DataObject) -> None:
    value = data.draw(values(setting.rng), label="value")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "lars.conf"
        conf.write_text("", encoding="utf-8")
        argv = ["-c", str(conf)]
        running = Running(_build_from_argv(setting.daemon, argv))
        before = running.config
        waiter = SignalWaiter(
            setting.daemon,
            reload=lambda: running.reload(_build_from_argv(setting.daemon, argv)),
            source=str(conf),
        )
        conf.write_text(ini_text(setting, value), encoding="utf-8")
        records: list[logging.LogRecord] = []
        handler = _ListHandler(records)
        logger = logging.getLogger("lars.reload")
        logger.addHandler(handler)
        try:
            result = waiter.reload_now()
        finally:
            logger.removeHandler(handler)
        if expected_ok(setting, value):
            assert result is not None
            assert math.isclose(_get(running.config, setting.path), value, abs_tol=1e-12)
        else:
            assert result is None and running.config is before  # the old value kept
            errors = [r for r in records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in records]
            line = errors[0].getMessage()
            assert "running settings kept" in line and "\n" not in line
            if not setting.rng.accepts(value):
                assert setting.rng.name in line


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@example(value=NAN)
@example(value=INF)
@settings(max_examples=50, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_client_timeout(value: float) -> None:
    setting = next(s for s in SETTINGS if s.rng.name == "client timeout")
    check_outcome(setting, value, lambda: ClientConfig(timeout=value))


def test_dataclasses_replace_is_checked_too() -> None:
    """override() and replace() go through __post_init__: flags cannot bypass the check."""
    with pytest.raises(ConfigError, match="poll_interval"):
        dataclasses.replace(DnsConfig(), poll_interval=NAN)
    with pytest.raises(ConfigError, match="frame_timeout"):
        dataclasses.replace(ReactorConfig(), frame_timeout=INF)


def test_the_readme_table_lists_every_setting_with_its_range() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[3].strip()
        for line in readme.splitlines()
        if line.startswith("| `[")
    }
    missing = []
    for setting in SETTINGS:
        name = setting.rng.name
        if name.startswith("[") and rows.get(name) != setting.rng.describe():
            missing.append(f"{name} ({setting.rng.describe()}; README: {rows.get(name)})")
    assert missing == [], "README 'Settings and their ranges' is out of date: " + ", ".join(missing)


@pytest.mark.parametrize("daemon", ["dns", "reporter", "console"])
@settings(max_examples=20, deadline=None)
@given(port=st.one_of(st.integers(), st.sampled_from([0, -1, 65536, 10**20])))
def test_mysql_db_port(daemon: str, port: int) -> None:
    ini = IniFile.from_string(f"[mysql]\ndb_port = {port}\n", "test.conf")
    if 1 <= port <= 65535:
        assert f":{port}/" in from_ini(daemon, ini).db_url  # type: ignore[attr-defined]
    else:
        with pytest.raises(ConfigError, match=r"^\[mysql\] db_port = -?\d+: out of range"):
            from_ini(daemon, ini)
