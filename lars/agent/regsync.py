"""When the agent sends its InstanceSync (msgid 9), sans-I/O: plain values in, decisions out.

The rules (issue 20's wire contract):
- always the agent's FULL set, with a seq that grows per sync of this agent process;
- at once after any change the route service must learn (the Registry's `version`
  moved), and every lease/3 s as the lease renewal (the lease comes in each ack);
- an agent that never held a registration sends nothing at all (most agents of a fleet);
  one whose set became empty sends the empty set until a route service acknowledges
  THAT sync (an ack of an earlier, non-empty sync does not count);
- only on a capable connection: the caller asks `wanted()` and then sends only when its
  route-service connection advertised registrations (RouteClient.send_sync).
"""

from __future__ import annotations

__all__ = ["DEFAULT_LEASE", "MAX_LEASE", "SyncPlan"]

DEFAULT_LEASE = 10.0  # seconds, until a route service's ack says otherwise
MAX_LEASE = 3600.0
_SEQ_MASK = 0xFFFFFFFF


class SyncPlan:
    __slots__ = (
        "_empty_seq",
        "_empty_unacked",
        "_ever_held",
        "_renew_at",
        "_sent_at",
        "_synced_version",
        "acked",
        "last_ack",
        "lease",
        "sent",
        "seq",
    )

    def __init__(self) -> None:
        self.seq = 0
        self.lease = DEFAULT_LEASE
        self.sent = 0
        self.acked = 0
        self.last_ack = 0
        self._synced_version = -1
        self._sent_at = 0.0
        self._renew_at = 0.0
        self._ever_held = False
        self._empty_unacked = False
        self._empty_seq: int | None = None

    @property
    def busy(self) -> bool:
        """Something to keep sending: registrations held, or an empty set not yet acked."""
        return self._ever_held or self._empty_unacked

    def held(self, count: int) -> None:
        """The registry changed and now holds `count` registrations."""
        if count:
            self._ever_held = True
            self._empty_unacked = False
        elif self._ever_held:
            self._ever_held = False
            self._empty_unacked = True

    def due(self, version: int, now: float) -> bool:
        """A sync is due: the set changed since the last one sent, or the renewal time."""
        return version != self._synced_version or now >= self._renew_at

    def wanted(self, version: int) -> bool:
        """Whether there is anything to send at all; False also marks `version` as told
        (nothing held, nothing to retract)."""
        if self._ever_held or self._empty_unacked:
            return True
        self._synced_version = version
        return False

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & _SEQ_MASK
        return self.seq

    def sent_ok(self, version: int, count: int, now: float) -> None:
        """The sync of `seq` carrying `count` instances of `version` went out at `now`."""
        self.sent += 1
        self._empty_seq = None if count else self.seq
        self._synced_version = version
        self._sent_at = now
        self._renew_at = now + self.lease / 3

    def ack(self, seq: int, lease: int) -> None:
        """An InstanceSyncAck: the lease the route service grants, and for the empty set's
        own sync, that a route service knows the set is empty."""
        self.acked += 1
        self.last_ack = seq
        if lease > 0:
            self.lease = float(min(lease, MAX_LEASE))
            self._renew_at = min(self._renew_at, self._sent_at + self.lease / 3)
        if seq == self._empty_seq and self._empty_seq is not None:
            self._empty_unacked = False
            self._empty_seq = None
