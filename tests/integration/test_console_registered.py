"""The console shows registered hosts (issue 20): source, owning agent, check kind and
state, in the JSON API and on the module page; a registered-only host has no Edit form
(it is not in RouteData) but can be drained like any host (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from lars.console import build_console
from lars.dbengine import init_schema, make_engine
from lars.dns.instances import Instance
from lars.dns.leases import Batch
from lars.dns.regstore import InstanceStore
from lars.protocol.ipv4 import dotted_to_uint
from lars.routes.admin import RouteAdmin

PASSWORD = "registered-password-1"
NOW = 1_800_000_000.0


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    RouteAdmin(engine, clock=lambda: NOW).add_host(1, 1, "10.0.0.1", 80)
    sets = {
        "10.0.0.1:8888": frozenset({Instance(1, 1, dotted_to_uint("10.0.0.1"), 80)}),
        "10.0.0.7:8888": frozenset(
            {Instance(1, 1, dotted_to_uint("10.0.0.7"), 81, check="ttl:5", passing=False)}
        ),
    }
    InstanceStore(engine).write(Batch(changes=sets), int(NOW), 10.0)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = build_console(engine, PASSWORD, clock=lambda: NOW, stale_after=60.0)
    with TestClient(app) as client:
        response = client.post("/api/login", json={"password": PASSWORD})
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def test_api_shows_source_agent_check_and_state(client: TestClient) -> None:
    hosts = {h["ip"]: h for h in client.get("/api/modules/1/1").json()["hosts"]}
    static, registered = hosts["10.0.0.1"], hosts["10.0.0.7"]
    assert (static["source"], static["agent"], static["check_state"]) == (
        "static", "10.0.0.1:8888", "passing"
    )  # fmt: skip
    assert (registered["source"], registered["agent"], registered["check"]) == (
        "registered", "10.0.0.7:8888", "ttl:5"
    )  # fmt: skip
    assert registered["check_state"] == "failing" and registered["check_since"] == int(NOW)
    assert registered["in_route"]


def test_module_page_shows_registrations_and_drains_a_registered_host(client: TestClient) -> None:
    page = client.get("/modules/1/1").text
    assert 'data-source="registered"' in page and "10.0.0.7:8888" in page
    assert "ttl:5" in page and "failing" in page
    assert page.count('name="old_ip" value="10.0.0.1"') == 1  # static: editable
    assert 'name="old_ip" value="10.0.0.7"' not in page  # registered: no Edit form
    drained = client.post("/api/modules/1/1/hosts/10.0.0.7/81/drain", json={"note": "bad"})
    assert drained.status_code == 200
    hosts = {h["ip"]: h for h in client.get("/api/modules/1/1").json()["hosts"]}
    assert not hosts["10.0.0.7"]["enabled"] and hosts["10.0.0.7"]["state"] == "drained"
