"""`lars console user ...` and `lars console token ...`: accounts and API tokens from a shell.

Both edit the LarsAccount table through lars.accounts.AccountStore (the code behind the
console's Accounts page), creating it when the database lacks it. The database comes from
the admin commands' one selection rule (lars/dbselect.py: --db, -c FILE, LARS_DB, ...).
Passwords are read from a prompt (twice) or, when stdin is not a terminal, from its first
line; never from the command line, which `ps` shows to everyone. `token create` prints the
token alone on the last line of stdout, for scripts: `TOKEN=$(lars console token create
deploy --role editor --db URL | tail -1)`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from lars.accounts import Account, AccountStore, Role
from lars.config import IniFile
from lars.console.config import DEFAULT_USER
from lars.dbengine import init_schema, is_sqlite, make_engine
from lars.dbselect import select_admin_db
from lars.errors import ValidationError
from lars.jsonout import add_json_flag, print_json
from lars.routes.audit import cli_actor

__all__ = ["register"]

ROLES = [r.value for r in Role]


def register(console: argparse.ArgumentParser) -> None:
    """Add the `user` and `token` subcommands to the `lars console` parser (without one,
    `lars console` still runs the server)."""
    sub = console.add_subparsers(dest="console_command", metavar="{user,token}")
    user = sub.add_parser("user", help="console accounts: add, list, del, passwd")
    users = user.add_subparsers(dest="user_command", metavar="{add,list,del,passwd}", required=True)
    p = users.add_parser("add", help="add an account; its password is prompted or read from stdin")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=ROLES, default=Role.VIEWER.value, help="default viewer")
    _db_args(p)
    p.set_defaults(func=run_user_add)
    p = users.add_parser("list", help="list the accounts")
    _db_args(p)
    add_json_flag(p)
    p.set_defaults(func=run_list, kind="user")
    p = users.add_parser("del", help="delete an account (its console sessions end)")
    p.add_argument("name", metavar="NAME")
    _db_args(p)
    p.set_defaults(func=run_delete, kind="user")
    p = users.add_parser("passwd", help="set an account's password (prompted or from stdin)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=ROLES, help="also change its role")
    _db_args(p)
    p.set_defaults(func=run_passwd)

    token = sub.add_parser("token", help="API tokens: create, list, revoke")
    tokens = token.add_subparsers(
        dest="token_command", metavar="{create,list,revoke}", required=True
    )
    p = tokens.add_parser("create", help="create a token; printed once, on the last line")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=ROLES, required=True)
    _db_args(p)
    p.set_defaults(func=run_token_create)
    p = tokens.add_parser("list", help="list the tokens (never their secret)")
    _db_args(p)
    add_json_flag(p)
    p.set_defaults(func=run_list, kind="token")
    p = tokens.add_parser("revoke", help="revoke a token: its next request gets 401")
    p.add_argument("name", metavar="NAME")
    _db_args(p)
    p.set_defaults(func=run_delete, kind="token")


def _db_args(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a -c/--db given before the subcommand (`lars console -c F user list`) stays.
    p.add_argument(
        "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help="a Lars INI file"
    )
    p.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="database URL (else -c FILE's [mysql], $LARS_DB, /etc/lars/lars.conf, ./lars.db)",
    )


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[AccountStore]:
    config = getattr(args, "config", None)
    selection = select_admin_db(getattr(args, "db", None), config, os.environ, Path.cwd())
    if selection.announce:
        print(f"lars console: using {selection.source}", file=sys.stderr)
    bootstrap = IniFile.load(config).get("console", "user", DEFAULT_USER)
    engine = make_engine(selection.url)
    try:
        if is_sqlite(engine):
            init_schema(engine)  # as `lars route` does: the embedded database needs no initdb
        store = AccountStore(engine, reserved=frozenset({bootstrap}))
        store.ensure_table()
        yield store
    finally:
        engine.dispose()


def read_password(prompt: str, stdin: TextIO | None = None) -> str:
    """A password from the terminal (asked twice) or the first line of piped stdin."""
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ValidationError("the two passwords differ")
        return first
    line = stream.readline()
    return line[:-1] if line.endswith("\n") else line


def run_user_add(args: argparse.Namespace) -> int:
    password = read_password(f"password for {args.name}: ")
    with _store(args) as store:
        store.add_user(args.name, Role(args.role), password, by=cli_actor())
    print(f"lars console: user {args.name} added ({args.role})")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    password = read_password(f"new password for {args.name}: ")
    with _store(args) as store:
        store.set_password(args.name, password)
        if args.role:
            store.set_role(args.name, "user", Role(args.role))
    print(
        f"lars console: password of {args.name} changed"
        + (f", role {args.role}" if args.role else "")
    )
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.delete(args.name, args.kind)
    done = "deleted" if args.kind == "user" else "revoked"
    print(f"lars console: {args.kind} {args.name} {done}")
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    with _store(args) as store:
        token = store.create_token(args.name, Role(args.role), by=cli_actor())
    print(f"lars console: token {args.name} ({args.role}) created; it is shown only now:")
    print(token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        accounts = store.accounts(args.kind)
    if args.json:
        print_json({f"{args.kind}s": [_json(a) for a in accounts]})
        return 0
    for a in accounts:
        print(_row(a))
    if not accounts:
        print(f"lars console: no {args.kind}s", file=sys.stderr)
    return 0


def _json(a: Account) -> dict[str, object]:
    return {
        "name": a.name,
        "role": a.role.value,
        "created_at": a.created_at,
        "created_by": a.created_by,
    }


def _row(a: Account) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(a.created_at))
    return f"{a.name}\t{a.role.value}\t{created}\t{a.created_by}"
