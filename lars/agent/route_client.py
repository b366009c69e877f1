"""The agent's client of the route service (messages 1 and 2, spec sections 2 and 8).

A reconnecting TcpClient on the agent's client loop. Every reply or push is parsed here
and posted, as plain values, to the loop of the shard that owns the module. On every
(re)connection `on_connected` runs, and the agent resets its waiting modules and asks
again for every known module, so subscriptions and pushes resume. With several
addresses TcpClient moves to a random other one; its ReconnectPolicy retries a route
service seen in the last minutes about every second (jittered).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

from lars.agent.balancer import HostKey
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
        backoff_factory: BackoffFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._deliver = deliver
        self._on_connected = on_connected
        router = Router({int(MsgId.GET_ROUTE_RESPONSE): self._on_response})
        self.router = router
        self.client = TcpClient(
            thread,
            router,
            addresses,
            name="agent-route",
            on_connect=self._connected,
            backoff_factory=backoff_factory,
            rng=rng,
        )
        self.responses = 0

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
        self._deliver(msg.modid, msg.cmdid, hosts, weights)
