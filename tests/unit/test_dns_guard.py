"""The push-empty guard's rule with plain tables, and its properties with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.dns.guard import GuardPolicy, check, removal
from lars.dns.table import Key, RouteTable
from lars.errors import ConfigError
from tests.unit.dns_fakes import rows

POLICY = GuardPolicy()


def table(spec: dict[Key, int], version: int = 1, base_ip: int = 1000) -> RouteTable:
    return RouteTable.from_rows(version, rows(spec, base_ip))


FLEET = {(m, 1): 4 for m in range(1, 11)}  # 10 modules x 4 hosts = 40 hosts


def test_an_emptied_table_is_held() -> None:
    verdict = check(table(FLEET), RouteTable.empty(2), POLICY)
    assert verdict.hold and verdict.reason == "empty"
    assert (verdict.modules_before, verdict.modules_after) == (10, 0)
    assert (verdict.hosts_before, verdict.hosts_after) == (40, 0)
    assert verdict.removed_hosts == 40 and verdict.modules_losing == 10
    assert verdict.describe(0.5) == "modules 10->0, hosts 40->0, max_drop_ratio 0.5"


def test_tiny_tables_emptied_are_held_when_more_than_one_module_loses() -> None:
    two = table({(1, 1): 1, (2, 1): 1})
    assert check(two, RouteTable.empty(), POLICY).hold


def test_removing_more_than_the_ratio_is_held() -> None:
    kept = {k: n for k, n in FLEET.items() if k[0] <= 4}  # 6 of 10 modules deleted: 60 %
    verdict = check(table(FLEET), table(kept), POLICY)
    assert verdict.hold and verdict.reason == "drop"
    assert verdict.removed_hosts == 24 and verdict.hosts_after == 16


def test_removing_exactly_the_ratio_is_applied() -> None:
    kept = {k: n for k, n in FLEET.items() if k[0] <= 5}  # 50 %: not more than 0.5
    assert not check(table(FLEET), table(kept), POLICY).hold


def test_half_the_hosts_of_every_module_at_once_is_a_mass_removal() -> None:
    halved = {k: 1 for k in FLEET}  # 30 of 40 hosts gone, all modules touched
    assert check(table(FLEET), table(halved), POLICY).hold


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (FLEET, {**FLEET, (3, 1): 3}),  # one host removed
        (FLEET, {k: n for k, n in FLEET.items() if k != (3, 1)}),  # one module deleted
        ({(1, 1): 1, (2, 1): 1}, {(1, 1): 1}),  # 2 modules of 1 host, one deleted: 50 %
        ({(1, 1): 1, (2, 1): 1, (3, 1): 1}, {(1, 1): 1}),  # 2 of 3 hosts: under min hosts
        ({(1, 1): 10}, {}),  # the only module emptied: one module's hosts
        ({(1, 1): 50, (2, 1): 1}, {(2, 1): 1}),  # one big module deleted (98 %)
        (FLEET, {**FLEET, (11, 1): 5}),  # additions
        (FLEET, FLEET),  # nothing
        ({}, {}),
        ({}, {(1, 1): 1}),
    ],
)
def test_normal_edits_are_applied(before: dict[Key, int], after: dict[Key, int]) -> None:
    assert not check(table(before), table(after), POLICY).hold


def test_a_replaced_host_counts_as_removed() -> None:
    old = table(FLEET)
    new = table(FLEET, base_ip=5000)  # every address changed: a botched mass UPDATE
    assert removal(old, new) == (40, 10)
    assert check(old, new, POLICY).hold


def test_ratio_one_turns_the_guard_off() -> None:
    off = GuardPolicy(max_drop_ratio=1.0)
    assert not off.enabled
    assert not check(table(FLEET), RouteTable.empty(), off).hold


def test_ratio_zero_holds_any_multi_module_removal_of_min_hosts() -> None:
    strict = GuardPolicy(max_drop_ratio=0.0, min_drop_hosts=3)
    after = {**FLEET, (1, 1): 2, (2, 1): 3}
    assert check(table(FLEET), table(after), strict).hold
    assert not check(table(FLEET), table({**FLEET, (1, 1): 3, (2, 1): 3}), strict).hold


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_bad_ratio_is_a_config_error(ratio: float) -> None:
    with pytest.raises(ConfigError, match="max_drop_ratio"):
        GuardPolicy(max_drop_ratio=ratio)
    with pytest.raises(ConfigError, match="min_drop_hosts"):
        GuardPolicy(min_drop_hosts=0)


specs = st.dictionaries(
    st.tuples(st.integers(1, 6), st.integers(1, 2)), st.integers(1, 6), max_size=12
)


@given(specs, st.tuples(st.integers(1, 6), st.integers(1, 2)), st.integers(0, 8))
def test_a_change_to_one_module_is_never_held(before: dict[Key, int], key: Key, hosts: int) -> None:
    after = dict(before)
    if hosts:
        after[key] = hosts
    else:
        after.pop(key, None)
    assert not check(table(before), table(after), POLICY).hold


@given(specs, specs)
def test_only_removals_can_hold_and_the_numbers_add_up(
    before: dict[Key, int], extra: dict[Key, int]
) -> None:
    grown = {k: max(n, extra.get(k, 0)) for k, n in before.items()} | {
        k: n for k, n in extra.items() if k not in before
    }
    old, new = table(before), table(grown)
    verdict = check(old, new, POLICY)
    assert not verdict.hold and verdict.removed_hosts == 0
    shrunk = check(new, old, POLICY)
    assert shrunk.hosts_before - shrunk.removed_hosts == shrunk.hosts_after
