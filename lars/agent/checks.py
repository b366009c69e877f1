"""The check state machine of one registered instance, sans-I/O (time comes in as `now`).

States (what the route service is told: `passing` = state is PASSING):

    PENDING --pass_after successes in a row--> PASSING
    PENDING --fail_after failures in a row---> FAILING
    PASSING --fail_after failures in a row---> FAILING
    FAILING --pass_after successes in a row--> PASSING

A success resets the failure run and a failure the success run, so a flapping instance
changes state only after a full run either way. The machine decides when the next check
is due (`next_at`: one interval after the previous check started, so a slow check does
not stretch the cadence) and never has two checks in flight. For a `ttl:` check there is
nothing to probe: each due check asks whether a heartbeat arrived within the TTL, and a
heartbeat itself counts as a success at once (a recovered instance passes without
waiting for the next interval). A registration counts as the first heartbeat.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CheckSettings", "CheckState", "Checker", "Transition"]


class CheckState(enum.Enum):
    PENDING = "pending"  # registered, not yet judged
    PASSING = "passing"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Resolved settings (the registration's own, else the agent's [register] defaults)."""

    interval: float
    timeout: float
    fail_after: int
    pass_after: int
    ttl: float = 0.0  # > 0: a ttl check (heartbeats), else a probe (tcp/http)


@dataclass(frozen=True, slots=True)
class Transition:
    old: CheckState
    new: CheckState
    at: float


class Checker:
    """Runs of successes and failures, the state, and when the next check is due."""

    __slots__ = (
        "detail",
        "failures",
        "in_flight",
        "last_beat",
        "next_at",
        "runs",
        "settings",
        "since",
        "state",
        "successes",
    )

    def __init__(
        self,
        settings: CheckSettings,
        now: float,
        *,
        state: CheckState = CheckState.PENDING,
    ) -> None:
        self.settings = settings
        self.state = state
        self.since = now  # when the state was entered (monotonic)
        self.successes = 0  # in a row
        self.failures = 0  # in a row
        self.runs = 0  # checks judged, for metrics
        self.next_at = now  # the first check is due at once
        self.in_flight = False
        self.last_beat = now  # ttl: registering is the first sign of life
        self.detail = ""  # why the last check failed

    @property
    def passing(self) -> bool:
        return self.state is CheckState.PASSING

    @property
    def is_ttl(self) -> bool:
        return self.settings.ttl > 0

    def due(self, now: float) -> bool:
        return not self.in_flight and now >= self.next_at

    def start(self, now: float) -> None:
        """A probe (tcp/http) begins: nothing else starts until `finish`."""
        if self.in_flight:
            raise RuntimeError("a check is already in flight")
        self.in_flight = True
        self.next_at = now + self.settings.interval

    def finish(self, ok: bool, now: float, detail: str = "") -> Transition | None:
        """The probe started by `start` ended; returns the state change, if any."""
        self.in_flight = False
        return self._judge(ok, now, detail)

    def check_ttl(self, now: float) -> Transition | None:
        """A due ttl check: did a heartbeat arrive within the TTL?"""
        self.next_at = now + self.settings.interval
        age = now - self.last_beat
        ok = age <= self.settings.ttl
        return self._judge(ok, now, "" if ok else f"no heartbeat for {age:.1f} s")

    def heartbeat(self, now: float) -> Transition | None:
        """A heartbeat arrived: the TTL restarts, and when not passing it counts at once."""
        self.last_beat = now
        if self.state is CheckState.PASSING:
            return None
        return self._judge(True, now, "")

    def _judge(self, ok: bool, now: float, detail: str) -> Transition | None:
        self.runs += 1
        old = self.state
        if ok:
            self.successes += 1
            self.failures = 0
            self.detail = ""
            if old is not CheckState.PASSING and self.successes >= self.settings.pass_after:
                self.state = CheckState.PASSING
        else:
            self.failures += 1
            self.successes = 0
            self.detail = detail
            if old is not CheckState.FAILING and self.failures >= self.settings.fail_after:
                self.state = CheckState.FAILING
        if self.state is old:
            return None
        self.since = now
        return Transition(old, self.state, now)
