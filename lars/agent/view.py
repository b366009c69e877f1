"""Read-only views of a shard's modules, for the metrics exporter and `lars status`.

Both functions walk the shard's module dict, so they must run ON the shard's own loop
(AgentService posts them there with LoopThread.call and waits for the result): another
thread iterating the dict while the shard adds a module would fail or see half a change.
They return frozen values built from plain numbers, safe to hand to any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from lars.agent.balancer import RouteState
from lars.agent.shard import Shard
from lars.protocol import wire_to_dotted

__all__ = ["HostView", "ModuleView", "ShardGauges", "module_view", "shard_gauges"]


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
    """Count modules by route state and hosts by list. Runs on the shard's loop."""
    new = empty = ready = idle = overloaded = weighted = 0
    oldest: float | None = None
    for mod in shard.modules.values():
        state = mod.route_state
        if state is RouteState.NEW:
            new += 1
            continue
        if state is RouteState.EMPTY:
            empty += 1
        else:
            ready += 1
            idle += len(mod.idle)
            overloaded += len(mod.overload)
            weighted += mod.weighted_hosts
        if oldest is None or mod.updated_at < oldest:
            oldest = mod.updated_at
    return ShardGauges(new, empty, ready, idle, overloaded, oldest, weighted)


def module_view(shard: Shard, modid: int, cmdid: int, now: float) -> ModuleView | None:
    """The agent's own view of one module; None when the shard does not hold it.
    Runs on the shard's loop; `now` is the shard's monotonic clock."""
    mod = shard.modules.get((modid, cmdid))
    if mod is None:
        return None
    hosts = tuple(
        HostView(
            ip=wire_to_dotted(h.ip),
            port=h.port,
            state=h.state.value,
            weight=h.weight,
            vsucc=h.vsucc,
            verr=h.verr,
            rsucc=h.rsucc,
            rerr=h.rerr,
            contin_succ=h.contin_succ,
            contin_err=h.contin_err,
            window_age=max(0.0, now - (h.overload_ts if h.overloaded else h.idle_ts)),
        )
        for h in mod.hosts.values()
    )
    fresh = mod.route_state is not RouteState.NEW
    return ModuleView(
        modid=modid,
        cmdid=cmdid,
        shard=shard.index,
        route_state=mod.route_state.value,
        waiting=mod.waiting,
        route_age=max(0.0, now - mod.updated_at) if fresh else None,
        hosts=hosts,
    )
