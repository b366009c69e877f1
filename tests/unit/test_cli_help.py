"""lars/cli_help.json holds the real --help of every command that needs an extra, so a
light install shows it (`lars dns --help` printed only the install hint there)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lars.cli import COMMAND_MODULES, build_parser
from lars.cli_help import HELP_FILE, WIDTH, load, lookup
from lars.extras import needs_extra

WRITE = "LARS_WRITE_CLI_HELP"


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    yield " ".join(path), parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def _current(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    commands = {c for m, cs in COMMAND_MODULES.items() if needs_extra(m) for c in cs}
    return {
        path: text
        for path, text in _walk(build_parser(), ())
        if path and path.split()[0] in commands
    }


def test_the_kept_help_is_the_parsers_help(monkeypatch: pytest.MonkeyPatch) -> None:
    current = _current(monkeypatch)
    assert {"dns", "reporter", "agent", "console", "up", "route", "route add", "initdb"} <= set(
        current
    )
    if os.environ.get(WRITE) == "1":
        HELP_FILE.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert load() == current, (
        f"{HELP_FILE.name} is out of date: {WRITE}=1 python -m pytest {__file__}"
    )


def test_lookup_takes_the_longest_command_path() -> None:
    assert lookup(["route", "add", "1", "--db", "x"]) == load()["route add"]
    assert lookup(["dns", "--db", "x"]) == load()["dns"]
    assert lookup(["route", "nonsense"]) == load()["route"]
    assert lookup(["gethost"]) is None


def test_a_stand_in_prints_the_real_help(tmp_path: object) -> None:
    """Without the server extra, `lars dns --help` prints dns's help and the install line,
    exit 0 (the light install itself is checked in tests/packaging and .ci/run)."""
    code = (
        "import sys, lars.extras as e; e.missing_extra = lambda m: e._EXTRA_OF_MODULE.get(m);"
        "import lars.cli; sys.exit(lars.cli.main(sys.argv[1:]))"
    )
    env = {**os.environ, "COLUMNS": str(WIDTH)}
    for argv, key in ((["dns", "--help"], "dns"), (["route", "add", "-h"], "route add")):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           env=env, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(load()[key])
        assert "pip install 'lars-platform[" in r.stdout
    r = subprocess.run([sys.executable, "-c", code, "dns", "--db", "x"], capture_output=True,
                       text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 5 and "needs the server extra" in r.stderr
