"""The balancer of spec section 8 exactly as it was before weights, kept as the reference.

A verbatim copy of lars/agent/balancer.py at commit 643435a (before smooth weighted round
robin), renamed. tests/unit/test_agent_wrr_equivalence.py runs it side by side with the
weighted balancer and asserts identical answers while every weight is equal.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

from lars.agent.config import BalancerConfig
from lars.protocol import RetCode

__all__ = ["ReferenceBalancer"]

HostKey = tuple[int, int]  # (ip as the wire's int32, port)

_SUCC = int(RetCode.SUCC)
_OVERLOAD = int(RetCode.OVERLOAD)
_NOEXIST = int(RetCode.NOEXIST)


class HostState(enum.Enum):
    IDLE = "idle"
    OVERLOAD = "overload"


class RouteState(enum.Enum):
    """Where the module's route table stands."""

    NEW = "new"  # created, no reply from the route service yet
    EMPTY = "empty"  # the route service said: no hosts (kept, answers NOEXIST)
    READY = "ready"  # has hosts


class Host:
    """One host's counters (spec section 8). `state` says which list holds it."""

    __slots__ = (
        "contin_err",
        "contin_succ",
        "idle_ts",
        "ip",
        "overload_ts",
        "port",
        "rerr",
        "rsucc",
        "state",
        "verr",
        "vsucc",
        "wire",
    )

    def __init__(self, ip: int, port: int, config: BalancerConfig, now: float) -> None:
        self.ip = ip
        self.port = port
        self.wire: bytes | None = None  # encoded form, cached by the I/O layer
        self.overload_ts = now  # initialised (the original left it unset)
        self.state = HostState.IDLE
        self.vsucc = self.verr = self.rsucc = self.rerr = 0
        self.contin_succ = self.contin_err = 0
        self.idle_ts = now
        self.set_idle(config, now)

    def __repr__(self) -> str:
        return f"<Host {self.ip}:{self.port} {self.state.value} v={self.vsucc}/{self.verr}>"

    def set_idle(self, config: BalancerConfig, now: float) -> None:
        self.state = HostState.IDLE
        self.vsucc = config.init_succ_cnt
        self.verr = 0
        self.rsucc = self.rerr = 0
        self.contin_succ = self.contin_err = 0
        self.idle_ts = now

    def set_overload(self, config: BalancerConfig, now: float) -> None:
        self.state = HostState.OVERLOAD
        self.vsucc = 0
        self.verr = config.init_err_cnt
        self.rsucc = self.rerr = 0
        self.contin_succ = self.contin_err = 0
        self.overload_ts = now

    @property
    def overloaded(self) -> bool:
        return self.state is HostState.OVERLOAD


class ReferenceBalancer:
    """Balancing state of one module; owned by exactly one shard (one thread)."""

    __slots__ = (
        "access_cnt",
        "cmdid",
        "config",
        "dirty",
        "hosts",
        "idle",
        "modid",
        "overload",
        "route_state",
        "updated_at",
        "used_at",
        "waiting",
    )

    def __init__(self, modid: int, cmdid: int, config: BalancerConfig) -> None:
        self.modid = modid
        self.cmdid = cmdid
        self.config = config
        self.hosts: dict[HostKey, Host] = {}
        self.idle: deque[Host] = deque()
        self.overload: deque[Host] = deque()
        self.access_cnt = 0
        self.route_state = RouteState.NEW
        self.waiting = False  # a GetRouteRequest is out and unanswered
        self.updated_at = float("-inf")  # when routes last arrived
        self.used_at = float("-inf")  # last request while it had no hosts (expiry)
        self.dirty = False  # reports arrived since the last ReportStatusRequest

    # get_host

    def pick(self) -> tuple[int, Host | None]:
        """(retcode, host) for one get_host; NOEXIST when the module has no hosts."""
        idle = self.idle
        overload = self.overload
        if idle:
            if overload and self.access_cnt >= self.config.probe_num:
                self.access_cnt = 0
                lst = overload
            else:
                if overload:
                    self.access_cnt += 1
                lst = idle
        elif overload:
            if self.access_cnt >= self.config.probe_num:
                self.access_cnt = 0
                lst = overload
            else:
                self.access_cnt += 1
                return _OVERLOAD, None
        else:
            return _NOEXIST, None
        host = lst.popleft()
        lst.append(host)
        return _SUCC, host

    def needs_route(self, now: float) -> bool:
        """Should the route service be asked (again) now? (spec section 8, update_timeout)"""
        if self.waiting:
            return False
        if self.route_state is RouteState.NEW:
            return True
        return now - self.updated_at > self.config.update_timeout  # "older than"

    def asked(self, now: float) -> None:
        self.waiting = True

    # report

    def report(self, ip: int, port: int, retcode: int, now: float) -> bool:
        """Count one call result; False when the host is unknown (ignored)."""
        host = self.hosts.get((ip, port))
        if host is None:
            return False
        self.dirty = True
        config = self.config
        ok = retcode == _SUCC
        if ok:
            host.vsucc += 1
            host.rsucc += 1
            host.contin_succ += 1
            host.contin_err = 0
        else:
            host.verr += 1
            host.rerr += 1
            host.contin_err += 1
            host.contin_succ = 0
        if host.state is HostState.IDLE:
            if not ok and (
                host.verr / (host.vsucc + host.verr) > config.err_rate
                or host.contin_err >= config.contin_err_limit
            ):
                self._to_overload(host, now)
                return True
            if now - host.idle_ts >= config.idle_timeout:
                total = host.rsucc + host.rerr
                if total > 0 and host.rerr / total >= config.window_err_rate:
                    self._to_overload(host, now)
                else:
                    host.set_idle(config, now)
        else:
            if ok and (
                host.vsucc / (host.vsucc + host.verr) > config.succ_rate
                or host.contin_succ >= config.contin_succ_limit
            ):
                self._to_idle(host, now)
                return True
            if now - host.overload_ts >= config.overload_timeout:
                self._to_idle(host, now)
        return True

    def _to_overload(self, host: Host, now: float) -> None:
        self.idle.remove(host)
        host.set_overload(self.config, now)
        self.overload.append(host)

    def _to_idle(self, host: Host, now: float) -> None:
        self.overload.remove(host)
        host.set_idle(self.config, now)
        self.idle.append(host)

    # route updates

    def update_routes(self, hosts: Iterable[HostKey], now: float) -> None:
        """Apply a route reply or push: add new hosts idle, drop vanished ones, keep the rest.

        An empty reply leaves the module known-empty (answers NOEXIST, re-asked only after
        update_timeout) instead of dropping it (spec section 8, "Our improvement").
        """
        wanted = dict.fromkeys(hosts)
        self.waiting = False
        self.updated_at = now
        for key in [k for k in self.hosts if k not in wanted]:
            gone = self.hosts.pop(key)
            (self.overload if gone.overloaded else self.idle).remove(gone)
        for key in wanted:
            if key not in self.hosts:
                host = Host(key[0], key[1], self.config, now)
                self.hosts[key] = host
                self.idle.append(host)
        self.route_state = RouteState.READY if self.hosts else RouteState.EMPTY
        if not self.hosts:
            self.access_cnt = 0

    def host_keys(self) -> list[HostKey]:
        return list(self.hosts)

    # reporting

    def report_rows(self) -> list[tuple[int, int, int, int, bool]]:
        """(ip, port, rsucc, rerr, overload) of every host, and clear `dirty`."""
        self.dirty = False
        return [(h.ip, h.port, h.rsucc, h.rerr, h.overloaded) for h in self.hosts.values()]
