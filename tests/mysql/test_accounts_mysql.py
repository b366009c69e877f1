"""Accounts and tokens on MariaDB: the same store, a database without LarsAccount, and the
console answering a token on MySQL (revoked through another store: at once)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from lars.accounts import AccountError, AccountStore, Role
from lars.console import build_console
from lars.dbengine import init_schema, make_engine

pytestmark = pytest.mark.mysql


def test_accounts_on_mysql(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    try:
        store = AccountStore(engine)
        assert store.accounts() == []  # no table yet: nobody, nothing created
        token = store.create_token("deploy", Role.EDITOR, by="t")  # the write creates it
        store.add_user("alice", Role.ADMIN, "alice-password-1", by="t")
        with pytest.raises(AccountError, match="already taken"):
            store.add_user("deploy", Role.VIEWER, "deploy-password", by="t")
        assert store.has_admin()
        found = store.token(token)
        assert found is not None and (found.name, found.role) == ("deploy", Role.EDITOR)
        assert store.token(token.upper()) is None  # digests differ; no case folding
        assert store.login("alice", "alice-password-1") is not None
        assert store.login("alice", "ALICE-PASSWORD-1") is None
        init_schema(engine)  # creating the rest later leaves the table as it is
        assert [(a.kind, a.name) for a in store.accounts()] == [
            ("token", "deploy"),
            ("user", "alice"),
        ]
    finally:
        engine.dispose()


def test_a_token_revoked_elsewhere_is_refused_at_once_on_mysql(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    try:
        init_schema(engine)
        store = AccountStore(engine)
        store.add_user("alice", Role.ADMIN, "alice-password-1", by="t")
        token = store.create_token("ci", Role.VIEWER, by="t")
        with TestClient(build_console(engine, "")) as client:  # no password: an admin exists
            bearer = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/modules", headers=bearer).status_code == 200
            assert client.post("/api/modules", json={}, headers=bearer).status_code == 403
            other = make_engine(mysql_url)  # another process's store, as the CLI would be
            try:
                AccountStore(other).delete("ci", "token")
            finally:
                other.dispose()
            assert client.get("/api/modules", headers=bearer).status_code == 401
    finally:
        engine.dispose()
