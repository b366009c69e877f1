"""Hypothesis state machine over one shard: module lifecycle invariants.

Modules appear on requests (within the cap), are asked for once while waiting, become
ready or known-empty on replies, are re-asked on reconnection and after update_timeout,
and known-empty ones are forgotten after empty_ttl. Checked after every step: the cap,
no state for other shards' modules, the empty-set bookkeeping, and that the route service
is never asked twice for a module while a request is outstanding (except on reconnect).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lars.agent.balancer import RouteState
from lars.agent.config import BalancerConfig
from lars.agent.shard import Shard, shard_of
from lars.protocol import RetCode

KEYS = [(m, c) for m in range(6) for c in range(3)]
MINE = [k for k in KEYS if shard_of(*k) == 0]
CAP = 3
HOSTS = st.lists(st.sampled_from([(1, 1), (2, 2), (3, 3)]), max_size=3)


class ShardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.asks: list[tuple[int, int]] = []
        self.shard = Shard(
            0,
            BalancerConfig(update_timeout=10),
            ask=lambda m, c: self.asks.append((m, c)),
            max_modules=CAP,
            empty_ttl=20,
        )
        self.now = 0.0
        self.outstanding: set[tuple[int, int]] = set()

    def _check_asks(self, before: int) -> None:
        for key in self.asks[before:]:
            assert key not in self.outstanding, f"asked twice for {key}"
            self.outstanding.add(key)

    @rule(dt=st.sampled_from([0.0, 1.0, 5.0, 10.0, 25.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        before = set(self.shard.modules)
        self.shard.sweep(self.now)
        for key in before - set(self.shard.modules):
            assert key not in self.outstanding

    @rule(key=st.sampled_from(KEYS))
    def get_host(self, key: tuple[int, int]) -> None:
        before = len(self.asks)
        code, host = self.shard.get_host(*key, self.now)
        self._check_asks(before)
        mod = self.shard.modules.get(key)
        if mod is None or not mod.hosts:
            assert (code, host) == (int(RetCode.NOEXIST), None)
        else:
            assert code in (int(RetCode.SUCC), int(RetCode.OVERLOAD))

    @rule(key=st.sampled_from(KEYS))
    def get_route(self, key: tuple[int, int]) -> None:
        before = len(self.asks)
        hosts = self.shard.get_route(*key, self.now)
        self._check_asks(before)
        mod = self.shard.modules.get(key)
        assert sorted(hosts) == (sorted(mod.hosts) if mod else [])

    @rule(key=st.sampled_from(MINE), hosts=HOSTS)
    def reply(self, key: tuple[int, int], hosts: list[tuple[int, int]]) -> None:
        known = key in self.shard.modules
        self.shard.on_route(*key, hosts, self.now)
        self.outstanding.discard(key)
        if known:
            mod = self.shard.modules[key]
            assert set(mod.hosts) == set(hosts) and not mod.waiting
        else:
            assert key not in self.shard.modules

    @rule()
    def reconnect(self) -> None:
        self.outstanding.clear()
        before = len(self.asks)
        self.shard.on_connected(self.now)
        assert sorted(self.asks[before:]) == sorted(self.shard.modules)
        self._check_asks(before)

    @invariant()
    def bookkeeping(self) -> None:
        shard = self.shard
        assert len(shard.modules) <= CAP
        assert all(shard_of(*k) == 0 for k in shard.modules)
        empty = {k for k, m in shard.modules.items() if not m.hosts}
        assert shard._empty == empty
        for key, mod in shard.modules.items():
            assert mod.waiting == (key in self.outstanding)
            assert (mod.route_state is RouteState.READY) == bool(mod.hosts)


ShardMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestShardMachine = ShardMachine.TestCase
