"""RouteTable, its diff and the frame-limit rule, with plain values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lars.dns.table import MAX_HOSTS_PER_MODULE, RouteTable, changed_modules, encode_response
from lars.protocol import lars_pb2, uint_to_wire
from lars.reactor.frame import MAX_BODY


def parse(body: bytes) -> lars_pb2.GetRouteResponse:
    msg = lars_pb2.GetRouteResponse()
    msg.ParseFromString(body)
    return msg


def test_from_rows_groups_sorts_and_dedups() -> None:
    rows = [(1, 2, 20, 80), (1, 2, 10, 80), (1, 2, 20, 80), (3, 4, 5, 6)]
    table = RouteTable.from_rows(7, rows)
    assert table.version == 7
    assert len(table) == 2
    assert table.hosts((1, 2)) == ((10, 80), (20, 80))
    assert table.host_count == 3
    assert (3, 4) in table
    assert table.hosts((9, 9)) == ()
    assert sorted(table) == [(1, 2), (3, 4)]


def test_rows_the_wire_cannot_carry_are_left_out_and_counted() -> None:
    rows = [
        (1, 1, 10, 80),
        (2**31, 1, 10, 80),  # modid past int32
        (1, 2**31, 10, 80),  # cmdid past int32
        (1, 1, 2**32, 80),  # a 33-bit address
        (1, 1, -1, 80),  # SQLite keeps signed values a DBA typed
        (1, 1, 11, 65536),  # port past 65535
        (1, 1, 12, -1),
        (2, 2, 2**32 - 1, 65535),  # the largest valid values
    ]
    table = RouteTable.from_rows(3, rows)
    assert table.invalid_rows == 6
    assert table.hosts((1, 1)) == ((10, 80),)
    assert table.hosts((2, 2)) == ((2**32 - 1, 65535),)
    assert lars_pb2.GetRouteResponse.FromString(table.response(2, 2)).host[0].ip == -1


def test_response_carries_signed_wire_ips() -> None:
    high = 3232235953  # 192.168.1.177
    table = RouteTable.from_rows(1, [(1, 2, high, 9000), (1, 2, 1, 1)])
    msg = parse(table.response(1, 2))
    assert (msg.modid, msg.cmdid) == (1, 2)
    assert [(h.ip, h.port) for h in msg.host] == [(1, 1), (uint_to_wire(high), 9000)]
    assert msg.host[1].ip == -1062731343


def test_unknown_module_gets_empty_list_and_is_not_cached() -> None:
    table = RouteTable.empty(3)
    msg = parse(table.response(-5, 2**31 - 1))
    assert (msg.modid, msg.cmdid, len(msg.host)) == (-5, 2**31 - 1, 0)
    assert table._bodies == {}


def test_heartbeat_probe_reply_is_cached_and_other_unknown_modules_are_not() -> None:
    table = RouteTable.empty(3)
    probe = table.response(0, 0)
    assert table.response(0, 0) is probe
    msg = parse(probe)
    assert (msg.modid, msg.cmdid, len(msg.host)) == (0, 0, 0)
    for modid in range(1, 50):
        table.response(modid, 0)
    assert list(table._bodies) == [(0, 0)]


def test_response_is_cached_and_stable() -> None:
    table = RouteTable.from_rows(1, [(1, 1, 5, 5)])
    first = table.response(1, 1)
    assert table.response(1, 1) is first


def test_worst_case_module_at_limit_fits() -> None:
    hosts = [(0xFFFFFFFF - i, 65535) for i in range(MAX_HOSTS_PER_MODULE)]
    body, kept = encode_response(2**31 - 1, 2**31 - 1, sorted(hosts))
    assert kept == MAX_HOSTS_PER_MODULE
    assert len(body) <= MAX_BODY
    table = RouteTable.from_rows(1, [(2**31 - 1, 2**31 - 1, ip, p) for ip, p in hosts])
    assert table.truncated == {}


def test_oversized_module_is_truncated_to_what_fits() -> None:
    n = MAX_HOSTS_PER_MODULE + 500
    rows = [(1, 1, 0x80000000 + i, 65535) for i in range(n)]
    table = RouteTable.from_rows(1, rows)
    assert (1, 1) in table.truncated
    total, kept = table.truncated[(1, 1)]
    assert total == n
    assert MAX_HOSTS_PER_MODULE <= kept < n
    body = table.response(1, 1)
    assert len(body) <= MAX_BODY
    msg = parse(body)
    assert len(msg.host) == kept
    # the hosts served are the lowest addresses, deterministically
    assert [h.ip for h in msg.host] == [uint_to_wire(0x80000000 + i) for i in range(kept)]
    # one more host would not have fitted
    more = lars_pb2.GetRouteResponse(modid=1, cmdid=1)
    for i in range(kept + 1):
        more.host.add(ip=uint_to_wire(0x80000000 + i), port=65535)
    assert more.ByteSize() > MAX_BODY


def test_small_hosts_fit_more_than_worst_case() -> None:
    n = MAX_HOSTS_PER_MODULE + 10
    body, kept = encode_response(1, 1, [(i + 1, 1) for i in range(n)])
    assert kept == n  # small addresses are short varints
    assert len(body) <= MAX_BODY


host = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 65535))
routes = st.dictionaries(
    st.tuples(st.integers(0, 5), st.integers(0, 5)),
    st.lists(host, min_size=1, max_size=4).map(lambda hs: tuple(sorted(set(hs)))),
    max_size=8,
)


@settings(deadline=None)
@given(routes, routes)
def test_changed_modules_is_exactly_the_differing_keys(
    old: dict[tuple[int, int], tuple[tuple[int, int], ...]],
    new: dict[tuple[int, int], tuple[tuple[int, int], ...]],
) -> None:
    a, b = RouteTable(1, old), RouteTable(2, new)
    expected = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    assert changed_modules(a, b) == expected
    assert changed_modules(b, a) == expected
    assert changed_modules(a, a) == set()
    assert a.same_routes(b) == (not expected)


@settings(deadline=None)
@given(routes)
def test_every_response_round_trips(r: dict[tuple[int, int], tuple[tuple[int, int], ...]]) -> None:
    table = RouteTable(1, r)
    for (modid, cmdid), hosts in r.items():
        msg = parse(table.response(modid, cmdid))
        got = [(h.ip & 0xFFFFFFFF, h.port) for h in msg.host]
        assert got == list(hosts)
