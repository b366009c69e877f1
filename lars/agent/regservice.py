"""The agent's registrations at work: requests, checks, the file and the route service.

Runs on the agent's client loop (the thread of the route-service client), the one owner
of the Registry. The shards' UDP endpoints post each RegisterRequest here with a reply
callback that posts the answer back to the shard's loop (the client's socket is
connected to that port, so the answer must come from it).

- Requests that arrive together are applied, written to the registrations file once,
  then answered: an answer means the registration is on disk.
- Every `TICK` s the due checks start (at most `max_checks` probes in flight); a verdict
  that changes whether an instance passes is logged (rate-limited) and synced.
- InstanceSync (msgid 9) goes only on a route-service connection that has advertised
  GetRouteResponse.registrations (RouteClient.send_sync refuses otherwise): at once on
  every change, on every newly capable connection, and every lease/3 s as the renewal.
  An agent that never held a registration sends nothing at all; one whose set became
  empty sends the empty set until a route service acknowledges it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from lars.agent.checks import CheckState, Transition
from lars.agent.probes import probe_http, probe_tcp
from lars.agent.regconfig import RegisterConfig
from lars.agent.registry import OP_DEREGISTER, OP_REGISTER, Entry, Registry
from lars.agent.regstore import RegistrationFile
from lars.agent.regsync import SyncPlan
from lars.errors import ValidationError
from lars.protocol import MsgId, wire_to_dotted
from lars.protocol.checks import CheckKind
from lars.ratelog import RateLimitedLog
from lars.reactor import LoopThread
from lars.reactor.frame import encode

__all__ = ["RegistrationService", "RegistrationStats", "SyncLink"]

log = logging.getLogger(__name__)

TICK = 0.05  # seconds between looks for due checks
IDLE_TICK = 1.0  # the same with no registration (a new one is checked at once anyway)
UNSERVED_AFTER = 5.0  # seconds connected to a route service that does not take them
_REPLY = int(MsgId.REGISTER_RESPONSE)

Reply = Callable[[bytes], None]


class SyncLink(Protocol):
    """What the registrations need from the route-service client (RouteClient)."""

    @property
    def registrations_ok(self) -> bool:
        """The current connection advertised GetRouteResponse.registrations."""
        ...

    @property
    def connected(self) -> bool: ...

    def send_sync(self, body: bytes) -> bool:
        """Send an InstanceSync body on a capable connection; False otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class RegistrationStats:
    instances: dict[str, int]  # by check state
    checks_run: int
    checks_failed: int
    syncs_sent: int
    syncs_acked: int
    lease: float
    file_writes: int
    file_errors: int
    requests: int
    refused: int


class RegistrationService:
    def __init__(
        self,
        thread: LoopThread,
        config: RegisterConfig,
        *,
        link: SyncLink,
        store: RegistrationFile | None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.thread = thread
        self.registry = Registry(config)
        self.config = config
        self.link = link
        self.store = store
        self.agent = ""  # "<ip>:<port>", set before start
        self._clock = clock
        self._wall = wall
        self._pending: list[tuple[Reply, bytes]] = []  # answers waiting for the file
        self._flush_scheduled = False
        self._sync_scheduled = False
        self._check_soon = False
        self._persisted_version = 0
        self.plan = SyncPlan()  # when InstanceSyncs go (lars.agent.regsync)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.checks_run = 0
        self.checks_failed = 0
        self.requests = 0
        self._failing = RateLimitedLog(log, level=logging.WARNING)  # flaps: one line per 5 s
        self._passing = RateLimitedLog(log, level=logging.INFO)
        self._changes = RateLimitedLog(log, level=logging.INFO)
        self._unserved = RateLimitedLog(log, 300.0, level=logging.WARNING)
        self._incapable_since: float | None = None

    # lifecycle

    def load(self) -> int:
        """Read the registrations file (before start); returns how many were restored."""
        if self.store is None:
            return 0
        now, wall = self._clock(), self._wall()
        saved = self.store.load()
        skipped = 0
        for item in saved[: self.config.max_instances]:
            try:
                self.registry.add(item.key, item.check, now, item.registered_at or wall, item.state)
            except ValidationError:  # the set would not fit one InstanceSync
                skipped += 1
        skipped += max(0, len(saved) - self.config.max_instances)
        if skipped:
            log.error("registrations: %d of %s not restored (over the limits)", skipped,
                      self.store.path)  # fmt: skip
        self.plan.held(len(self.registry.entries))
        self._persisted_version = self.registry.version
        if saved:
            log.info(
                "registrations: %d restored from %s", len(self.registry.entries), self.store.path
            )
        return len(self.registry.entries)

    def start(self) -> None:
        self.thread.call(self._schedule).result()

    def stop(self) -> None:
        """Cancel checks in flight and write the file; registrations stay (no deregister)."""
        if not self.thread.running:
            return
        try:
            self.thread.call(self._stop).result(5)
        except Exception:
            log.exception("registrations did not stop cleanly")

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._flush()

    def _schedule(self) -> None:
        # an agent with nothing registered (most of a fleet) looks once a second
        busy = self.registry.entries or self.plan.busy or self._tasks
        self._timer = self.thread.loop.call_later(TICK if busy else IDLE_TICK, self._tick)

    def set_config(self, config: RegisterConfig) -> None:
        """Client loop: new [register] defaults and limits (SIGHUP). Registrations that
        did not set their own interval/timeout/fail_after/pass_after take the new
        defaults from their next check; their states are kept."""
        self.config = config
        self.registry.set_config(config)

    # requests (posted from the shards' loops)

    def submit(self, body: bytes, peer: Hashable, reply: Reply, shard: int | None = None) -> None:
        """Any thread: handle one RegisterRequest body received on `shard`'s port;
        `reply(frame)` sends the answer."""
        self.thread.post(self._on_request, body, peer, reply, shard)

    def _on_request(self, body: bytes, peer: Hashable, reply: Reply, shard: int | None) -> None:
        self.requests += 1
        outcome = self.registry.handle(body, peer, self._clock(), self._wall(), shard)
        frame = encode(_REPLY, outcome.reply)
        if outcome.transition is not None:
            self._log_transition(outcome.key, outcome.transition, "")
        if (
            outcome.changed
            and outcome.key is not None
            and outcome.op in (OP_REGISTER, OP_DEREGISTER)
        ):
            modid, cmdid, ip, port = outcome.key
            what = "registered" if outcome.op == OP_REGISTER else "deregistered"
            self._changes("registrations: %s %d:%d %s:%d", what, modid, cmdid,
                          wire_to_dotted(ip), port)  # fmt: skip
        if outcome.changed:
            self._changed()
            if outcome.op == OP_REGISTER and not self._check_soon:
                self._check_soon = True  # the first check now, not at the next tick
                self.thread.loop.call_soon(self._tick_now)
        if self._flush_scheduled:
            self._pending.append((reply, frame))  # answered once the file has it
        else:
            reply(frame)

    def _changed(self) -> None:
        """The registry moved: write the file and sync, once for all changes of this turn."""
        self.plan.held(len(self.registry.entries))
        loop = self.thread.loop
        if self.store is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if not self._sync_scheduled:
            self._sync_scheduled = True
            loop.call_soon(self._sync_now)

    def _flush(self) -> None:
        self._flush_scheduled = False
        version = self.registry.version
        if (
            self.store is not None
            and version != self._persisted_version
            and self.store.save(list(self.registry.entries.values()), self._wall())
        ):
            self._persisted_version = version  # else: tried again on stop or a change
        pending, self._pending = self._pending, []
        for reply, frame in pending:
            try:
                reply(frame)
            except Exception:
                log.exception("registrations: answer not sent")

    # checks

    def _tick(self) -> None:
        self._schedule()
        try:
            self._run_checks()
        except Exception:
            log.exception("registrations: check round failed")

    def _tick_now(self) -> None:
        self._check_soon = False
        if self._timer is not None:  # from an idle second's pace to TICK's
            self._timer.cancel()
            self._schedule()
        try:
            self._run_checks()
        except Exception:
            log.exception("registrations: check round failed")

    def _run_checks(self) -> None:
        now = self._clock()
        room = self.config.max_checks - len(self._tasks)
        for entry in self.registry.due(now, max(0, room)):
            self.registry.started(entry, now)
            task = self.thread.loop.create_task(self._probe(entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for entry, transition in self.registry.take_transitions():
            self._judged(entry, transition)
        if self.plan.due(self.registry.version, self._clock()):
            self._sync_now()
        self._warn_unserved(now)

    def _warn_unserved(self, now: float) -> None:
        """Registrations held while the connected route service does not take them (an
        original lars_dns, or [dns] registrations = false) are checked but not served."""
        link = self.link
        if not self.registry.entries or not link.connected or link.registrations_ok:
            self._incapable_since = None
            return
        if self._incapable_since is None:
            self._incapable_since = now
        elif now - self._incapable_since >= UNSERVED_AFTER:
            self._unserved(
                "registrations: %d held, but the route service does not accept registrations "
                "(an original lars_dns, or [dns] registrations = false): they are not served",
                len(self.registry.entries),
            )

    async def _probe(self, entry: Entry) -> None:
        _modid, _cmdid, ip, port = entry.key
        timeout = entry.checker.settings.timeout
        if entry.check.kind is CheckKind.HTTP:
            host, hport, path = entry.check.http_target()
            ok, detail = await probe_http(host, hport, path, timeout)
        else:
            ok, detail = await probe_tcp(wire_to_dotted(ip), port, timeout)
        self.checks_run += 1
        if not ok:
            self.checks_failed += 1
        transition = self.registry.finished(entry, ok, self._clock(), detail)
        if transition is not None:
            self._judged(entry, transition)

    def _judged(self, entry: Entry, transition: Transition) -> None:
        self._log_transition(entry.key, transition, entry.checker.detail)
        self._changed()

    def _log_transition(self, key: object, transition: Transition, detail: str) -> None:
        if not isinstance(key, tuple):
            return
        modid, cmdid, ip, port = key
        line = self._failing if transition.new is CheckState.FAILING else self._passing
        line(
            "registrations: %d:%d %s:%d %s -> %s%s",
            modid,
            cmdid,
            wire_to_dotted(ip),
            port,
            transition.old.value,
            transition.new.value,
            f" ({detail})" if detail else "",
        )

    # route service

    def _sync_now(self) -> None:
        self._sync_scheduled = False
        version = self.registry.version
        if not self.plan.wanted(version):
            return
        if not self.link.registrations_ok:  # retried every TICK until a capable connection
            return
        body = self.registry.sync_body(self.agent, self.plan.next_seq())
        if self.link.send_sync(body):
            self.plan.sent_ok(version, len(self.registry.entries), self._clock())

    def on_capable(self) -> None:
        """Client loop: the route-service connection now accepts registrations."""
        self._sync_now()

    def on_ack(self, seq: int, lease: int) -> None:
        """Client loop: an InstanceSyncAck."""
        self.plan.ack(seq, lease)

    @property
    def syncs_sent(self) -> int:
        return self.plan.sent

    @property
    def syncs_acked(self) -> int:
        return self.plan.acked

    # views (any thread: plain reads, may be a moment apart)

    def stats(self) -> RegistrationStats:
        counts = self.registry.counts()
        store = self.store
        return RegistrationStats(
            instances={state.value: n for state, n in counts.items()},
            checks_run=self.checks_run + self.registry.ttl_runs,
            checks_failed=self.checks_failed + self.registry.ttl_failed,
            syncs_sent=self.syncs_sent,
            syncs_acked=self.syncs_acked,
            lease=self.plan.lease,
            file_writes=0 if store is None else store.writes,
            file_errors=0 if store is None else store.write_errors,
            requests=self.requests,
            refused=self.registry.refused,
        )

    def module_view(self, modid: int, cmdid: int) -> list[dict[str, object]]:
        """The registrations of one module with their check state (client loop)."""
        now = self._clock()
        out: list[dict[str, object]] = []
        for (m, c, ip, port), entry in list(self.registry.entries.items()):
            if (m, c) != (modid, cmdid):
                continue
            checker = entry.checker
            out.append(
                {
                    "ip": wire_to_dotted(ip),
                    "port": port,
                    "check": entry.check.text,
                    "state": checker.state.value,
                    "since": round(now - checker.since, 3),
                    "detail": checker.detail,
                    "successes": checker.successes,
                    "failures": checker.failures,
                }
            )
        return out
