"""ClientConfig: where the agent listens, how long a call waits, what counts as a failure."""

from __future__ import annotations

from dataclasses import dataclass

from lars.config import check_ranges, ranged
from lars.errors import ConfigError

__all__ = [
    "DEFAULT_AGENT_IP",
    "DEFAULT_BASE_PORT",
    "DEFAULT_TIMEOUT",
    "REGISTER_RESENDS",
    "REGISTER_TIMEOUT",
    "REG_INIT_ATTEMPTS",
    "REG_INIT_DELAY",
    "SHARDS",
    "ClientConfig",
]

# Network: the agent's three UDP servers (spec section 4).
DEFAULT_AGENT_IP = "127.0.0.1"
DEFAULT_BASE_PORT = 8888
SHARDS = 3
# Timeouts: a local agent answers in well under a millisecond; this bounds a lost datagram.
DEFAULT_TIMEOUT = 0.2
# reg_init, as the original: a few short tries while the agent fetches the route.
REG_INIT_ATTEMPTS = 3
REG_INIT_DELAY = 0.05
# Self-registration: the agent writes the registration to disk before it answers, so a
# register call waits longer than get_host; the request is resent (same seq) every
# quarter of the wait, so one lost datagram costs a quarter, not the whole call.
REGISTER_TIMEOUT = 1.0
REGISTER_RESENDS = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Where the agent listens and how long a call may wait.

    `ports` names the three agent UDP ports explicitly (index i serves modules with
    (modid + cmdid) % 3 == i); when None they are base_port, base_port+1, base_port+2.
    `failures` are the exceptions that make `call()` report a failed call.
    """

    # Network
    agent_ip: str = DEFAULT_AGENT_IP
    base_port: int = ranged(DEFAULT_BASE_PORT, 1, 65535 - (SHARDS - 1), name="agent base port")
    ports: tuple[int, int, int] | None = None
    # Timeouts
    timeout: float = ranged(DEFAULT_TIMEOUT, 0.001, 3600.0, name="client timeout", unit="s")
    # Reporting
    failures: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.ports is not None and (
            len(self.ports) != SHARDS or not all(1 <= p <= 65535 for p in self.ports)
        ):
            raise ConfigError(f"agent ports must be three ports in 1..65535: {self.ports}")

    def addresses(self) -> tuple[tuple[str, int], ...]:
        """The (ip, port) of each agent UDP server, by shard index."""
        ports = self.ports or tuple(self.base_port + i for i in range(SHARDS))
        return tuple((self.agent_ip, port) for port in ports)
