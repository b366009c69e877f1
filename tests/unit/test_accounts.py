"""lars.accounts: password hashes, token digests, and the LarsAccount store on SQLite."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from lars.accounts import AccountError, AccountStore, PasswordHash, Role, UnknownAccount
from lars.accounts.roles import check_name
from lars.accounts.tokens import new_token, token_digest
from lars.db import lars_account
from lars.dbengine import init_schema, make_engine
from lars.errors import ValidationError

PASSWORD = "correct horse 1"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> AccountStore:
    return AccountStore(engine, clock=lambda: 1_700_000_000.0, reserved=frozenset({"console"}))


def _secrets(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.name: r.secret for r in conn.execute(select(lars_account))}


# Hashing


def test_a_password_hash_round_trips_through_its_text_form() -> None:
    text = PasswordHash(PASSWORD).encode()
    assert text.startswith("scrypt$16384$8$1$") and PASSWORD not in text
    again = PasswordHash.decode(text)
    assert again.verify(PASSWORD)
    assert not again.verify(PASSWORD + "x")
    assert not again.verify("")
    assert not again.verify("x" * 5000)  # refused unhashed
    assert PasswordHash(PASSWORD).encode() != text  # a fresh salt every time


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256$abc",
        "scrypt$16384$8$1$c2FsdA",
        "scrypt$3$8$1$c2FsdHNhbHQ$" + "A" * 43,  # n not a power of two
        "scrypt$2097152$8$1$c2FsdHNhbHQ$" + "A" * 43,  # n beyond the memory cap
        "scrypt$16384$8$1$c2FsdHNhbHQ$QUJD",  # digest of the wrong size
        "scrypt$x$8$1$c2FsdHNhbHQ$" + "A" * 43,
    ],
)
def test_a_malformed_stored_hash_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        PasswordHash.decode(text)


def test_a_token_is_url_safe_high_entropy_and_stored_as_its_sha256() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    allowed = set(string.ascii_letters + string.digits + "-_")
    for token in tokens:
        assert token.startswith("lars_") and len(token) == 5 + 43
        assert set(token) <= allowed
    token = next(iter(tokens))
    assert token_digest(token) == "sha256$" + hashlib.sha256(token.encode()).hexdigest()


@given(st.text(min_size=1, max_size=70))
@settings(max_examples=200)
def test_names_follow_one_rule(name: str) -> None:
    ok = (
        len(name) <= 64
        and name[0] in string.ascii_lowercase + string.digits
        and all(c in string.ascii_lowercase + string.digits + "._@-" for c in name)
    )
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(ValidationError):
            check_name(name)


# The store


def test_users_log_in_with_their_password_only(store: AccountStore, engine: Engine) -> None:
    store.add_user("alice", Role.EDITOR, PASSWORD, by="cli:root")
    principal = store.login("alice", PASSWORD)
    assert principal is not None and (principal.name, principal.role) == ("alice", Role.EDITOR)
    assert store.login("alice", "wrong password") is None
    assert store.login("nobody", PASSWORD) is None
    secret = _secrets(engine)["alice"]
    assert secret.startswith("scrypt$") and PASSWORD not in secret
    [account] = store.accounts()
    assert (account.kind, account.created_at, account.created_by) == (
        "user",
        1_700_000_000,
        "cli:root",
    )


def test_a_password_change_takes_over(store: AccountStore) -> None:
    store.add_user("alice", Role.VIEWER, PASSWORD, by="t")
    store.set_password("alice", "another password")
    assert store.login("alice", PASSWORD) is None
    assert store.login("alice", "another password") is not None
    with pytest.raises(UnknownAccount):
        store.set_password("bob", "another password")
    with pytest.raises(ValidationError, match="at least 8"):
        store.set_password("alice", "short")


def test_tokens_are_found_by_digest_until_revoked(store: AccountStore, engine: Engine) -> None:
    token = store.create_token("deploy", Role.EDITOR, by="t")
    assert _secrets(engine)["deploy"] == token_digest(token)
    principal = store.token(token)
    assert principal is not None and (principal.name, principal.role, principal.kind) == (
        "deploy",
        Role.EDITOR,
        "token",
    )
    assert store.token(token + "x") is None
    assert store.token("") is None
    assert store.token("x" * 10_000) is None
    assert store.login("deploy", token) is None  # a token is not a password
    store.delete("deploy", "token")
    assert store.token(token) is None
    with pytest.raises(UnknownAccount):
        store.delete("deploy", "token")


def test_users_and_tokens_share_one_namespace(store: AccountStore) -> None:
    store.create_token("ci", Role.VIEWER, by="t")
    with pytest.raises(AccountError, match="already taken"):
        store.add_user("ci", Role.VIEWER, PASSWORD, by="t")
    with pytest.raises(AccountError, match="already taken"):
        store.create_token("ci", Role.ADMIN, by="t")
    with pytest.raises(AccountError, match="bootstrap"):
        store.add_user("console", Role.ADMIN, PASSWORD, by="t")
    with pytest.raises(UnknownAccount):
        store.delete("ci", "user")  # a token is not deleted as a user
    assert [(a.name, a.kind) for a in store.accounts()] == [("ci", "token")]


def test_roles_change_and_admins_are_counted(store: AccountStore) -> None:
    assert not store.has_admin()
    store.create_token("robot", Role.ADMIN, by="t")
    assert not store.has_admin()  # a token cannot log in to the console
    store.add_user("alice", Role.VIEWER, PASSWORD, by="t")
    store.set_role("alice", "user", Role.ADMIN)
    assert store.has_admin()
    principal = store.user("alice")
    assert principal is not None and principal.role == Role.ADMIN
    store.delete("alice", "user")
    assert store.user("alice") is None and not store.has_admin()


def test_an_original_database_without_the_table(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE RouteData (id INTEGER PRIMARY KEY)")
        store = AccountStore(engine)
        assert store.accounts() == [] and not store.has_admin()
        assert store.token(new_token()) is None and store.login("alice", PASSWORD) is None
        token = store.create_token("deploy", Role.VIEWER, by="t")  # the write creates it
        assert store.token(token) is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", ["root", "", "Admin "])
def test_roles_parse_strictly(role: str) -> None:
    if role.strip().lower() == "admin":
        assert Role.parse(role) == Role.ADMIN
    else:
        with pytest.raises(ValidationError, match="viewer, editor or admin"):
            Role.parse(role)
    assert Role.ADMIN.allows(Role.EDITOR) and not Role.VIEWER.allows(Role.EDITOR)


def test_the_last_admin_stays_when_asked(store: AccountStore) -> None:
    store.add_user("ada", Role.ADMIN, PASSWORD, by="t")
    with pytest.raises(AccountError, match="last admin"):
        store.delete("ada", "user", keep_admin=True)
    with pytest.raises(AccountError, match="last admin"):
        store.set_role("ada", "user", Role.EDITOR, keep_admin=True)
    store.add_user("bea", Role.ADMIN, PASSWORD, by="t")
    store.set_role("ada", "user", Role.EDITOR, keep_admin=True)  # bea is still an admin
    with pytest.raises(AccountError, match="last admin"):
        store.delete("bea", "user", keep_admin=True)
    store.delete("bea", "user")  # the CLI's way back: no guard
    assert not store.has_admin()
