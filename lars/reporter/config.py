"""ReporterConfig: the Lars reporter INI file ([reactor], [mysql], [repoter]) plus ours.

Unknown keys are ignored, so a shipped `lars_reporter.conf` loads unchanged; our own
settings live in the same `[repoter]` section (sic) with defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lars.config import DEFAULT_DB_URL, IniFile, db_url_from_ini
from lars.errors import ConfigError
from lars.reactor import ReactorConfig
from lars.reporter.ring import DEFAULT_VNODES

__all__ = ["DEFAULT_PORT", "ReporterConfig"]

# Network
DEFAULT_PORT = 7779
# Writers
DEFAULT_WRITERS = 3
DEFAULT_BATCH_ROWS = 1000
DEFAULT_BATCH_MS = 50
DEFAULT_MAX_PENDING = 200_000
# Timeouts
DEFAULT_FLUSH_TIMEOUT = 10.0
DEFAULT_STATS_INTERVAL = 10.0
DEFAULT_CONNECT_TIMEOUT = 2.0  # TCP connect to the database: a cheap check, short
DEFAULT_WRITE_TIMEOUT = 10.0  # socket timeout of a batch write: its bounded deadline
DEFAULT_STALL_AFTER = 2.0  # a write running this long makes the database down (watchdog)

_SECTION = "repoter"  # sic: the section name of Lars configuration files


def _default_reactor() -> ReactorConfig:
    return ReactorConfig(port=DEFAULT_PORT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReporterConfig:
    """Reporter settings: Lars [reactor], [mysql] and [repoter] db_thread_cnt, plus ours."""

    # Store
    db_url: str = DEFAULT_DB_URL
    # Network
    reactor: ReactorConfig = field(default_factory=_default_reactor)
    # Writers
    writers: int = DEFAULT_WRITERS
    batch_rows: int = DEFAULT_BATCH_ROWS
    batch_interval: float = DEFAULT_BATCH_MS / 1000
    max_pending: int = DEFAULT_MAX_PENDING
    vnodes: int = DEFAULT_VNODES
    # Timeouts
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    stats_interval: float = DEFAULT_STATS_INTERVAL
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    stall_after: float = DEFAULT_STALL_AFTER

    def __post_init__(self) -> None:
        if not 1 <= self.writers <= 256:
            raise ConfigError(f"db_thread_cnt {self.writers} must be within 1..256")
        if self.batch_rows < 1:
            raise ConfigError(f"batch_rows {self.batch_rows} must be >= 1")
        if self.batch_interval < 0:
            raise ConfigError("batch_ms must be >= 0")
        if self.max_pending < 1:
            raise ConfigError(f"max_pending {self.max_pending} must be >= 1")
        if self.flush_timeout < 0 or self.stats_interval < 0:
            raise ConfigError("flush_timeout and stats_interval must be >= 0")
        if min(self.connect_timeout, self.write_timeout, self.stall_after) <= 0:
            raise ConfigError("connect_timeout, write_timeout and stall_after must be > 0")

    @classmethod
    def from_ini(cls, ini: IniFile) -> ReporterConfig:
        return cls(
            db_url=db_url_from_ini(ini),
            reactor=ReactorConfig.from_ini(ini, default_port=DEFAULT_PORT),
            writers=ini.get(_SECTION, "db_thread_cnt", DEFAULT_WRITERS),
            batch_rows=ini.get(_SECTION, "batch_rows", DEFAULT_BATCH_ROWS),
            batch_interval=ini.get(_SECTION, "batch_ms", float(DEFAULT_BATCH_MS)) / 1000,
            max_pending=ini.get(_SECTION, "max_pending", DEFAULT_MAX_PENDING),
            flush_timeout=ini.get(_SECTION, "flush_timeout", DEFAULT_FLUSH_TIMEOUT),
            stats_interval=ini.get(_SECTION, "stats_interval", DEFAULT_STATS_INTERVAL),
            connect_timeout=ini.get(_SECTION, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            write_timeout=ini.get(_SECTION, "write_timeout", DEFAULT_WRITE_TIMEOUT),
            stall_after=ini.get(_SECTION, "stall_after", DEFAULT_STALL_AFTER),
        )
