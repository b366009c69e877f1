"""The route table: an immutable snapshot {(modid, cmdid): hosts} and its diff, sans-I/O.

The poller builds a new RouteTable to the side and swaps it in with one reference
assignment (the double buffer of the original), so worker threads read it without locks.
Hosts are (unsigned ip, port) pairs, sorted and de-duplicated so that equal tables compare
equal and a truncated reply is deterministic.

Frame limit (spec section 1): a GetRouteResponse body may not exceed MAX_BODY bytes. In
the worst case (addresses from 128.0.0.0 up are 10-byte varints on the wire) that is
MAX_HOSTS_PER_MODULE hosts. RouteAdmin refuses edits beyond it; a table a DBA filled past
it by hand is served truncated to the hosts that fit (the lowest addresses first), and
the module is listed in `truncated` so the service logs it loudly and counts it.

Rows that cannot travel on the wire at all (a DBA's typo: ids past int32, an address past
32 bits, a port outside 0..65535) are left out when the table is built and counted in
`invalid_rows`, so one bad row never breaks the replies and pushes of other modules.

RouteHostMeta (lars/routes/hostmeta.py) settles two more things when the table is built:
a drained host (enabled = false) is left out, exactly as if its row were gone (counted
in `drained`; for the push-empty guard a drain is a host removal), and a weight other
than 1 travels in HostInfo.weight. Weights live beside the host tuples (`weights`), so
the tuples stay (ip, port); two tables differing only in a weight are different tables,
and `changed_modules` names the module. A default-weight host is encoded without the
field: the bytes are the original's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from lars.protocol import lars_pb2, uint_to_wire
from lars.protocol.limits import MAX_HOSTS_PER_MODULE
from lars.protocol.weight import DEFAULT_WEIGHT, wire_weight
from lars.reactor.frame import MAX_BODY

__all__ = [
    "MAX_HOSTS_PER_MODULE",
    "Host",
    "Key",
    "RouteTable",
    "changed_modules",
    "encode_response",
]

Key = tuple[int, int]  # (modid, cmdid)
Host = tuple[int, int]  # (unsigned ip, port)

# The module every lars agent asks as its heartbeat probe (lars.agent.liveness
# HEARTBEAT_KEY; not imported: the route service does not depend on the agent). 10,000 idle
# agents ask it ~40,000 times a second; encoding its empty reply each time costs 1.45 us
# (0.12 us cached), ~6 % of a core at that rate and 11 % of a py-spy profile of a route
# service with 10,000 agents (benchmarks/RESULTS.md, "Proof at fleet size"), so its reply
# is cached like a real module's.
_PROBE_KEY: Key = (0, 0)
_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1
_PORT_MAX = 65535

# (A weight adds up to 3 bytes per host: a module near the limit whose hosts are all
# weighted and all past 128.0.0.0 is served truncated, like any reply past the frame.)

Weights = Mapping[Host, int]  # hosts whose weight is not DEFAULT_WEIGHT


def encode_response(
    modid: int,
    cmdid: int,
    hosts: Iterable[Host],
    weights: Weights | None = None,
    *,
    registrations: bool = False,
    version: int = 0,
) -> tuple[bytes, int]:
    """A GetRouteResponse body for the module and how many hosts it holds.

    Hosts past the frame limit are left out (the count tells the caller); the body
    always fits in one frame. HostInfo.weight is set only for `weights`' hosts,
    `registrations` (lars only: this route service accepts InstanceSync) only when
    true, and `version` (lars only, issue 22: the table's RouteVersion, which lars
    agents use never to go back to an older table) when not 0: without them, the bytes
    are the original's. Original agents skip the unknown fields.
    """
    msg = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid, version=version)
    if registrations:
        msg.registrations = True
    add = msg.host.add
    weights = weights or {}
    for host in hosts:
        weight = weights.get(host)
        if weight is None:
            add(ip=uint_to_wire(host[0]), port=host[1])
        else:
            add(ip=uint_to_wire(host[0]), port=host[1], weight=weight)
    if msg.ByteSize() > MAX_BODY:
        lo, hi = 0, len(msg.host)  # invariant: lo hosts fit, hi do not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            trial = lars_pb2.GetRouteResponse(
                modid=modid,
                cmdid=cmdid,
                host=msg.host[:mid],
                registrations=registrations,
                version=version,
            )
            if trial.ByteSize() <= MAX_BODY:
                lo = mid
            else:
                hi = mid
        del msg.host[lo:]
    return msg.SerializeToString(), len(msg.host)


class RouteTable:
    """One loaded version of the route table. Never mutated after construction.

    `response(key)` caches encoded bodies; the cache only ever gains identical values,
    so concurrent readers on several threads are safe under the GIL.
    """

    __slots__ = (
        "_bodies",
        "_routes",
        "_weights",
        "drained",
        "host_count",
        "instance_states",
        "invalid_rows",
        "registered",
        "registrations",
        "truncated",
        "version",
    )

    def __init__(
        self,
        version: int,
        routes: Mapping[Key, tuple[Host, ...]],
        *,
        invalid_rows: int = 0,
        weights: Mapping[Key, Weights] | None = None,
        drained: int = 0,
        registrations: bool = False,
        registered: frozenset[tuple[int, int, int, int]] = frozenset(),
        instance_states: tuple[int, int] = (0, 0),
    ) -> None:
        self.version = version
        self.instance_states = instance_states  # RouteInstance rows (passing, failing)
        self.registrations = registrations  # replies advertise: registrations accepted
        # (modid, cmdid, ip, port) served only because an agent registered them (not in
        # RouteData): the route service's audit of plain-SQL edits leaves them out
        self.registered = registered
        self.invalid_rows = invalid_rows  # RouteData rows left out: not encodable on the wire
        self.drained = drained  # hosts left out: drained (RouteHostMeta.enabled = false)
        self._routes: dict[Key, tuple[Host, ...]] = dict(routes)
        # per module, its hosts with a weight other than 1 (modules without any: absent)
        self._weights: dict[Key, dict[Host, int]] = {
            key: {h: w for h, w in ws.items() if w != DEFAULT_WEIGHT}
            for key, ws in (weights or {}).items()
            if key in self._routes and any(w != DEFAULT_WEIGHT for w in ws.values())
        }
        self._bodies: dict[Key, bytes] = {}
        self.host_count = sum(len(h) for h in self._routes.values())
        # module -> (hosts in the table, hosts served), for modules past the frame limit
        self.truncated: dict[Key, tuple[int, int]] = {}
        for key, hosts in self._routes.items():
            if len(hosts) > MAX_HOSTS_PER_MODULE:
                body, kept = encode_response(
                    key[0],
                    key[1],
                    hosts,
                    self._weights.get(key),
                    registrations=registrations,
                    version=version & _UINT32_MAX,
                )
                self._bodies[key] = body
                if kept < len(hosts):
                    self.truncated[key] = (len(hosts), kept)

    @classmethod
    def from_rows(
        cls,
        version: int,
        rows: Iterable[tuple[int, int, int, int]],
        meta: Iterable[tuple[int, int, int, int, int, bool]] = (),
        *,
        registrations: bool = False,
        registered: frozenset[tuple[int, int, int, int]] = frozenset(),
        instance_states: tuple[int, int] = (0, 0),
    ) -> RouteTable:
        """Build from RouteData rows (modid, cmdid, serverip, serverport); rows the wire
        cannot carry are left out and counted in `invalid_rows`. `meta` are RouteHostMeta
        rows (modid, cmdid, serverip, serverport, weight, enabled): disabled hosts are left
        out (their rows counted in `drained`); a weight is taken as the agent would read it (0 is 1,
        past MAX_WEIGHT capped: a DBA's typo never stops a host)."""
        settings = {(m, c, ip, p): (w, e) for m, c, ip, p, w, e in meta}
        grouped: defaultdict[Key, set[Host]] = defaultdict(set)
        weights: defaultdict[Key, dict[Host, int]] = defaultdict(dict)
        invalid = drained = 0
        for row in rows:
            modid, cmdid, ip, port = (int(v) for v in row)
            if (
                0 <= modid <= _INT32_MAX
                and 0 <= cmdid <= _INT32_MAX
                and 0 <= ip <= _UINT32_MAX
                and 0 <= port <= _PORT_MAX
            ):
                setting = settings.get((modid, cmdid, ip, port))
                if setting is not None:
                    weight, enabled = setting
                    if not enabled:
                        drained += 1
                        continue
                    weight = wire_weight(weight)
                    if weight != DEFAULT_WEIGHT:
                        weights[(modid, cmdid)][(ip, port)] = weight
                grouped[(modid, cmdid)].add((ip, port))
            else:
                invalid += 1
        routes = {key: tuple(sorted(hosts)) for key, hosts in grouped.items()}
        return cls(
            version,
            routes,
            invalid_rows=invalid,
            weights=weights,
            drained=drained,
            registrations=registrations,
            registered=registered,
            instance_states=instance_states,
        )

    @classmethod
    def empty(cls, version: int = 0) -> RouteTable:
        return cls(version, {})

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._routes)

    def __contains__(self, key: object) -> bool:
        return key in self._routes

    def __repr__(self) -> str:
        return f"<RouteTable v{self.version} {len(self)} modules {self.host_count} hosts>"

    def hosts(self, key: Key) -> tuple[Host, ...]:
        return self._routes.get(key, ())

    def weights(self, key: Key) -> dict[Host, int]:
        """The module's hosts whose weight is not the default (a copy)."""
        return dict(self._weights.get(key, {}))

    def same_routes(self, other: RouteTable) -> bool:
        return self._routes == other._routes and self._weights == other._weights

    def response(self, modid: int, cmdid: int) -> bytes:
        """The encoded GetRouteResponse body for a module (empty host list if unknown)."""
        key = (modid, cmdid)
        body = self._bodies.get(key)
        if body is not None:
            return body
        hosts = self._routes.get(key)
        flag, version = self.registrations, self.version & _UINT32_MAX
        if hosts is None:  # not cached: unknown keys from peers must not grow memory
            body = encode_response(modid, cmdid, (), registrations=flag, version=version)[0]
            if key == _PROBE_KEY:  # one key: the cache stays bounded
                self._bodies[key] = body
            return body
        body = encode_response(
            modid, cmdid, hosts, self._weights.get(key), registrations=flag, version=version
        )[0]
        self._bodies[key] = body
        return body


def changed_modules(old: RouteTable, new: RouteTable) -> set[Key]:
    """Modules whose host list or host weights differ between two tables (added and
    removed modules included)."""
    old_routes, new_routes = old._routes, new._routes
    changed = {key for key, hosts in new_routes.items() if old_routes.get(key) != hosts}
    changed.update(key for key in old_routes if key not in new_routes)
    old_w, new_w = old._weights, new._weights
    changed.update(key for key in old_w.keys() | new_w.keys() if old_w.get(key) != new_w.get(key))
    return changed
