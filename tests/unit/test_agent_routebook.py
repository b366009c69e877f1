"""RouteBook: the cache keeps each module's last non-empty hosts (plain values)."""

from __future__ import annotations

from lars.agent.routebook import CachedRoute, RouteBook
from lars.agent.shard import shard_of

A, B = (10, 80), (11, 81)
# (0, 3) and (1, 2) are shard 0's, (1, 0) shard 1's
KEEP = 100.0


def book() -> RouteBook:
    return RouteBook(shard_of, keep=KEEP)


def hosts(b: RouteBook) -> dict[tuple[int, int], list[tuple[int, int]]]:
    return {k: e.hosts for k, e in b.entries.items()}


def test_current_hosts_are_recorded_with_their_time() -> None:
    b = book()
    b.update(0, [(0, 3, [A]), (1, 2, [])], 5.0)
    assert b.entries[(0, 3)] == CachedRoute(0, 3, [A], 5.0)
    assert b.entries[(1, 2)] == CachedRoute(1, 2, [], 5.0)  # known-empty, never had hosts


def test_an_empty_answer_never_overwrites_good_hosts() -> None:
    """Measured defect: after DELETE FROM RouteData each agent rewrote its cache file with
    empty host lists. Now the last good hosts stay, marked with when they went empty."""
    b = book()
    b.update(0, [(0, 3, [A, B]), (1, 2, [B])], 5.0)
    b.update(0, [(0, 3, []), (1, 2, [])], 6.0)
    assert hosts(b) == {(0, 3): [A, B], (1, 2): [B]}
    assert b.entries[(0, 3)].empty_since == 6.0 and b.entries[(0, 3)].kept
    b.update(0, [(0, 3, []), (1, 2, [])], 7.0)  # still empty: the first time stays
    assert b.entries[(0, 3)].empty_since == 6.0


def test_hosts_again_make_the_entry_current() -> None:
    b = book()
    b.update(0, [(0, 3, [A])], 5.0)
    b.update(0, [(0, 3, [])], 6.0)
    b.update(0, [(0, 3, [B])], 7.0)
    assert b.entries[(0, 3)] == CachedRoute(0, 3, [B], 7.0)


def test_a_module_the_shard_forgot_keeps_its_hosts_but_known_empty_ones_go() -> None:
    b = book()
    b.update(0, [(0, 3, [A]), (1, 2, [])], 5.0)
    b.update(1, [(1, 0, [B])], 5.0)
    b.update(0, [], 8.0)  # shard 0 forgot both (known-empty modules expire)
    assert hosts(b) == {(0, 3): [A], (1, 0): [B]}  # shard 1's untouched
    assert b.entries[(0, 3)].empty_since == 8.0


def test_a_deliberately_deleted_module_leaves_after_keep() -> None:
    b = book()
    b.update(0, [(0, 3, [A]), (1, 2, [B])], 0.0)
    b.update(0, [(0, 3, []), (1, 2, [B])], 10.0)
    assert b.expire(10.0 + KEEP - 1) == 0
    assert b.expire(10.0 + KEEP) == 1
    assert hosts(b) == {(1, 2): [B]}  # current entries never expire


def test_seed_drops_expired_entries_and_marks_the_rest_stale() -> None:
    b = book()
    kept = b.seed(
        [
            CachedRoute(0, 3, [A], 1.0, empty_since=2.0),
            CachedRoute(1, 2, [B], None, empty_since=None),  # an older file's entry
            CachedRoute(1, 0, [A], 1.0, empty_since=500.0),
        ],
        now=2.0 + KEEP,
    )
    assert [e.key for e in kept] == [(1, 2), (1, 0)]
    assert b.stale == {(1, 2), (1, 0)}


def test_stale_entries_are_not_refreshed_by_snapshots_until_answered() -> None:
    """After a restart the shards serve the file's hosts; a snapshot of those (another
    module changed) must not make a kept entry current again."""
    b = book()
    b.seed([CachedRoute(0, 3, [A], 1.0, empty_since=2.0), CachedRoute(1, 2, [B], 1.0)], 3.0)
    b.update(0, [(0, 3, [A]), (1, 2, [B])], 4.0)
    assert b.entries[(0, 3)] == CachedRoute(0, 3, [A], 1.0, empty_since=2.0)
    assert b.entries[(1, 2)] == CachedRoute(1, 2, [B], 1.0)
    b.answered(1, 2)
    b.update(0, [(0, 3, [A]), (1, 2, [B])], 5.0)
    assert b.entries[(1, 2)] == CachedRoute(1, 2, [B], 5.0)
    assert b.entries[(0, 3)].kept
    b.answered(0, 3)
    b.update(0, [(0, 3, []), (1, 2, [B])], 6.0)
    assert b.entries[(0, 3)] == CachedRoute(0, 3, [A], 1.0, empty_since=2.0)  # still kept


def test_weights_are_kept_with_their_hosts_and_through_an_empty_answer() -> None:
    b = RouteBook(shard_of)
    b.update(0, [(0, 3, [A, B])], 5.0, {(0, 3): {B: 4}})
    assert b.entries[(0, 3)].weights == {B: 4}
    b.update(0, [(0, 3, [])], 6.0)  # emptied: the last good hosts keep their weights
    assert b.entries[(0, 3)].weights == {B: 4} and b.entries[(0, 3)].kept
    b.update(0, [(0, 3, [A])], 7.0)  # new hosts without weights
    assert b.entries[(0, 3)].weights == {}
