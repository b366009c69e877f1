"""`lars route list` and RouteAdmin.list_routes(registered=True) show registered hosts:
source, owning agent, check kind, state and since (issue 20), on SQLite."""

from __future__ import annotations

import json

import pytest
import sqlalchemy

from lars.cli import main
from lars.dbengine import init_schema, make_engine
from lars.dns.instances import Instance
from lars.dns.leases import Batch
from lars.dns.regstore import InstanceStore
from lars.routes.admin import RouteAdmin


def _ip(dotted: str) -> int:
    a, b, c, d = (int(x) for x in dotted.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


@pytest.fixture
def engine(sqlite_url: str) -> sqlalchemy.Engine:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    admin = RouteAdmin(eng)
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.add_host(1, 1, "10.0.0.2", 80)
    admin.drain(1, 1, "10.0.0.2", 80, note="kernel")
    store = InstanceStore(eng)
    changes = {
        "10.0.0.2:8888": frozenset(
            {
                Instance(1, 1, _ip("10.0.0.2"), 80),  # also static (and drained)
                Instance(1, 1, _ip("10.0.0.9"), 81, check="ttl:5", passing=False),
            }
        ),
        "10.0.0.3:8888": frozenset({Instance(2, 2, _ip("10.0.0.3"), 90, check="tcp")}),
    }
    store.write(Batch(changes=changes), 1_700_000_000, 10.0)
    return eng


def test_list_routes_merges_static_and_registered(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine)
    assert len(admin.list_routes()) == 2  # the default: RouteData alone, as before
    entries = admin.list_routes(registered=True)
    got = [(e.modid, e.ip, e.port, e.source, e.agent, e.check, e.state) for e in entries]
    assert got == [
        (1, "10.0.0.1", 80, "static", "", "", ""),
        (1, "10.0.0.2", 80, "static", "10.0.0.2:8888", "tcp", "passing"),
        (1, "10.0.0.9", 81, "registered", "10.0.0.2:8888", "ttl:5", "failing"),
        (2, "10.0.0.3", 90, "registered", "10.0.0.3:8888", "tcp", "passing"),
    ]
    assert not entries[1].enabled and entries[1].note == "kernel"  # drain applies
    assert entries[2].since == 1_700_000_000
    only = admin.list_routes(2, 2, registered=True)
    assert [(e.ip, e.source) for e in only] == [("10.0.0.3", "registered")]
    engine.dispose()


def test_lars_route_list_prints_and_jsons_the_registration_fields(
    engine: sqlalchemy.Engine, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.dispose()
    assert main(["route", "list", "--db", sqlite_url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert {"source", "agent", "check", "state", "since"} <= row.keys()
    assert rows[3]["source"] == "registered" and rows[3]["agent"] == "10.0.0.3:8888"
    assert main(["route", "list", "--db", sqlite_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1\t1\t10.0.0.1\t80"  # a plain static host prints as before
    assert "registered by 10.0.0.2:8888 check ttl:5 FAILING since 2023-11-14" in lines[2]
    assert lines[2].startswith("1\t1\t10.0.0.9\t81\tregistered")


def test_a_registered_host_can_be_drained_and_weighted(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine)
    admin.set_weight(1, 1, "10.0.0.9", 81, 4)
    admin.drain(2, 2, "10.0.0.3", 90, force=True)  # the module's only host
    entries = {(e.ip, e.port): e for e in admin.list_routes(registered=True)}
    assert entries[("10.0.0.9", 81)].weight == 4
    assert not entries[("10.0.0.3", 90)].enabled
    with pytest.raises(Exception, match="not in module"):
        admin.drain(2, 2, "10.0.0.4", 90)
    engine.dispose()
