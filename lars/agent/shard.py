"""One UDP shard's modules, sans-I/O: get_host, report, routes, reports, snapshots.

A shard owns the modules whose (modid + cmdid) % 3 is its index (spec section 4). It
creates a module on first use (asking the route service through the injected `ask`
callback), up to `max_modules`; past the cap it answers NOEXIST without keeping state.
Known-empty modules nobody asked for during `empty_ttl` are forgotten by `sweep()`, so
a flood of made-up modules cannot keep real ones out for ever. Requests for another
shard's modules are answered NOEXIST and counted, never stored.
Time comes in as `now` (monotonic seconds) and `wall` (unix seconds, for reports).

What the exporter reads (modules by route state, hosts by list, the least recently
confirmed route) is kept up to date where it changes, never computed by walking the
modules: a scrape costs the shard's loop the same small amount with 30 or 30,000
modules (lars.agent.view.shard_gauges).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lars.agent.balancer import BalancerCounters, Host, HostKey, ModuleBalancer, RouteState
from lars.agent.config import SHARDS, BalancerConfig
from lars.protocol import NoHostReason, RetCode, lars_pb2

__all__ = ["ModuleKey", "Shard", "ShardStats", "shard_of"]

ModuleKey = tuple[int, int]
AskRoute = Callable[[int, int], None]

_NOEXIST = int(RetCode.NOEXIST)
_UNREACHABLE = int(NoHostReason.ROUTE_SERVICE_UNREACHABLE)


def shard_of(modid: int, cmdid: int) -> int:
    return (modid + cmdid) % SHARDS


@dataclass(frozen=True, slots=True)
class ShardStats:
    modules: int
    get_host: int
    get_host_overload: int  # answered OVERLOAD (every host overloaded, no probe due)
    get_host_noexist: int  # answered NOEXIST (unknown, new, empty, refused or misrouted)
    reports: int
    report_errors: int  # reports with a non-zero retcode
    get_route: int
    refused_modules: int
    misrouted: int
    unknown_host_reports: int
    routes_received: int
    routes_ignored: int
    routes_pushed: int  # route messages for a module that was not waiting for a reply
    route_requests: int
    expired_modules: int
    probes: int
    to_overload: int
    to_idle: int
    noexist_route_down: int  # NOEXIST answers given while no route service was connected


class Shard:
    """The modules of one shard index; called only from the shard's own loop."""

    def __init__(
        self,
        index: int,
        config: BalancerConfig,
        *,
        ask: AskRoute,
        max_modules: int,
        empty_ttl: float = 60.0,
    ) -> None:
        self.index = index
        self.config = config
        self.max_modules = max_modules
        self.empty_ttl = empty_ttl
        self._ask = ask
        self.modules: dict[ModuleKey, ModuleBalancer] = {}
        self._empty: set[ModuleKey] = set()  # modules without hosts (sweep candidates)
        self._dirty: set[ModuleBalancer] = set()  # reported since the last collect
        self.routes_changed = False  # since the last snapshot
        self.counters = BalancerCounters()
        # gauges, kept where modules change (what shard_gauges reads)
        self.modules_by_state: dict[RouteState, int] = dict.fromkeys(RouteState, 0)
        # modules with a route reply, least recently confirmed first (their updated_at)
        self._confirmed: OrderedDict[ModuleKey, float] = OrderedDict()
        self.n_get_host = 0
        self.n_overload = 0
        self.n_noexist = 0
        self.n_reports = 0
        self.n_report_errors = 0
        self.n_get_route = 0
        self.refused_modules = 0
        self.misrouted = 0
        self.unknown_host_reports = 0
        self.routes_received = 0
        self.routes_ignored = 0
        self.routes_pushed = 0
        self.route_requests = 0
        self.expired_modules = 0
        self.noexist_route_down = 0
        # Whether the agent's route-service client is connected (posted to this loop on
        # every connection and loss): what a NOEXIST answer tells the client about why.
        self.route_up = False

    # client requests

    def _module(self, modid: int, cmdid: int, now: float) -> ModuleBalancer | None:
        """The module, created (and asked for) if new and within the cap; None otherwise."""
        mod = self.modules.get((modid, cmdid))
        if mod is not None:
            return mod
        if shard_of(modid, cmdid) != self.index:
            self.misrouted += 1
            return None
        if len(self.modules) >= self.max_modules:
            self.refused_modules += 1
            return None
        mod = ModuleBalancer(modid, cmdid, self.config, self.counters)
        mod.used_at = now
        self.modules[(modid, cmdid)] = mod
        self.modules_by_state[RouteState.NEW] += 1
        self._empty.add((modid, cmdid))
        self._request(mod, now)
        return mod

    def _confirm(self, key: ModuleKey, mod: ModuleBalancer, before: RouteState | None) -> None:
        """Count a module's new route state and move it to the end of the confirmed
        order (its updated_at is the latest, `now` being monotonic)."""
        by_state = self.modules_by_state
        if before is not None:
            by_state[before] -= 1
        by_state[mod.route_state] += 1
        confirmed = self._confirmed
        confirmed.pop(key, None)
        at = mod.updated_at
        if confirmed and at < next(reversed(confirmed.values())):
            # an earlier time than the latest (only a caller's made-up clock does this):
            # re-sort once, so the first entry stays the least recently confirmed
            confirmed[key] = at
            self._confirmed = OrderedDict(sorted(confirmed.items(), key=lambda kv: kv[1]))
        else:
            confirmed[key] = at

    @property
    def oldest_route_at(self) -> float | None:
        """updated_at of the least recently confirmed route held (None: none held)."""
        for at in self._confirmed.values():
            return at
        return None

    def _request(self, mod: ModuleBalancer, now: float) -> None:
        mod.asked(now)
        self.route_requests += 1
        self._ask(mod.modid, mod.cmdid)

    def get_host(self, modid: int, cmdid: int, now: float) -> tuple[int, Host | None]:
        """(retcode, host) for a GetHostRequest (spec section 8)."""
        self.n_get_host += 1
        mod = self.modules.get((modid, cmdid))
        if mod is None:
            self.n_noexist += 1
            self._module(modid, cmdid, now)
            return _NOEXIST, None
        result = mod.pick()
        if result[0]:  # SUCC is 0: the common path pays one truth test
            if result[0] == _NOEXIST:
                self.n_noexist += 1
                mod.used_at = now
            else:
                self.n_overload += 1
        if not mod.waiting and now - mod.updated_at > self.config.update_timeout:
            self._request(mod, now)
        return result

    def noexist_reason(self, modid: int, cmdid: int) -> int:
        """Why get_host just answered NOEXIST for the module (a NoHostReason value, sent
        as GetHostResponse.reason); counts the answers given while the route service is
        unreachable. Called only after a NOEXIST answer, so the hot path never pays."""
        if shard_of(modid, cmdid) != self.index:
            return int(NoHostReason.WRONG_PORT)
        mod = self.modules.get((modid, cmdid))
        if mod is None:  # not created: the module cap
            return int(NoHostReason.MODULE_LIMIT)
        if not self.route_up:
            self.noexist_route_down += 1
            return _UNREACHABLE
        if mod.route_state is RouteState.NEW:
            return int(NoHostReason.PENDING)
        return int(NoHostReason.EMPTY)

    def report(self, modid: int, cmdid: int, ip: int, port: int, retcode: int, now: float) -> None:
        """Count a ReportRequest; unknown modules and hosts are ignored (counted)."""
        self.n_reports += 1
        if retcode:
            self.n_report_errors += 1
        mod = self.modules.get((modid, cmdid))
        if mod is None or not mod.report(ip, port, retcode, now):
            self.unknown_host_reports += 1
            return
        self._dirty.add(mod)

    def get_route(self, modid: int, cmdid: int, now: float) -> list[HostKey]:
        """All hosts of a module for API_GetRouteRequest; empty (and asked for) when new."""
        self.n_get_route += 1
        mod = self.modules.get((modid, cmdid))
        if mod is None:
            self._module(modid, cmdid, now)
            return []
        if mod.needs_route(now):
            self._request(mod, now)
        if not mod.hosts:
            mod.used_at = now
        return mod.host_keys()

    # route service

    def on_route(
        self,
        modid: int,
        cmdid: int,
        hosts: Iterable[HostKey],
        now: float,
        weights: Mapping[HostKey, int] | None = None,
    ) -> None:
        """A GetRouteResponse (reply or push); `weights` holds the hosts whose weight is
        not the default. Unknown modules are ignored: nobody asked."""
        mod = self.modules.get((modid, cmdid))
        if mod is None:
            self.routes_ignored += 1
            return
        self.routes_received += 1
        if not mod.waiting:
            self.routes_pushed += 1
        before = mod.route_state
        mod.update_routes(hosts, now, weights)
        self._confirm((modid, cmdid), mod, before)
        if mod.hosts:
            self._empty.discard((modid, cmdid))
        else:
            mod.used_at = max(mod.used_at, now)  # its ttl starts now at the latest
            self._empty.add((modid, cmdid))
        self.routes_changed = True

    def on_connected(self, now: float) -> None:
        """The route service (re)connected: forget pending asks and ask for every module."""
        self.route_up = True
        for mod in self.modules.values():
            mod.waiting = False
        for mod in list(self.modules.values()):
            self._request(mod, now)

    def set_balancer(self, config: BalancerConfig) -> None:
        """New [loadbalance] parameters (SIGHUP) for every module, from the next request
        or report on; hosts keep their counters and states."""
        self.config = config
        for mod in self.modules.values():
            mod.config = config

    def on_route_down(self) -> None:
        """The route-service connection was lost (answers keep using the routes held)."""
        self.route_up = False

    # periodic work

    def sweep(self, now: float) -> int:
        """Forget known-empty modules unused for `empty_ttl`; return how many went.

        Modules waiting for a reply stay (it may be on its way).
        A later push for a forgotten module is ignored; a later request starts afresh.
        """
        gone = [
            key
            for key in self._empty
            if (mod := self.modules[key]).route_state is RouteState.EMPTY
            and not mod.waiting
            and now - mod.used_at >= self.empty_ttl
        ]
        for key in gone:
            del self.modules[key]
            self._empty.discard(key)
            self._confirmed.pop(key, None)
        self.modules_by_state[RouteState.EMPTY] -= len(gone)
        if gone:
            self.expired_modules += len(gone)
            self.routes_changed = True
        return len(gone)

    def collect_reports(self, caller: int, wall: float) -> list[tuple[ModuleKey, bytes]]:
        """One serialized ReportStatusRequest per module reported since the last call."""
        if not self._dirty:
            return []
        out: list[tuple[ModuleKey, bytes]] = []
        ts = int(wall)
        for mod in self._dirty:
            if self.modules.get((mod.modid, mod.cmdid)) is not mod:
                continue
            msg = lars_pb2.ReportStatusRequest(
                modid=mod.modid, cmdid=mod.cmdid, caller=caller, ts=ts
            )
            for ip, port, rsucc, rerr, overload in mod.report_rows():
                msg.results.add(ip=ip, port=port, succ=rsucc, err=rerr, overload=overload)
            out.append(((mod.modid, mod.cmdid), msg.SerializeToString()))
        self._dirty.clear()
        return out

    def snapshot(self) -> list[tuple[int, int, list[HostKey]]]:
        """Known routes (modules with a route reply) for the cache; clears routes_changed."""
        self.routes_changed = False
        return [
            (mod.modid, mod.cmdid, mod.host_keys())
            for mod in self.modules.values()
            if mod.route_state is not RouteState.NEW
        ]

    def snapshot_weights(self) -> dict[ModuleKey, dict[HostKey, int]]:
        """The host weights other than 1 of the modules `snapshot` lists (for the cache)."""
        return {
            key: mod.weights()
            for key, mod in self.modules.items()
            if mod.weighted_hosts and mod.route_state is not RouteState.NEW
        }

    def load_cached(
        self,
        routes: Iterable[tuple[int, int, list[HostKey]]],
        now: float,
        weights: Mapping[ModuleKey, Mapping[HostKey, int]] | None = None,
    ) -> int:
        """Seed modules from a route snapshot (stale; refreshed on connection)."""
        loaded = 0
        weights = weights or {}
        for modid, cmdid, hosts in routes:
            if shard_of(modid, cmdid) != self.index or (modid, cmdid) in self.modules:
                continue
            if len(self.modules) >= self.max_modules:
                break
            mod = ModuleBalancer(modid, cmdid, self.config, self.counters)
            mod.update_routes(hosts, now, weights.get((modid, cmdid)))
            mod.used_at = now
            self.modules[(modid, cmdid)] = mod
            self._confirm((modid, cmdid), mod, None)
            if not hosts:
                self._empty.add((modid, cmdid))
            loaded += 1
        return loaded

    def stats(self) -> ShardStats:
        return ShardStats(
            modules=len(self.modules),
            get_host=self.n_get_host,
            get_host_overload=self.n_overload,
            get_host_noexist=self.n_noexist,
            reports=self.n_reports,
            report_errors=self.n_report_errors,
            get_route=self.n_get_route,
            refused_modules=self.refused_modules,
            misrouted=self.misrouted,
            unknown_host_reports=self.unknown_host_reports,
            routes_received=self.routes_received,
            routes_ignored=self.routes_ignored,
            routes_pushed=self.routes_pushed,
            route_requests=self.route_requests,
            expired_modules=self.expired_modules,
            probes=self.counters.probes,
            to_overload=self.counters.to_overload,
            to_idle=self.counters.to_idle,
            noexist_route_down=self.noexist_route_down,
        )
