"""Shard: module creation and cap, shard ownership, route replies, reports, snapshots."""

from __future__ import annotations

from lars.agent.config import BalancerConfig
from lars.agent.shard import Shard, shard_of
from lars.protocol import RetCode, lars_pb2

SUCC, OVERLOAD, NOEXIST = int(RetCode.SUCC), int(RetCode.OVERLOAD), int(RetCode.NOEXIST)


class Asks:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, modid: int, cmdid: int) -> None:
        self.calls.append((modid, cmdid))


def make(index: int = 0, max_modules: int = 100) -> tuple[Shard, Asks]:
    asks = Asks()
    return Shard(index, BalancerConfig(), ask=asks, max_modules=max_modules), asks


def test_shard_of() -> None:
    assert [shard_of(1, i) for i in range(4)] == [1, 2, 0, 1]


def test_noexist_first_then_succ_once_route_arrives() -> None:
    shard, asks = make()
    assert shard.get_host(1, 2, 0.0) == (NOEXIST, None)
    assert shard.get_host(1, 2, 0.1) == (NOEXIST, None)
    assert asks.calls == [(1, 2)]  # asked once while waiting
    shard.on_route(1, 2, [(10, 80)], 0.2)
    code, host = shard.get_host(1, 2, 0.3)
    assert code == SUCC and host is not None and (host.ip, host.port) == (10, 80)
    assert shard.routes_changed


def test_known_empty_module_asks_again_only_after_update_timeout() -> None:
    shard, asks = make()
    shard.get_host(3, 0, 0.0)
    shard.on_route(3, 0, [], 1.0)
    for t in range(1, 17):
        assert shard.get_host(3, 0, float(t)) == (NOEXIST, None)
    assert asks.calls == [(3, 0)]
    shard.get_host(3, 0, 16.5)
    assert asks.calls == [(3, 0), (3, 0)]
    # stays subscribed: a later push with hosts is answered at once
    shard.on_route(3, 0, [(5, 5)], 17.0)
    assert shard.get_host(3, 0, 17.0)[0] == SUCC


def test_route_refresh_after_update_timeout() -> None:
    shard, asks = make()
    shard.get_host(0, 0, 0.0)
    shard.on_route(0, 0, [(1, 1)], 0.0)
    shard.get_host(0, 0, 14.0)
    assert len(asks.calls) == 1
    shard.get_host(0, 0, 15.0)
    assert len(asks.calls) == 1  # not older than update_timeout yet
    assert shard.get_host(0, 0, 15.5)[0] == SUCC  # answers, then asks
    assert len(asks.calls) == 2
    shard.get_host(0, 0, 16.0)
    assert len(asks.calls) == 2  # waiting


def test_misrouted_module_gets_noexist_without_state() -> None:
    shard, asks = make(index=0)
    assert shard.get_host(1, 0, 0.0) == (NOEXIST, None)
    assert shard.get_route(1, 0, 0.0) == []
    assert not shard.modules and not asks.calls
    assert shard.misrouted == 2


def test_module_cap_refuses_without_state() -> None:
    shard, asks = make(max_modules=3)
    for modid in range(0, 30, 3):
        assert shard.get_host(modid, 0, 0.0) == (NOEXIST, None)
    assert len(shard.modules) == 3 and len(asks.calls) == 3
    assert shard.refused_modules == 7
    shard.on_route(0, 0, [(1, 1)], 0.0)
    assert shard.get_host(0, 0, 0.0)[0] == SUCC


def test_push_for_unknown_module_ignored() -> None:
    shard, _ = make()
    shard.on_route(0, 3, [(1, 1)], 0.0)
    assert not shard.modules and shard.routes_ignored == 1


def test_reconnect_resets_waiting_and_asks_for_every_module() -> None:
    shard, asks = make()
    shard.get_host(0, 0, 0.0)
    shard.get_host(0, 3, 0.0)
    shard.on_route(0, 3, [(1, 1)], 0.0)
    asks.calls.clear()
    shard.on_connected(1.0)
    assert sorted(asks.calls) == [(0, 0), (0, 3)]
    assert all(m.waiting for m in shard.modules.values())


def test_get_route_lists_all_hosts() -> None:
    shard, asks = make()
    assert shard.get_route(0, 0, 0.0) == []
    assert asks.calls == [(0, 0)]
    shard.on_route(0, 0, [(1, 1), (2, 2)], 0.0)
    for _ in range(20):  # overload host (1, 1)
        shard.report(0, 0, 1, 1, 1, 0.0)
    assert sorted(shard.get_route(0, 0, 0.0)) == [(1, 1), (2, 2)]


def test_reports_aggregate_once_per_collect() -> None:
    shard, _ = make()
    shard.get_host(0, 0, 0.0)
    shard.on_route(0, 0, [(-1062731343, 9000), (2, 2)], 0.0)
    for _ in range(3):
        shard.report(0, 0, -1062731343, 9000, 0, 0.0)
    shard.report(0, 0, 2, 2, 2, 0.0)
    shard.report(0, 0, 7, 7, 0, 0.0)  # unknown host
    shard.report(0, 3, 7, 7, 0, 0.0)  # unknown module
    assert shard.unknown_host_reports == 2
    out = shard.collect_reports(caller=-5, wall=1700000000.7)
    assert [key for key, _ in out] == [(0, 0)]
    msg = lars_pb2.ReportStatusRequest.FromString(out[0][1])
    assert (msg.modid, msg.cmdid, msg.caller, msg.ts) == (0, 0, -5, 1700000000)
    rows = sorted((r.ip, r.port, r.succ, r.err, r.overload) for r in msg.results)
    assert rows == [(-1062731343, 9000, 3, 0, False), (2, 2, 0, 1, False)]
    assert shard.collect_reports(caller=-5, wall=1700000001.0) == []


def test_snapshot_and_load_cached() -> None:
    shard, _ = make()
    shard.get_host(0, 0, 0.0)
    shard.get_host(0, 3, 0.0)
    shard.get_host(3, 3, 0.0)  # never answered: not in the snapshot
    shard.on_route(0, 0, [(1, 1)], 0.0)
    shard.on_route(0, 3, [], 0.0)
    snap = shard.snapshot()
    assert sorted(snap) == [(0, 0, [(1, 1)]), (0, 3, [])]
    assert not shard.routes_changed
    fresh, asks = make()
    assert fresh.load_cached([*snap, (1, 0, [(9, 9)])], 5.0) == 2  # (1, 0) is shard 1's
    assert fresh.get_host(0, 0, 5.0)[0] == SUCC
    assert fresh.get_host(0, 3, 5.0) == (NOEXIST, None)
    assert not asks.calls


def test_sweep_forgets_unused_known_empty_modules() -> None:
    asks = Asks()
    shard = Shard(0, BalancerConfig(), ask=asks, max_modules=2, empty_ttl=60.0)
    shard.get_host(0, 0, 0.0)
    shard.get_host(0, 3, 0.0)
    assert shard.get_host(0, 6, 0.0) == (NOEXIST, None)  # capped
    assert shard.refused_modules == 1
    shard.on_route(0, 0, [], 1.0)  # known-empty
    shard.on_route(0, 3, [(1, 1)], 1.0)  # has hosts: never swept
    assert shard.sweep(60.9) == 0
    shard.get_host(0, 0, 30.0)  # asked for (ttl restarts) with stale routes: re-asked
    assert shard.sweep(200.0) == 0  # a reply is outstanding: kept
    shard.on_route(0, 0, [], 200.0)
    assert shard.sweep(259.9) == 0
    assert shard.sweep(260.0) == 1
    assert set(shard.modules) == {(0, 3)} and shard.expired_modules == 1
    assert shard.routes_changed
    # room again: a new module is accepted and asked for
    asks.calls.clear()
    shard.get_host(0, 6, 261.0)
    assert asks.calls == [(0, 6)]
    # a push for the forgotten module is ignored; asking again starts afresh
    shard.on_route(0, 0, [(2, 2)], 262.0)
    assert shard.routes_ignored == 1
    assert shard.sweep(1000.0) == 0  # (0, 6) still waits for its first reply: kept


def test_module_emptied_by_a_push_gets_a_full_ttl() -> None:
    shard, _ = make()
    shard.get_host(0, 0, 0.0)
    shard.on_route(0, 0, [(1, 1)], 0.0)
    shard.on_route(0, 0, [], 500.0)
    assert shard.sweep(559.0) == 0
    assert shard.sweep(560.0) == 1
