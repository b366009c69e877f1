"""The console's settings: a [console] section of a Lars INI file, the environment, flags.

The password never has a default: without one from the file (`[console] password`) or the
environment (LARS_CONSOLE_PASSWORD) the console refuses to start.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from lars.config import IniFile, check_ranges, db_url_from_ini, ranged
from lars.errors import ConfigError

__all__ = ["DEFAULT_PORT", "PASSWORD_ENV", "ConsoleConfig", "check_password", "generate_password"]

PASSWORD_ENV = "LARS_CONSOLE_PASSWORD"
SECTION = "console"
# Network
DEFAULT_IP = "127.0.0.1"
DEFAULT_PORT = 7780
# Health
DEFAULT_STALE_AFTER = 60.0
DEFAULT_REFRESH_INTERVAL = 5.0
# Sessions
DEFAULT_SESSION_TTL = 8 * 3600.0
DEFAULT_USER = "console"  # the actor of console edits in RouteAudit (one shared password)
MIN_PASSWORD_LEN = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleConfig:
    """Everything `lars console` needs; `password` is hashed by build_console, never logged."""

    # Network
    ip: str = DEFAULT_IP
    port: int = ranged(DEFAULT_PORT, 0, 65535, name="[console] port")
    # Store
    db_url: str = "sqlite:///lars.db"
    # Auth
    password: str = field(default="", repr=False)
    user: str = DEFAULT_USER
    session_ttl: float = ranged(
        DEFAULT_SESSION_TTL, 60.0, 31 * 86400.0, name="[console] session_ttl", unit="s"
    )
    secure_cookie: bool = False
    # Health
    stale_after: float = ranged(
        DEFAULT_STALE_AFTER, 0.1, 86400.0, name="[console] stale_after", unit="s"
    )
    refresh_interval: float = ranged(
        DEFAULT_REFRESH_INTERVAL, 0.1, 3600.0, name="[console] refresh_interval", unit="s"
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.user.strip():
            raise ConfigError("the console user (the audit log's actor) must not be empty")

    @classmethod
    def from_ini(cls, ini: IniFile, environ: Mapping[str, str]) -> ConsoleConfig:
        """Defaults, then `[console]` and `[mysql]` of the file, then the environment."""
        base = cls()
        password = environ.get(PASSWORD_ENV) or ini.get(SECTION, "password", "")
        return cls(
            ip=ini.get(SECTION, "ip", base.ip),
            port=ini.get(SECTION, "port", base.port),
            db_url=ini.get(SECTION, "db_url", db_url_from_ini(ini)),
            password=password,
            user=ini.get(SECTION, "user", base.user),
            session_ttl=ini.get(SECTION, "session_ttl", base.session_ttl),
            secure_cookie=ini.get(SECTION, "secure_cookie", base.secure_cookie),
            stale_after=ini.get(SECTION, "stale_after", base.stale_after),
            refresh_interval=ini.get(SECTION, "refresh_interval", base.refresh_interval),
        )


def check_password(password: str) -> None:
    """Raise ConfigError unless `password` is usable (there is no built-in default)."""
    if not password:
        raise ConfigError(f"the console needs a password: set {PASSWORD_ENV} or [console] password")
    if len(password) < MIN_PASSWORD_LEN:
        raise ConfigError(f"the console password must have at least {MIN_PASSWORD_LEN} characters")


def generate_password() -> str:
    """A fresh random password (for `lars up --demo`, which prints it): 16 URL-safe chars."""
    return secrets.token_urlsafe(12)
