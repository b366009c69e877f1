"""The base install is the client side: its modules never pull in a server package.

`pip install lars-platform` has protobuf only. These tests run in the full dev venv, so
they check what gets imported (and hide server packages to see the daemons' answer);
.ci/run also installs the wheel alone into a fresh venv and runs the client there.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lars.extras import EXIT_MISSING_EXTRA

# What the [server] and [console] extras bring; none may load for the client side.
HEAVY = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client", "fastapi",
         "starlette", "uvicorn", "jinja2"]  # fmt: skip

CLIENT_MODULES = ["lars", "lars.client", "lars.client.cli", "lars.client.qps", "lars.protocol",
                  "lars.cli", "lars.errors", "lars.config", "lars.extras",
                  "lars.client.regcli", "lars.client.registration",
                  "lars.protocol.checks"]  # fmt: skip

CLIENT_COMMANDS = [["gethost", "1", "1"], ["getroute", "1", "1"],
                   ["report", "1", "1", "10.0.0.1", "80", "0"], ["simulator", "1", "1"],
                   ["qps", "1"], ["bench", "agent", "1"], ["sql", "schema"],
                   ["status"], ["register", "1", "1", "10.0.0.1", "80", "--check", "ttl:5"],
                   ["deregister", "1", "1", "10.0.0.1", "80"],
                   ["heartbeat", "1", "1", "10.0.0.1", "80"]]  # fmt: skip


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def loaded_heavy(code: str) -> list[str]:
    out = python(
        code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert out.returncode == 0, out.stderr
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def test_client_modules_import_no_server_package() -> None:
    assert loaded_heavy("\n".join(f"import {name}" for name in CLIENT_MODULES)) == []


@pytest.mark.parametrize("argv", CLIENT_COMMANDS, ids=lambda argv: " ".join(argv))
def test_client_command_parsers_import_no_server_package(argv: list[str]) -> None:
    """Building `lars <client command>`'s parser loads only the client side."""
    code = f"from lars.cli import build_parser\nbuild_parser({argv!r}).parse_args({argv!r})"
    assert loaded_heavy(code) == []


HIDE = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"
RUN = "from lars.cli import main\nsys.exit(main({argv!r}))\n"


def lars_without(names: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`lars argv` with `names` uninstalled as far as the import system can tell."""
    return python(HIDE.format(names=names) + RUN.format(argv=argv))


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["dns", "--db", "sqlite:///x.db", "-c", "missing.conf"], "server"),
        (["reporter"], "server"),
        (["agent", "--base-port", "1"], "server"),  # would run on asyncio, asks anyway
        (["route", "list"], "server"),
        (["initdb"], "server"),
        (["console"], "console"),
        (["up", "--demo"], "console"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_daemon_without_its_extra_says_which_to_install(argv: list[str], extra: str) -> None:
    hidden = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client"]
    if extra == "console":
        hidden = ["fastapi", "uvicorn"]
    out = lars_without(hidden, argv)
    line = f"lars {argv[0]}: needs the {extra} extra: pip install 'lars-platform[{extra}]'\n"
    assert (out.returncode, out.stdout, out.stderr) == (EXIT_MISSING_EXTRA, "", line)


@pytest.mark.parametrize(
    "argv", [["dns", "--help"], ["route", "add", "-h"], ["console", "--help"], ["up", "-h"]]
)
def test_help_without_the_extra_is_the_real_help(argv: list[str]) -> None:
    """`lars dns --help` printed only the install hint without the server extra."""
    hidden = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client", "fastapi"]
    out = lars_without(hidden, argv)
    command = " ".join(w for w in argv if not w.startswith("-"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: lars {command}")
    assert "options:" in out.stdout and "pip install 'lars-platform[" in out.stdout


def test_one_missing_server_package_is_enough() -> None:
    out = lars_without(["prometheus_client"], ["dns"])
    assert out.returncode == EXIT_MISSING_EXTRA and "[server]" in out.stderr


def test_help_of_a_light_install_lists_every_command() -> None:
    out = lars_without(["sqlalchemy", "fastapi"], ["--help"])
    assert out.returncode == 0, out.stderr
    for command in ("dns", "reporter", "agent", "route", "console", "up", "gethost", "qps",
                    "status", "sql"):  # fmt: skip
        assert f"\n    {command} " in out.stdout, command
    assert "(needs the server extra)" in out.stdout
    assert "(needs the console extra)" in out.stdout


def test_client_commands_run_without_the_extras() -> None:
    """A closed agent port: gethost answers at once, through the client code only."""
    hidden = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client", "fastapi"]
    out = lars_without(hidden, ["gethost", "1", "1", "--agent-port", "1", "--timeout", "0.05",
                                "--no-init"])  # fmt: skip
    assert out.returncode not in (0, EXIT_MISSING_EXTRA) and "extra" not in out.stderr
    assert out.stderr.startswith("lars gethost:"), out.stderr


def test_a_dba_prints_the_schema_without_the_extras() -> None:
    hidden = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client", "fastapi"]
    out = lars_without(hidden, ["sql", "schema"])
    assert out.returncode == 0, out.stderr
    assert "CREATE TABLE" in out.stdout and "RouteData" in out.stdout


def test_an_unrelated_missing_module_is_still_a_bug() -> None:
    """Only the extras' packages are excused: a missing lars module is not hidden."""
    out = python("import sys\nsys.modules['lars.dns.service'] = None\n" + RUN.format(argv=["dns"]))
    assert out.returncode == 1 and "ModuleNotFoundError" in out.stderr


def test_register_help_and_runs_without_the_extras() -> None:
    """`lars register --help` and a register against a closed agent port (exit 3): the
    self-registration commands ship in the client-only install."""
    hidden = ["sqlalchemy", "uvloop", "mmh3", "pymysql", "prometheus_client", "fastapi"]
    out = lars_without(hidden, ["register", "--help"])
    assert out.returncode == 0, out.stderr
    assert "MODID CMDID IP PORT" in out.stdout and "--check" in out.stdout
    for command in ("register", "deregister", "heartbeat"):
        out = lars_without(hidden, [command, "1", "1", "10.0.0.1", "80", "--agent-port", "1",
                                    "--timeout", "0.2"])  # fmt: skip
        assert out.returncode == 3, out.stderr
        assert out.stderr.startswith(f"lars {command}: agent 127.0.0.1:"), out.stderr
