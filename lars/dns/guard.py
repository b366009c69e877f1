"""The push-empty guard: may a newly loaded route table replace the one being served?

Sans-I/O: `check(current, new, policy)` compares two RouteTables and says whether the new
one is applied or HELD; `judge(...)` adds the window check over time (lars.dns.baseline).
A held table is neither served nor pushed; the route service keeps the last good table
until the table changes again into one that passes, an operator releases it (`lars
route release`, a 'release' row in RouteAudit) or restores the served table (`lars route
restore`).

The identity check (`check`). Let *removed* be the hosts of the current table that the
new one no longer has (per module, set difference; a host replaced by another counts as
removed, which catches `UPDATE RouteData SET serverport=...` on many rows), and *modules
losing* the modules that lose at least one host. The new table is held when the guard is
on (`max_drop_ratio` < 1.0), hosts are lost in MORE THAN ONE module, and either
- the new table is empty (while the current one is not), or
- removed > max_drop_ratio x the current hosts AND removed >= min_drop_hosts (3).

The window check (`judge`, when `window` > 0). Each module's baseline is its highest
host count served within the last `window` seconds (600 by default); loss = sum over
modules of max(0, baseline - hosts in the new table). The new table is held when
loss > max_drop_ratio x sum of baselines AND loss >= min_drop_hosts, whether the hosts
go in one statement or over many polls, and in one module or many. Additions are never
held (a table that removes no served host passes), a rolling replacement keeps the
counts, and a small edit stays under the ratio. Example: 10 modules of 3 hosts, the
defaults (0.5, 3, 600 s): deleting module after module, the sixth delete would lose 18
> 15 of the 30 hosts of the baseline and is held: at least 15 of 30 hosts stay served.
A scale-down of more than max_drop_ratio of all hosts within the window is held too, on
purpose: an operator releases it. While a table is held the baseline does not age
(the caller passes the hold's start as the time), and a release resets it to the
released table. A module whose own hosts all disappear and that passes is allowed:
agents keep it as known-empty (NOEXIST, still subscribed, so re-added hosts are pushed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lars.dns.baseline import Baseline
from lars.dns.table import Key, RouteTable
from lars.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_DROP_RATIO",
    "DEFAULT_MIN_DROP_HOSTS",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "GuardPolicy",
    "Hold",
    "Verdict",
    "check",
    "counts",
    "judge",
]

DEFAULT_MAX_DROP_RATIO = 0.5
DEFAULT_MIN_DROP_HOSTS = 3
DEFAULT_WINDOW = 600.0  # seconds; 0 = the identity check only
MAX_WINDOW = 7 * 86400.0

_DETAIL = re.compile(r"modules (\d+)->(\d+), hosts (\d+)->(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    """`max_drop_ratio` 1.0 turns the guard off; `window` 0 turns the window check off."""

    max_drop_ratio: float = DEFAULT_MAX_DROP_RATIO
    min_drop_hosts: int = DEFAULT_MIN_DROP_HOSTS
    window: float = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_drop_ratio <= 1.0:
            raise ConfigError(f"max_drop_ratio must be in 0..1, got {self.max_drop_ratio}")
        if self.min_drop_hosts < 1:
            raise ConfigError(f"min_drop_hosts must be >= 1, got {self.min_drop_hosts}")
        if not 0.0 <= self.window <= MAX_WINDOW:  # also refuses NaN
            raise ConfigError(
                f"[dns] guard_window = {self.window:g}: out of range, expected 0..{MAX_WINDOW:g} s"
            )

    @property
    def enabled(self) -> bool:
        return self.max_drop_ratio < 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's answer with the numbers the log line and the hold record show."""

    hold: bool
    reason: str  # "empty", "drop", "window", or "" when applied
    modules_before: int
    modules_after: int
    hosts_before: int
    hosts_after: int
    removed_hosts: int
    modules_losing: int
    baseline_hosts: int = 0  # the window's baseline (0: no window check made)
    window_loss: int = 0  # hosts below the baseline in the new table

    def describe(self, max_drop_ratio: float) -> str:
        """The detail of a 'hold' audit row (the COMMON contract's wording)."""
        text = (
            f"modules {self.modules_before}->{self.modules_after}, "
            f"hosts {self.hosts_before}->{self.hosts_after}, max_drop_ratio {max_drop_ratio:g}"
        )
        if self.reason == "window":
            text += f", {self.window_loss} of {self.baseline_hosts} hosts of the window lost"
        return text


@dataclass(frozen=True, slots=True)
class Hold:
    """A held table as `DnsService.stats().held` shows it (None when nothing is held)."""

    version: int  # RouteVersion of the held table
    served_version: int  # the last good table, still served
    reason: str  # "empty", "drop", "window" (or "held before start")
    modules_before: int
    modules_after: int
    hosts_before: int
    hosts_after: int
    removed_hosts: int
    since: float  # unix time the hold began
    audit_id: int | None  # id of its 'hold' row in RouteAudit (None: no RouteAudit table)
    baseline_hosts: int = 0  # the window's baseline when held (0: identity check)
    window_loss: int = 0
    detail: str = ""  # as in the hold row

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        version: int,
        served_version: int,
        *,
        since: float,
        audit_id: int | None,
        detail: str = "",
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
            baseline_hosts=verdict.baseline_hosts,
            window_loss=verdict.window_loss,
            detail=detail,
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
            detail=detail,
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


def counts(table: RouteTable) -> dict[Key, int]:
    """Host count per module (modules with hosts)."""
    return {key: len(table.hosts(key)) for key in table}


def judge(
    current: RouteTable,
    new: RouteTable,
    policy: GuardPolicy,
    baseline: Baseline,
    at: float,
) -> Verdict:
    """The identity check, then (with `policy.window` > 0) the window check against
    `baseline` at time `at` (the hold's start while a table is held: no ageing)."""
    verdict = check(current, new, policy)
    if verdict.hold or not policy.enabled or policy.window <= 0 or verdict.removed_hosts == 0:
        return verdict
    found = baseline.judge(
        counts(new), at, policy.window, policy.max_drop_ratio, policy.min_drop_hosts
    )
    return replace(
        verdict,
        hold=found.hold,
        reason="window" if found.hold else "",
        baseline_hosts=found.baseline,
        window_loss=found.loss,
    )
