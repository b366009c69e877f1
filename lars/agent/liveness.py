"""Notice a route service that went silent while its TCP connection stays open.

A partition (packets vanish, nothing is reset) leaves the agent's connection to the route
service "established" for many minutes: the agent only listens, so nothing fails, and a
push sent meanwhile waits in TCP retransmission (tests/multihost: an agent cut off from
its route service had still not moved to the other one after 30 s). So while nothing has
arrived for `interval` the agent asks the route service for a module no one uses
(HEARTBEAT_KEY, a plain GetRouteRequest: an original Lars route service answers it too,
with no hosts), and when nothing at all has arrived for `dead_after` it drops the
connection; TcpClient then reconnects, to the other route service when there are several.

`Heartbeat` is the sans-I/O core (plain times in, an action out); `HeartbeatTimer` runs it
every `period` (interval / 2) on the client loop, so silence is judged within half an
interval of `dead_after`, while probes still go out at most once per interval. Cost: one
small request and answer per `interval` per idle agent (0.25 s: 4 a second; 1,000 agents:
4,000 a second on the route services, 6 % of one core: benchmarks/dns_heartbeat_cost.py).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from lars.reactor import LoopThread

__all__ = ["HEARTBEAT_KEY", "Action", "Heartbeat", "HeartbeatTimer"]

HEARTBEAT_KEY = (0, 0)  # (modid, cmdid) asked as a probe; real modules start at 1


class Action(enum.Enum):
    NONE = "none"
    PROBE = "probe"
    DEAD = "dead"


class Heartbeat:
    """Tracks when the peer was last heard from; `tick` says what to do now."""

    def __init__(self, interval: float, dead_after: float) -> None:
        if interval <= 0 or dead_after <= interval:
            raise ValueError("heartbeat needs 0 < interval < dead_after")
        self.interval = interval
        self.dead_after = dead_after
        self.period = interval / 2  # how often tick() should run
        self.heard_at: float | None = None  # None: not connected
        self.ticked_at: float | None = None
        self.probed_at: float | None = None
        self.probes = 0
        self.stalls = 0  # ticks that came late: our own process did not run
        self.deaths = 0

    def connected(self, now: float) -> None:
        self.heard_at = now
        self.probed_at = None

    def disconnected(self) -> None:
        self.heard_at = None

    def heard(self, now: float) -> None:
        if self.heard_at is not None:
            self.heard_at = now

    def tick(self, now: float) -> Action:
        late = self.ticked_at is not None and now - self.ticked_at > 2 * self.period
        self.ticked_at = now
        if self.heard_at is None:
            return Action.NONE
        if late:
            # We were not running (a starved or stopped process): what the peer sent may
            # still wait in the socket, so the silence says nothing about the peer yet.
            self.stalls += 1
            self.heard_at = max(self.heard_at, now - self.interval)
        silent = now - self.heard_at
        if silent >= self.dead_after:
            self.heard_at = None  # one DEAD per connection
            self.deaths += 1
            return Action.DEAD
        jitter = 0.9  # a timer firing a little early must not skip a probe
        since_probe = None if self.probed_at is None else now - self.probed_at
        if silent >= self.interval * jitter and (
            since_probe is None or since_probe >= self.interval * jitter
        ):
            self.probed_at = now
            self.probes += 1
            return Action.PROBE
        return Action.NONE


class HeartbeatTimer:
    """Runs `heartbeat.tick` every interval on `thread`'s loop; start()/stop()."""

    def __init__(
        self,
        thread: LoopThread,
        heartbeat: Heartbeat,
        *,
        probe: Callable[[], None],
        dead: Callable[[float], None],
    ) -> None:
        self.thread = thread
        self.heartbeat = heartbeat
        self._probe = probe
        self._dead = dead
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.thread.call(self._schedule).result()

    def stop(self) -> None:
        if self.thread.running:
            self.thread.call(self._cancel).result()

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._handle = self.thread.loop.call_later(self.heartbeat.period, self._tick)

    def _tick(self) -> None:
        now = self.thread.loop.time()
        silent_since = self.heartbeat.heard_at
        action = self.heartbeat.tick(now)
        if action is Action.PROBE:
            self._probe()
        elif action is Action.DEAD and silent_since is not None:
            self._dead(now - silent_since)
        self._schedule()
