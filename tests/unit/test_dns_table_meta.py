"""RouteTable with RouteHostMeta: drained hosts left out, weights on the wire and in the diff."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lars.dns.table import RouteTable, changed_modules, encode_response
from lars.protocol import lars_pb2, uint_to_wire
from lars.protocol.weight import MAX_WEIGHT

ROWS = [(1, 1, 10, 80), (1, 1, 11, 80), (1, 1, 12, 80), (2, 2, 20, 90)]


def parse(body: bytes) -> lars_pb2.GetRouteResponse:
    return lars_pb2.GetRouteResponse.FromString(body)


def test_drained_hosts_are_left_out_and_counted() -> None:
    table = RouteTable.from_rows(5, ROWS, [(1, 1, 11, 80, 1, False), (2, 2, 20, 90, 3, False)])
    assert table.hosts((1, 1)) == ((10, 80), (12, 80))
    assert (2, 2) not in table  # every host drained: the module is gone, as if deleted
    assert table.host_count == 2 and table.drained == 2
    assert [(h.ip, h.port) for h in parse(table.response(1, 1)).host] == [(10, 80), (12, 80)]
    assert parse(table.response(2, 2)).host == []


def test_meta_of_hosts_not_in_route_data_is_ignored() -> None:
    table = RouteTable.from_rows(5, ROWS, [(1, 1, 99, 80, 1, False), (7, 7, 1, 1, 4, True)])
    assert table.same_routes(RouteTable.from_rows(5, ROWS)) and table.drained == 0


def test_weights_travel_only_when_not_the_default() -> None:
    table = RouteTable.from_rows(
        5, ROWS, [(1, 1, 10, 80, 4, True), (1, 1, 11, 80, 1, True), (1, 1, 12, 80, 0, True)]
    )
    msg = parse(table.response(1, 1))
    assert [(h.ip, h.port, h.weight) for h in msg.host] == [(10, 80, 4), (11, 80, 0), (12, 80, 0)]
    assert table.weights((1, 1)) == {(10, 80): 4}  # a stored 0 reads as 1, never a drain
    assert table.weights((2, 2)) == {}
    capped = RouteTable.from_rows(5, ROWS, [(1, 1, 10, 80, MAX_WEIGHT * 7, True)])
    assert capped.weights((1, 1)) == {(10, 80): MAX_WEIGHT}


@given(
    hosts=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 65535)), unique=True, max_size=30
    )
)
def test_default_weights_encode_byte_identically_to_the_weightless_encoding(
    hosts: list[tuple[int, int]],
) -> None:
    rows = [(3, 4, ip, port) for ip, port in hosts]
    meta = [(3, 4, ip, port, 1, True) for ip, port in hosts]  # explicit default rows
    table = RouteTable.from_rows(1, rows, meta)
    plain = lars_pb2.GetRouteResponse(modid=3, cmdid=4)
    for ip, port in sorted(hosts):
        plain.host.add(ip=uint_to_wire(ip), port=port)
    assert encode_response(3, 4, sorted(hosts), {})[0] == plain.SerializeToString()
    plain.version = 1  # a lars route service's answer carries its table's version (issue 22)
    assert table.response(3, 4) == plain.SerializeToString()


def test_a_weight_only_change_is_a_changed_module_and_a_different_table() -> None:
    old = RouteTable.from_rows(5, ROWS)
    new = RouteTable.from_rows(6, ROWS, [(1, 1, 12, 80, 2, True)])
    assert changed_modules(old, new) == {(1, 1)} == changed_modules(new, old)
    assert not old.same_routes(new)
    same = RouteTable.from_rows(7, ROWS, [(1, 1, 12, 80, 2, True)])
    assert changed_modules(new, same) == set() and new.same_routes(same)


def test_a_drain_is_a_host_removal_in_the_diff() -> None:
    old = RouteTable.from_rows(5, ROWS)
    new = RouteTable.from_rows(6, ROWS, [(1, 1, 12, 80, 1, False)])
    assert changed_modules(old, new) == {(1, 1)}
    assert old.host_count - new.host_count == 1
