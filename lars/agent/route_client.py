"""The agent's client of the route service (messages 1 and 2, spec sections 2 and 8).

A reconnecting TcpClient on the agent's client loop. Every reply or push is parsed here
and posted, as plain values, to the loop of the shard that owns the module. On every
(re)connection `on_connected` runs, and the agent resets its waiting modules and asks
again for every known module, so subscriptions and pushes resume. With several
addresses TcpClient moves to a random other one; its ReconnectPolicy retries a route
service seen in the last minutes about every second (jittered).

Every answer passes an EmptyGuard first: a route service that answers empty for every
module at once is logged loudly (once), and after a restart the cached routes stay in
service while the route service answers empty for all of them (see emptyguard).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from lars.agent.balancer import HostKey
from lars.agent.emptyguard import EmptyGuard, GuardEvent
from lars.protocol import MsgId, lars_pb2
from lars.protocol.weight import DEFAULT_WEIGHT, wire_weight
from lars.reactor import LoopThread, Router, TcpClient
from lars.reactor.backoff import BackoffFactory

__all__ = ["RouteClient"]

log = logging.getLogger(__name__)

# (modid, cmdid, hosts, weights of the hosts whose weight is not the default)
Deliver = Callable[[int, int, list[HostKey], dict[HostKey, int]], None]

_GET_ROUTE_REQUEST = int(MsgId.GET_ROUTE_REQUEST)


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
    ) -> None:
        self._deliver = deliver
        self.guard = guard or EmptyGuard()
        self._clock = clock
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        router = Router({int(MsgId.GET_ROUTE_RESPONSE): self._on_response})
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
        )
        self.responses = 0
        self.mass_empty_events = 0  # times every module went empty at once

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def dropped_asks(self) -> int:
        """Asks made while disconnected (re-asked on the next connection)."""
        return self.client.send_drops

    def ask(self, modid: int, cmdid: int) -> None:
        body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        self.client.send_threadsafe(_GET_ROUTE_REQUEST, body)

    def _connected(self, client: TcpClient) -> None:
        self._on_connected()

    def _disconnected(self, client: TcpClient) -> None:
        if self._on_disconnected is not None:
            self._on_disconnected()

    @property
    def held_modules(self) -> int:
        """Cached modules kept in service while the route service answers them empty."""
        return len(self.guard.held) if self.guard.holding else 0

    def _on_response(self, conn: object, msgid: int, body: bytes) -> None:
        msg = lars_pb2.GetRouteResponse.FromString(body)
        self.responses += 1
        hosts: list[HostKey] = []
        weights: dict[HostKey, int] = {}
        for h in msg.host:
            key = (h.ip, h.port)
            hosts.append(key)
            if h.weight and h.weight != DEFAULT_WEIGHT:  # lars only: HostInfo.weight
                weights[key] = wire_weight(h.weight)
        module = (msg.modid, msg.cmdid)
        answers, event = self.guard.answer(module, hosts, self._clock())
        if event is not None:
            self._log_event(event)
        for (modid, cmdid), module_hosts in answers:  # released held answers are empty
            self._deliver(modid, cmdid, module_hosts, weights if (modid, cmdid) == module else {})

    def _log_event(self, event: GuardEvent) -> None:
        peer = self.client.current_address
        where = "?" if peer is None else f"{peer[0]}:{peer[1]}"
        if event is GuardEvent.MASS_EMPTY:
            self.mass_empty_events += 1
            log.error(
                "route service %s answered EMPTY for every module at once (within %.0fs): "
                "a push-empty? Serving what it says (NOEXIST); the route cache keeps the last "
                "good hosts, so a restarted agent serves them",
                where,
                self.guard.window,
            )
        elif event is GuardEvent.HOLD:
            log.error(
                "route service %s answers EMPTY for all %d cached modules with hosts: looks "
                "like a push-empty; serving the cached routes (STALE) until it serves hosts "
                "for any module",
                where,
                len(self.guard.held),
            )
        else:
            log.warning(
                "route service %s serves hosts again: stale cached routes replaced by its answers",
                where,
            )
