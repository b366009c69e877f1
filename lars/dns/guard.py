"""The push-empty guard: may a newly loaded route table replace the one being served?

Sans-I/O: `check(current, new, policy)` compares two RouteTables and says whether the new
one is applied or HELD. A held table is neither served nor pushed; the route service keeps
the last good table until the table changes again into one that passes, or until an
operator releases it (`lars route release`, a 'release' row in RouteAudit).

The rule. Let *removed* be the hosts of the current table that the new one no longer has
(per module, set difference; a host replaced by another counts as removed), and *modules
losing* the modules that lose at least one host. The new table is held when the guard is
on (`max_drop_ratio` < 1.0), hosts are lost in MORE THAN ONE module, and either
- the new table is empty (while the current one is not), or
- removed > max_drop_ratio x the current hosts AND removed >= min_drop_hosts (3).
So a normal edit is never held: any change to one module (even deleting its last host, or
a whole module on a two-module table), or removing fewer than `min_drop_hosts` hosts in
all. A mass delete (`DELETE FROM RouteData`, a WHERE clause that matched too much) is.
A module whose own hosts all disappear is allowed, as before: agents keep it as
known-empty (NOEXIST, still subscribed, so re-added hosts are pushed at once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lars.dns.table import RouteTable
from lars.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_DROP_RATIO",
    "DEFAULT_MIN_DROP_HOSTS",
    "GuardPolicy",
    "Hold",
    "Verdict",
    "check",
]

DEFAULT_MAX_DROP_RATIO = 0.5
DEFAULT_MIN_DROP_HOSTS = 3

_DETAIL = re.compile(r"modules (\d+)->(\d+), hosts (\d+)->(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    """`max_drop_ratio` 1.0 turns the guard off."""

    max_drop_ratio: float = DEFAULT_MAX_DROP_RATIO
    min_drop_hosts: int = DEFAULT_MIN_DROP_HOSTS

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_drop_ratio <= 1.0:
            raise ConfigError(f"max_drop_ratio must be in 0..1, got {self.max_drop_ratio}")
        if self.min_drop_hosts < 1:
            raise ConfigError(f"min_drop_hosts must be >= 1, got {self.min_drop_hosts}")

    @property
    def enabled(self) -> bool:
        return self.max_drop_ratio < 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's answer with the numbers the log line and the hold record show."""

    hold: bool
    reason: str  # "empty", "drop", or "" when applied
    modules_before: int
    modules_after: int
    hosts_before: int
    hosts_after: int
    removed_hosts: int
    modules_losing: int

    def describe(self, max_drop_ratio: float) -> str:
        """The detail of a 'hold' audit row (the COMMON contract's wording)."""
        return (
            f"modules {self.modules_before}->{self.modules_after}, "
            f"hosts {self.hosts_before}->{self.hosts_after}, max_drop_ratio {max_drop_ratio:g}"
        )


@dataclass(frozen=True, slots=True)
class Hold:
    """A held table as `DnsService.stats().held` shows it (None when nothing is held)."""

    version: int  # RouteVersion of the held table
    served_version: int  # the last good table, still served
    reason: str  # "empty" or "drop"
    modules_before: int
    modules_after: int
    hosts_before: int
    hosts_after: int
    removed_hosts: int
    since: float  # unix time the hold began
    audit_id: int | None  # id of its 'hold' row in RouteAudit (None: no RouteAudit table)

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        version: int,
        served_version: int,
        *,
        since: float,
        audit_id: int | None,
    ) -> Hold:
        return cls(
            version=version,
            served_version=served_version,
            reason=verdict.reason,
            modules_before=verdict.modules_before,
            modules_after=verdict.modules_after,
            hosts_before=verdict.hosts_before,
            hosts_after=verdict.hosts_after,
            removed_hosts=verdict.removed_hosts,
            since=since,
            audit_id=audit_id,
        )

    @classmethod
    def from_row(cls, held: RouteTable, audit_id: int, detail: str, *, since: float) -> Hold:
        """A hold found in RouteAudit at start (served_version 0: nothing served yet); the
        numbers before come from the row's detail ('modules A->B, hosts X->Y, ...')."""
        found = _DETAIL.search(detail)
        m_before, h_before = (int(found[1]), int(found[3])) if found else (0, 0)
        return cls(
            version=held.version,
            served_version=0,
            reason="held before start",
            modules_before=m_before,
            modules_after=len(held),
            hosts_before=h_before,
            hosts_after=held.host_count,
            removed_hosts=max(0, h_before - held.host_count),
            since=since,
            audit_id=audit_id,
        )


def removal(current: RouteTable, new: RouteTable) -> tuple[int, int]:
    """(hosts of `current` missing from `new`, modules losing at least one host)."""
    removed = losing = 0
    for key in current:
        old_hosts = current.hosts(key)
        new_hosts = new.hosts(key)
        if new_hosts == old_hosts:
            continue
        if not new_hosts:
            lost = len(old_hosts)
        else:
            kept = set(new_hosts)
            lost = sum(1 for h in old_hosts if h not in kept)
        if lost:
            removed += lost
            losing += 1
    return removed, losing


def check(current: RouteTable, new: RouteTable, policy: GuardPolicy) -> Verdict:
    """Whether `new` may replace `current` (see the module docstring for the rule)."""
    removed, losing = removal(current, new)
    before, after = current.host_count, new.host_count
    reason = ""
    if policy.enabled and before > 0 and losing > 1:
        if after == 0:
            reason = "empty"
        elif removed > policy.max_drop_ratio * before and removed >= policy.min_drop_hosts:
            reason = "drop"
    return Verdict(
        hold=bool(reason),
        reason=reason,
        modules_before=len(current),
        modules_after=len(new),
        hosts_before=before,
        hosts_after=after,
        removed_hosts=removed,
        modules_losing=losing,
    )
