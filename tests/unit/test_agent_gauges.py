"""The shard's gauges are kept incrementally, so a scrape's work on the shard's loop does
not grow with the number of modules (issue 19, item 5).

Two kinds of proof: a hypothesis state machine checks after every step that the kept
gauges equal a full walk of the modules (the old, O(modules) computation, kept here as
the reference); and the number of Python lines `shard_gauges` and `module_snapshot`
execute (counted with sys.settrace, not timed) is the same with 10 and with 6,000
modules, and `shard_gauges` never touches the module dict at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lars.agent.balancer import RouteState
from lars.agent.config import BalancerConfig
from lars.agent.shard import ModuleKey, Shard, shard_of
from lars.agent.view import ShardGauges, module_snapshot, module_view, shard_gauges

CFG = BalancerConfig(probe_num=2, contin_err_limit=2, contin_succ_limit=2, update_timeout=10)
KEYS = [(m, c) for m in range(9) for c in range(3) if shard_of(m, c) == 0]
HOST_KEYS = [(1, 80), (2, 80), (3, 81), (4, 81)]


def scan_gauges(shard: Shard) -> ShardGauges:
    """The reference: walk every module (what shard_gauges did before issue 19)."""
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


class GaugeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.shard = Shard(0, CFG, ask=lambda m, c: None, max_modules=5, empty_ttl=20)
        self.now = 0.0

    @rule(dt=st.sampled_from([0.0, 1.0, 7.0, 25.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.shard.sweep(self.now)

    @rule(key=st.sampled_from(KEYS))
    def get_host(self, key: ModuleKey) -> None:
        self.shard.get_host(*key, self.now)

    @rule(
        key=st.sampled_from(KEYS),
        hosts=st.lists(st.sampled_from(HOST_KEYS), max_size=4, unique=True),
        weighted=st.lists(st.sampled_from(HOST_KEYS), max_size=2, unique=True),
        earlier=st.sampled_from([0.0, 0.0, 0.0, 3.0]),
    )
    def route(
        self, key: ModuleKey, hosts: list[tuple[int, int]], weighted: list[tuple[int, int]],
        earlier: float,
    ) -> None:  # fmt: skip
        # `earlier` > 0: a made-up clock that goes back (the kept order must survive it)
        weights = {k: 5 for k in weighted if k in hosts}
        self.shard.on_route(*key, hosts, self.now - earlier, weights)

    @rule(key=st.sampled_from(KEYS), host=st.sampled_from(HOST_KEYS), ok=st.booleans())
    def report(self, key: ModuleKey, host: tuple[int, int], ok: bool) -> None:
        self.shard.report(*key, *host, 0 if ok else 1, self.now)

    @rule(
        routes=st.lists(
            st.tuples(st.sampled_from(KEYS), st.lists(st.sampled_from(HOST_KEYS), max_size=3)),
            max_size=3,
        )
    )
    def load_cached(self, routes: list[tuple[ModuleKey, list[tuple[int, int]]]]) -> None:
        self.shard.load_cached([(m, c, hosts) for (m, c), hosts in routes], self.now)

    @invariant()
    def gauges_equal_a_full_walk(self) -> None:
        assert shard_gauges(self.shard) == scan_gauges(self.shard)


TestGauges = GaugeMachine.TestCase
TestGauges.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def filled(modules: int) -> Shard:
    """A shard holding `modules` modules: a third new, a third empty, a third with hosts
    (one of them overloaded)."""
    shard = Shard(0, CFG, ask=lambda m, c: None, max_modules=modules)
    keys = [(m, 0) for m in range(0, 3 * modules, 3)]
    for i, key in enumerate(keys):
        shard.get_host(*key, float(i))
        if i % 3 == 1:
            shard.on_route(*key, [], float(i))
        elif i % 3 == 2:
            shard.on_route(*key, [(1, 80), (2, 80)], float(i), {(2, 80): 3})
            shard.report(*key, 1, 80, 1, float(i))
            shard.report(*key, 1, 80, 1, float(i))
    return shard


def lines_run(fn: Callable[[], Any]) -> int:
    """How many Python lines `fn` executes (every frame below it included)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


class Untouchable(dict[ModuleKey, Any]):
    """A module dict that fails on any walk or lookup."""

    def _refuse(self, *args: Any) -> Any:
        raise AssertionError("shard_gauges touched the module dict")

    values = items = keys = get = __getitem__ = __contains__ = _refuse

    def __iter__(self) -> Iterator[ModuleKey]:
        self._refuse()
        return iter(())

    def __len__(self) -> int:
        self._refuse()
        return 0


def test_the_gauges_cost_the_same_with_10_and_6000_modules() -> None:
    small, large = filled(10), filled(6000)
    assert shard_gauges(large) == scan_gauges(large)
    assert shard_gauges(large).modules_ready == 2000
    assert shard_gauges(large).hosts_overloaded == 2000
    assert lines_run(lambda: shard_gauges(small)) == lines_run(lambda: shard_gauges(large))


def test_the_gauges_never_walk_the_modules() -> None:
    shard = filled(30)
    expected = scan_gauges(shard)
    shard.modules = Untouchable(shard.modules)
    assert shard_gauges(shard) == expected


def test_a_module_view_costs_the_same_with_10_and_6000_modules() -> None:
    small, large = filled(10), filled(6000)
    key = (3 * 8, 0)  # the 9th module: i % 3 == 2, with hosts, in both shards
    assert len(small.modules[key].hosts) == len(large.modules[key].hosts) == 2
    assert lines_run(lambda: module_snapshot(small, *key, 100.0)) == lines_run(
        lambda: module_snapshot(large, *key, 100.0)
    )
    snap = module_snapshot(large, *key, 100.0)
    assert snap is not None and snap.view() == module_view(large, *key, 100.0)
    assert module_snapshot(large, 1, 0, 100.0) is None
