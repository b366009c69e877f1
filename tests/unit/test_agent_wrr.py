"""Weighted balancing in the agent: shares, smoothness, weight changes, overload, wire."""

from __future__ import annotations

from collections import Counter, deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.agent.balancer import HostState, ModuleBalancer
from lars.agent.config import BalancerConfig
from lars.agent.shard import Shard
from lars.agent.view import module_view, shard_gauges
from lars.agent.wrr import restart, swrr_pick
from lars.errors import ValidationError
from lars.protocol import RetCode
from lars.protocol.weight import MAX_WEIGHT, validate_weight, wire_weight

SUCC = int(RetCode.SUCC)
FAIL = int(RetCode.SYSTEM_ERROR)
OVERLOAD = int(RetCode.OVERLOAD)
A, B, C = (1, 80), (2, 80), (3, 80)


def weighted(weights: dict[tuple[int, int], int], **cfg: float) -> ModuleBalancer:
    mod = ModuleBalancer(1, 2, BalancerConfig(**cfg))  # type: ignore[arg-type]
    mod.update_routes(list(weights), 0.0, {k: w for k, w in weights.items() if w != 1})
    return mod


def pick_key(mod: ModuleBalancer) -> tuple[int, int] | None:
    _code, host = mod.pick()
    return None if host is None else (host.ip, host.port)


def test_weights_1_2_5_get_their_shares_within_2_percent_over_10000_picks() -> None:
    mod = weighted({A: 1, B: 2, C: 5})
    counts: Counter[tuple[int, int] | None] = Counter()
    now = 0.0
    for _ in range(10_000):
        key = pick_key(mod)
        counts[key] += 1
        assert key is not None
        now += 0.001  # idle windows pass (state resets, no list change)
        mod.report(*key, SUCC, now)
    for key, weight in ((A, 1), (B, 2), (C, 5)):
        share = counts[key] / 10_000
        assert abs(share - weight / 8) <= 0.02, (key, share)
    assert set(counts) == {A, B, C}


def test_the_sequence_is_smooth_not_bursts() -> None:
    mod = weighted({A: 1, B: 2, C: 5})
    names = {A: "a", B: "b", C: "c"}
    seq = "".join(names[k] for _ in range(16) if (k := pick_key(mod)) is not None)
    assert seq == "cbcaccbc" * 2  # nginx's order for 1:2:5; no run of c longer than 2


class _H:
    def __init__(self, name: int, weight: int) -> None:
        self.name = name
        self.weight = weight
        self.cw = 0


@given(
    weights=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    rounds=st.integers(1, 3),
    order=st.randoms(use_true_random=False),
)
def test_every_round_of_total_weight_picks_gives_each_host_exactly_its_weight(
    weights: list[int], rounds: int, order: object
) -> None:
    hosts = [_H(i, w) for i, w in enumerate(weights)]
    idle = deque(hosts)
    order.shuffle(idle)  # type: ignore[attr-defined]
    total, uniform = restart(idle)
    assert total == sum(weights) and uniform == (len(set(weights)) == 1)
    for _ in range(rounds):
        counts = Counter(swrr_pick(idle, total).name for _ in range(total))
        assert counts == {h.name: h.weight for h in hosts}
        assert all(h.cw == 0 for h in hosts)  # each round ends where it began


def test_a_weight_change_keeps_the_hosts_counters() -> None:
    mod = weighted({A: 1, B: 1})
    mod.report(*A, FAIL, 1.0)
    before = (mod.hosts[A].verr, mod.hosts[A].rerr, mod.hosts[A].idle_ts)
    mod.update_routes([A, B], 2.0, {A: 3})
    host = mod.hosts[A]
    assert host.weight == 3 and (host.verr, host.rerr, host.idle_ts) == before
    assert not mod.uniform and mod.idle_total == 4
    mod.update_routes([A, B], 3.0)  # back to the default
    assert host.weight == 1 and mod.uniform


def test_an_overloaded_heavy_host_leaves_the_rest_to_share_and_is_probed_unweighted() -> None:
    mod = weighted({A: 1, B: 1, C: 8}, probe_num=4, contin_err_limit=2)
    for _ in range(2):
        mod.report(*C, FAIL, 0.0)
    assert mod.hosts[C].state is HostState.OVERLOAD
    assert mod.uniform and mod.idle_total == 2
    got = [pick_key(mod) for _ in range(10)]
    # four idle answers, then one probe of the overloaded host, whatever its weight
    assert got == [A, B, A, B, C, A, B, A, B, C]


def test_weighted_hosts_all_overloaded_answer_overload_then_probe() -> None:
    mod = weighted({A: 5, B: 1}, probe_num=2, contin_err_limit=1)
    mod.report(*A, FAIL, 0.0)
    mod.report(*B, FAIL, 0.0)
    assert [mod.pick()[0] for _ in range(3)] == [OVERLOAD, OVERLOAD, SUCC]


def test_weights_travel_through_the_shard_and_only_non_default_ones_are_kept() -> None:
    shard = Shard(0, BalancerConfig(), ask=lambda m, c: None, max_modules=10)
    shard.get_host(0, 0, 0.0)
    shard.on_route(0, 0, [A, B], 0.1, {B: 7})
    mod = shard.modules[(0, 0)]
    assert mod.weights() == {B: 7} and mod.hosts[A].weight == 1
    view = module_view(shard, 0, 0, 1.0)
    assert view is not None and [(h.port, h.weight) for h in view.hosts] == [(80, 1), (80, 7)]
    assert shard_gauges(shard).hosts_weighted == 1  # lars_agent_hosts_weighted
    shard.on_route(0, 0, [A], 0.2, {B: 7})  # B gone: its weight no longer counts
    assert shard_gauges(shard).hosts_weighted == 0


def test_validate_weight_refuses_zero_and_points_to_drain() -> None:
    with pytest.raises(ValidationError, match="drain"):
        validate_weight(0)
    for bad in (-1, MAX_WEIGHT + 1, True, 2.0, "3"):
        with pytest.raises(ValidationError, match=f"1..{MAX_WEIGHT}"):
            validate_weight(bad)
    assert validate_weight(1) == 1 and validate_weight(MAX_WEIGHT) == MAX_WEIGHT


def test_a_received_weight_is_defaulted_and_capped_never_refused() -> None:
    assert wire_weight(0) == 1  # the field absent
    assert wire_weight(1) == 1 and wire_weight(250) == 250
    assert wire_weight(MAX_WEIGHT + 1) == MAX_WEIGHT and wire_weight(2**32 - 1) == MAX_WEIGHT
