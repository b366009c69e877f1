"""Read-only views of a shard's modules, for the metrics exporter and `lars status`.

Both run ON the shard's own loop (AgentService posts them there with LoopThread.call
and waits for the result), so they read one consistent state, and both cost that loop
a bounded amount whatever the number of modules (issue 19: a scrape that walked 30k
modules stalled get_host for 7 ms): `shard_gauges` reads the gauges the shard and its
balancers keep up to date as modules and hosts change; `module_view` looks up one
module and copies its hosts' numbers as plain tuples, turned into HostViews later on
the caller's thread (`ModuleSnapshot.view`). Both return frozen values built from
plain numbers, safe to hand to any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from lars.agent.balancer import RouteState
from lars.agent.shard import Shard
from lars.protocol import wire_to_dotted

__all__ = [
    "HostView",
    "ModuleSnapshot",
    "ModuleView",
    "ShardGauges",
    "module_snapshot",
    "module_view",
    "shard_gauges",
]


@dataclass(frozen=True, slots=True)
class ShardGauges:
    """What a shard holds right now (not counters: they come from Shard.stats())."""

    modules_new: int  # waiting for the first route reply
    modules_empty: int  # the route service said: no hosts
    modules_ready: int  # with hosts
    hosts_idle: int
    hosts_overloaded: int
    oldest_route_at: float | None  # monotonic time of the least recently confirmed route
    hosts_weighted: int = 0  # hosts with a weight other than 1 (HostInfo.weight)


@dataclass(frozen=True, slots=True)
class HostView:
    ip: str
    port: int
    state: str  # "idle" | "overload"
    weight: int  # from the route service (HostInfo.weight; 1 when it sends none)
    vsucc: int
    verr: int
    rsucc: int
    rerr: int
    contin_succ: int
    contin_err: int
    window_age: float  # seconds since its state (or idle window) began


@dataclass(frozen=True, slots=True)
class ModuleView:
    modid: int
    cmdid: int
    shard: int
    route_state: str  # "new" | "empty" | "ready"
    waiting: bool  # a route request is out and unanswered
    route_age: float | None  # seconds since the route service last sent the route
    hosts: tuple[HostView, ...]


def shard_gauges(shard: Shard) -> ShardGauges:
    """Modules by route state and hosts by list: a read of the gauges the shard keeps,
    O(1) in modules and hosts. Runs on the shard's loop."""
    by_state = shard.modules_by_state
    c = shard.counters
    return ShardGauges(
        modules_new=by_state[RouteState.NEW],
        modules_empty=by_state[RouteState.EMPTY],
        modules_ready=by_state[RouteState.READY],
        hosts_idle=c.hosts - c.overloaded,
        hosts_overloaded=c.overloaded,
        oldest_route_at=shard.oldest_route_at,
        hosts_weighted=c.weighted,
    )


# (ip, port, state, weight, vsucc, verr, rsucc, rerr, contin_succ, contin_err, since)
_HostRow = tuple[int, int, str, int, int, int, int, int, int, int, float]


@dataclass(frozen=True, slots=True)
class ModuleSnapshot:
    """One module's numbers copied on the shard's loop; `view()` builds the ModuleView
    on any thread, so the loop pays one tuple per host and no formatting."""

    modid: int
    cmdid: int
    shard: int
    route_state: RouteState
    waiting: bool
    updated_at: float
    now: float
    hosts: tuple[_HostRow, ...]

    def view(self) -> ModuleView:
        now = self.now
        hosts = tuple(
            HostView(
                ip=wire_to_dotted(ip),
                port=port,
                state=state,
                weight=weight,
                vsucc=vsucc,
                verr=verr,
                rsucc=rsucc,
                rerr=rerr,
                contin_succ=contin_succ,
                contin_err=contin_err,
                window_age=max(0.0, now - since),
            )
            for ip, port, state, weight, vsucc, verr, rsucc, rerr, contin_succ, contin_err, since
            in self.hosts
        )  # fmt: skip
        fresh = self.route_state is not RouteState.NEW
        return ModuleView(
            modid=self.modid,
            cmdid=self.cmdid,
            shard=self.shard,
            route_state=self.route_state.value,
            waiting=self.waiting,
            route_age=max(0.0, now - self.updated_at) if fresh else None,
            hosts=hosts,
        )


def module_snapshot(shard: Shard, modid: int, cmdid: int, now: float) -> ModuleSnapshot | None:
    """Copy one module's numbers; None when the shard does not hold it. Runs on the
    shard's loop: one dict lookup and one tuple per host of that module (at most
    MAX_HOSTS_PER_MODULE), whatever the number of modules."""
    mod = shard.modules.get((modid, cmdid))
    if mod is None:
        return None
    rows = tuple(
        (h.ip, h.port, h.state.value, h.weight, h.vsucc, h.verr, h.rsucc, h.rerr,
         h.contin_succ, h.contin_err, h.overload_ts if h.overloaded else h.idle_ts)
        for h in mod.hosts.values()
    )  # fmt: skip
    return ModuleSnapshot(
        modid, cmdid, shard.index, mod.route_state, mod.waiting, mod.updated_at, now, rows
    )


def module_view(shard: Shard, modid: int, cmdid: int, now: float) -> ModuleView | None:
    """The agent's own view of one module; None when the shard does not hold it.
    `now` is the shard's monotonic clock. (AgentService takes the snapshot on the
    shard's loop and builds the view on its own thread.)"""
    snap = module_snapshot(shard, modid, cmdid, now)
    return None if snap is None else snap.view()
