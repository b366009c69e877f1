"""Registrations at the route service over loopback TCP (issue 20), on SQLite here and on
MariaDB in tests/mysql/test_dns_registration_mysql.py (the check_* functions take a URL).

A scripted agent sends INSTANCE_SYNC (msgid 9) on its route-service connection and reads
the INSTANCE_SYNC_ACK; another connection, subscribed like any agent, must receive the
registered hosts in pushes. Waits use generous deadlines; delays are benchmark figures."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

import pytest
import sqlalchemy
from sqlalchemy import select

from lars.db import route_audit, route_instance, server_call_status
from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import DnsCollector
from lars.dns.service import DnsConfig, DnsService
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import HEADER, RouteConn, hosts_of, wait_for
from tests.integration.test_dns_service import config

AGENT = "10.9.9.9:8888"


class ScriptedAgent(RouteConn):
    """A route-service connection that also speaks msgid 9/10 like a lars agent."""

    seq = 0

    def sync(
        self, instances: Iterable[tuple[int, int, str, int, bool]], agent: str = AGENT
    ) -> lars_pb2.InstanceSyncAck:
        """Send the full set; return the ack (pushes read meanwhile are skipped)."""
        self.seq += 1
        msg = lars_pb2.InstanceSync(agent=agent, seq=self.seq)
        for modid, cmdid, ip, port, passing in instances:
            msg.instances.add(
                modid=modid,
                cmdid=cmdid,
                ip=dotted_to_wire(ip),
                port=port,
                check="tcp",
                passing=passing,
            )
        body = msg.SerializeToString()
        self.sock.sendall(HEADER.pack(int(MsgId.INSTANCE_SYNC), len(body)) + body)
        while True:
            msgid, n = HEADER.unpack(self._exact(8, 10.0))
            data = self._exact(n, 10.0) if n else b""
            if msgid == int(MsgId.INSTANCE_SYNC_ACK):
                ack = lars_pb2.InstanceSyncAck()
                ack.ParseFromString(data)
                assert ack.seq == self.seq
                return ack

    def sync_unacked(self, body: bytes) -> None:
        self.sock.sendall(HEADER.pack(int(MsgId.INSTANCE_SYNC), len(body)) + body)


def reg_config(url: str, **kw: object) -> DnsConfig:
    return dataclasses.replace(config(url), **kw)  # type: ignore[arg-type]


def served(svc: DnsService, key: tuple[int, int]) -> set[tuple[int, int]]:
    return set(svc.table.hosts(key))


def ip(dotted: str) -> int:
    a, b, c, d = (int(x) for x in dotted.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def audit_actions(engine: sqlalchemy.Engine) -> list[str]:
    with engine.connect() as conn:
        q = select(route_audit.c.action).order_by(route_audit.c.id)
        return [str(a) for (a,) in conn.execute(q)]


def prepared(url: str) -> sqlalchemy.Engine:
    engine = make_engine(url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "192.168.1.177", 9000)
    return engine


def check_register_served_pushed_failing_deregistered(url: str) -> None:
    engine = prepared(url)
    svc = DnsService(reg_config(url))
    svc.start()
    try:
        with ScriptedAgent(svc.port) as agent, RouteConn(svc.port) as sub:
            agent.request(1, 1)
            _, reply = agent.read()
            assert reply.registrations  # this route service accepts registrations
            assert sub.get(1, 1) == [("192.168.1.177", 9000)]
            assert sub.get(2, 2) == []
            ack = agent.sync([(1, 1, "10.0.0.5", 80, True), (2, 2, "10.0.0.6", 81, True)])
            assert ack.lease == 10
            pushed: dict[tuple[int, int], list[tuple[str, int]]] = {}
            while len(pushed) < 2:
                msgid, msg = sub.read(30.0)
                assert msgid == 2
                pushed[(msg.modid, msg.cmdid)] = hosts_of(msg)
            assert pushed[(1, 1)] == [("10.0.0.5", 80), ("192.168.1.177", 9000)]
            assert pushed[(2, 2)] == [("10.0.0.6", 81)]
            # the agent's check fails: the host leaves like a drained one
            agent.sync([(1, 1, "10.0.0.5", 80, False), (2, 2, "10.0.0.6", 81, True)])
            msgid, msg = sub.read(30.0)
            assert (msg.modid, msg.cmdid) == (1, 1)
            assert hosts_of(msg) == [("192.168.1.177", 9000)]
            # passing again, then deregister everything (an empty set)
            agent.sync([(1, 1, "10.0.0.5", 80, True), (2, 2, "10.0.0.6", 81, True)])
            wait_for(lambda: (ip("10.0.0.5"), 80) in served(svc, (1, 1)), 30, "back")
            agent.sync([])
            wait_for(lambda: not served(svc, (2, 2)), 30, "deregistered")
            assert served(svc, (1, 1)) == {(ip("192.168.1.177"), 9000)}
        with engine.connect() as conn:
            assert conn.execute(select(route_instance)).all() == []
        actions = audit_actions(engine)
        assert actions.count("register") == 2 and actions.count("deregister") == 2
        stats = svc.stats().registry
        assert stats is not None and stats.flaps == 2 and stats.registered == 2
        assert svc.stats().held is None
        samples = {
            (x.name, tuple(sorted(x.labels.items()))): x.value
            for family in DnsCollector(svc).collect()
            for x in family.samples
        }
        assert samples[("lars_dns_registration_events_total", (("event", "register"),))] == 2
        assert samples[("lars_dns_registration_events_total", (("event", "deregister"),))] == 2
        assert samples[("lars_dns_registrations_accepted", ())] == 1
        assert samples[("lars_dns_instances", (("state", "passing"),))] == 0
    finally:
        svc.stop()
        engine.dispose()


def check_two_route_services_agree_and_a_restart_loses_nothing(url: str) -> None:
    engine = prepared(url)
    one = DnsService(reg_config(url))
    two = DnsService(reg_config(url))
    one.start()
    two.start()
    three: DnsService | None = None
    try:
        with ScriptedAgent(one.port) as agent, RouteConn(two.port) as sub:
            assert sub.get(3, 3) == []
            agent.sync([(3, 3, "10.0.0.7", 70, True)])
            msgid, msg = sub.read(30.0)  # pushed by the OTHER route service
            assert msgid == 2
            assert (msg.modid, msg.cmdid) == (3, 3) and hosts_of(msg) == [("10.0.0.7", 70)]
        wait_for(lambda: served(one, (3, 3)) == served(two, (3, 3)), 30, "agreement")
        one.stop()
        three = DnsService(reg_config(url))  # a restart: nothing in memory
        three.start()
        assert served(three, (3, 3)) == {(ip("10.0.0.7"), 70)}
        with ScriptedAgent(three.port) as agent:  # the agent fails over and renews
            agent.sync([(3, 3, "10.0.0.7", 70, True)])
            agent.sync([(3, 3, "10.0.0.7", 70, True)])
        assert served(three, (3, 3)) == served(two, (3, 3)) == {(ip("10.0.0.7"), 70)}
        assert audit_actions(engine).count("register") == 1  # a renewal is not a register
    finally:
        one.stop()
        two.stop()
        if three is not None:
            three.stop()
        engine.dispose()


def check_expiry_and_mass_expiry_held(url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = prepared(url)
    svc = DnsService(reg_config(url, lease=3.0))
    svc.start()
    try:
        with ScriptedAgent(svc.port) as agent:
            agent.sync([(4, 4, "10.0.0.8", 80, True)], agent="10.0.0.8:8888")
            wait_for(lambda: served(svc, (4, 4)), 30, "served")
            # no renewal: one instance expires after the lease (not held: one host)
            wait_for(lambda: not served(svc, (4, 4)), 30, "expired")
            assert svc.stats().held is None
            # ten agents, two modules each, then all lose the route services at once
            for n in range(10):
                host = f"10.1.0.{n + 1}"
                agent.sync([(5, 5, host, 80, True), (6, 6, host, 80, True)], agent=f"{host}:8888")
            wait_for(lambda: len(served(svc, (6, 6))) == 10, 30, "registered")
            with caplog.at_level(logging.ERROR, logger="lars.dns.poller"):
                wait_for(lambda: svc.stats().held is not None, 30, "mass expiry held")
            assert len(served(svc, (5, 5))) == 10 and len(served(svc, (6, 6))) == 10
            assert any("HOLDING" in r.getMessage() for r in caplog.records)
            # additions are never held: a new registration is served during the hold
            agent.sync([(5, 5, "10.1.1.1", 81, True)], agent="10.1.1.1:8888")
            wait_for(lambda: (ip("10.1.1.1"), 81) in served(svc, (5, 5)), 30, "added")
            assert svc.stats().held is not None and len(served(svc, (6, 6))) == 10
        actions = audit_actions(engine)
        assert actions.count("expire") == 21 and "hold" in actions
        stats = svc.stats().registry
        assert stats is not None and stats.expired == 21
    finally:
        svc.stop()
        engine.dispose()


def check_two_route_services_expire_each_instance_once(url: str) -> None:
    engine = prepared(url)
    admin = RouteAdmin(engine)
    for n in range(1, 11):  # 5 expiring of 16 hosts: under max_drop_ratio, applied
        admin.add_host(1, 1, f"10.0.4.{n}", 80)
    services = [DnsService(reg_config(url, lease=3.0)) for _ in range(2)]
    for svc in services:
        svc.start()
    try:
        with ScriptedAgent(services[0].port) as agent:
            agent.sync([(9, 9, f"10.0.3.{n}", 80, True) for n in range(1, 6)])
        for svc in services:
            wait_for(lambda s=svc: len(served(s, (9, 9))) == 5, 30, "served by both")
        for svc in services:
            wait_for(lambda s=svc: not served(s, (9, 9)), 30, "expired everywhere")
        assert audit_actions(engine).count("expire") == 5  # not 10: each row once
        expired = [svc.stats().registry for svc in services]
        assert sum(r.expired for r in expired if r is not None) == 5
    finally:
        for svc in services:
            svc.stop()
        engine.dispose()


def check_a_storm_of_registrations_is_never_held(url: str) -> None:
    engine = prepared(url)
    svc = DnsService(reg_config(url))
    svc.start()
    try:
        with ScriptedAgent(svc.port) as agent:
            for n in range(300):
                host = f"10.2.{n // 250}.{n % 250 + 1}"
                agent.sync([(7, n % 3, host, 80, True)], agent=f"{host}:8888")
            wait_for(lambda: sum(len(served(svc, (7, c))) for c in range(3)) == 300, 60, "all")
        assert svc.stats().held is None
        assert audit_actions(engine).count("register") == 300
    finally:
        svc.stop()
        engine.dispose()


def check_failing_checks_never_empty_a_module_callers_reach(url: str) -> None:
    engine = prepared(url)
    svc = DnsService(reg_config(url))
    svc.start()
    a, b = (ip("10.0.0.21"), 80), (ip("10.0.0.22"), 80)
    try:
        with ScriptedAgent(svc.port) as agent:
            agent.sync([(8, 8, "10.0.0.21", 80, True), (8, 8, "10.0.0.22", 80, True)])
            wait_for(lambda: served(svc, (8, 8)) == {a, b}, 30, "registered")
            # callers report successes on A (the reporter's table, any caller)
            with engine.begin() as conn:
                conn.execute(
                    server_call_status.insert().values(
                        modid=8,
                        cmdid=8,
                        ip=a[0],
                        port=80,
                        caller=ip("10.5.5.5"),
                        succ_cnt=40,
                        err_cnt=0,
                        ts=int(time.time()),
                        overload="0",
                    )
                )
            # every check of the module fails at once: A stays (callers reach it), B goes
            agent.sync([(8, 8, "10.0.0.21", 80, False), (8, 8, "10.0.0.22", 80, False)])
            wait_for(lambda: served(svc, (8, 8)) == {a}, 30, "kept by evidence")
            # with no success reported for EVIDENCE_WINDOW seconds, the checks win
            wait_for(lambda: not served(svc, (8, 8)), 60, "emptied once callers stop")
            # a module with a passing host needs no evidence: the failing one just leaves
            agent.sync([(8, 8, "10.0.0.21", 80, True), (8, 8, "10.0.0.22", 80, False)])
            wait_for(lambda: served(svc, (8, 8)) == {a}, 30, "passing one served")
    finally:
        svc.stop()
        engine.dispose()


def check_a_service_that_cannot_write_does_not_advertise(url: str) -> None:
    engine = prepared(url)
    svc = DnsService(reg_config(url, registrations=False))
    svc.start()
    try:
        with ScriptedAgent(svc.port) as agent:
            agent.request(1, 1)
            _, reply = agent.read()
            assert not reply.registrations
            original = lars_pb2.GetRouteResponse(modid=1, cmdid=1)
            original.host.add(ip=dotted_to_wire("192.168.1.177"), port=9000)
            reply.ClearField("version")  # issue 22's field 4 (the table's RouteVersion)
            assert reply.SerializeToString() == original.SerializeToString()  # no field 5
            body = lars_pb2.InstanceSync(agent=AGENT, seq=1).SerializeToString()
            agent.sync_unacked(body)  # sent anyway: no ack, nothing stored
            assert agent.get(1, 1) == [("192.168.1.177", 9000)]  # the next frame is a reply
        with engine.connect() as conn:
            assert conn.execute(select(route_instance)).all() == []
        stats = svc.stats().registry
        assert stats is not None and not stats.accepting and stats.refused == 1
    finally:
        svc.stop()
        engine.dispose()


def test_register_served_pushed_failing_deregistered(no_leaks: None, sqlite_url: str) -> None:
    check_register_served_pushed_failing_deregistered(sqlite_url)


def test_two_route_services_agree_and_a_restart_loses_nothing(
    no_leaks: None, sqlite_url: str
) -> None:
    check_two_route_services_agree_and_a_restart_loses_nothing(sqlite_url)


def test_expiry_and_mass_expiry_held(
    no_leaks: None, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_expiry_and_mass_expiry_held(sqlite_url, caplog)


def test_a_storm_of_registrations_is_never_held(no_leaks: None, sqlite_url: str) -> None:
    check_a_storm_of_registrations_is_never_held(sqlite_url)


def test_a_service_that_cannot_write_does_not_advertise(no_leaks: None, sqlite_url: str) -> None:
    check_a_service_that_cannot_write_does_not_advertise(sqlite_url)


def test_failing_checks_never_empty_a_module_callers_reach(no_leaks: None, sqlite_url: str) -> None:
    check_failing_checks_never_empty_a_module_callers_reach(sqlite_url)


def test_two_route_services_expire_each_instance_once(no_leaks: None, sqlite_url: str) -> None:
    check_two_route_services_expire_each_instance_once(sqlite_url)
