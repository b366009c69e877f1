"""The route service's TCP face: answer GetRouteRequest, subscribe, push changes.

Each reactor worker keeps the Subscriptions of its own connections in `worker.state`;
handlers and pushes run on that worker's loop thread only. The live RouteTable is one
reference, replaced whole by `publish` (the poller thread) and read without locks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from lars.dns.subscriptions import Subscriptions
from lars.dns.table import Key, RouteTable
from lars.obs.hist import Buckets
from lars.protocol import MsgId, lars_pb2
from lars.ratelog import RateLimitedLog
from lars.reactor import Connection, Router, TcpServer, Worker, encode
from lars.reactor.tcpopts import set_rto_min

__all__ = ["STATE_KEY", "RouteServer", "SubscriptionStats"]

log = logging.getLogger(__name__)

STATE_KEY = "dns.subscriptions"
PUSH_TIMEOUT = 30.0
PUSH_RTO_MIN = 0.05  # retransmission floor of agent connections (kernel default 0.2 s)

_GET_ROUTE_RESPONSE = int(MsgId.GET_ROUTE_RESPONSE)


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    connections: int
    modules: int
    subscriptions: int
    refused: int


class RouteServer:
    """Handlers and push logic bound to one TcpServer (built by DnsService)."""

    def __init__(self, table: RouteTable, *, max_subscriptions: int) -> None:
        self.table = table
        self._max_subscriptions = max_subscriptions
        self.server: TcpServer | None = None
        self.pushes_sent = 0  # frames pushed (summed from worker results on the poller)
        self.push_rounds = 0  # publishes that pushed to the workers
        self.push_seconds = Buckets()  # one fan-out to every worker, until all are done
        self._log_refused = RateLimitedLog(log, 30.0)
        self._log_truncated = RateLimitedLog(log, 60.0, level=logging.ERROR)
        self.truncated_modules = 0

    def router(self) -> Router:
        return Router({int(MsgId.GET_ROUTE_REQUEST): self.on_get_route})

    def attach(self, server: TcpServer) -> None:
        self.server = server

    # worker loop threads

    def on_connect(self, conn: Connection) -> None:
        conn.user = self._worker_subscriptions()
        sock = None if conn.transport is None else conn.transport.get_extra_info("socket")
        if sock is not None:
            set_rto_min(sock, PUSH_RTO_MIN)  # a lost push is resent sooner (tcpopts)

    def on_close(self, conn: Connection) -> None:
        subs = conn.user
        if isinstance(subs, Subscriptions):
            subs.drop(conn)
        conn.user = None

    def on_get_route(self, conn: Connection, _msgid: int, body: bytes) -> None:
        req = lars_pb2.GetRouteRequest()
        req.ParseFromString(body)  # DecodeError: counted and dropped by the Router
        modid, cmdid = req.modid, req.cmdid
        conn.send(_GET_ROUTE_RESPONSE, self.table.response(modid, cmdid))
        subs = conn.user
        if subs is not None and not subs.subscribe(conn, (modid, cmdid)):
            self._log_refused(
                "%s: subscription cap %d reached; %d/%d answered but not pushed",
                conn.peer,
                subs.max_per_conn,
                modid,
                cmdid,
            )

    def _worker_subscriptions(self) -> Subscriptions[Connection]:
        worker = self._current_worker()
        subs: Subscriptions[Connection] | None = worker.state.get(STATE_KEY)
        if subs is None:
            subs = worker.state[STATE_KEY] = Subscriptions(self._max_subscriptions)
        return subs

    def _current_worker(self) -> Worker:
        assert self.server is not None
        for worker in self.server.workers:
            if worker.thread.in_thread():
                return worker
        raise RuntimeError("on_connect ran outside every worker thread")

    # poller thread

    def publish(self, table: RouteTable, changed: set[Key]) -> None:
        """Make `table` live, then push `changed` modules to their subscribers everywhere."""
        self.table = table  # the swap: one reference assignment
        if table.truncated:
            self.truncated_modules = len(table.truncated)
            sample = sorted(table.truncated.items())[:5]
            self._log_truncated(
                "%d module(s) have more hosts than one route frame holds; serving the hosts "
                "that fit (module: (hosts, served)): %s",
                len(table.truncated),
                sample,
            )
        else:
            self.truncated_modules = 0
        if table.invalid_rows:
            self._log_truncated(
                "%d RouteData row(s) cannot be sent on the wire (ids past 2147483647, an "
                "address past 255.255.255.255, or a port outside 0..65535); left out",
                table.invalid_rows,
            )
        server = self.server
        if not changed or server is None or not server.workers:
            return
        keys = sorted(changed)
        started = time.monotonic()
        futures = server.broadcast(lambda worker: _push(worker, table, keys))
        for future in futures:
            try:
                self.pushes_sent += int(future.result(PUSH_TIMEOUT))
            except Exception:
                log.warning("route push on a worker failed", exc_info=True)
        self.push_seconds.observe(time.monotonic() - started)
        self.push_rounds += 1

    def subscription_stats(self) -> SubscriptionStats:
        conns = modules = total = refused = 0
        server = self.server
        for worker in server.workers if server is not None else []:
            subs = worker.state.get(STATE_KEY)
            if subs is not None:  # read across threads: plain ints, a consistent-enough view
                conns += subs.connections
                modules += subs.modules
                total += len(subs)
                refused += subs.refused
        return SubscriptionStats(conns, modules, total, refused)


def _push(worker: Worker, table: RouteTable, keys: list[Key]) -> int:
    """On the worker's loop: one fresh GetRouteResponse per subscribed connection."""
    subs: Subscriptions[Connection] | None = worker.state.get(STATE_KEY)
    if subs is None:
        return 0
    sent = 0
    for key in keys:
        conns = subs.subscribers(key)
        if not conns:
            continue
        frame = encode(_GET_ROUTE_RESPONSE, table.response(*key))
        for conn in conns:
            if not conn.closed:
                conn.send_many((frame,))
                sent += 1
    return sent
