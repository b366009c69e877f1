"""Configuration shared by the daemons: Lars-style INI files, flags on top, defaults below.

A Lars INI file (';' or '#' comments, `key = value`, section names such as [reactor],
[mysql], [repoter], [reporter], [dnsserver], [loadbalance]) loads unchanged. Each daemon
builds its frozen config once in main(): defaults, then the file, then the flags that were
given (a flag left at None does not override).

Every numeric setting has a range, declared once on its dataclass field and checked in one
place. Declare it with `ranged()` instead of a plain default, naming the setting as the user
writes it, and call `check_ranges(self)` first thing in the dataclass's `__post_init__`:

    poll_interval: float = ranged(0.1, 0.001, 3600.0, name="[dns] poll_interval", unit="s")
    stats_interval: float = ranged(60.0, 1.0, 86400.0, name="[agent] stats_interval",
                                   zero_ok=True)  # 0 = never

Because every entry path (from_ini at start, flags through `override()`/`replace()`, and the
SIGHUP rebuild) constructs the frozen dataclass, `__post_init__` refuses NaN, inf, values
outside lo..hi and booleans/strings in a numeric field with one ConfigError line naming the
setting and its range: exit 2 at start, old value kept on SIGHUP. `setting_ranges(cls)` lists
a class's declared ranges (README table, tests/unit/test_config_ranges.py, which also fails
for a numeric field of a config dataclass that declares no range).
"""

from __future__ import annotations

import configparser
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

from lars.errors import ConfigError

__all__ = [
    "DEFAULT_DB_URL",
    "RANGE_KEY",
    "IniFile",
    "Range",
    "check_ranges",
    "db_url_from_ini",
    "override",
    "ranged",
    "setting_ranges",
]

T = TypeVar("T")

DEFAULT_DB_URL = "sqlite:///lars.db"


class IniFile:
    """A parsed Lars INI file with typed, case-insensitive lookups and clear errors."""

    def __init__(self, parser: configparser.ConfigParser, source: str) -> None:
        self._parser = parser
        self.source = source

    @classmethod
    def empty(cls) -> IniFile:
        return cls(_new_parser(), "<defaults>")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> IniFile:
        """Read `path`; None gives an empty file (every daemon runs on defaults)."""
        if path is None:
            return cls.empty()
        parser = _new_parser()
        try:
            # utf-8-sig: files saved by Windows editors start with a byte order mark.
            with open(path, encoding="utf-8-sig") as fh:
                parser.read_file(fh, source=str(path))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8: {exc}") from exc
        except configparser.Error as exc:
            raise ConfigError(f"invalid config file {path}: {exc}") from exc
        return cls(parser, str(path))

    @classmethod
    def from_string(cls, text: str, source: str = "<string>") -> IniFile:
        parser = _new_parser()
        try:
            parser.read_string(text, source=source)
        except configparser.Error as exc:
            raise ConfigError(f"invalid config {source}: {exc}") from exc
        return cls(parser, source)

    def has(self, section: str, key: str) -> bool:
        return self._parser.has_option(section, key)

    def has_section(self, section: str) -> bool:
        return self._parser.has_section(section)

    def get(
        self, section: str, key: str, default: T, convert: Callable[[str], T] | None = None
    ) -> T:
        """The value converted like `default` (or by `convert`), or `default` when absent."""
        if not self._parser.has_option(section, key):
            return default
        raw = self._parser.get(section, key).strip()
        conv: Callable[[str], Any] = convert or _converter(default)
        try:
            value: T = conv(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.source}: [{section}] {key} = {raw!r}: {exc}") from exc
        return value


def _new_parser() -> configparser.ConfigParser:
    return configparser.ConfigParser(
        comment_prefixes=(";", "#"),
        inline_comment_prefixes=(";", "#"),
        strict=False,
        interpolation=None,
    )


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected a boolean")


def _converter(default: object) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _to_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def override(config: T, **flags: Any) -> T:
    """A copy of a frozen config with every flag that is not None applied."""
    changes = {k: v for k, v in flags.items() if v is not None}
    return replace(config, **changes) if changes else config  # type: ignore[type-var]


def db_url_from_ini(ini: IniFile, default: str = DEFAULT_DB_URL) -> str:
    """[mysql] db_host/db_port/db_user/db_passwd/db_name -> a PyMySQL URL, else `default`."""
    if not ini.has_section("mysql"):
        return default
    host = ini.get("mysql", "db_host", "127.0.0.1")
    port = ini.get("mysql", "db_port", 3306)
    if not _DB_PORT.accepts(port):
        raise _DB_PORT.error(port)
    user = ini.get("mysql", "db_user", "root")
    password = ini.get("mysql", "db_passwd", "")
    name = ini.get("mysql", "db_name", "lars_dns")
    auth = quote_plus(user) + (":" + quote_plus(password) if password else "")
    return f"mysql+pymysql://{auth}@{host}:{port}/{name}?charset=utf8mb4"


def resolve_path(path: str | None) -> Path | None:
    return Path(path).expanduser() if path else None


def env_or(environ: Mapping[str, str], key: str, default: str) -> str:
    """An explicit environment lookup for main(); never read at import time."""
    return environ.get(key, default)


# --- Ranges: one declaration per numeric setting, one check for every entry path ---

RANGE_KEY = "lars.range"  # the dataclass field metadata key that holds a Range


@dataclass(frozen=True, slots=True)
class Range:
    """The values a numeric setting accepts: lo..hi (both included), finite, and 0 as well
    when `zero_ok` (the "off"/"never" value of some settings).

    `name` is the setting as written in the file (`[dns] poll_interval`); `scale` converts
    the stored value to the file's unit (batch_ms is stored in seconds: scale 1000).
    """

    lo: float
    hi: float
    name: str
    zero_ok: bool = False
    integer: bool = False
    scale: float = 1.0
    unit: str = ""

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.zero_ok and value == 0:
            return True
        return self.lo <= value <= self.hi

    def describe(self) -> str:
        """`0.001..3600 s` / `0 or 1..86400 s`, in the file's unit."""
        lo, hi = _fmt(self.lo * self.scale), _fmt(self.hi * self.scale)
        text = f"{lo}..{hi}" + (f" {self.unit}" if self.unit else "")
        return f"0 or {text}" if self.zero_ok and self.lo > 0 else text

    def error(self, value: object) -> ConfigError:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = repr(value)
        else:
            shown = _fmt(value if self.scale == 1 else value * self.scale)
        return ConfigError(f"{self.name} = {shown}: out of range, expected {self.describe()}")


_DB_PORT = Range(1, 65535, "[mysql] db_port", integer=True)


def _fmt(value: float) -> str:
    """1000.0 -> '1000', 0.05 -> '0.05', inf -> 'inf', 10**20 -> '100000000000000000000'."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def ranged(
    default: T,
    lo: float,
    hi: float,
    *,
    name: str,
    zero_ok: bool = False,
    scale: float = 1.0,
    unit: str = "",
) -> T:
    """A dataclass field default carrying its Range (checked by `check_ranges`)."""
    rng = Range(
        lo, hi, name, zero_ok=zero_ok, integer=isinstance(default, int), scale=scale, unit=unit
    )
    if not rng.accepts(default):
        raise AssertionError(f"the default of {name} is outside its own range")
    result: T = field(default=default, metadata={RANGE_KEY: rng})
    return result


def check_ranges(config: object) -> None:
    """Raise ConfigError naming the first field of `config` whose value is outside its
    declared Range. Nested config dataclasses check themselves in their own __post_init__."""
    for f in fields(config):  # type: ignore[arg-type]
        rng = f.metadata.get(RANGE_KEY)
        if rng is None:
            continue
        value = getattr(config, f.name)
        if not rng.accepts(value):
            raise rng.error(value)


def setting_ranges(cls: type) -> dict[str, Range]:
    """{field name: Range} of every ranged field of a config dataclass."""
    return {f.name: f.metadata[RANGE_KEY] for f in fields(cls) if RANGE_KEY in f.metadata}
