"""A writer's pending rows: one per key, latest wins, bounded; sans-I/O.

Rows wait here between the reactor and the database. A newer row for a key that is
already pending replaces it (coalescing), so while the database is slow or down memory
holds at most one row per key. Rows taken for a write stay counted ("in flight") until
the write is `done` or the batch is `restore`d: a failed batch goes back in unless a
newer row for its key arrived meanwhile. Rows held (pending + in flight) never exceed
`max_keys`; a row for a key not yet pending that would pass it is refused and counted
as overflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

__all__ = ["KEY_WIDTH", "PendingRows", "PendingStats", "Row", "row_key"]

# (modid, cmdid, ip, port, caller, succ_cnt, err_cnt, ts, overload)
Row = tuple[int, int, int, int, int, int, int, int, str]
Key = tuple[int | str, ...]

KEY_WIDTH = 5  # (modid, cmdid, ip, port, caller): the ServerCallStatus primary key


def row_key(row: Row) -> Key:
    return row[:KEY_WIDTH]


@dataclass(frozen=True, slots=True)
class PendingStats:
    received: int
    coalesced: int
    overflow: int
    superseded: int
    pending: int  # waiting + in flight


class PendingRows:
    """Insertion-ordered rows by key; the oldest keys are taken first."""

    __slots__ = (
        "_rows",
        "coalesced",
        "inflight",
        "max_keys",
        "overflow",
        "received",
        "superseded",
    )

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, not {max_keys}")
        self.max_keys = max_keys
        self._rows: dict[Key, Row] = {}
        self.received = 0  # rows accepted (including those that replaced a pending row)
        self.coalesced = 0  # pending rows replaced by a newer one before being written
        self.overflow = 0  # rows refused because max_keys distinct keys were pending
        self.superseded = 0  # rows of a failed batch dropped because a newer row waits
        self.inflight = 0  # rows taken and not yet done or restored

    def __len__(self) -> int:
        """Rows waiting to be taken (in-flight rows not included)."""
        return len(self._rows)

    @property
    def held(self) -> int:
        """Rows in memory: waiting plus in flight; never above max_keys."""
        return len(self._rows) + self.inflight

    def add(self, rows: Iterable[Row]) -> int:
        """Accept rows in arrival order; return how many were refused as overflow."""
        pending = self._rows
        refused = 0
        for row in rows:
            key = row[:KEY_WIDTH]
            if key in pending:
                self.coalesced += 1
            elif len(pending) + self.inflight >= self.max_keys:
                refused += 1
                continue
            pending[key] = row
            self.received += 1
        self.overflow += refused
        return refused

    def take(self, limit: int) -> list[Row]:
        """Remove and return up to `limit` rows, oldest keys first; they are in flight
        until `done(len(batch))` or `restore(batch)`."""
        pending = self._rows
        if len(pending) <= limit:
            batch = list(pending.values())
            pending.clear()
        else:
            batch = [pending.pop(key) for key in list(islice(pending, limit))]
        self.inflight += len(batch)
        return batch

    def done(self, count: int) -> None:
        """`count` in-flight rows were written (or given up): they no longer count."""
        self.inflight -= count

    def restore(self, batch: Iterable[Row]) -> None:
        """Put back a batch whose write failed; newer pending rows win over it.

        The rows were counted in flight, so putting them back never passes max_keys.
        """
        pending = self._rows
        restored: dict[Key, Row] = {}
        for row in batch:
            self.inflight -= 1
            key = row[:KEY_WIDTH]
            if key in pending:
                self.superseded += 1
            else:
                restored[key] = row
        if restored:  # they are the oldest rows: they go out first again
            restored.update(pending)
            self._rows = restored

    def stats(self) -> PendingStats:
        return PendingStats(
            received=self.received,
            coalesced=self.coalesced,
            overflow=self.overflow,
            superseded=self.superseded,
            pending=self.held,
        )
