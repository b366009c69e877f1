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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from lars.protocol import lars_pb2, uint_to_wire
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

_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1
_PORT_MAX = 65535

# modid and cmdid: 6 bytes each at most; one host: 1 tag + 1 length + 11 ip + 4 port.
_WORST_HEADER = 12
_WORST_HOST = 17
MAX_HOSTS_PER_MODULE = (MAX_BODY - _WORST_HEADER) // _WORST_HOST  # 3853


def encode_response(modid: int, cmdid: int, hosts: Iterable[Host]) -> tuple[bytes, int]:
    """A GetRouteResponse body for the module and how many hosts it holds.

    Hosts past the frame limit are left out (the count tells the caller); the body
    always fits in one frame.
    """
    msg = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid)
    add = msg.host.add
    for ip, port in hosts:
        add(ip=uint_to_wire(ip), port=port)
    if msg.ByteSize() > MAX_BODY:
        lo, hi = 0, len(msg.host)  # invariant: lo hosts fit, hi do not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            trial = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid, host=msg.host[:mid])
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

    __slots__ = ("_bodies", "_routes", "host_count", "invalid_rows", "truncated", "version")

    def __init__(
        self, version: int, routes: Mapping[Key, tuple[Host, ...]], *, invalid_rows: int = 0
    ) -> None:
        self.version = version
        self.invalid_rows = invalid_rows  # RouteData rows left out: not encodable on the wire
        self._routes: dict[Key, tuple[Host, ...]] = dict(routes)
        self._bodies: dict[Key, bytes] = {}
        self.host_count = sum(len(h) for h in self._routes.values())
        # module -> (hosts in the table, hosts served), for modules past the frame limit
        self.truncated: dict[Key, tuple[int, int]] = {}
        for key, hosts in self._routes.items():
            if len(hosts) > MAX_HOSTS_PER_MODULE:
                body, kept = encode_response(key[0], key[1], hosts)
                self._bodies[key] = body
                if kept < len(hosts):
                    self.truncated[key] = (len(hosts), kept)

    @classmethod
    def from_rows(cls, version: int, rows: Iterable[tuple[int, int, int, int]]) -> RouteTable:
        """Build from RouteData rows (modid, cmdid, serverip, serverport); rows the wire
        cannot carry are left out and counted in `invalid_rows`."""
        grouped: defaultdict[Key, set[Host]] = defaultdict(set)
        invalid = 0
        for row in rows:
            modid, cmdid, ip, port = (int(v) for v in row)
            if (
                0 <= modid <= _INT32_MAX
                and 0 <= cmdid <= _INT32_MAX
                and 0 <= ip <= _UINT32_MAX
                and 0 <= port <= _PORT_MAX
            ):
                grouped[(modid, cmdid)].add((ip, port))
            else:
                invalid += 1
        routes = {key: tuple(sorted(hosts)) for key, hosts in grouped.items()}
        return cls(version, routes, invalid_rows=invalid)

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

    def same_routes(self, other: RouteTable) -> bool:
        return self._routes == other._routes

    def response(self, modid: int, cmdid: int) -> bytes:
        """The encoded GetRouteResponse body for a module (empty host list if unknown)."""
        key = (modid, cmdid)
        body = self._bodies.get(key)
        if body is not None:
            return body
        hosts = self._routes.get(key)
        if hosts is None:  # not cached: unknown keys from peers must not grow memory
            return encode_response(modid, cmdid, ())[0]
        body = encode_response(modid, cmdid, hosts)[0]
        self._bodies[key] = body
        return body


def changed_modules(old: RouteTable, new: RouteTable) -> set[Key]:
    """Modules whose host list differs between two tables (added and removed included)."""
    old_routes, new_routes = old._routes, new._routes
    changed = {key for key, hosts in new_routes.items() if old_routes.get(key) != hosts}
    changed.update(key for key in old_routes if key not in new_routes)
    return changed
