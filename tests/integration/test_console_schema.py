"""Schemathesis fuzzes the console's JSON API from its own OpenAPI schema.

Every generated request (valid and invalid) goes to a real ConsoleServer on loopback with an
admin's API token (Authorization: Bearer, no cookie, no CSRF header): no 5xx, and every
response matches the schema. Examples are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from lars.accounts import AccountStore, Role
from lars.console import ConsoleServer, build_console
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin

PASSWORD = "schema-password-1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _schema_dict() -> dict[str, object]:
    # The schema does not depend on the database; this engine never connects.
    engine = make_engine("sqlite://")
    try:
        return build_console(engine, PASSWORD).openapi()
    finally:
        engine.dispose()


# Login/logout are tested by hand: fuzzing them would only log the fuzzer out or throttle it.
schema = schemathesis.openapi.from_dict(_schema_dict()).exclude(path_regex=r"^/api/log(in|out)$")


class LiveConsole:
    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url
        self.session = session


@pytest.fixture
def live(sqlite_url: str) -> Iterator[LiveConsole]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for modid, cmdid, ip, port in (
        (1, 1, "10.0.0.1", 80),
        (1, 1, "10.0.0.2", 80),
        (0, 0, "0.0.0.0", 1),
    ):
        admin.add_host(modid, cmdid, ip, port)
    # a held table (as a route service writes it), so the hold and release answers are fuzzed
    admin.audit.append([admin.audit.row(actor="dns", action="hold", version=1, detail="d")])
    # a name the fuzzer will not draw for DELETE /api/tokens/{name}
    token = AccountStore(engine).create_token("fuzz-admin-q7x2k9", Role.ADMIN, by="test")
    AccountStore(engine).add_user("fuzz-user", Role.VIEWER, "fuzz-password-1", by="test")
    server = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)
    server.start()
    session = requests.Session()
    try:
        session.headers["Authorization"] = f"Bearer {token}"
        assert session.get(f"{server.url}/api/session", timeout=30).json()["role"] == "admin"
        yield LiveConsole(server.url, session)
    finally:
        session.close()
        server.stop()
        engine.dispose()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, live: LiveConsole) -> None:
    case.call_and_validate(base_url=live.url, session=live.session, checks=CHECKS, timeout=30)
