"""`--json` for the tools: one flag, one way to print, the same shapes everywhere.

A command given `--json` prints exactly one JSON object on stdout (one line, keys in a
stable order), also when it fails: the failure line still goes to stderr and the exit
code is the same as without `--json` (lars.boundary). `lars route list --json` keeps
its one-object-per-host lines. Standard library only (client installs have no extras).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_json_flag", "print_json"]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of text"
    )


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()
