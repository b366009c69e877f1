"""AgentService: the LB agent daemon wired together (spec sections 2, 4, 8).

Three shards, each behind its own UDP port (base_port + i), run on one loop thread
(ShardMode.ONE_LOOP, fastest under the GIL) or a loop thread each (ShardMode.THREADS).
One client loop thread runs the route-service client, the reporter client and the route
cache writer. Shards and clients talk only through task queues (LoopThread.post).
`config.shards` limits the ports served (a child of ShardMode.PROCESSES serves one);
the other shards exist but stay empty: nothing reaches them.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace

from lars.agent.balancer import HostKey
from lars.agent.cache import CacheWriter, RouteCache
from lars.agent.config import SHARDS, AgentConfig, BalancerConfig, ShardMode, primary_ipv4
from lars.agent.emptyguard import EmptyGuard
from lars.agent.endpoint import ShardEndpoint
from lars.agent.regconfig import registrations_path
from lars.agent.regservice import RegistrationService
from lars.agent.regstore import RegistrationFile
from lars.agent.report_client import ReportClient
from lars.agent.route_client import RouteClient
from lars.agent.shard import Shard, shard_of
from lars.agent.stats import AgentStats, StatsLog
from lars.agent.view import ModuleView, ShardGauges, module_snapshot, shard_gauges
from lars.errors import ConfigError, NetworkError
from lars.protocol import dotted_to_wire
from lars.reactor import LoopThread
from lars.reactor.backoff import BackoffFactory
from lars.reload import ReloadResult, diff, split
from lars.threads import ThreadHealth

__all__ = ["AgentConfig", "AgentService", "AgentStats", "BalancerConfig", "primary_ipv4"]

log = logging.getLogger(__name__)


class AgentService:
    """Build with a config, `start()` (returns once all three ports listen), `stop()`."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        backoff_factory: BackoffFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall = wall
        self.caller = config.caller or primary_ipv4()
        caller = dotted_to_wire(self.caller)
        # the agent's loop threads report a death here: readiness names it, main stops
        self.threads = ThreadHealth()
        uv, health = config.use_uvloop, self.threads
        self._clients = LoopThread("agent-clients", use_uvloop=uv, health=health)
        if config.mode is ShardMode.PROCESSES:
            raise ConfigError("ShardMode.PROCESSES is run by `lars agent`, one service per child")
        if config.mode is ShardMode.THREADS:
            threads = [
                LoopThread(f"agent-udp{i}", use_uvloop=uv, health=health) for i in range(SHARDS)
            ]
        else:
            one = LoopThread("agent-udp", use_uvloop=uv, health=health)
            threads = [one] * SHARDS
        self._shard_threads = threads
        self.route_client = RouteClient(
            self._clients,
            config.dns_addresses,
            deliver=self._deliver,
            on_connected=self._route_connected,
            on_disconnected=self._route_lost,
            backoff_factory=backoff_factory,
            rng=rng,
            heartbeat=config.route_heartbeat,
            dead_after=config.route_dead_after,
            connect_timeout=config.route_connect_timeout,
            guard=EmptyGuard(delay=config.mass_empty_delay),
        )
        self.report_client = ReportClient(
            self._clients,
            config.reporter_addresses,
            backlog=config.report_backlog,
            backoff_factory=backoff_factory,
            rng=rng,
            user_timeout=config.reporter_timeout or None,
        )
        self.shards = [
            Shard(
                i,
                config.balancer,
                ask=self.route_client.ask,
                max_modules=config.max_modules,
                empty_ttl=config.empty_module_ttl,
            )
            for i in range(SHARDS)
        ]
        # Self-registration (issue 20): one registry on the client loop for the shards
        # served here (a --mode processes child owns its shard's modules only).
        child = None if len(config.shards) == SHARDS else config.shards[0]
        path = registrations_path(config.register, config.cache_path, config.base_port, child)
        self.registrations = RegistrationService(
            self._clients,
            config.register,
            link=self.route_client,
            store=None if path is None else RegistrationFile(path),
            clock=clock,
            wall=wall,
        )
        self.route_client.on_registrations = self.registrations.on_capable
        self.route_client.on_sync_ack = self.registrations.on_ack
        self.endpoints = [
            ShardEndpoint(
                shard,
                caller=caller,
                clock=clock,
                wall=wall,
                on_register=functools.partial(self._on_register, shard.index),
            )
            for shard in self.shards
        ]
        self.cache_writer: CacheWriter | None = None
        if config.cache_path:
            self.cache_writer = CacheWriter(
                RouteCache(config.cache_path),
                self._clients,
                shard_of,
                interval=config.cache_interval,
                keep=config.cache_keep,
                wall=wall,
                versions=self.route_client.freshness.version,
            )
        self._started = False
        self._stats_log = StatsLog(log)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(ep.port for ep in self.endpoints)

    def _unique_threads(self) -> list[LoopThread]:
        return list(dict.fromkeys(self._shard_threads[i] for i in self.config.shards))

    def _served(self) -> list[tuple[ShardEndpoint, LoopThread]]:
        return [(self.endpoints[i], self._shard_threads[i]) for i in self.config.shards]

    def start(self) -> None:
        cfg = self.config
        self._load_cache()
        self.registrations.load()
        self._clients.start()
        try:
            for thread in self._unique_threads():
                thread.start()
            for ep, thread in self._served():
                port = cfg.base_port + ep.shard.index if cfg.base_port else 0
                thread.at_exit(ep.close)  # the socket closes even if the loop dies
                try:
                    thread.submit(ep.open(cfg.udp_ip, port)).result()
                except OSError as exc:
                    cause = exc.strerror or str(exc)
                    raise NetworkError(
                        f"cannot listen on {cfg.udp_ip}:{port} (UDP): {cause}"
                    ) from exc
            snapshots = self.cache_writer.update if self.cache_writer is not None else None
            for ep, thread in self._served():
                thread.call(
                    ep.start_ticker, cfg.report_interval, self.report_client.submit, snapshots
                ).result()
            if self.cache_writer is not None:
                self.cache_writer.start()
            if cfg.stats_interval > 0:
                self._clients.call(self._schedule_stats).result()
            # the agent's stable id: "<caller ip>:<its first UDP port>" (the base port)
            self.registrations.agent = f"{self.caller}:{self.endpoints[cfg.shards[0]].port}"
            self.registrations.start()
            self.report_client.start()
            self.route_client.start()
        except BaseException:
            self._stop_threads()
            raise
        self._started = True
        log.info(
            "agent listening on %s UDP %s (%s), caller %s, route service %s, reporter %s",
            cfg.udp_ip,
            ",".join(str(self.endpoints[i].port) for i in cfg.shards),
            cfg.mode.value,
            self.caller,
            _addrs(cfg.dns_addresses),
            _addrs(cfg.reporter_addresses),
        )

    def _schedule_stats(self) -> None:
        self._clients.loop.call_later(self.config.stats_interval, self._log_stats)

    def _log_stats(self) -> None:
        self._schedule_stats()
        self._stats_log(self.stats())

    def _load_cache(self) -> None:
        if self.cache_writer is None:
            return
        entries, saved_at = self.cache_writer.cache.load()
        entries = self.cache_writer.seed(entries)
        if not entries:
            return
        now = self._clock()
        routes = [(e.modid, e.cmdid, e.hosts) for e in entries]
        weights = {e.key: e.weights for e in entries if e.weights}
        loaded = sum(shard.load_cached(routes, now, weights) for shard in self.shards)
        self.route_client.guard.seed((e.key, e.hosts, e.weights) for e in entries if e.hosts)
        for e in entries:  # never backwards across a restart too (lars.agent.freshness)
            if e.version is not None and e.hosts:
                self.route_client.freshness.seed(e.key, e.version)
        self.cache_writer.saved_at = saved_at
        wall = self._wall()
        age = "unknown age" if saved_at is None else f"{wall - saved_at:.0f}s old"
        kept = [e.empty_since for e in entries if e.kept and e.empty_since is not None]
        if kept:
            age += (
                f"; {len(kept)} of them kept from before the route service answered empty "
                f"{wall - min(kept):.0f}s ago"
            )
        log.warning(
            "answering from %d cached module route(s) of %s (%s): stale until the route "
            "service answers",
            loaded,
            self.cache_writer.cache.path,
            age,
        )

    def stop(self) -> None:
        """Send the last aggregated reports, write the cache, stop every thread."""
        if self._started:
            self._started = False
            self.registrations.stop()  # written to disk; registrations stay (no deregister)
            self.route_client.stop()  # no more deliveries to the shards
            snapshots = self.cache_writer.update if self.cache_writer is not None else None
            for ep, thread in self._served():
                try:
                    thread.call(ep.tick, self.report_client.submit, snapshots).result(5)
                    thread.call(ep.close).result(5)
                except Exception:
                    log.exception("agent shard %d did not close cleanly", ep.shard.index)
            if self.cache_writer is not None:
                self.cache_writer.stop()
            try:  # the task queue is FIFO: the last report batches are handed over first
                self._clients.call(lambda: None).result(5)
            except Exception:
                log.exception("agent client loop did not drain")
        self._stop_threads()

    def _stop_threads(self) -> None:
        self.route_client.stop()
        for thread in self._unique_threads():
            thread.stop()
        self.report_client.stop()
        self._clients.stop()

    def reload(self, new: AgentConfig, timeout: float = 10.0) -> ReloadResult:
        """Apply the [loadbalance] parameters of `new` (SIGHUP), each shard on its own
        loop, and the [register] check defaults and limits on the client loop; every
        other change (ports, addresses, limits, layout, the registrations path) needs a
        restart."""
        result = split(diff(self.config, new), _reloadable)
        changes = result.values("balancer.")
        if changes:
            balancer = replace(self.config.balancer, **changes)
            for ep, thread in self._served():
                thread.call(ep.shard.set_balancer, balancer).result(timeout)
            self.config = replace(self.config, balancer=balancer)
        changes = result.values("register.")
        if changes:
            register = replace(self.config.register, **changes)
            self._clients.call(self.registrations.set_config, register).result(timeout)
            self.config = replace(self.config, register=register)
        return result

    def sync(self, timeout: float = 10.0) -> None:
        """Return once every task already posted between the agent's threads has run
        (the client loop first, then each shard loop): a barrier for tests and tools."""
        self._clients.call(lambda: None).result(timeout)
        for thread in self._unique_threads():
            thread.call(lambda: None).result(timeout)

    # registrations (a shard's loop posts, the client loop answers through the shard)

    def _on_register(self, index: int, body: bytes, addr: object) -> None:
        reply = functools.partial(self._register_reply, index, addr)
        self.registrations.submit(body, addr, reply, index)

    def _register_reply(self, index: int, addr: object, frame: bytes) -> None:
        self._shard_threads[index].post(self.endpoints[index].send_frame, frame, addr)

    # route client callbacks (client loop)

    def _deliver(
        self, modid: int, cmdid: int, hosts: list[HostKey], weights: dict[HostKey, int]
    ) -> None:
        if self.cache_writer is not None:
            self.cache_writer.answered(modid, cmdid)
        i = shard_of(modid, cmdid)
        if i in self.config.shards:
            self._shard_threads[i].post(self.endpoints[i].on_route, modid, cmdid, hosts, weights)

    def _route_connected(self) -> None:
        for ep, thread in self._served():
            thread.post(ep.on_connected)

    def _route_lost(self) -> None:
        for ep, thread in self._served():
            thread.post(ep.on_route_down)

    def stats(self) -> AgentStats:
        """A snapshot of counters (read without locks: values may be a moment apart)."""
        eps = self.endpoints
        writer = self.cache_writer
        return AgentStats(
            shards=tuple(shard.stats() for shard in self.shards),
            datagrams=sum(ep.received for ep in eps),
            dropped_datagrams=sum(ep.dropped for ep in eps),
            bad_bodies=sum(ep.bad_bodies for ep in eps),
            unknown_msgids=sum(ep.unknown_msgids for ep in eps),
            handler_errors=sum(ep.handler_errors for ep in eps),
            route_connected=self.route_client.connected,
            route_responses=self.route_client.responses,
            route_held_modules=self.route_client.held_modules,
            route_mass_empty=self.route_client.mass_empty_events,
            route_holds_released=self.route_client.guard.releases,
            route_holds_expired=self.route_client.guard.expiries,
            route_older_answers=self.route_client.freshness.refused,
            route_rollbacks=self.route_client.freshness.rollbacks,
            route_connects=self.route_client.client.connects,
            route_connect_failures=self.route_client.client.connect_failures,
            route_silent_drops=self.route_client.silent_drops,
            reporter_connected=self.report_client.connected,
            reporter_connects=self.report_client.client.connects,
            reporter_connect_failures=self.report_client.client.connect_failures,
            reports_sent=self.report_client.sent,
            reports_pending=self.report_client.pending,
            reports_kept=self.report_client.kept,
            reports_dropped=self.report_client.dropped,
            cache_writes=0 if writer is None else writer.writes,
            cache_saved_at=None if writer is None else writer.saved_at,
            send_errors=sum(ep.send_errors for ep in eps),
        )

    # thread-safe views, taken on each shard's own loop

    def gauges(self, timeout: float = 2.0) -> tuple[ShardGauges, ...]:
        """Modules by state and hosts by list, per served shard (empty when stopped);
        each shard's loop runs one O(1) read of the gauges it keeps (view.shard_gauges)."""
        if not self._started:
            return ()
        futures = [thread.call(shard_gauges, ep.shard) for ep, thread in self._served()]
        return tuple(f.result(timeout) for f in futures)

    def module_view(self, modid: int, cmdid: int, timeout: float = 2.0) -> ModuleView | None:
        """The agent's view of one module (None: not held, or a shard not served here).
        The shard's loop only copies the module's numbers; the view is built here."""
        i = shard_of(modid, cmdid)
        if not self._started or i not in self.config.shards:
            return None
        shard = self.shards[i]
        fn = functools.partial(module_snapshot, shard, modid, cmdid)
        snap = self._shard_threads[i].call(lambda: fn(self._clock())).result(timeout)
        return None if snap is None else snap.view()

    def registrations_view(
        self, modid: int, cmdid: int, timeout: float = 2.0
    ) -> list[dict[str, object]]:
        """The registrations this agent holds for one module, with their check state."""
        if not self._started:
            return []
        return self._clients.call(self.registrations.module_view, modid, cmdid).result(timeout)

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock


def _reloadable(name: str) -> bool:
    return name.startswith("balancer.") or (
        name.startswith("register.") and name != "register.path"
    )


def _addrs(addresses: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"{h}:{p}" for h, p in addresses)
