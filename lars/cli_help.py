"""The --help text of every command that needs an install extra, kept for the light install.

A client-only install (protobuf alone) cannot import the daemons' modules, so their
argument parsers do not exist there; `lars dns --help` still has to show the real help.
`lars/cli_help.json` holds what those parsers print (at WIDTH columns), taken from a full
install. tests/unit/test_cli_help.py fails when it drifts from the parsers and says how to
write it again (`LARS_WRITE_CLI_HELP=1 python -m pytest tests/unit/test_cli_help.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["HELP_FILE", "WIDTH", "load", "lookup"]

HELP_FILE = Path(__file__).with_name("cli_help.json")
WIDTH = 100  # COLUMNS while the texts are made, so they do not depend on a terminal


def load() -> dict[str, str]:
    """{"dns": help, "route add": help, ...}; empty when the file is missing or broken."""
    try:
        data = json.loads(HELP_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def lookup(words: list[str]) -> str | None:
    """The help of the longest command path that `words` (argv after `lars`) names."""
    texts = load()
    path = [w for w in words if not w.startswith("-")]
    while path:
        text = texts.get(" ".join(path))
        if text is not None:
            return text
        path.pop()
    return None
