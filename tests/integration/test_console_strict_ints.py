"""Every integer the console reads (form fields, path and query parameters, JSON bodies)
goes through one strict parser: ASCII digits only, with a range.

Before: `²`, `¹²` and `9001²` passed str.isdigit() and made int() raise (500), `٣` and
the fullwidth 5 were stored as 3 and 5, and a path or query value such as `3_0` or `+3` named
module 30 or 3 (pydantic's lax int parsing).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from lars.console import build_console
from lars.console.validate import parse_uint
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin

PASSWORD = "strict-password-1"
NOW = 1_800_000_000.0

# Each passes str.isdigit() or int() (or both) and is not an ASCII decimal number.
NOT_ASCII_DIGITS = [
    "²", "¹²", "9001²", "٣", "\uff15", "\uff18\uff10", "३", "+3", "-1", "3_0", "3.0", "1e3",
    " 3 3", "0x10", "", "  ",
]  # fmt: skip


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pages(engine: Engine) -> Iterator[TestClient]:
    import re

    with TestClient(build_console(engine, PASSWORD, clock=lambda: NOW)) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert csrf
        client.post(
            "/login",
            data={"password": PASSWORD, "csrf": csrf.group(1), "next": "/"},
            follow_redirects=False,
        )
        token = re.search(r'name="csrf" value="([^"]*)"', client.get("/").text)
        assert token
        client.csrf = token.group(1)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    with TestClient(build_console(engine, PASSWORD, clock=lambda: NOW)) as client:
        response = client.post("/api/login", json={"password": PASSWORD})
        assert response.status_code == 200
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def post(client: TestClient, url: str, **fields: str) -> object:
    data = {"csrf": client.csrf, **fields}  # type: ignore[attr-defined]
    return client.post(url, data=data, follow_redirects=False)


# the parser itself


@pytest.mark.parametrize("raw", NOT_ASCII_DIGITS)
def test_parser_refuses_anything_but_ascii_digits(raw: str) -> None:
    assert parse_uint(raw, 0, 2**31 - 1) is None


def test_parser_range_and_leading_zeros() -> None:
    assert parse_uint("0", 0, 10) == 0
    assert parse_uint("010", 0, 10) == 10
    assert parse_uint("11", 0, 10) is None
    assert parse_uint("0", 1, 10) is None
    assert parse_uint(" 7 ", 0, 10) == 7  # surrounding blanks, as a form field may carry
    assert parse_uint("9" * 10_000, 0, 10) is None  # no quadratic int() on huge input


@given(st.text(max_size=30))
@settings(max_examples=400)
def test_parser_never_raises_and_agrees_with_ascii_int(raw: str) -> None:
    got = parse_uint(raw, 0, 65535)
    stripped = raw.strip()
    ascii_number = stripped != "" and all("0" <= ch <= "9" for ch in stripped)
    if ascii_number and len(stripped) <= 20 and int(stripped) <= 65535:
        assert got == int(stripped)
    else:
        assert got is None


# forms: a message beside the field (422, the status of every field error), never 500


@pytest.mark.parametrize("raw", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("field", ["modid", "cmdid", "port"])
def test_add_module_form_refuses_non_ascii_digits(
    pages: TestClient, engine: Engine, field: str, raw: str
) -> None:
    fields = {"modid": "3", "cmdid": "5", "ip": "10.0.0.1", "port": "80", field: raw}
    response = post(pages, "/modules", **fields)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert f'id="add-{field}-err"' in response.text  # type: ignore[attr-defined]
    assert RouteAdmin(engine).list_routes() == []


@pytest.mark.parametrize("raw", NOT_ASCII_DIGITS)
def test_host_forms_refuse_non_ascii_ports_and_weights(
    pages: TestClient, engine: Engine, raw: str
) -> None:
    assert (
        post(pages, "/modules", modid="1", cmdid="1", ip="10.0.0.1", port="80").status_code == 303
    )  # type: ignore[attr-defined]
    add = post(pages, "/modules/1/1/hosts", ip="10.0.0.2", port=raw)
    assert add.status_code == 422 and 'id="add-port-err"' in add.text  # type: ignore[attr-defined]
    edit = post(
        pages, "/modules/1/1/hosts/edit", old_ip="10.0.0.1", old_port=raw, ip="10.0.0.3", port="81"
    )
    assert edit.status_code == 422  # type: ignore[attr-defined]
    edit_new = post(
        pages, "/modules/1/1/hosts/edit", old_ip="10.0.0.1", old_port="80", ip="10.0.0.3", port=raw
    )
    assert edit_new.status_code == 422  # type: ignore[attr-defined]
    weight = post(pages, "/modules/1/1/hosts/weight", ip="10.0.0.1", port="80", weight=raw)
    assert weight.status_code == 422 and "weight must be" in weight.text  # type: ignore[attr-defined]
    for action in ("delete", "drain", "undrain"):
        response = post(pages, f"/modules/1/1/hosts/{action}", ip="10.0.0.1", port=raw)
        assert response.status_code == 422, action  # type: ignore[attr-defined]
    routes = RouteAdmin(engine).list_routes()
    assert [(r.ip, r.port, r.weight) for r in routes] == [("10.0.0.1", 80, 1)]


@pytest.mark.parametrize("raw", ["3_0", "+30", "30.0", "٣٠", "३०", " 30"])
def test_page_paths_name_no_module_by_a_loose_spelling(pages: TestClient, raw: str) -> None:
    assert (
        post(pages, "/modules", modid="30", cmdid="1", ip="10.0.0.1", port="80").status_code == 303
    )  # type: ignore[attr-defined]
    assert pages.get("/modules/30/1").status_code == 200
    assert pages.get(f"/modules/{raw}/1").status_code == 404
    assert post(pages, f"/modules/{raw}/1/hosts", ip="10.0.0.9", port="80").status_code == 404  # type: ignore[attr-defined]


# the JSON API: 422 naming the field, never 500


@pytest.mark.parametrize("raw", ["3_0", "+30", "30.0", "٣٠", "\uff13\uff10", "²", " 30"])
def test_api_paths_and_queries_are_strict(api: TestClient, raw: str) -> None:
    body = {"modid": 30, "cmdid": 1, "ip": "10.0.0.1", "port": 80}
    assert api.post("/api/modules", json=body).status_code == 201
    for path in (
        f"/api/modules/{raw}/1",
        f"/api/modules/30/{raw}",
        f"/api/modules/30/1/hosts/10.0.0.1/{raw}/weight",
        f"/api/history?modid={raw}",
        f"/api/history?limit={raw}",
        f"/api/history?before={raw}",
    ):
        weight = path.endswith("/weight")
        response = api.put(path, json={"weight": 2}) if weight else api.get(path)
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.json()["detail"], path


@pytest.mark.parametrize("value", ["3", "²", "٣", "\uff15", 3.0, True, None, [3]])
@pytest.mark.parametrize("field", ["modid", "cmdid", "port"])
def test_api_json_integers_are_strict(api: TestClient, field: str, value: object) -> None:
    body: dict[str, object] = {"modid": 3, "cmdid": 5, "ip": "10.0.0.1", "port": 80}
    body[field] = value
    response = api.post("/api/modules", json=body)
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])
    assert api.get("/api/modules").json() == []


@pytest.mark.parametrize("value", ["2", "²", "٣", 2.0, True])
def test_api_weight_is_strict(api: TestClient, value: object) -> None:
    body = {"modid": 3, "cmdid": 5, "ip": "10.0.0.1", "port": 80}
    assert api.post("/api/modules", json=body).status_code == 201
    response = api.put("/api/modules/3/5/hosts/10.0.0.1/80/weight", json={"weight": value})
    assert response.status_code == 422, response.text
    assert "weight" in str(response.json()["detail"])


@given(raw=st.text(max_size=12))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_form_integer_answers_500(pages: TestClient, raw: str) -> None:
    response = post(pages, "/modules", modid=raw, cmdid="1", ip="10.0.0.1", port=raw)
    assert response.status_code in (303, 422), response.text  # type: ignore[attr-defined]
