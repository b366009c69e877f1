"""The registrations file: what the agent holds survives its restart.

SIGTERM does not deregister anything: leaving takes an explicit deregister. The agent
writes the file after every change of its registrations or of a verdict (a temporary
file beside it, moved into place with os.replace, so a reader never sees half a file)
before it answers the request that made the change, and reads it at start; the states
are restored as saved, so a restart does not make passing instances leave and come back.

Format 1: {"format": 1, "saved_at": unix time, "instances": [{"modid", "cmdid", "ip"
(dotted), "port", "check" (tcp | http://... | ttl:S), "state" (pending | passing |
failing), "registered_at" (unix time), and the instance's own "interval", "timeout",
"fail_after", "pass_after" when it set them}]}. A missing file is normal; an unreadable
one is logged and the agent starts without registrations; a bad entry is skipped (logged).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lars.agent.checks import CheckState
from lars.agent.registry import Entry, InstanceKey
from lars.errors import ValidationError
from lars.protocol import dotted_to_wire, wire_to_dotted
from lars.protocol.checks import Check, parse_check

__all__ = ["RegistrationFile", "SavedInstance"]

log = logging.getLogger(__name__)

FORMAT = 1
_SETTINGS = ("interval", "timeout", "fail_after", "pass_after")


@dataclass(frozen=True, slots=True)
class SavedInstance:
    key: InstanceKey
    check: Check
    state: CheckState
    registered_at: float


class RegistrationFile:
    """Reads and atomically writes one registrations file (its owner thread only)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.writes = 0
        self.write_errors = 0

    def load(self) -> list[SavedInstance]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            log.error("registrations file %s unreadable (%s); starting without", self.path, exc)
            return []
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not a format 1 registrations file")
            items = doc.get("instances")
            if not isinstance(items, list):
                raise ValueError("no instances list")
        except ValueError as exc:
            log.error("registrations file %s malformed (%s); starting without", self.path, exc)
            return []
        out: list[SavedInstance] = []
        bad = 0
        for item in items:
            try:
                out.append(_parse(item))
            except (KeyError, TypeError, ValueError):  # ValidationError is a ValueError
                bad += 1
        if bad:
            log.error("registrations file %s: %d bad entries skipped", self.path, bad)
        return out

    def save(self, entries: list[Entry], saved_at: float) -> bool:
        """Write every entry; False (logged) when the file cannot be written."""
        doc = {"format": FORMAT, "saved_at": saved_at, "instances": [_dump(e) for e in entries]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            self.write_errors += 1
            log.error("registrations file %s not written: %s", self.path, exc)
            return False
        self.writes += 1
        return True


def _dump(entry: Entry) -> dict[str, Any]:
    modid, cmdid, ip, port = entry.key
    out: dict[str, Any] = {
        "modid": modid,
        "cmdid": cmdid,
        "ip": wire_to_dotted(ip),
        "port": port,
        "check": entry.check.text,
        "state": entry.checker.state.value,
        "registered_at": entry.registered_at,
    }
    for name in _SETTINGS:
        value = getattr(entry.check, name)
        if value is not None:
            out[name] = value
    return out


def _parse(item: Any) -> SavedInstance:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    modid, cmdid, port = item["modid"], item["cmdid"], item["port"]
    for value in (modid, cmdid, port):
        if type(value) is not int:
            raise TypeError("ids and port must be integers")
    if not 0 <= modid <= 0x7FFFFFFF or not 0 <= cmdid <= 0x7FFFFFFF or not 1 <= port <= 65535:
        raise ValidationError("ids or port out of range")
    settings = {name: item[name] for name in _SETTINGS if item.get(name) is not None}
    check = parse_check(str(item["check"])).with_settings(**settings)
    registered_at = item.get("registered_at", 0.0)
    if not isinstance(registered_at, (int, float)):
        raise TypeError("registered_at must be a number")
    return SavedInstance(
        (modid, cmdid, dotted_to_wire(item["ip"]), port),
        check,
        CheckState(item.get("state", "pending")),
        float(registered_at),
    )
