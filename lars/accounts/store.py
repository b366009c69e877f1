"""AccountStore: console users and API tokens in the LarsAccount table.

Users and tokens share the table's primary key, so a name is one person or one script,
never both. A user's password is kept as an scrypt hash, a token as its SHA-256 digest.
Every lookup reads the database (a primary-key or indexed read), so an account deleted or
a token revoked from anywhere (the CLI, another console) stops working at its next request.

A database made by the original Lars SQL lacks the table: reads then find nobody (logged
once) and the first write creates it. Database errors become StoreUnavailable here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lars.accounts.passwords import PasswordHash, check_password
from lars.accounts.roles import Principal, Role, check_name
from lars.accounts.tokens import MAX_TOKEN_LEN, new_token, token_digest
from lars.db import lars_account
from lars.errors import StoreUnavailable, ValidationError

__all__ = ["KINDS", "Account", "AccountError", "AccountStore", "UnknownAccount"]

log = logging.getLogger(__name__)

KINDS = ("user", "token")
T = TypeVar("T")
_Row = Row[tuple[object, ...]]


class AccountError(ValidationError):
    """A name taken, a bad role, name or password (exit 2, HTTP 409)."""


class UnknownAccount(AccountError):
    """No user or token of that name (exit 2, HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Account:
    """A row as shown to people: everything except the secret."""

    name: str
    kind: str
    role: Role
    created_at: int
    created_by: str


class AccountStore:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        reserved: frozenset[str] = frozenset(),
    ) -> None:
        """`reserved`: names no account may take (the configured bootstrap admin)."""
        self._engine = engine
        self._clock = clock
        self._reserved = reserved
        self._missing_logged = False
        # Checked when a name is unknown, so a wrong name costs the same scrypt time as a
        # wrong password (a login's timing does not tell which names exist). Made lazily.
        self._decoy: PasswordHash | None = None

    # Writes (each creates the table first when the database lacks it)

    def add_user(self, name: str, role: Role, password: str, *, by: str) -> None:
        check_password(password)
        self._insert(name, "user", role, PasswordHash(password).encode(), by)

    def create_token(self, name: str, role: Role, *, by: str) -> str:
        """A new token for `name`; the plain token is returned once and never stored."""
        token = new_token()
        self._insert(name, "token", role, token_digest(token), by)
        return token

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        self._change(name, "user", secret=PasswordHash(password).encode())

    def set_role(self, name: str, kind: str, role: Role, *, keep_admin: bool = False) -> None:
        """`keep_admin`: refuse to demote the last admin account (a console with no
        bootstrap password would lock everyone out; the CLI stays the way back)."""
        if keep_admin and role != Role.ADMIN:
            self._keep_an_admin(name, kind)
        self._change(name, kind, role=role.value)

    def delete(self, name: str, kind: str, *, keep_admin: bool = False) -> None:
        """Delete user `name` or revoke token `name`; AccountError when there is none.
        `keep_admin`: refuse to delete the last admin account (see set_role)."""
        if keep_admin:
            self._keep_an_admin(name, kind)
        with self._write() as conn:
            done = conn.execute(
                delete(lars_account).where(lars_account.c.name == name, lars_account.c.kind == kind)
            )
            if done.rowcount != 1:
                raise UnknownAccount(f"no {kind} named {name!r}")

    # Reads

    def accounts(self, kind: str | None = None) -> list[Account]:
        query = select(lars_account).order_by(lars_account.c.kind, lars_account.c.name)
        if kind is not None:
            query = query.where(lars_account.c.kind == kind)

        def read(conn: Connection) -> list[Account]:
            return [
                Account(
                    name=r.name,
                    kind=r.kind,
                    role=Role(r.role),
                    created_at=int(r.created_at),
                    created_by=r.created_by,
                )
                for r in conn.execute(query)
                if r.role in Role._value2member_map_
            ]

        return self._read(read, [])

    def login(self, name: str, password: str) -> Principal | None:
        """The user when `password` is theirs (an scrypt check: run it off the event loop)."""
        row = self._read(lambda c: self._row(c, name, "user"), None)
        stored = _decode(row.secret) if row is not None else None
        ok = (stored if stored is not None else self._decoy_hash()).verify(password)
        if row is None or stored is None or not ok:
            return None
        return _principal(row)

    def user(self, name: str) -> Principal | None:
        """The user `name` as they are now (role changes and deletions apply at once)."""
        row = self._read(lambda c: self._row(c, name, "user"), None)
        return _principal(row) if row is not None else None

    def token(self, token: str) -> Principal | None:
        """The principal of a presented token, or None (unknown, revoked, malformed)."""
        if not token or len(token) > MAX_TOKEN_LEN:
            return None
        digest = token_digest(token)
        query = select(lars_account).where(
            lars_account.c.secret == digest, lars_account.c.kind == "token"
        )
        row = self._read(lambda c: c.execute(query).first(), None)
        return _principal(row) if row is not None else None

    def has_admin(self) -> bool:
        """True when some user account may log in as admin (the console then needs no
        configured password)."""
        query = (
            select(func.count())
            .select_from(lars_account)
            .where(lars_account.c.kind == "user", lars_account.c.role == Role.ADMIN.value)
        )
        return bool(self._read(lambda c: c.execute(query).scalar_one(), 0))

    def ensure_table(self) -> None:
        try:
            lars_account.create(self._engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot create the LarsAccount table: {exc}") from exc

    # Inside

    def _keep_an_admin(self, name: str, kind: str) -> None:
        target = self.user(name) if kind == "user" else None
        if target is None or target.role != Role.ADMIN:
            return
        admins = select(func.count()).where(
            lars_account.c.kind == "user", lars_account.c.role == Role.ADMIN.value
        )
        if self._read(lambda c: c.execute(admins).scalar_one(), 0) <= 1:
            raise AccountError(
                f"{name!r} is the last admin account and no bootstrap password is set: "
                "add another admin first (or use lars console user on the server)"
            )

    def _decoy_hash(self) -> PasswordHash:
        if self._decoy is None:
            self._decoy = PasswordHash(new_token())
        return self._decoy

    def _insert(self, name: str, kind: str, role: Role, secret: str, by: str) -> None:
        check_name(name)
        if name in self._reserved:
            raise AccountError(f"the name {name!r} is the configured bootstrap admin's")
        row = {
            "name": name,
            "kind": kind,
            "role": role.value,
            "secret": secret,
            "created_at": int(self._clock()),
            "created_by": by[:128],
        }
        try:
            with self._write() as conn:
                taken = self._row(conn, name, None)
                if taken is not None:
                    raise AccountError(f"the name {name!r} is already taken (a {taken.kind})")
                conn.execute(insert(lars_account).values(row))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, IntegrityError):  # a concurrent insert won
                raise AccountError(f"the name {name!r} is already taken") from None
            raise

    def _change(self, name: str, kind: str, **values: str) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(lars_account)
                .where(lars_account.c.name == name, lars_account.c.kind == kind)
                .values(**values)
            )
            if done.rowcount != 1:
                raise UnknownAccount(f"no {kind} named {name!r}")

    @staticmethod
    def _row(conn: Connection, name: str, kind: str | None) -> _Row | None:
        query = select(lars_account).where(lars_account.c.name == name)
        if kind is not None:
            query = query.where(lars_account.c.kind == kind)
        return conn.execute(query).first()

    def _read(self, fn: Callable[[Connection], T], absent: T) -> T:
        """fn's answer; `absent` when the database has no LarsAccount table."""
        try:
            with self._engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            if self._table_missing():
                if not self._missing_logged:
                    self._missing_logged = True
                    log.warning("no LarsAccount table: no accounts or tokens (lars initdb)")
                return absent
            raise StoreUnavailable(f"account read failed: {type(exc).__name__}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self.ensure_table()
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"account write failed: {type(exc).__name__}") from exc

    def _table_missing(self) -> bool:
        try:
            return not sqlalchemy.inspect(self._engine).has_table(lars_account.name)
        except SQLAlchemyError:
            return False  # the database itself is away


def _decode(secret: str) -> PasswordHash | None:
    try:
        return PasswordHash.decode(secret)
    except ValueError:
        log.warning("an account's password hash is unreadable; its login is refused")
        return None


def _principal(row: _Row) -> Principal | None:
    try:
        role = Role(str(row.role))
    except ValueError:
        return None  # a role this version does not know grants nothing
    return Principal(name=str(row.name), role=role, kind=str(row.kind))
