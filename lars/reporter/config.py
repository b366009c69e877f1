"""ReporterConfig: the Lars reporter INI file ([reactor], [mysql], [repoter]) plus ours.

Unknown keys are ignored, so a shipped `lars_reporter.conf` loads unchanged; our own
settings live in the same `[repoter]` section (sic) with defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lars.config import DEFAULT_DB_URL, IniFile, check_ranges, db_url_from_ini, ranged
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
    writers: int = ranged(DEFAULT_WRITERS, 1, 256, name=f"[{_SECTION}] db_thread_cnt")
    batch_rows: int = ranged(DEFAULT_BATCH_ROWS, 1, 1_000_000, name=f"[{_SECTION}] batch_rows")
    batch_interval: float = ranged(  # stored in seconds, written in ms
        DEFAULT_BATCH_MS / 1000, 0.0, 3600.0, name=f"[{_SECTION}] batch_ms", scale=1000, unit="ms"
    )
    max_pending: int = ranged(DEFAULT_MAX_PENDING, 1, 100_000_000, name=f"[{_SECTION}] max_pending")
    vnodes: int = ranged(DEFAULT_VNODES, 1, 100_000, name="reporter ring vnodes")
    # Timeouts
    flush_timeout: float = ranged(
        DEFAULT_FLUSH_TIMEOUT, 0.0, 3600.0, name=f"[{_SECTION}] flush_timeout", unit="s"
    )
    stats_interval: float = ranged(  # 0: no counter log lines
        DEFAULT_STATS_INTERVAL, 0.0, 86400.0, name=f"[{_SECTION}] stats_interval", unit="s"
    )
    connect_timeout: float = ranged(
        DEFAULT_CONNECT_TIMEOUT, 0.01, 300.0, name=f"[{_SECTION}] connect_timeout", unit="s"
    )
    write_timeout: float = ranged(
        DEFAULT_WRITE_TIMEOUT, 0.01, 3600.0, name=f"[{_SECTION}] write_timeout", unit="s"
    )
    stall_after: float = ranged(
        DEFAULT_STALL_AFTER, 0.01, 3600.0, name=f"[{_SECTION}] stall_after", unit="s"
    )

    def __post_init__(self) -> None:
        check_ranges(self)

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
