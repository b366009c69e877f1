"""The console's HTML pages and forms: login, field errors beside fields, edits, fragments."""

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
from lars.routes.admin import RouteAdmin

PASSWORD = "page-password-1"
NOW = 1_800_000_000.0


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def anon(engine: Engine) -> Iterator[TestClient]:
    with TestClient(build_console(engine, PASSWORD, clock=lambda: NOW)) as client:
        yield client


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} field"
    return match.group(1)


def log_in(client: TestClient, next_url: str = "/") -> str:
    """Log in through the form; return the session's CSRF token."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"password": PASSWORD, "csrf": hidden(page.text, "csrf"), "next": next_url},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return hidden(client.get("/").text, "csrf")


@pytest.fixture
def client(anon: TestClient) -> TestClient:
    anon.csrf = log_in(anon)  # type: ignore[attr-defined]
    return anon


def post(client: TestClient, url: str, **fields: object) -> object:
    data = {"csrf": client.csrf, **{k: str(v) for k, v in fields.items()}}  # type: ignore[attr-defined]
    return client.post(url, data=data, follow_redirects=False)


def test_login_page_and_redirect_back(anon: TestClient) -> None:
    to_login = anon.get("/versions", follow_redirects=False)
    assert to_login.headers["location"] == "/login?next=%2Fversions"
    page = anon.get(to_login.headers["location"])
    assert 'type="password"' in page.text and hidden(page.text, "next") == "/versions"
    response = anon.post(
        "/login",
        data={"password": PASSWORD, "csrf": hidden(page.text, "csrf"), "next": "/versions"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/versions"
    assert "Route versions" in anon.get("/versions").text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil", "x"])
def test_login_never_redirects_off_site(anon: TestClient, target: str) -> None:
    page = anon.get("/login")
    response = anon.post(
        "/login",
        data={"password": PASSWORD, "csrf": hidden(page.text, "csrf"), "next": target},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_wrong_password_shows_the_message_beside_the_field(anon: TestClient) -> None:
    page = anon.get("/login")
    response = anon.post(
        "/login", data={"password": "nope-nope", "csrf": hidden(page.text, "csrf")}
    )
    assert response.status_code == 401
    assert 'id="password-err"' in response.text and "Wrong password" in response.text
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_login_form_needs_its_csrf_token(anon: TestClient) -> None:
    anon.get("/login")
    response = anon.post("/login", data={"password": PASSWORD, "csrf": "forged"})
    assert response.status_code == 401 and "expired" in response.text
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_forms_need_the_session_csrf_token(client: TestClient, engine: Engine) -> None:
    response = client.post(
        "/modules",
        data={"csrf": "forged", "modid": "1", "cmdid": "1", "ip": "10.0.0.1", "port": "80"},
    )
    assert response.status_code == 403
    assert RouteAdmin(engine).list_routes() == []
    assert client.post("/logout", data={}).status_code == 403


def test_add_module_then_see_it_listed(client: TestClient) -> None:
    response = post(
        client,
        "/modules",
        modid=4,
        cmdid=2,
        ip="10.1.1.1",
        port=9000,
        mod_desc="payments",
        cmd_desc="charge",
    )
    assert response.status_code == 303 and response.headers["location"] == "/modules/4/2"
    page = client.get("/modules/4/2")
    assert "Module 4:2 added with host 10.1.1.1:9000" in page.text  # flash, shown once
    assert "payments" in page.text and "10.1.1.1:9000" in page.text
    assert "Module 4:2 added" not in client.get("/modules/4/2").text
    listing = client.get("/")
    assert 'href="/modules/4/2"' in listing.text and "payments" in listing.text


def test_bad_fields_are_shown_beside_each_field(client: TestClient) -> None:
    response = post(client, "/modules", modid="x", cmdid="2147483648", ip="10.0.0", port=0)
    assert response.status_code == 422
    html = response.text
    for field, message in (
        ("modid", "whole number"),
        ("cmdid", "whole number"),
        ("ip", "dotted IPv4"),
        ("port", "1..65535"),
    ):
        assert re.search(rf'id="add-{field}-err">[^<]*{re.escape(message)}', html), field
    assert 'value="10.0.0"' in html  # what the user typed stays in the field


def test_add_edit_delete_host_through_forms(client: TestClient, engine: Engine) -> None:
    post(client, "/modules", modid=1, cmdid=1, ip="10.0.0.1", port=80)
    assert post(client, "/modules/1/1/hosts", ip="10.0.0.2", port=80).status_code == 303
    dup = post(client, "/modules/1/1/hosts", ip="10.0.0.2", port=80)
    assert dup.status_code == 422 and 'id="add-port-err"' in dup.text and "already" in dup.text
    bad = post(client, "/modules/1/1/hosts", ip="nope", port=80)
    assert bad.status_code == 422 and 'id="add-ip-err"' in bad.text
    edit = post(
        client, "/modules/1/1/hosts/edit", old_ip="10.0.0.2", old_port=80, ip="10.0.0.3", port=81
    )
    assert edit.status_code == 303
    bad_edit = post(
        client, "/modules/1/1/hosts/edit", old_ip="10.0.0.3", old_port=81, ip="10.0.0.3", port=99999
    )
    assert bad_edit.status_code == 422
    assert 'id="edit-10.0.0.3-81-port-err"' in bad_edit.text and "<details open" in bad_edit.text
    gone = post(
        client, "/modules/1/1/hosts/edit", old_ip="10.9.9.9", old_port=1, ip="10.0.0.4", port=1
    )
    assert gone.status_code == 404
    assert post(client, "/modules/1/1/hosts/delete", ip="10.0.0.3", port=81).status_code == 303
    assert post(client, "/modules/1/1/hosts/delete", ip="10.0.0.3", port=81).status_code == 404
    assert [(r.ip, r.port) for r in RouteAdmin(engine).list_routes()] == [("10.0.0.1", 80)]


def test_descriptions_and_delete_module(client: TestClient, engine: Engine) -> None:
    post(client, "/modules", modid=2, cmdid=3, ip="10.0.0.1", port=80)
    saved = post(client, "/modules/2/3/descriptions", mod_desc="search", cmd_desc="query")
    assert saved.status_code == 303
    assert "search" in client.get("/modules/2/3").text
    too_long = post(client, "/modules/2/3/descriptions", mod_desc="x" * 300, cmd_desc="")
    assert too_long.status_code == 422 and 'id="desc-mod_desc-err"' in too_long.text
    deleted = post(client, "/modules/2/3/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    assert "Module 2:3 deleted" in client.get("/").text
    assert RouteAdmin(engine).list_routes() == []
    assert post(client, "/modules/2/3/delete").status_code == 404


def test_overloaded_and_stale_hosts_are_highlighted(client: TestClient, engine: Engine) -> None:
    post(client, "/modules", modid=5, cmdid=5, ip="10.0.0.1", port=80)
    post(client, "/modules/5/5/hosts", ip="10.0.0.2", port=80)
    with engine.begin() as conn:
        for ip, ts, over in (("10.0.0.1", NOW, "1"), ("10.0.0.2", NOW - 3600, "0")):
            conn.execute(
                insert(server_call_status).values(
                    modid=5,
                    cmdid=5,
                    ip=dotted_to_uint(ip),
                    port=80,
                    caller=dotted_to_uint("192.168.9.9"),
                    succ_cnt=3,
                    err_cnt=1,
                    ts=int(ts),
                    overload=over,
                )
            )
    part = client.get("/modules/5/5/hosts.part")
    assert part.status_code == 200 and "<html" not in part.text
    assert re.search(r'class="state-overload" data-host="10.0.0.1:80"', part.text)
    assert re.search(r'class="state-stale" data-host="10.0.0.2:80"', part.text)
    assert "192.168.9.9" in part.text and "25.0%" in part.text and "<svg" in part.text
    listing = client.get("/modules.part")
    assert 'class="state-overload"' in listing.text and "1 overloaded" in listing.text


def test_module_list_filter_and_fragments(client: TestClient) -> None:
    post(client, "/modules", modid=1, cmdid=1, ip="10.0.0.1", port=80, mod_desc="alpha")
    post(client, "/modules", modid=2, cmdid=1, ip="10.0.0.1", port=80, mod_desc="beta")
    page = client.get("/", params={"q": "beta"})
    assert 'href="/modules/2/1"' in page.text and 'href="/modules/1/1"' not in page.text
    assert 'data-refresh="/modules.part?q=beta&amp;state="' in page.text
    part = client.get("/modules.part", params={"q": "alpha", "state": "nodata"})
    assert 'href="/modules/1/1"' in part.text and 'href="/modules/2/1"' not in part.text
    assert "No modules match" in client.get("/", params={"state": "overload"}).text


def test_versions_page(client: TestClient) -> None:
    assert "No pending changes" in client.get("/versions").text
    post(client, "/modules", modid=7, cmdid=8, ip="10.0.0.1", port=80)
    page = client.get("/versions")
    assert 'href="/modules/7/8"' in page.text
    assert re.search(r'id="current-version">\d+<', page.text)
    part = client.get("/versions.part")
    assert part.status_code == 200 and "<html" not in part.text
    assert 'href="/modules/7/8"' in part.text


@pytest.mark.parametrize(
    "path", ["/modules/1/1", "/modules/x/1", "/modules/1/99999999999", "/nope"]
)
def test_unknown_pages_are_404_pages(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and "<html" in response.text


def test_text_is_escaped(client: TestClient) -> None:
    post(
        client,
        "/modules",
        modid=1,
        cmdid=1,
        ip="10.0.0.1",
        port=80,
        mod_desc="<script>alert(1)</script>",
    )
    html = client.get("/modules/1/1").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_logout(client: TestClient) -> None:
    response = post(client, "/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_module_page_says_which_period_its_health_figures_cover(client: TestClient) -> None:
    post(client, "/modules", modid=3, cmdid=4, ip="10.0.0.1", port=80)
    page = client.get("/modules/3/4").text
    assert "data-window-note" in page
    assert "idle_timeout" in page and "15 s by default" in page
    assert "older than 60 s reads stale" in page  # the console's stale_after
    assert "over each caller's current window" in page
