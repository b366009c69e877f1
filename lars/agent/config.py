"""Agent settings: Lars `[loadbalance]`, `[dnsserver]`, `[reporter]` plus our own.

`BalancerConfig` holds the balancing parameters of spec section 8 (the defaults of the
shipped lars_lb_agent.conf); `AgentConfig` the daemon's network, limits and shard
layout. Both are frozen and built once in main(): defaults, then the file, then flags.
"""

from __future__ import annotations

import enum
import socket
import sys
from dataclasses import dataclass, field

from lars.agent.regconfig import RegisterConfig
from lars.config import IniFile, check_ranges, ranged
from lars.errors import ConfigError

__all__ = ["AgentConfig", "BalancerConfig", "ShardMode", "parse_addresses", "primary_ipv4"]

# Network
DEFAULT_UDP_IP = "127.0.0.1"
DEFAULT_BASE_PORT = 8888
DEFAULT_DNS = ("127.0.0.1", 7778)
DEFAULT_REPORTER = ("127.0.0.1", 7779)
# Limits
DEFAULT_MAX_MODULES = 20_000
DEFAULT_REPORT_BACKLOG = 100_000
# Timeouts
DEFAULT_REPORT_INTERVAL = 1.0
DEFAULT_CACHE_INTERVAL = 1.0
DEFAULT_MASS_EMPTY_DELAY = 300.0  # seconds a mass empty is held at most
DEFAULT_CACHE_KEEP = 24 * 3600.0  # seconds an emptied module keeps its last good hosts in the file

SHARDS = 3


class ShardMode(enum.Enum):
    """How the three UDP shards map onto event loops (design principle 3)."""

    ONE_LOOP = "one-loop"  # all three on one loop thread: fastest under the GIL
    THREADS = "threads"  # a loop thread each: for a free-threaded CPython
    PROCESSES = "processes"  # a process each (`lars agent` supervises three children)


def default_mode() -> ShardMode:
    """One loop for the three shards while the GIL is on, a loop thread each without it."""
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None and not gil_enabled():
        return ShardMode.THREADS
    return ShardMode.ONE_LOOP


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancerConfig:
    """Spec section 8 parameters, named as in the Lars `[loadbalance]` section."""

    probe_num: int = ranged(10, 0, 1_000_000, name="[loadbalance] probe_num")
    init_succ_cnt: int = ranged(180, 0, 1_000_000_000, name="[loadbalance] init_succ_cnt")
    init_err_cnt: int = ranged(5, 0, 1_000_000_000, name="[loadbalance] init_err_cnt")
    err_rate: float = ranged(0.1, 0.0, 1.0, name="[loadbalance] err_rate")
    succ_rate: float = ranged(0.5, 0.0, 1.0, name="[loadbalance] succ_rate")
    contin_err_limit: int = ranged(15, 1, 1_000_000, name="[loadbalance] contin_err_limit")
    contin_succ_limit: int = ranged(15, 1, 1_000_000, name="[loadbalance] contin_succ_limit")
    window_err_rate: float = ranged(0.7, 0.0, 1.0, name="[loadbalance] window_err_rate")
    idle_timeout: float = ranged(15.0, 0.0, 86400.0, name="[loadbalance] idle_timeout", unit="s")
    overload_timeout: float = ranged(
        15.0, 0.0, 86400.0, name="[loadbalance] overload_timeout", unit="s"
    )
    update_timeout: float = ranged(
        15.0, 0.0, 86400.0, name="[loadbalance] update_timeout", unit="s"
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.init_succ_cnt + self.init_err_cnt == 0:
            raise ConfigError("[loadbalance] init_succ_cnt + init_err_cnt must be > 0")

    @classmethod
    def from_ini(cls, ini: IniFile, section: str = "loadbalance") -> BalancerConfig:
        base = cls()
        return cls(
            probe_num=ini.get(section, "probe_num", base.probe_num),
            init_succ_cnt=ini.get(section, "init_succ_cnt", base.init_succ_cnt),
            init_err_cnt=ini.get(section, "init_err_cnt", base.init_err_cnt),
            err_rate=ini.get(section, "err_rate", base.err_rate),
            succ_rate=ini.get(section, "succ_rate", base.succ_rate),
            contin_err_limit=ini.get(section, "contin_err_limit", base.contin_err_limit),
            contin_succ_limit=ini.get(section, "contin_succ_limit", base.contin_succ_limit),
            window_err_rate=ini.get(section, "window_err_rate", base.window_err_rate),
            idle_timeout=ini.get(section, "idle_timeout", base.idle_timeout),
            overload_timeout=ini.get(section, "overload_timeout", base.overload_timeout),
            update_timeout=ini.get(section, "update_timeout", base.update_timeout),
        )


def primary_ipv4() -> str:
    """The address this host's default route uses, found without sending anything
    (connect() on a UDP socket only picks a route); 127.0.0.1 when there is none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.254.254.254", 1))
            addr: str = sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    return addr if addr and addr != "0.0.0.0" else "127.0.0.1"


def parse_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port[,host:port...]` -> address tuples; ConfigError on anything else."""
    out: list[tuple[str, int]] = []
    for item in text.split(","):
        item = item.strip()
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"not a host:port address: {item!r}")
        out.append((host, int(port)))
    if not out:
        raise ConfigError("no address given")
    return tuple(out)


def _addresses(ini: IniFile, section: str, default: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    """[section] ip/port (the Lars form) or `addresses = h:p,h:p` (ours, for failover)."""
    if ini.has(section, "addresses"):
        return parse_addresses(ini.get(section, "addresses", ""))
    ip = ini.get(section, "ip", default[0])
    port = ini.get(section, "port", default[1])
    if not 1 <= port <= 65535:
        raise ConfigError(f"[{section}] port {port} out of range 1..65535")
    return ((ip, port),)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """The agent daemon. base_port 0 gives three ephemeral ports (tests)."""

    # Network
    udp_ip: str = DEFAULT_UDP_IP
    base_port: int = ranged(  # 0: three ephemeral ports
        DEFAULT_BASE_PORT, 1, 65535 - (SHARDS - 1), name="[agent] base_port", zero_ok=True
    )
    dns_addresses: tuple[tuple[str, int], ...] = (DEFAULT_DNS,)
    reporter_addresses: tuple[tuple[str, int], ...] = (DEFAULT_REPORTER,)
    caller: str | None = None  # dotted IPv4 reported as `caller`; None = primary address
    use_uvloop: bool = True
    # Layout
    mode: ShardMode = field(default_factory=default_mode)
    shards: tuple[int, ...] = tuple(range(SHARDS))  # served here (a subset in a child)
    # Balancing
    balancer: BalancerConfig = field(default_factory=BalancerConfig)
    # Limits
    max_modules: int = ranged(  # per shard
        DEFAULT_MAX_MODULES, 1, 10_000_000, name="[agent] max_modules"
    )
    empty_module_ttl: float = ranged(  # forget known-empty modules unused this long
        60.0, 0.01, 604800.0, name="[agent] empty_module_ttl", unit="s"
    )
    report_backlog: int = ranged(  # modules kept while the reporter is down
        DEFAULT_REPORT_BACKLOG, 1, 100_000_000, name="[agent] report_backlog"
    )
    # Timeouts
    report_interval: float = ranged(
        DEFAULT_REPORT_INTERVAL, 0.01, 3600.0, name="[agent] report_interval", unit="s"
    )
    stats_interval: float = ranged(  # seconds between counter log lines (0: never)
        60.0, 0.01, 86400.0, name="[agent] stats_interval", zero_ok=True, unit="s"
    )
    # Silent peers (a partition: packets vanish, the connection stays open)
    route_heartbeat: float = ranged(  # probe a route service silent this long (0: never)
        0.25, 0.01, 3600.0, name="[agent] route_heartbeat", zero_ok=True, unit="s"
    )
    route_dead_after: float = ranged(  # drop a route service connection silent this long
        0.75, 0.01, 3600.0, name="[agent] route_dead_after", unit="s"
    )
    # just past the first SYN retransmission (1 s): a healed path is used at that
    # retransmission, and an attempt lost to a partition is retried within about 2 s
    route_connect_timeout: float = ranged(
        1.2, 0.01, 300.0, name="[agent] route_connect_timeout", unit="s"
    )
    reporter_timeout: float = ranged(  # TCP_USER_TIMEOUT of the reporter connection (0: kernel's)
        3.0, 0.001, 3600.0, name="[agent] reporter_timeout", zero_ok=True, unit="s"
    )
    # Route snapshot cache (None: no cache)
    cache_path: str | None = None
    cache_interval: float = ranged(
        DEFAULT_CACHE_INTERVAL, 0.01, 86400.0, name="[agent] cache_interval", unit="s"
    )
    cache_keep: float = ranged(  # last good hosts of an emptied module kept this long
        DEFAULT_CACHE_KEEP, 1.0, 31_536_000.0, name="[agent] cache_keep", unit="s"
    )
    # Defence in depth (lars/agent/emptyguard.py): when more than half of the modules with
    # hosts are emptied within 10 s, keep serving their hosts this long at most (0: off)
    mass_empty_delay: float = ranged(
        DEFAULT_MASS_EMPTY_DELAY, 1.0, 604_800.0, name="[agent] mass_empty_delay",
        zero_ok=True, unit="s",
    )  # fmt: skip
    # Self-registration: the [register] section (lars/agent/regconfig.py)
    register: RegisterConfig = field(default_factory=RegisterConfig)

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.dns_addresses or not self.reporter_addresses:
            raise ConfigError("the agent needs route-service and reporter addresses")
        if not self.shards or any(not 0 <= i < SHARDS for i in self.shards):
            raise ConfigError(f"shards {self.shards}: expected indices 0..{SHARDS - 1}")
        if self.route_heartbeat and self.route_dead_after <= self.route_heartbeat:
            raise ConfigError("route_dead_after must be longer than route_heartbeat")

    @classmethod
    def from_ini(cls, ini: IniFile) -> AgentConfig:
        base = cls()
        mode = ini.get("agent", "mode", base.mode.value)
        try:
            shard_mode = ShardMode(mode)
        except ValueError:
            modes = ", ".join(m.value for m in ShardMode)
            raise ConfigError(f"[agent] mode {mode!r}: expected one of {modes}") from None
        cache = ini.get("agent", "cache_path", "")
        caller = ini.get("agent", "caller", "")
        return cls(
            udp_ip=ini.get("agent", "ip", base.udp_ip),
            base_port=ini.get("agent", "base_port", base.base_port),
            dns_addresses=_addresses(ini, "dnsserver", DEFAULT_DNS),
            reporter_addresses=_addresses(ini, "reporter", DEFAULT_REPORTER),
            caller=caller or None,
            use_uvloop=ini.get("agent", "uvloop", base.use_uvloop),
            mode=shard_mode,
            balancer=BalancerConfig.from_ini(ini),
            max_modules=ini.get("agent", "max_modules", base.max_modules),
            empty_module_ttl=ini.get("agent", "empty_module_ttl", base.empty_module_ttl),
            report_backlog=ini.get("agent", "report_backlog", base.report_backlog),
            report_interval=ini.get("agent", "report_interval", base.report_interval),
            stats_interval=ini.get("agent", "stats_interval", base.stats_interval),
            route_heartbeat=ini.get("agent", "route_heartbeat", base.route_heartbeat),
            route_dead_after=ini.get("agent", "route_dead_after", base.route_dead_after),
            reporter_timeout=ini.get("agent", "reporter_timeout", base.reporter_timeout),
            route_connect_timeout=ini.get(
                "agent", "route_connect_timeout", base.route_connect_timeout
            ),
            cache_path=cache or None,
            cache_interval=ini.get("agent", "cache_interval", base.cache_interval),
            cache_keep=ini.get("agent", "cache_keep", base.cache_keep),
            register=RegisterConfig.from_ini(ini),
            mass_empty_delay=ini.get("agent", "mass_empty_delay", base.mass_empty_delay),
        )
