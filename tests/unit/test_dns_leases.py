"""LeaseBook with a fake clock: changes are due at once, renewals at most once a second,
expiry once a second; failed writes come back; the agent cap refuses."""

from __future__ import annotations

from lars.dns.instances import Instance
from lars.dns.leases import LeaseBook

A = [Instance(1, 1, 10, 80)]
B = [Instance(1, 1, 10, 80), Instance(1, 1, 11, 80)]


def test_a_new_agent_is_a_change_due_now() -> None:
    book = LeaseBook()
    book.offer("a", A)
    assert book.next_due(0.0) == 0.0
    batch = book.take(0.0)
    assert batch.changes == {"a": frozenset(A)} and batch.expire
    book.done(batch)
    assert not book.has_changes()


def test_the_same_set_again_is_a_renewal_batched_once_per_second() -> None:
    book = LeaseBook(renew_interval=1.0)
    book.offer("a", A)
    book.offer("b", B)
    first = book.take(0.0)  # the change, and the first tick (expiry)
    assert first.changes and first.expire
    book.done(first)
    book.offer("a", A)
    book.offer("b", B)
    assert not book.has_changes()
    assert not book.take(0.5)  # within the second: nothing written
    assert abs(book.next_due(0.5) - 0.5) < 1e-9
    batch = book.take(1.0)
    assert batch.renewals == {"a", "b"} and not batch.changes and batch.expire  # one write
    book.done(batch)
    book.offer("a", A)
    assert not book.take(1.5)  # one tick per second for every agent
    assert book.take(2.0).renewals == {"a"}


def test_a_changed_set_supersedes_a_pending_renewal() -> None:
    book = LeaseBook()
    book.offer("a", A)
    book.done(book.take(0.0))
    book.offer("a", A)
    book.offer("a", B)
    batch = book.take(0.1)
    assert batch.changes == {"a": frozenset(B)} and batch.renewals == set()


def test_a_storm_of_syncs_coalesces_into_one_batch() -> None:
    book = LeaseBook()
    for n in range(1000):
        book.offer(f"agent{n}", [Instance(1, 1, n + 1, 80)])
    batch = book.take(0.0)
    assert len(batch.changes) == 1000 and book.pending == 0


def test_a_failed_write_comes_back_unless_newer_arrived() -> None:
    book = LeaseBook()
    book.offer("a", A)
    book.offer("b", A)
    batch = book.take(0.0)
    book.offer("b", B)  # newer, while the write was in flight
    book.failed(batch)
    again = book.take(0.1)
    assert again.changes == {"a": frozenset(A), "b": frozenset(B)} and again.expire


def test_a_short_renewal_forgets_what_was_written() -> None:
    book = LeaseBook()
    book.offer("a", B)
    book.done(book.take(0.0))
    assert book.expected_rows(["a"]) == 2
    book.offer("a", B)
    batch = book.take(1.0)
    assert batch.renewals == {"a"}
    book.done(batch, renewed_all=False)  # another route service expired them
    assert book.has_changes()  # diffed in full again at once: the rows come back
    assert book.take(1.1).changes == {"a": frozenset(B)}


def test_expired_agents_are_diffed_in_full_next_time() -> None:
    book = LeaseBook()
    book.offer("a", A)
    book.done(book.take(0.0))
    book.forget(["a"])
    book.offer("a", A)
    assert book.has_changes()


def test_the_agent_cap_refuses_new_changes_not_renewals() -> None:
    book = LeaseBook(max_agents=2)
    assert book.offer("a", A) and book.offer("b", A)
    assert not book.offer("c", A) and book.refused == 1
    assert book.offer("a", B)  # an agent already pending may replace its set
