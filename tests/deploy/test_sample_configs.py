"""deploy/*.conf: each loads with the real loaders, and each commented key is the default.

Every key appears as `;key = default`. Loaded as shipped, a file gives the defaults;
with every such line uncommented it must still give them (so each comment tells the
truth), every key in it must be one its loaders read (no typo, no stale key), and every
key the loaders read must be in it (none undocumented).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lars.agent.config import AgentConfig
from lars.config import DEFAULT_DB_URL, IniFile
from lars.console.config import ConsoleConfig
from lars.dns.service import DnsConfig
from lars.obs.listen import MetricsConfig
from lars.reload import file_log_level
from lars.reporter.config import ReporterConfig

T = TypeVar("T")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MYSQL_DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/lars_dns?charset=utf8mb4"
ADDRESSES = re.compile(r"^addresses = .*$", re.MULTILINE)
COMMENTED = re.compile(r"^;(\[\w+\]|[A-Za-z_]+ =(?: .*)?)$", re.MULTILINE)


class RecordingIni(IniFile):
    """An IniFile that remembers every (section, key) a loader looked up."""

    def __init__(self, ini: IniFile) -> None:
        super().__init__(ini._parser, ini.source)
        self.asked: set[tuple[str, str]] = set()

    def has(self, section: str, key: str) -> bool:
        self.asked.add((section.lower(), key.lower()))
        return super().has(section, key)

    def get(
        self, section: str, key: str, default: T, convert: Callable[[str], T] | None = None
    ) -> T:
        self.asked.add((section.lower(), key.lower()))
        return super().get(section, key, default, convert)


def _dns(ini: IniFile) -> list[Any]:
    return [DnsConfig.from_ini(ini), ConsoleConfig.from_ini(ini, {}), *_common("dns", ini)]


def _reporter(ini: IniFile) -> list[Any]:
    return [ReporterConfig.from_ini(ini), *_common("reporter", ini)]


def _agent(ini: IniFile) -> list[Any]:
    return [AgentConfig.from_ini(ini), *_common("agent", ini)]


def _common(daemon: str, ini: IniFile) -> list[Any]:
    """What every daemon also reads: [metrics] listen, and [log] level (INFO when absent,
    the command line's default)."""
    return [MetricsConfig.build(daemon, ini, None, {}), file_log_level(ini) or "INFO"]


LOADERS: dict[str, Callable[[IniFile], list[Any]]] = {
    "lars_dns.conf": _dns,
    "lars_reporter.conf": _reporter,
    "lars_lb_agent.conf": _agent,
}


def uncommented(text: str) -> str:
    return COMMENTED.sub(lambda m: m.group(1), text)


def keys_in(text: str) -> set[tuple[str, str]]:
    ini = IniFile.from_string(text)
    parser = ini._parser
    return {(s.lower(), k.lower()) for s in parser.sections() for k in parser.options(s)}


def differences(got: list[Any], want: list[Any]) -> list[str]:
    """`field: sample value != code default` for every field that differs."""
    out = []
    for a, b in zip(got, want, strict=True):
        if not is_dataclass(a):
            out += [] if a == b else [f"{a!r} != default {b!r}"]
            continue
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if x != y:
                out.append(f"{type(a).__name__}.{f.name}: sample {x!r} != default {y!r}")
    return out


def without_mysql_url(config: Any) -> Any:
    """The config with the database URL a default [mysql] section gives put back."""
    if getattr(config, "db_url", None) == MYSQL_DEFAULT_URL:
        return replace(config, db_url=DEFAULT_DB_URL)
    return config


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_as_shipped_it_gives_the_defaults(name: str) -> None:
    load = LOADERS[name]
    assert load(IniFile.load(DEPLOY / name)) == load(IniFile.empty())


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_commented_key_is_its_default(name: str) -> None:
    load = LOADERS[name]
    text = uncommented((DEPLOY / name).read_text())
    present = keys_in(text)
    asked: set[tuple[str, str]] = set()
    # `addresses` replaces ip/port of its section: load once with, once without it.
    for variant in (text, ADDRESSES.sub("", text)):
        ini = RecordingIni(IniFile.from_string(variant, name))
        configs = [without_mysql_url(c) for c in load(ini)]
        defaults = load(IniFile.empty())
        wrong = differences(configs, defaults)
        assert not wrong, f"deploy/{name}: commented defaults that are not the code's: {wrong}"
        assert configs == defaults
        if "[mysql]" in variant:  # the [mysql] keys' defaults make the usual MySQL URL
            assert load(ini)[0].db_url == MYSQL_DEFAULT_URL
        asked |= ini.asked
    assert sorted(present - asked) == [], f"{name}: keys no loader reads (typo or removed?)"
    assert sorted(asked - present) == [], f"{name}: keys read but missing from the sample: add them"


def test_the_files_are_lars_files() -> None:
    """The shipped forms: the original section names, `;key = value` comments only."""
    for name in LOADERS:
        for line in (DEPLOY / name).read_text().splitlines():
            assert line == "" or line.startswith(("#", "[", ";")), (name, line)
    assert "[repoter]" in (DEPLOY / "lars_reporter.conf").read_text()
    assert "[loadbalance]" in (DEPLOY / "lars_lb_agent.conf").read_text()
