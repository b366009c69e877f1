"""Where a daemon's metrics/health listener binds: `--metrics ADDR:PORT|off`, INI
`[metrics] listen = ADDR:PORT|off`, or `$LARS_METRICS_LISTEN` (read in main, between the
file and the flag: test suites and containers set it once for every daemon they start);
the flag overrides the rest, the default needs none.

Defaults are on, on loopback, one port per daemon (the console keeps 7780):
dns and `lars up` 7781, reporter 7782, agent 7783. No prometheus_client here: the
client-only `lars status` uses these defaults too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lars.config import IniFile
from lars.errors import ConfigError

__all__ = ["DEFAULT_IP", "DEFAULT_PORTS", "LISTEN_ENV", "MetricsConfig", "parse_listen"]

# Network
DEFAULT_IP = "127.0.0.1"
DEFAULT_PORTS = {"dns": 7781, "reporter": 7782, "agent": 7783, "up": 7781, "console": 7784}
LISTEN_ENV = "LARS_METRICS_LISTEN"
_OFF = ("off", "no", "none", "false", "0")


def parse_listen(text: str) -> tuple[str, int] | None:
    """'ADDR:PORT' -> (addr, port); 'off' -> None. Raises ConfigError on anything else."""
    raw = text.strip()
    if raw.lower() in _OFF:
        return None
    host, sep, port_text = raw.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ConfigError(f"metrics listen address {text!r}: expected ADDR:PORT or off")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"metrics listen address {text!r}: port is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"metrics listen address {text!r}: port outside 0..65535")
    return host, port


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """The listener of one daemon process; `listen=None` turns it off."""

    listen: tuple[str, int] | None

    @classmethod
    def default(cls, daemon: str) -> MetricsConfig:
        return cls(listen=(DEFAULT_IP, DEFAULT_PORTS[daemon]))

    @classmethod
    def build(
        cls,
        daemon: str,
        ini: IniFile,
        flag: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> MetricsConfig:
        """Defaults, then `[metrics] listen` of the file, then `environ[LISTEN_ENV]`,
        then the flag (each only if given)."""
        config = cls.default(daemon)
        if ini.has("metrics", "listen"):
            config = cls(listen=parse_listen(ini.get("metrics", "listen", "")))
        if environ is not None and environ.get(LISTEN_ENV):
            config = cls(listen=parse_listen(environ[LISTEN_ENV]))
        if flag is not None:
            config = cls(listen=parse_listen(flag))
        return config

    @property
    def url(self) -> str:
        if self.listen is None:
            return ""
        host, port = self.listen
        return f"http://{host}:{port}"
