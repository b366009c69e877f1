"""TcpServer settings: the Lars [reactor] section plus our limits and timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from lars.config import IniFile
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

    high_water: int = DEFAULT_HIGH_WATER
    max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER

    def __post_init__(self) -> None:
        if self.high_water < 1:
            raise ConfigError(f"high_water {self.high_water} must be >= 1")
        if self.max_write_buffer < self.high_water:
            raise ConfigError(
                f"max_write_buffer {self.max_write_buffer} must be >= high_water {self.high_water}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactorConfig:
    """A TcpServer's settings: Lars [reactor] ip, port, threadNum, maxConn, plus ours."""

    # Network
    ip: str = DEFAULT_IP
    port: int = 0
    threads: int = DEFAULT_THREADS
    backlog: int = 1024
    use_uvloop: bool = True
    # Limits
    max_conns: int = DEFAULT_MAX_CONNS
    buffers: BufferLimits = field(default_factory=BufferLimits)
    # Timeouts
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT
    drain_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} out of range 0..65535")
        if self.threads < 0:
            raise ConfigError(f"threadNum {self.threads} must be >= 0")
        if self.max_conns < 1:
            raise ConfigError(f"maxConn {self.max_conns} must be >= 1")
        if not self.frame_timeout > 0:  # also rejects nan
            raise ConfigError("frame_timeout must be > 0")

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
            buffers=BufferLimits(
                high_water=ini.get(section, "high_water", DEFAULT_HIGH_WATER),
                max_write_buffer=ini.get(section, "max_write_buffer", DEFAULT_MAX_WRITE_BUFFER),
            ),
        )
