"""The agent's client of the route service (messages 1 and 2, spec sections 2 and 8).

A reconnecting TcpClient on the agent's client loop. Every reply or push is parsed here
and posted, as plain values, to the loop of the shard that owns the module. On every
(re)connection `on_connected` runs, and the agent resets its waiting modules and asks
again for every known module, so subscriptions and pushes resume. With several
addresses TcpClient moves to a random other one; its ReconnectPolicy retries a route
service seen in the last minutes about every second (jittered).

While nothing arrives the client probes the route service (liveness.Heartbeat) and drops
a connection that stays silent for `dead_after`: a partition is noticed in about a second
instead of never, and the agent moves to another route service.

Every answer passes a VersionGate first (lars.agent.freshness: never back to an older
table of a module than the one applied, unless the route service keeps it 30 s: the
database was rolled back), then an EmptyGuard: when a route service empties more than half of
the modules with hosts within 10 s, the agent keeps serving what it had until a route
service answers one of them with hosts again or `[agent] mass_empty_delay` passes (see
emptyguard; one log line per hold and per end). The guard's one timer runs on the client
loop, armed for `guard.deadline()`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

from lars.agent.balancer import HostKey
from lars.agent.emptyguard import EmptyGuard, GuardEvent, Outcome
from lars.agent.freshness import ROLLBACK_AFTER, VersionGate
from lars.agent.liveness import HEARTBEAT_KEY, Heartbeat, HeartbeatTimer
from lars.protocol import MsgId, lars_pb2
from lars.protocol.weight import DEFAULT_WEIGHT, wire_weight
from lars.ratelog import RateLimitedLog
from lars.reactor import LoopThread, Router, TcpClient
from lars.reactor.backoff import BackoffFactory

__all__ = ["RouteClient"]

log = logging.getLogger(__name__)

# (modid, cmdid, hosts, weights of the hosts whose weight is not the default)
Deliver = Callable[[int, int, list[HostKey], dict[HostKey, int]], None]
Answer = tuple[list[HostKey], dict[HostKey, int]]  # one module's parsed answer

_GET_ROUTE_REQUEST = int(MsgId.GET_ROUTE_REQUEST)
_INSTANCE_SYNC = int(MsgId.INSTANCE_SYNC)


class RouteClient:
    """`ask` may be called from any thread; `deliver` and `on_connected` run on the
    client loop and must only post to the shards' loops."""

    def __init__(
        self,
        thread: LoopThread,
        addresses: Sequence[tuple[str, int]],
        *,
        deliver: Deliver,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None] | None = None,
        backoff_factory: BackoffFactory | None = None,
        rng: random.Random | None = None,
        guard: EmptyGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float = 0.25,
        dead_after: float = 0.75,
        connect_timeout: float = 3.0,
        rollback_after: float = ROLLBACK_AFTER,
    ) -> None:
        self._deliver = deliver
        self.guard = guard or EmptyGuard()
        self._clock = clock
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        router = Router(
            {
                int(MsgId.GET_ROUTE_RESPONSE): self._on_response,
                int(MsgId.INSTANCE_SYNC_ACK): self._on_sync_ack,
            }
        )
        self.router = router
        self.client = TcpClient(
            thread,
            router,
            addresses,
            name="agent-route",
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            backoff_factory=backoff_factory,
            rng=rng,
            connect_timeout=connect_timeout,
        )
        self.heartbeat: Heartbeat | None = None
        self._timer: HeartbeatTimer | None = None
        if heartbeat > 0:
            self.heartbeat = Heartbeat(heartbeat, dead_after)
            self._timer = HeartbeatTimer(
                thread, self.heartbeat, probe=self._probe, dead=self._silent
            )
        self._probe_body = lars_pb2.GetRouteRequest(
            modid=HEARTBEAT_KEY[0], cmdid=HEARTBEAT_KEY[1]
        ).SerializeToString()
        self._heartbeat_asked = False  # a shard asked for HEARTBEAT_KEY itself
        # Self-registration (issue 20): InstanceSync goes only on a connection whose
        # GetRouteResponse said registrations = true; an original route service never
        # says so and never receives a new message id.
        self.registrations_ok = False
        self.on_registrations: Callable[[], None] | None = None  # the connection became capable
        self.on_sync_ack: Callable[[int, int], None] | None = None  # (seq, lease)
        self.syncs_refused = 0  # syncs not sent: no capable connection
        self.responses = 0
        self.mass_empty_events = 0  # holds (or, with the hold off, mass empties reported)
        self._guard_timer: asyncio.TimerHandle | None = None
        self._guard_deadline: float | None = None
        # Never backwards (issue 22, lars.agent.freshness): an answer older than the
        # module's table waits until the route service has kept it for ROLLBACK_AFTER s
        self.freshness: VersionGate[tuple[int, int], Answer] = VersionGate(rollback_after)
        self._fresh_timer: asyncio.TimerHandle | None = None
        self._fresh_deadline: float | None = None
        self._log_older = RateLimitedLog(log, 60.0, level=logging.WARNING)

    def start(self) -> None:
        self.client.start()
        if self._timer is not None:
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self.client.thread.running:
            self.client.thread.call(self._disarm).result()
            self.client.thread.call(self._fresh_disarm).result()
        self.client.stop()

    @property
    def silent_drops(self) -> int:
        """Connections dropped because the route service went silent."""
        return 0 if self.heartbeat is None else self.heartbeat.deaths

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def dropped_asks(self) -> int:
        """Asks made while disconnected (re-asked on the next connection)."""
        return self.client.send_drops

    def ask(self, modid: int, cmdid: int) -> None:
        if (modid, cmdid) == HEARTBEAT_KEY:
            self._heartbeat_asked = True
        body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        self.client.send_threadsafe(_GET_ROUTE_REQUEST, body)

    def _connected(self, client: TcpClient) -> None:
        self.freshness.connection_changed()  # a wait for a rollback starts again
        self._fresh_disarm()
        if self.heartbeat is not None:
            self.heartbeat.connected(self.client.thread.loop.time())
        self._on_connected()

    def _disconnected(self, client: TcpClient) -> None:
        self.registrations_ok = False
        self.freshness.connection_changed()
        self._fresh_disarm()
        if self.heartbeat is not None:
            self.heartbeat.disconnected()
        if self._on_disconnected is not None:
            self._on_disconnected()

    def send_sync(self, body: bytes) -> bool:
        """Client loop: send an InstanceSync (msgid 9) on the current connection, only when
        it advertised registrations; never queued for a later connection (which may be an
        original route service). False when not sent."""
        if not self.registrations_ok or not self.client.connected:
            self.syncs_refused += 1
            return False
        self.client.send(_INSTANCE_SYNC, body)
        return True

    def _on_sync_ack(self, conn: object, msgid: int, body: bytes) -> None:
        ack = lars_pb2.InstanceSyncAck.FromString(body)
        if self.heartbeat is not None:
            self.heartbeat.heard(self.client.thread.loop.time())
        if self.on_sync_ack is not None:
            self.on_sync_ack(ack.seq, ack.lease)

    def _probe(self) -> None:
        self.client.send_threadsafe(_GET_ROUTE_REQUEST, self._probe_body)

    def _silent(self, seconds: float) -> None:
        self.client.drop(f"nothing received for {seconds:.2f} s (probes unanswered)")

    @property
    def held_modules(self) -> int:
        """Modules kept in service while the route service answers them empty (a hold)."""
        return len(self.guard.held)

    def _on_response(self, conn: object, msgid: int, body: bytes) -> None:
        msg = lars_pb2.GetRouteResponse.FromString(body)
        if msg.registrations and not self.registrations_ok and self.client.connected:
            self.registrations_ok = True
            if self.on_registrations is not None:
                self.on_registrations()
        if self.heartbeat is not None:
            self.heartbeat.heard(self.client.thread.loop.time())
            if (msg.modid, msg.cmdid) == HEARTBEAT_KEY and not self._heartbeat_asked:
                return  # a probe's answer: proof of life, nothing to deliver
        self.responses += 1
        hosts: list[HostKey] = []
        weights: dict[HostKey, int] = {}
        for h in msg.host:
            key = (h.ip, h.port)
            hosts.append(key)
            if h.weight and h.weight != DEFAULT_WEIGHT:  # lars only: HostInfo.weight
                weights[key] = wire_weight(h.weight)
        module = (msg.modid, msg.cmdid)
        now = self._clock()
        if not self.freshness.answer(module, msg.version, (hosts, weights), now):
            self._log_older(
                "route service %s answers module %d/%d with an older table (version %d; "
                "this agent serves version %s): a replica behind? keeping the newer one "
                "unless it keeps the older one for %.0fs",
                self._peer(),
                msg.modid,
                msg.cmdid,
                msg.version,
                self.freshness.version(module),
                self.freshness.keep,
            )
            self._fresh_arm()
            return
        outcome = self.guard.answer(module, hosts, now, weights)
        self._apply(outcome)

    # never backwards: the rollback timer (client loop)

    def _fresh_arm(self) -> None:
        deadline = self.freshness.deadline()
        if deadline == self._fresh_deadline:
            return
        self._fresh_disarm()
        if deadline is not None:
            delay = max(0.0, deadline - self._clock())
            self._fresh_timer = self.client.thread.loop.call_later(delay, self._fresh_tick)
            self._fresh_deadline = deadline

    def _fresh_disarm(self) -> None:
        if self._fresh_timer is not None:
            self._fresh_timer.cancel()
        self._fresh_timer = None
        self._fresh_deadline = None

    def _fresh_tick(self) -> None:
        self._fresh_timer = None
        self._fresh_deadline = None
        now = self._clock()
        for (modid, cmdid), version, (hosts, weights) in self.freshness.tick(now):
            log.warning(
                "route service %s has kept an older table for module %d/%d (version %d) "
                "for %.0fs: the route database was rolled back; applying it",
                self._peer(),
                modid,
                cmdid,
                version,
                self.freshness.keep,
            )
            self._apply(self.guard.answer((modid, cmdid), hosts, now, weights))
        self._fresh_arm()

    def _peer(self) -> str:
        peer = self.client.current_address
        return "?" if peer is None else f"{peer[0]}:{peer[1]}"

    def _apply(self, outcome: Outcome) -> None:
        if outcome.event is not None:
            self._log_event(outcome.event)
        for (modid, cmdid), module_hosts, module_weights in outcome.deliver:
            self._deliver(modid, cmdid, module_hosts, module_weights)
        for modid, cmdid in outcome.reask:
            self.ask(modid, cmdid)
        self._arm()

    # the guard's timer (client loop)

    def _arm(self) -> None:
        deadline = self.guard.deadline()
        if deadline == self._guard_deadline:
            return
        self._disarm()
        if deadline is not None:
            delay = max(0.05, deadline - self._clock())  # never a busy loop on a late clock
            self._guard_timer = self.client.thread.loop.call_later(delay, self._guard_tick)
            self._guard_deadline = deadline

    def _disarm(self) -> None:
        if self._guard_timer is not None:
            self._guard_timer.cancel()
        self._guard_timer = None
        self._guard_deadline = None

    def _guard_tick(self) -> None:
        self._guard_timer = None
        self._guard_deadline = None
        self._apply(self.guard.tick(self._clock()))

    def _log_event(self, event: GuardEvent) -> None:
        peer = self.client.current_address
        where = "?" if peer is None else f"{peer[0]}:{peer[1]}"
        guard = self.guard
        if event is GuardEvent.MASS_EMPTY:
            self.mass_empty_events += 1
            log.error(
                "route service %s EMPTIED more than half of the modules with hosts within "
                "%.0fs: a push-empty? Serving what it says (NOEXIST: [agent] mass_empty_delay "
                "is 0); the route cache keeps the last good hosts",
                where,
                guard.window,
            )
        elif event is GuardEvent.HOLD:
            self.mass_empty_events += 1
            log.error(
                "route service %s EMPTIED %d modules with hosts within %.0fs (a push-empty?): "
                "still serving their last hosts until a route service answers one of them with "
                "hosts or for %.0fs ([agent] mass_empty_delay)",
                where,
                len(guard.held),
                guard.window,
                guard.delay,
            )
        elif event is GuardEvent.RELEASE:
            log.warning(
                "route service %s serves hosts again for a held module: hold ended, the "
                "other held modules asked again",
                where,
            )
        else:
            log.warning(
                "empty route answers held for %.0fs ([agent] mass_empty_delay) now applied",
                guard.delay,
            )
