"""An edit that keeps hitting serialisation failures, as the operator sees it: the API
answers 503 with the message saying what happened (not "database unavailable"), the CLI
exits 1 with it (issue 18 item 5)."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from lars.boundary import ExitCode, exit_code_for
from lars.console import build_console
from lars.dbengine import init_schema, make_engine
from lars.errors import EditConflict
from lars.routes import routeedit

PASSWORD = "test-password-1"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


def test_the_api_answers_503_saying_what_happened(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def deadlock(*args: object) -> int:
        attempts.append(1)
        err = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        raise OperationalError("UPDATE RouteVersion", {}, err)

    monkeypatch.setattr(routeedit, "_transaction", deadlock)
    app = build_console(engine, PASSWORD)
    with TestClient(app) as client:
        login = client.post("/api/login", json={"password": PASSWORD})
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        body = {"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80}
        response = client.post("/api/modules", json=body)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "deadlock (error 1213)" in detail and "4 attempts" in detail
    assert "nothing was changed" in detail
    assert len(attempts) == routeedit.RETRIES + 1


def test_the_cli_exits_1() -> None:
    assert exit_code_for(EditConflict("route edit not made")) is ExitCode.FAILURE
