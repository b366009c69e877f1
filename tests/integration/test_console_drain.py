"""Drain and weights in the console: the JSON API and the module page's forms (SQLite)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert
from starlette.testclient import TestClient

from lars.console import build_console
from lars.db import server_call_status
from lars.dbengine import init_schema, make_engine
from lars.protocol.ipv4 import dotted_to_uint
from lars.protocol.weight import MAX_WEIGHT
from lars.routes.admin import RouteAdmin

PASSWORD = "drain-password-1"
NOW = 1_800_000_000.0
HOST = "/api/modules/1/1/hosts/10.0.0.1/80"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine, clock=lambda: NOW)
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.add_host(1, 1, "10.0.0.2", 80)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = build_console(engine, PASSWORD, clock=lambda: NOW, stale_after=60.0)
    with TestClient(app) as client:
        response = client.post("/api/login", json={"password": PASSWORD})
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def hosts(client: TestClient) -> dict[str, dict[str, object]]:
    return {h["ip"]: h for h in client.get("/api/modules/1/1").json()["hosts"]}


def report(engine: Engine, ip: str, caller: str, succ: int, ts: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(server_call_status).values(
                modid=1, cmdid=1, ip=dotted_to_uint(ip), port=80, caller=dotted_to_uint(caller),
                succ_cnt=succ, err_cnt=0, ts=int(ts), overload="0",
            )
        )  # fmt: skip


def test_api_drain_undrain_and_weight(client: TestClient) -> None:
    drained = client.post(f"{HOST}/drain", json={"note": "kernel update"})
    assert drained.status_code == 200 and drained.json()["version"] > 0
    h = hosts(client)["10.0.0.1"]
    assert (h["enabled"], h["state"], h["note"], h["changed_at"]) == (
        False, "drained", "kernel update", int(NOW)
    )  # fmt: skip
    assert h["changed_by"] == "console"
    module = client.get("/api/modules/1/1").json()
    assert module["health"]["drained"] == 1 and module["health"]["state"] == "nodata"
    again = client.post(f"{HOST}/drain", json={})
    assert again.status_code == 409 and "already drained" in again.json()["detail"]
    last = client.post("/api/modules/1/1/hosts/10.0.0.2/80/drain", json={})
    assert last.status_code == 409 and "last enabled host" in last.json()["fields"]["drain"]
    forced = client.post("/api/modules/1/1/hosts/10.0.0.2/80/drain", json={"force": True})
    assert forced.status_code == 200
    assert client.get("/api/modules/1/1").json()["health"]["state"] == "drained"
    assert client.post(f"{HOST}/undrain", json={}).status_code == 200
    assert hosts(client)["10.0.0.1"]["enabled"] is True
    weighted = client.put(f"{HOST}/weight", json={"weight": 7})
    assert weighted.status_code == 200 and hosts(client)["10.0.0.1"]["weight"] == 7


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "text"),
    [
        ("/weight", "put", {"weight": 0}, 409, "drain"),
        ("/weight", "put", {"weight": MAX_WEIGHT + 1}, 422, ""),
        ("/weight", "put", {"weight": "3"}, 422, ""),
        ("/weight", "put", {"weight": 1}, 409, "already has weight 1"),
        ("/weight", "put", {"weight": 2, "extra": 1}, 422, ""),
        ("/drain", "post", {"force": "yes"}, 422, ""),
        ("/drain", "post", {"note": "x" * 300}, 422, ""),
        ("/undrain", "post", {}, 409, "not drained"),
    ],
)
def test_api_refusals(
    client: TestClient, path: str, method: str, body: object, status: int, text: str
) -> None:
    response = client.request(method, HOST + path, json=body)
    assert response.status_code == status, response.text
    assert text in str(response.json()["detail"])


def test_api_unknown_host_no_session_and_no_csrf(client: TestClient) -> None:
    assert client.post("/api/modules/1/1/hosts/10.9.9.9/80/drain", json={}).status_code == 404
    token = client.headers.pop("X-CSRF-Token")
    assert client.post(f"{HOST}/drain", json={}).status_code == 403
    client.headers["X-CSRF-Token"] = token
    client.post("/api/logout")
    assert client.put(f"{HOST}/weight", json={"weight": 2}).status_code == 401


def test_schema_lists_the_new_endpoints(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for suffix in ("drain", "undrain", "weight"):
        assert f"/api/modules/{{modid}}/{{cmdid}}/hosts/{{ip}}/{{port}}/{suffix}" in paths


def test_a_drained_host_still_called_by_stale_agents_is_flagged(
    client: TestClient, engine: Engine
) -> None:
    report(engine, "10.0.0.1", "192.168.0.5", 40, NOW - 30)  # before the drain: fine
    client.post(f"{HOST}/drain", json={})
    assert hosts(client)["10.0.0.1"]["calls_while_drained"] == []
    report(engine, "10.0.0.1", "192.168.0.9", 3, NOW + 1)  # within the grace: in flight
    assert hosts(client)["10.0.0.1"]["calls_while_drained"] == []
    report(engine, "10.0.0.1", "192.168.0.7", 12, NOW + 20)  # an original agent, stale
    report(engine, "10.0.0.1", "192.168.0.8", 0, NOW + 20)  # reports it, but no calls
    assert hosts(client)["10.0.0.1"]["calls_while_drained"] == ["192.168.0.7"]
    page = client.get("/modules/1/1/hosts.part").text
    assert "drained but still receiving calls" in page and "192.168.0.7" in page


# The module page's forms


def csrf_of(client: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', client.get("/modules/1/1").text)
    assert match
    return match.group(1)


def form(client: TestClient, action: str, **fields: object) -> object:
    data = {"csrf": csrf_of(client), **{k: str(v) for k, v in fields.items()}}
    return client.post(f"/modules/1/1/hosts/{action}", data=data, follow_redirects=False)


def test_page_shows_drain_toggles_weights_and_greys_drained_hosts(client: TestClient) -> None:
    page = client.get("/modules/1/1").text
    assert page.count('class="link drain-toggle"') == 2 and 'name="force"' not in page
    assert 'name="weight" type="number" min="0" max="1000" value="1"' in page
    response = form(client, "drain", ip="10.0.0.1", port=80, note="rack 4")
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = client.get("/modules/1/1").text
    row = re.search(r'<tr class="state-drained"[^>]*data-host="10.0.0.1:80">.*?</tr>', page, re.S)
    assert row and "by console" in row.group(0) and "rack 4" in row.group(0)
    assert "2027-01-15" in row.group(0)  # when, in UTC (NOW)
    assert "Undrain" in row.group(0)
    assert "2 in route, 1 served" in page
    # the other host is now the last enabled one: its toggle confirms and forces
    other = re.search(r'data-host="10.0.0.2:80">.*?</tr>', page, re.S)
    assert (
        other
        and "LAST enabled host" in other.group(0)
        and 'name="force" value="1"' in other.group(0)
    )


def test_page_weight_form_and_its_errors(client: TestClient) -> None:
    response = form(client, "weight", ip="10.0.0.2", port=80, weight=4)
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert 'value="4"' in client.get("/modules/1/1").text
    bad = form(client, "weight", ip="10.0.0.2", port=80, weight=0)
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "drain" in bad.text  # type: ignore[attr-defined]
    bad = form(client, "weight", ip="10.0.0.2", port=80, weight="lots")
    assert bad.status_code == 422 and "whole number 1..1000" in bad.text  # type: ignore[attr-defined]
    refused = form(client, "drain", ip="10.0.0.1", port=80)
    assert refused.status_code == 303  # type: ignore[attr-defined]
    refused = form(client, "drain", ip="10.0.0.2", port=80)  # last one, no force field
    assert refused.status_code == 422 and "last enabled host" in refused.text  # type: ignore[attr-defined]
