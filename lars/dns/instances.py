"""Self-registered instances, sans-I/O: what an agent's sync changes, what expires, and
what the route service serves (issue 20).

An agent sends its FULL set of registrations (InstanceSync, msgid 9) on every change and
as its lease renewal; `plan_sync` diffs it against the rows that agent owns in
RouteInstance. `expired` picks the rows whose agent renewed with no route service for a
lease. `served_rows` builds the rows the route table is made of: RouteData plus the
passing instances (RouteTable.from_rows then de-duplicates a host that is both, applies
drain and weight from RouteHostMeta, and the per-module host limit, to both alike).

Every check of a module failing at once. A failing instance leaves the table like a
drained host, but check failures alone never empty a module that callers still reach:
`endangered` names the failing hosts of each module that failing checks would leave with
no host at all; the store reads ServerCallStatus for them, and every such host with a
success reported (succ_cnt > 0) in the last EVIDENCE_WINDOW seconds by any caller stays
served (the checks say down, the callers say up: the callers win). A module none of whose
failing hosts shows a recent success is emptied: then nobody gets through either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from lars.dns.table import Host, Key
from lars.errors import ValidationError
from lars.protocol.checks import CHECK_TEXT_MAX, parse_check

__all__ = [
    "AGENT_MAX",
    "EVIDENCE_WINDOW",
    "GROUP",
    "HostKey",
    "Instance",
    "InstanceRow",
    "InstanceState",
    "Served",
    "SyncPlan",
    "endangered",
    "expired",
    "invalid_reason",
    "plan_sync",
    "served_rows",
]

EVIDENCE_WINDOW = 10  # seconds: a success reported this recently keeps a failing host
GROUP = 2 / 3  # of the lease: unseen this long, an instance expires with any that expires
AGENT_MAX = 64  # RouteInstance.agent (CHECK_TEXT_MAX: RouteInstance.check_kind)
_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1

HostKey = tuple[int, int, int, int]  # (modid, cmdid, unsigned ip, port)


@dataclass(frozen=True, slots=True)
class Instance:
    """One registration as an agent syncs it (ip unsigned, as the database stores it)."""

    modid: int
    cmdid: int
    ip: int
    port: int
    check: str = "tcp"
    passing: bool = True

    @property
    def key(self) -> HostKey:
        return (self.modid, self.cmdid, self.ip, self.port)


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One RouteInstance row."""

    id: int
    modid: int
    cmdid: int
    ip: int
    port: int
    agent: str
    check: str
    passing: bool
    registered_at: int  # unix seconds
    since: int  # unix seconds of the last state change
    last_seen: int  # unix seconds of the last lease renewal

    @property
    def key(self) -> HostKey:
        return (self.modid, self.cmdid, self.ip, self.port)


class InstanceState(Protocol):
    """What serving needs of an instance (an InstanceRow, or the load's lighter Served)."""

    @property
    def modid(self) -> int: ...
    @property
    def cmdid(self) -> int: ...
    @property
    def ip(self) -> int: ...
    @property
    def port(self) -> int: ...
    @property
    def passing(self) -> bool: ...
    @property
    def key(self) -> HostKey: ...


class Served(NamedTuple):
    """One RouteInstance row as the route table's load reads it: five columns only (a
    load of 10,000 instances reads no agent, check or time text)."""

    modid: int
    cmdid: int
    ip: int
    port: int
    passing: bool

    @property
    def key(self) -> HostKey:
        return (self.modid, self.cmdid, self.ip, self.port)


def invalid_reason(inst: Instance) -> str | None:
    """Why an instance cannot be stored or served (None: it can)."""
    if not (0 <= inst.modid <= _INT32_MAX and 0 <= inst.cmdid <= _INT32_MAX):
        return f"module {inst.modid}:{inst.cmdid} outside 0..{_INT32_MAX}"
    if not 0 <= inst.ip <= _UINT32_MAX:
        return f"address {inst.ip} is not an IPv4 address"
    if not 1 <= inst.port <= 65535:
        return f"port {inst.port} outside 1..65535"
    if len(inst.check) > CHECK_TEXT_MAX:
        return f"check longer than {CHECK_TEXT_MAX} characters"
    try:
        parse_check(inst.check)
    except ValidationError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What one agent's full set changes in its rows."""

    inserts: list[Instance]
    deletes: list[InstanceRow]  # deregistered: rows the set no longer has
    updates: list[tuple[InstanceRow, Instance]]  # check kind or state changed
    # rows whose only change is the state (passing <-> failing): flaps, not audited
    flaps: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserts or self.deletes or self.updates)


def plan_sync(stored: Iterable[InstanceRow], wanted: Iterable[Instance]) -> SyncPlan:
    """Diff an agent's rows against its full set. A host listed twice in the set counts
    once (the last entry wins); rows the set does not list are deregistered."""
    want: dict[HostKey, Instance] = {i.key: i for i in wanted}
    inserts: list[Instance] = []
    deletes: list[InstanceRow] = []
    updates: list[tuple[InstanceRow, Instance]] = []
    seen: set[HostKey] = set()
    flaps = 0
    for row in stored:
        inst = want.get(row.key)
        if inst is None or row.key in seen:  # a duplicate row cannot exist (unique key)
            deletes.append(row)
            continue
        seen.add(row.key)
        if inst.check != row.check or inst.passing != row.passing:
            updates.append((row, inst))
            if inst.check == row.check:
                flaps += 1
    inserts = [inst for key, inst in want.items() if key not in seen]
    return SyncPlan(inserts, deletes, updates, flaps)


def expired(
    rows: Iterable[InstanceRow],
    now: float,
    lease: float,
    *,
    alive: Collection[str] = (),
) -> list[InstanceRow]:
    """The rows to expire now. Nothing unless some row's agent has renewed with no route
    service for `lease` seconds; then that row and every row unseen for GROUP x lease
    (its agent missed two renewals: lease/3 apart): agents cut off together, as in a
    partition, expire in one step, which the guard judges as one mass removal instead
    of one renewal period at a time. Agents in `alive` (they just synced) never expire."""
    candidates = [r for r in rows if r.last_seen < now - GROUP * lease and r.agent not in alive]
    if any(r.last_seen < now - lease for r in candidates):
        return candidates
    return []


Meta = Iterable[tuple[int, int, int, int, int, bool]]  # RouteHostMeta rows (lars.routes)


def _drained(meta: Meta) -> set[HostKey]:
    return {(m, c, ip, p) for m, c, ip, p, _w, enabled in meta if not enabled}


def endangered(
    routes: Iterable[HostKey], instances: Iterable[InstanceState], meta: Meta = ()
) -> dict[Key, set[Host]]:
    """Per module whose served hosts would be none only because checks fail: its failing
    (not drained) hosts. Modules with an enabled static host or a passing instance, and
    modules whose every failing host is drained, are not endangered."""
    drained = _drained(meta)
    alive: set[Key] = {(m, c) for m, c, ip, p in routes if (m, c, ip, p) not in drained}
    failing: defaultdict[Key, set[Host]] = defaultdict(set)
    for row in instances:
        if row.key in drained:
            continue
        if row.passing:
            alive.add((row.modid, row.cmdid))
        else:
            failing[(row.modid, row.cmdid)].add((row.ip, row.port))
    return {key: hosts for key, hosts in failing.items() if key not in alive}


def served_rows(
    routes: Iterable[HostKey],
    instances: Iterable[InstanceState],
    evidence: Collection[HostKey] = (),
) -> list[HostKey]:
    """RouteData rows plus the passing instances, plus the failing instances that
    `evidence` keeps (hosts of endangered modules with recent successes). Duplicates are
    left to RouteTable.from_rows, which serves each host once."""
    rows = list(routes)
    rows.extend(r.key for r in instances if r.passing or r.key in evidence)
    return rows


def by_module(rows: Iterable[InstanceRow]) -> Mapping[Key, list[InstanceRow]]:
    """Instances grouped by module (for listings and metrics)."""
    grouped: defaultdict[Key, list[InstanceRow]] = defaultdict(list)
    for row in rows:
        grouped[(row.modid, row.cmdid)].append(row)
    return grouped
