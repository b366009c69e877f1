"""Accounts, roles and tokens through real processes: `python -m lars console user|token`
and a `python -m lars console` server that has no configured password (an admin account
lets it start). Two people with different roles share it and are told apart in the
history; a script edits with a token; a token revoked from the shell stops at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_sighup import Proc, stop_cleanly, wait_for

pytestmark = pytest.mark.e2e

TOKEN_LINE = re.compile(r"^lars_[A-Za-z0-9_-]{43}$")
PASSWORDS = {"ada": "ada-password-1", "vic": "vic-password-1", "ed": "ed-password-12"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LARS_CONSOLE_PASSWORD", None)
    env.pop("LARS_DB", None)
    return env


def lars(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    try:
        init_schema(engine)
        RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
        RouteAdmin(engine).add_host(1, 1, "10.0.0.2", 80)
    finally:
        engine.dispose()
    return url


def test_token_create_prints_the_token_last_and_refuses_a_taken_name(db: str) -> None:
    made = lars("console", "token", "create", "deploy", "--role", "editor", "--db", db)
    assert made.returncode == 0, made.stderr
    assert TOKEN_LINE.match(made.stdout.splitlines()[-1])
    again = lars("console", "token", "create", "deploy", "--role", "viewer", "--db", db)
    assert again.returncode == 2 and "already taken" in again.stderr
    as_user = lars("console", "user", "add", "deploy", "--db", db, stdin="pw-deploy-1\n")
    assert as_user.returncode == 2 and "already taken" in as_user.stderr
    no_role = lars("console", "token", "create", "ci", "--db", db)
    assert no_role.returncode == 2 and "--role" in no_role.stderr
    no_argv_password = lars("console", "user", "add", "x", "--password", "p", "--db", db)
    assert no_argv_password.returncode == 2
    listed = lars("console", "token", "list", "--db", db)
    assert listed.returncode == 0 and listed.stdout.split("\t")[:2] == ["deploy", "editor"]
    assert made.stdout.splitlines()[-1] not in listed.stdout
    as_json = lars("console", "token", "list", "--json", "--db", db)
    [entry] = json.loads(as_json.stdout)["tokens"]
    assert (entry["name"], entry["role"], entry["created_by"][:4]) == ("deploy", "editor", "cli:")


def test_token_create_makes_the_missing_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    made = lars("console", "token", "create", "first", "--role", "admin", "--db", url)
    assert made.returncode == 0, made.stderr
    assert TOKEN_LINE.match(made.stdout.splitlines()[-1])


def test_user_commands(db: str) -> None:
    added = lars(
        "console", "user", "add", "ada", "--role", "admin", "--db", db, stdin="ada-pw-123\n"
    )
    assert added.returncode == 0, added.stderr
    short = lars("console", "user", "passwd", "ada", "--db", db, stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    changed = lars(
        "console", "user", "passwd", "ada", "--role", "editor", "--db", db, stdin="ada-pw-456\n"
    )
    assert changed.returncode == 0, changed.stderr
    listed = lars("console", "user", "list", "--db", db)
    assert listed.stdout.split("\t")[:2] == ["ada", "editor"]
    reserved = lars("console", "user", "add", "console", "--db", db, stdin="console-pw-1\n")
    assert reserved.returncode == 2 and "bootstrap" in reserved.stderr
    assert lars("console", "user", "del", "ada", "--db", db).returncode == 0
    gone = lars("console", "user", "del", "ada", "--db", db)
    assert gone.returncode == 2 and "no user named" in gone.stderr


def test_without_a_password_or_an_admin_the_console_refuses_to_start(db: str) -> None:
    refused = lars("console", "--db", db, "--port", str(free_port()))
    assert refused.returncode == 2
    assert "lars console user add NAME --role admin" in refused.stderr


class Console:
    def __init__(self, url: str) -> None:
        self.url = url

    def login(self, user: str) -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.url}/api/login", json={"user": user, "password": PASSWORDS[user]}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        session.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return session


@pytest.fixture
def console(db: str, tmp_path: Path) -> Iterator[Console]:
    for user, role in (("ada", "admin"), ("vic", "viewer"), ("ed", "editor")):
        added = lars(
            "console", "user", "add", user, "--role", role, "--db", db, stdin=PASSWORDS[user] + "\n"
        )
        assert added.returncode == 0, added.stderr
    port = free_port()
    env_backup = os.environ.pop("LARS_CONSOLE_PASSWORD", None)
    try:
        proc = Proc(tmp_path / "console.log", "console", "--db", db, "--port", str(port))
    finally:
        if env_backup is not None:
            os.environ["LARS_CONSOLE_PASSWORD"] = env_backup
    try:
        url = wait_for(proc, r"listening on (http://\S+?),").group(1)
        yield Console(url)
    finally:
        stop_cleanly(proc)


def test_two_people_and_a_script_share_a_console(console: Console, db: str) -> None:
    api = f"{console.url}/api"
    vic, ed = console.login("vic"), console.login("ed")
    assert vic.get(f"{api}/modules", timeout=30).status_code == 200
    refused = vic.post(f"{api}/modules/1/1/hosts", json={"ip": "10.0.0.3", "port": 80}, timeout=30)
    assert refused.status_code == 403
    added = ed.post(f"{api}/modules/1/1/hosts", json={"ip": "10.0.0.3", "port": 80}, timeout=30)
    assert added.status_code == 201, added.text
    assert ed.get(f"{api}/accounts", timeout=30).status_code == 403
    # no bootstrap password is configured: the password alone logs nobody in
    alone = requests.post(f"{api}/login", json={"password": PASSWORDS["ada"]}, timeout=30)
    assert alone.status_code == 401

    # a script with a token made in the shell while the console runs: no login, no CSRF
    made = lars("console", "token", "create", "deploy", "--role", "editor", "--db", db)
    token = made.stdout.splitlines()[-1]
    script = {"Authorization": f"Bearer {token}"}
    drained = requests.post(
        f"{api}/modules/1/1/hosts/10.0.0.2/80/drain", json={}, headers=script, timeout=30
    )
    assert drained.status_code == 200, drained.text

    history = vic.get(f"{api}/history", params={"modid": 1, "cmdid": 1}, timeout=30).json()
    actors = {(e["action"], e["ip"]): e["actor"] for e in history}
    assert actors[("add", "10.0.0.3")] == "ed"
    assert actors[("drain", "10.0.0.2")] == "deploy"

    # revoked from the shell: the very next request is refused
    assert lars("console", "token", "revoke", "deploy", "--db", db).returncode == 0
    after = requests.get(f"{api}/modules", headers=script, timeout=30)
    assert after.status_code == 401
    # an account deleted from the shell is logged out at its next request
    assert lars("console", "user", "del", "vic", "--db", db).returncode == 0
    assert vic.get(f"{api}/modules", timeout=30).status_code == 401
