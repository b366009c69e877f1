"""The login form of a throttled client: 429 with Retry-After, as the API answers.

It answered 401 with "wrong password, or too many attempts", so neither a person nor a
client could tell a lockout from a typo.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from lars.console import build_console
from lars.dbengine import init_schema, make_engine

PASSWORD = "form-password-1"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def anon(engine: Engine, clock: Clock) -> Iterator[TestClient]:
    with TestClient(build_console(engine, PASSWORD, clock=clock)) as client:
        yield client


def submit(client: TestClient, password: str) -> object:
    page = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert match
    return client.post(
        "/login", data={"password": password, "csrf": match.group(1)}, follow_redirects=False
    )


def test_a_throttled_form_login_is_429_with_retry_after(anon: TestClient, clock: Clock) -> None:
    for _ in range(5):
        wrong = submit(anon, "not-the-password")
        assert wrong.status_code == 401  # type: ignore[attr-defined]
        assert "Wrong password." in wrong.text  # type: ignore[attr-defined]
        assert "retry-after" not in wrong.headers  # type: ignore[attr-defined]
    clock.now += 20.0
    throttled = submit(anon, PASSWORD)  # even the right password
    assert throttled.status_code == 429  # type: ignore[attr-defined]
    assert throttled.headers["retry-after"] == "40"  # type: ignore[attr-defined]
    assert "Too many failed logins: wait 40 s" in throttled.text  # type: ignore[attr-defined]
    assert "lars_session" not in throttled.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    clock.now = NOW + 60.0
    assert submit(anon, PASSWORD).status_code == 303  # type: ignore[attr-defined]


def test_a_stale_overloaded_host_reads_stale_on_the_page(anon: TestClient, engine: Engine) -> None:
    """The HTML side of the stale rule (the browser test shows the colours)."""
    from sqlalchemy import insert

    from lars.db import server_call_status
    from lars.protocol.ipv4 import dotted_to_uint
    from lars.routes.admin import RouteAdmin

    RouteAdmin(engine).add_host(5, 1, "10.0.5.1", 80)
    with engine.begin() as conn:
        conn.execute(insert(server_call_status).values(
            modid=5, cmdid=1, ip=dotted_to_uint("10.0.5.1"), port=80,
            caller=dotted_to_uint("192.168.0.1"), succ_cnt=1, err_cnt=9, ts=int(NOW - 853),
            overload="1"))  # fmt: skip
    assert submit(anon, PASSWORD).status_code == 303  # type: ignore[attr-defined]
    html = anon.get("/modules/5/1/hosts.part").text
    assert 'class="state-stale" data-host="10.0.5.1:80"' in html
    assert "state-overload" not in html
