"""TcpServer settings: the Lars [reactor] section plus our limits and timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from lars.config import IniFile, check_ranges, ranged
from lars.errors import ConfigError

__all__ = ["BufferLimits", "ReactorConfig"]

# Network
DEFAULT_IP = "0.0.0.0"
DEFAULT_THREADS = 0
DEFAULT_MAX_CONNS = 10000
# Limits
DEFAULT_HIGH_WATER = 256 * 1024
DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024
# Timeouts
DEFAULT_FRAME_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BufferLimits:
    """Unsent bytes per connection: stop reading past high_water, drop past max_write_buffer."""

    high_water: int = ranged(DEFAULT_HIGH_WATER, 1, 1 << 30, name="[reactor] high_water", unit="B")
    max_write_buffer: int = ranged(
        DEFAULT_MAX_WRITE_BUFFER, 1, 1 << 32, name="[reactor] max_write_buffer", unit="B"
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.max_write_buffer < self.high_water:
            raise ConfigError(
                f"max_write_buffer {self.max_write_buffer} must be >= high_water {self.high_water}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactorConfig:
    """A TcpServer's settings: Lars [reactor] ip, port, threadNum, maxConn, plus ours."""

    # Network
    ip: str = DEFAULT_IP
    port: int = ranged(0, 0, 65535, name="[reactor] port")
    threads: int = ranged(DEFAULT_THREADS, 0, 256, name="[reactor] threadNum")
    backlog: int = ranged(1024, 1, 65535, name="listen backlog")
    use_uvloop: bool = True
    # SO_REUSEPORT: several processes listen on one port, the kernel spreads connections
    # across them (lars dns --processes, lars/dns/processes.py)
    reuse_port: bool = False
    # Limits
    max_conns: int = ranged(DEFAULT_MAX_CONNS, 1, 1_000_000, name="[reactor] maxConn")
    buffers: BufferLimits = field(default_factory=BufferLimits)
    # Timeouts
    frame_timeout: float = ranged(
        DEFAULT_FRAME_TIMEOUT, 0.01, 86400.0, name="[reactor] frame_timeout", unit="s"
    )
    drain_timeout: float = ranged(5.0, 0.0, 3600.0, name="drain timeout", unit="s")

    def __post_init__(self) -> None:
        check_ranges(self)

    @classmethod
    def from_ini(
        cls, ini: IniFile, *, default_port: int, section: str = "reactor"
    ) -> ReactorConfig:
        base = cls(port=default_port)
        return cls(
            ip=ini.get(section, "ip", base.ip),
            port=ini.get(section, "port", base.port),
            threads=ini.get(section, "threadNum", base.threads),
            max_conns=ini.get(section, "maxConn", base.max_conns),
            frame_timeout=ini.get(section, "frame_timeout", base.frame_timeout),
            use_uvloop=ini.get(section, "uvloop", base.use_uvloop),
            reuse_port=ini.get(section, "reuse_port", base.reuse_port),
            buffers=BufferLimits(
                high_water=ini.get(section, "high_water", DEFAULT_HIGH_WATER),
                max_write_buffer=ini.get(section, "max_write_buffer", DEFAULT_MAX_WRITE_BUFFER),
            ),
        )
