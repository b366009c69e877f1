"""What the client API hands back: hosts, results and the one error of `call()`.

IPs are dotted strings here; the wire's signed int32 form never leaves the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from lars.errors import NoHost
from lars.protocol import NoHostReason, RetCode

__all__ = ["ClientStats", "Host", "HostResult", "NoHostError", "RouteResult"]


@dataclass(frozen=True, slots=True)
class Host:
    """One host of a module: a dotted IPv4 address and a port."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


class HostResult(NamedTuple):
    """The answer to get_host (immutable; a NamedTuple because one is built per call).

    `retcode` is SUCC with `ip`/`port` set, or OVERLOAD / NOEXIST from the agent, or
    SYSTEM_ERROR when the agent did not answer in time (`timed_out` is then True) or
    refused the datagram (no agent on that port). `ip` is "" and `port` 0 without a host.
    `reason` is what a lars agent adds to a NOEXIST answer (GetHostResponse field 6, a
    NoHostReason value: e.g. ROUTE_SERVICE_UNREACHABLE); 0 from original agents.
    """

    retcode: RetCode
    modid: int
    cmdid: int
    ip: str = ""
    port: int = 0
    timed_out: bool = False
    reason: int = 0
    refused: bool = False  # not delivered: ICMP port unreachable (nothing listens) or send error

    @property
    def ok(self) -> bool:
        return self.retcode == RetCode.SUCC

    @property
    def why(self) -> str:
        """The answer in words: the retcode and, when the agent gave one, its reason."""
        if self.timed_out or self.refused:
            return "no answer from the agent"
        if self.ok or not self.reason:
            return self.retcode.name
        try:
            text = NoHostReason(self.reason).text
        except ValueError:
            text = f"reason {self.reason}"
        return f"{self.retcode.name} ({text})"

    @property
    def host(self) -> Host:
        if not self.ok:
            raise NoHostError(self)
        return Host(self.ip, self.port)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.ip}:{self.port}"
        return self.retcode.name


@dataclass(frozen=True, slots=True)
class RouteResult:
    """The answer to get_route: every host the agent knows for the module.

    `retcode` is SUCC when there is at least one host, NOEXIST when the agent answered an
    empty list (unknown module, or the agent is still fetching it: see reg_init), and
    SYSTEM_ERROR when no answer came in time.
    """

    retcode: RetCode
    modid: int
    cmdid: int
    hosts: tuple[Host, ...] = ()
    timed_out: bool = False
    refused: bool = False  # not delivered: ICMP port unreachable (nothing listens) or send error

    @property
    def ok(self) -> bool:
        return self.retcode == RetCode.SUCC


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters summed over every thread (or the one loop) of a client."""

    timeouts: int
    send_errors: int
    skipped: int
    bad: int


class NoHostError(NoHost):
    """`call()` got no host (OVERLOAD, NOEXIST or SYSTEM_ERROR); `.result` says which."""

    def __init__(self, result: HostResult) -> None:
        super().__init__(f"no host for module {result.modid}:{result.cmdid}: {result.why}")
        self.result = result
