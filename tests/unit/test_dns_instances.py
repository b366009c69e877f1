"""Registered instances, sans-I/O: the sync diff, expiry, and the served union of
RouteData and passing instances (drain, weight, de-duplication, the host limit)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lars.dns.instances import (
    Instance,
    InstanceRow,
    endangered,
    expired,
    invalid_reason,
    plan_sync,
    served_rows,
)
from lars.dns.served import build_table, with_additions
from lars.dns.service_audit import sql_change_rows
from lars.dns.store import Snapshot
from lars.dns.table import MAX_HOSTS_PER_MODULE, RouteTable
from lars.protocol import lars_pb2
from lars.routes.audit import AuditLog


def row(
    modid: int,
    cmdid: int,
    ip: int,
    port: int,
    *,
    agent: str = "10.0.0.1:8888",
    passing: bool = True,
    check: str = "tcp",
    last_seen: int = 100,
    rid: int = 0,
) -> InstanceRow:
    return InstanceRow(
        id=rid or hash((modid, cmdid, ip, port, agent)) & 0xFFFF,
        modid=modid,
        cmdid=cmdid,
        ip=ip,
        port=port,
        agent=agent,
        check=check,
        passing=passing,
        registered_at=1,
        since=1,
        last_seen=last_seen,
    )


def snap(
    routes: list[tuple[int, int, int, int]], instances: list[InstanceRow], **kw: object
) -> Snapshot:
    return Snapshot(7, routes, [], None, instances=instances, **kw)  # type: ignore[arg-type]


# the sync diff


def test_a_first_sync_inserts_everything_and_an_empty_sync_deletes_everything() -> None:
    a, b = Instance(1, 1, 10, 80), Instance(1, 1, 11, 80)
    plan = plan_sync([], [a, b])
    assert plan.inserts == [a, b] and not plan.deletes and not plan.updates and plan.changed
    rows = [row(1, 1, 10, 80, rid=1), row(1, 1, 11, 80, rid=2)]
    plan = plan_sync(rows, [])
    assert [r.id for r in plan.deletes] == [1, 2] and not plan.inserts


def test_the_same_set_is_no_change_and_a_state_change_is_a_flap() -> None:
    rows = [row(1, 1, 10, 80, rid=1), row(1, 1, 11, 80, rid=2)]
    same = [Instance(1, 1, 10, 80), Instance(1, 1, 11, 80)]
    assert not plan_sync(rows, same).changed
    flapped = [Instance(1, 1, 10, 80, passing=False), Instance(1, 1, 11, 80, check="ttl:5")]
    plan = plan_sync(rows, flapped)
    assert len(plan.updates) == 2 and plan.flaps == 1 and not plan.inserts and not plan.deletes


def test_a_host_listed_twice_counts_once_last_wins() -> None:
    plan = plan_sync([], [Instance(1, 1, 10, 80), Instance(1, 1, 10, 80, passing=False)])
    assert plan.inserts == [Instance(1, 1, 10, 80, passing=False)]


@given(
    st.sets(st.tuples(st.integers(1, 3), st.integers(1, 200), st.booleans()), max_size=15),
    st.sets(st.tuples(st.integers(1, 3), st.integers(1, 200), st.booleans()), max_size=15),
)
def test_applying_a_plan_gives_exactly_the_wanted_set(
    before: set[tuple[int, int, bool]], after: set[tuple[int, int, bool]]
) -> None:
    stored = {}
    for n, (m, ip, ok) in enumerate(sorted(before)):
        stored.setdefault((m, 1, ip, 80), row(m, 1, ip, 80, passing=ok, rid=n + 1))
    wanted = {(m, 1, ip, 80): Instance(m, 1, ip, 80, passing=ok) for m, ip, ok in after}
    plan = plan_sync(stored.values(), wanted.values())
    state = {k: r.passing for k, r in stored.items()}
    for r in plan.deletes:
        del state[r.key]
    for r, inst in plan.updates:
        state[r.key] = inst.passing
    for inst in plan.inserts:
        assert inst.key not in state
        state[inst.key] = inst.passing
    assert state == {k: i.passing for k, i in wanted.items()}


def test_invalid_instances_are_named() -> None:
    assert invalid_reason(Instance(1, 1, 10, 80)) is None
    assert invalid_reason(Instance(1, 1, 10, 80, check="http://127.0.0.1:8080/health")) is None
    assert invalid_reason(Instance(1, 1, 10, 80, check="ttl:5")) is None
    assert "port" in (invalid_reason(Instance(1, 1, 10, 0)) or "")
    assert invalid_reason(Instance(-1, 1, 10, 80)) is not None
    assert invalid_reason(Instance(1, 1, 2**32, 80)) is not None
    assert invalid_reason(Instance(1, 1, 10, 80, check="icmp")) is not None
    assert invalid_reason(Instance(1, 1, 10, 80, check="http://" + "x" * 600)) is not None


# expiry (a fake clock: now and last_seen are plain numbers)


def test_rows_unseen_for_a_lease_expire_and_fresh_ones_do_not() -> None:
    rows = [row(1, 1, 10, 80, last_seen=89, agent="a"), row(1, 1, 11, 80, last_seen=92, agent="b")]
    rows.append(row(1, 1, 12, 80, last_seen=99, agent="c"))
    assert expired(rows, now=99, lease=10) == []  # nobody past the lease yet
    # a's lease ran out; b missed two renewals (unseen > 2/3 of the lease): both go in
    # one step; c renewed a second ago and stays
    assert [r.ip for r in expired(rows, now=100, lease=10)] == [10, 11]
    assert [r.ip for r in expired(rows, now=100, lease=10, alive={"b"})] == [10]
    assert expired(rows, now=100, lease=10, alive={"a"}) == []  # b alone is not past it
    assert [r.ip for r in expired(rows, now=120, lease=10)] == [10, 11, 12]


# the served union


def test_static_and_registered_hosts_are_served_together_once() -> None:
    routes = [(1, 1, 10, 80), (1, 1, 11, 80)]
    instances = [
        row(1, 1, 11, 80),  # also static: served once
        row(1, 1, 12, 80),
        row(1, 1, 12, 80, agent="10.0.0.2:8888"),  # two agents, one host
        row(1, 1, 13, 80, passing=False),  # failing: left out
        row(2, 2, 20, 90),  # a module only registered
    ]
    table = build_table(snap(routes, instances))
    assert table.hosts((1, 1)) == ((10, 80), (11, 80), (12, 80))
    assert table.hosts((2, 2)) == ((20, 90),)
    assert table.registered == frozenset({(1, 1, 12, 80), (2, 2, 20, 90)})
    assert table.host_count == 4


def test_drain_and_weight_apply_to_registered_hosts() -> None:
    instances = [row(1, 1, 12, 80), row(1, 1, 13, 80)]
    meta = [(1, 1, 12, 80, 1, False), (1, 1, 13, 80, 5, True)]
    table = build_table(snap([(1, 1, 10, 80)], instances, meta=meta))
    assert table.hosts((1, 1)) == ((10, 80), (13, 80))
    assert table.weights((1, 1)) == {(13, 80): 5}
    assert table.drained == 1


def test_the_host_limit_applies_to_the_union() -> None:
    routes = [(1, 1, 0xE0000000 + n, 65535) for n in range(MAX_HOSTS_PER_MODULE)]
    instances = [row(1, 1, 0xF0000000 + n, 65535, rid=n + 1) for n in range(50)]
    table = build_table(snap(routes, instances))
    assert (1, 1) in table.truncated
    total, served = table.truncated[(1, 1)]
    assert total == MAX_HOSTS_PER_MODULE + 50 and MAX_HOSTS_PER_MODULE <= served < total
    reply = lars_pb2.GetRouteResponse()
    reply.ParseFromString(table.response(1, 1))
    assert len(reply.host) == served


def test_without_instances_the_table_is_the_routedata_table() -> None:
    routes = [(1, 1, 10, 80), (2, 1, 10, 81)]
    plain = RouteTable.from_rows(7, routes)
    built = build_table(snap(routes, []))
    assert built.same_routes(plain) and built.registered == frozenset()


# every check of a module failing


def test_a_module_emptied_only_by_failing_checks_is_endangered() -> None:
    instances = [
        row(1, 1, 10, 80, passing=False),
        row(1, 1, 11, 80, passing=False),
        row(2, 2, 10, 80, passing=False),  # has a passing host too
        row(2, 2, 11, 80),
        row(3, 3, 10, 80, passing=False),  # has a static host
    ]
    risk = endangered([(3, 3, 50, 80)], instances)
    assert risk == {(1, 1): {(10, 80), (11, 80)}}


def test_a_drained_static_host_does_not_protect_and_a_drained_failing_one_is_not_kept() -> None:
    instances = [row(1, 1, 10, 80, passing=False), row(1, 1, 11, 80, passing=False)]
    meta = [(1, 1, 50, 80, 1, False), (1, 1, 11, 80, 1, False)]
    assert endangered([(1, 1, 50, 80)], instances, meta) == {(1, 1): {(10, 80)}}


def test_failing_hosts_with_recent_successes_stay_served() -> None:
    instances = [row(1, 1, 10, 80, passing=False), row(1, 1, 11, 80, passing=False)]
    kept = build_table(snap([], instances, evidence=frozenset({(1, 1, 11, 80)})))
    assert kept.hosts((1, 1)) == ((11, 80),)
    gone = build_table(snap([], instances))
    assert gone.hosts((1, 1)) == ()
    assert served_rows([], instances) == []


# the audit of plain-SQL edits leaves registrations out


def test_registered_hosts_are_not_audited_as_plain_sql_edits() -> None:
    old = build_table(snap([(1, 1, 10, 80)], [row(1, 1, 12, 80)]))
    new = build_table(snap([(1, 1, 10, 80), (1, 1, 11, 80)], []))
    from sqlalchemy import create_engine

    rows, left = sql_change_rows(AuditLog(create_engine("sqlite://")), old, new, {(1, 1)})
    assert [(r["action"], r["serverip"]) for r in rows] == [("add", 11)] and left == 0


# the capability bit on the wire


def test_replies_advertise_registrations_only_when_accepted() -> None:
    plain = build_table(snap([(1, 1, 10, 80)], []))
    flagged = build_table(snap([(1, 1, 10, 80)], [], registrations=True))
    for key in ((1, 1), (9, 9)):  # a known module and an unknown one
        a, b = lars_pb2.GetRouteResponse(), lars_pb2.GetRouteResponse()
        a.ParseFromString(plain.response(*key))
        b.ParseFromString(flagged.response(*key))
        assert not a.registrations and b.registrations
        assert list(a.host) == list(b.host)
    original = lars_pb2.GetRouteResponse(modid=1, cmdid=1)
    original.host.add(ip=10, port=80)
    original.version = 7  # the table's version (issue 22), which original agents skip
    assert plain.response(1, 1) == original.SerializeToString()


# additions through a hold


def test_with_additions_keeps_every_served_host_and_adds_the_new_ones() -> None:
    served = RouteTable(1, {(1, 1): ((10, 80), (11, 80)), (2, 2): ((20, 80),)},
                        weights={(1, 1): {(11, 80): 3}})  # fmt: skip
    new = RouteTable(
        2,
        {(1, 1): ((12, 80),), (3, 3): ((30, 80),)},
        weights={(1, 1): {(12, 80): 5}},
        registered=frozenset({(1, 1, 12, 80), (3, 3, 30, 80)}),
        registrations=True,
    )
    grown = with_additions(served, new)
    assert grown is not None and grown.version == 1 and grown.registrations
    assert grown.hosts((1, 1)) == ((10, 80), (11, 80), (12, 80))
    assert grown.hosts((2, 2)) == ((20, 80),) and grown.hosts((3, 3)) == ((30, 80),)
    assert grown.weights((1, 1)) == {(11, 80): 3, (12, 80): 5}
    assert grown.registered == frozenset({(1, 1, 12, 80), (3, 3, 30, 80)})
    only_removals = RouteTable(3, {(1, 1): ((10, 80),)})
    assert with_additions(served, only_removals) is None
    static_add = RouteTable(3, {(1, 1): ((10, 80), (11, 81))})  # e.g. a mass port UPDATE
    assert with_additions(served, static_add) is None  # static additions stay held
