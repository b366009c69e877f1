"""The agent's client of the reporter (message 3, spec section 8).

Shards post batches of serialized ReportStatusRequests (one per module) every report
interval; this client sends them on its own loop. While the reporter is down it keeps
only the latest request per module, at most `backlog` modules (the oldest is dropped
and counted past that), and sends them when the connection returns. Reports go out every
second, so a reporter whose packets vanish is noticed by the kernel: with `user_timeout`
(TCP_USER_TIMEOUT, 3 s in the agent) unacknowledged reports abort the connection, and the
latest per module is kept from then on instead of piling up in socket buffers. A shard's post
never blocks: it only appends to a task queue.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from lars.agent.shard import ModuleKey
from lars.errors import NotConnected, QueueFull
from lars.protocol import MsgId
from lars.reactor import LoopThread, Router, TcpClient
from lars.reactor.backoff import BackoffFactory

__all__ = ["ReportClient"]

log = logging.getLogger(__name__)

_REPORT_STATUS_REQUEST = int(MsgId.REPORT_STATUS_REQUEST)


class ReportClient:
    def __init__(
        self,
        thread: LoopThread,
        addresses: Sequence[tuple[str, int]],
        *,
        backlog: int,
        backoff_factory: BackoffFactory | None = None,
        rng: random.Random | None = None,
        user_timeout: float | None = None,
    ) -> None:
        self.thread = thread
        self.backlog = backlog
        self.client = TcpClient(
            thread,
            Router(),
            addresses,
            name="agent-reporter",
            on_connect=self._flush,
            backoff_factory=backoff_factory,
            rng=rng,
            user_timeout=user_timeout,
        )
        self._pending: dict[ModuleKey, bytes] = {}  # insertion order = age
        self.sent = 0
        self.kept = 0  # requests held back while the reporter was down
        self.dropped = 0  # requests dropped because the backlog was full

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, items: list[tuple[ModuleKey, bytes]]) -> None:
        """Any thread: hand over one batch (posted to the client loop)."""
        self.thread.post(self._submit, items)

    def _submit(self, items: list[tuple[ModuleKey, bytes]]) -> None:
        if not self._pending and self.client.connected:
            for i, (_, body) in enumerate(items):
                try:
                    self.client.send(_REPORT_STATUS_REQUEST, body)
                except (NotConnected, QueueFull):
                    self._keep(items[i:])
                    return
                self.sent += 1
            return
        self._keep(items)

    def _keep(self, items: list[tuple[ModuleKey, bytes]]) -> None:
        pending = self._pending
        for key, body in items:
            if pending.pop(key, None) is None and len(pending) >= self.backlog:
                del pending[next(iter(pending))]
                self.dropped += 1
            pending[key] = body
            self.kept += 1

    def _flush(self, client: TcpClient) -> None:
        items = list(self._pending.items())
        self._pending = {}
        if items:
            log.info("agent-reporter: sending %d report(s) kept while disconnected", len(items))
            self._submit(items)
