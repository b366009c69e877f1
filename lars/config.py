"""Configuration shared by the daemons: Lars-style INI files, flags on top, defaults below.

A Lars INI file (';' or '#' comments, `key = value`, section names such as [reactor],
[mysql], [repoter], [reporter], [dnsserver], [loadbalance]) loads unchanged. Each daemon
builds its frozen config once in main(): defaults, then the file, then the flags that were
given (a flag left at None does not override).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

from lars.errors import ConfigError

__all__ = [
    "DEFAULT_DB_URL",
    "IniFile",
    "db_url_from_ini",
    "override",
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
