"""The pending buffer: latest row per key wins, bounded, failed batches come back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.reporter.pending import PendingRows, Row, row_key


def row(modid: int, succ: int, *, ip: int = 1, caller: int = 9, ts: int = 100) -> Row:
    return (modid, 1, ip, 80, caller, succ, 0, ts, "0")


def test_newer_row_of_a_key_replaces_the_pending_one() -> None:
    p = PendingRows(10)
    assert p.add([row(1, 1), row(2, 1), row(1, 2), row(1, 3)]) == 0
    assert len(p) == 2
    assert p.coalesced == 2
    assert p.received == 4
    assert p.take(10) == [row(1, 3), row(2, 1)]
    assert len(p) == 0


def test_rows_differing_in_any_key_column_are_kept_apart() -> None:
    p = PendingRows(10)
    base = row(1, 1)
    variants = [base]
    for i in range(5):
        changed = list(base)
        changed[i] = 77
        variants.append(tuple(changed))  # type: ignore[arg-type]
    p.add(variants)
    assert len(p) == 6
    assert p.coalesced == 0


def test_take_returns_the_oldest_keys_first_up_to_the_limit() -> None:
    p = PendingRows(100)
    p.add([row(i, 0) for i in range(10)])
    assert [r[0] for r in p.take(3)] == [0, 1, 2]
    assert [r[0] for r in p.take(3)] == [3, 4, 5]
    assert [r[0] for r in p.take(100)] == [6, 7, 8, 9]
    assert p.take(5) == []


def test_past_max_keys_new_keys_overflow_but_known_keys_still_update() -> None:
    p = PendingRows(3)
    assert p.add([row(1, 0), row(2, 0), row(3, 0)]) == 0
    assert p.add([row(4, 0), row(5, 0), row(2, 7)]) == 2
    assert p.overflow == 2
    assert len(p) == 3
    batch = p.take(10)
    assert batch == [row(1, 0), row(2, 7), row(3, 0)]
    assert p.add([row(4, 0)]) == 1  # still held in flight
    p.done(len(batch))
    assert p.add([row(4, 0)]) == 0


def test_restored_batch_goes_first_and_loses_to_newer_rows() -> None:
    p = PendingRows(10)
    p.add([row(1, 1), row(2, 1), row(3, 1)])
    batch = p.take(2)
    p.add([row(2, 5), row(4, 1)])
    p.restore(batch)
    assert p.superseded == 1
    assert p.take(10) == [row(1, 1), row(3, 1), row(2, 5), row(4, 1)]


def test_rows_in_flight_count_against_the_bound_until_done_or_restored() -> None:
    p = PendingRows(4)
    p.add([row(1, 0), row(2, 0), row(3, 0)])
    batch = p.take(2)
    assert (len(p), p.inflight, p.held) == (1, 2, 3)
    assert p.add([row(4, 0), row(5, 0)]) == 1  # 4 rows held: the 5th key overflows
    assert p.add([row(1, 9)]) == 1  # a newer row of an in-flight key is a new row held
    p.restore(batch)
    assert (p.inflight, p.held) == (0, 4)
    batch = p.take(10)
    p.done(len(batch))
    assert (p.inflight, p.held) == (0, 0)


def test_stats_snapshot() -> None:
    p = PendingRows(2)
    p.add([row(1, 1), row(1, 2), row(2, 1), row(3, 1)])
    s = p.stats()
    assert (s.received, s.coalesced, s.overflow, s.superseded, s.pending) == (3, 1, 1, 0, 2)


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PendingRows(0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 7), st.integers(0, 1000)),
        st.tuples(st.just("write"), st.integers(1, 5), st.booleans()),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(ops=ops)
def test_the_table_ends_with_the_latest_value_of_every_key(
    ops: list[tuple[str, int, object]],
) -> None:
    """Model: a database that fails some writes; draining at the end must leave each
    key with the last value added for it, whatever failed in between."""
    p = PendingRows(100)
    table: dict[tuple[int | str, ...], Row] = {}
    latest: dict[tuple[int | str, ...], Row] = {}
    seq = 0
    for op in ops:
        if op[0] == "add":
            seq += 1
            r = row(op[1], seq)
            latest[row_key(r)] = r
            p.add([r])
        else:
            batch = p.take(op[1])
            if op[2]:
                table.update((row_key(r), r) for r in batch)
                p.done(len(batch))
            else:
                p.restore(batch)
        assert p.held <= 8
        assert p.inflight == 0
    for r in p.take(1000):
        table[row_key(r)] = r
    assert table == latest
