"""A writer's pending rows: one per key, latest wins, bounded; sans-I/O.

Rows wait here between the reactor and the database. A newer row for a key that is
already pending replaces it (coalescing), so while the database is slow or down memory
holds at most one row per key. Past `max_keys` distinct keys, rows for further keys are
refused and counted as overflow; rows of a batch that failed to write go back in
unless a newer row for their key arrived meanwhile.
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
    pending: int


class PendingRows:
    """Insertion-ordered rows by key; the oldest keys are taken first."""

    __slots__ = ("_rows", "coalesced", "max_keys", "overflow", "received", "superseded")

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, not {max_keys}")
        self.max_keys = max_keys
        self._rows: dict[Key, Row] = {}
        self.received = 0  # rows accepted (including those that replaced a pending row)
        self.coalesced = 0  # pending rows replaced by a newer one before being written
        self.overflow = 0  # rows refused because max_keys distinct keys were pending
        self.superseded = 0  # rows of a failed batch dropped because a newer row waits

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: Iterable[Row]) -> int:
        """Accept rows in arrival order; return how many were refused as overflow."""
        pending = self._rows
        refused = 0
        for row in rows:
            key = row[:KEY_WIDTH]
            if key in pending:
                self.coalesced += 1
            elif len(pending) >= self.max_keys:
                refused += 1
                continue
            pending[key] = row
            self.received += 1
        self.overflow += refused
        return refused

    def take(self, limit: int) -> list[Row]:
        """Remove and return up to `limit` rows, oldest keys first."""
        pending = self._rows
        if len(pending) <= limit:
            batch = list(pending.values())
            pending.clear()
            return batch
        return [pending.pop(key) for key in list(islice(pending, limit))]

    def restore(self, batch: Iterable[Row]) -> None:
        """Put back a batch whose write failed; newer pending rows win over it.

        Restored rows may exceed max_keys by at most one batch: they were already
        accepted, and dropping them would lose the latest value of their key.
        """
        pending = self._rows
        restored: dict[Key, Row] = {}
        for row in batch:
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
            pending=len(self._rows),
        )
