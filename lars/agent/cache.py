"""Route snapshot file: the agent's known routes, so a restart can answer at once.

The file is JSON, written to a temporary file beside it and moved into place with
os.replace (readers never see half a file), at most once per `interval` and only when a
shard's routes changed or an entry expired. What it holds is decided by RouteBook: each
module's last non-empty host list, never an emptied one over a good one. It is loaded
at start; a missing file is normal, an unreadable or malformed one is logged and
ignored (the agent then starts empty, never crashes).

Format 1, unchanged since the first version: {"format": 1, "saved_at": unix time,
"routes": [{"modid", "cmdid", "hosts": [["a.b.c.d", port], ...]}]}, plus two optional
fields per route that older readers ignore: "at" (unix time the hosts were received) and
"empty_since" (unix time since when the route service answers empty: the hosts are the
last good ones, kept), and "weights": [["a.b.c.d", port, weight], ...] for the hosts
whose weight is not 1 (older readers ignore it; without it every weight is 1), and
"version": the route table version the hosts came with (issue 22: seeded into the
never-backwards gate at start, so a restarted agent that reaches a staler replica's
route service keeps the newer cached hosts as a running one would). Files written by
older versions load as current routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lars.agent.routebook import (
    DEFAULT_KEEP,
    CachedRoute,
    ModuleKey,
    RouteBook,
    Routes,
    Weights,
)
from lars.errors import ValidationError
from lars.protocol import uint_to_wire, wire_to_dotted
from lars.protocol.ipv4 import dotted_to_uint
from lars.protocol.version import MAX_VERSION
from lars.protocol.weight import wire_weight
from lars.reactor import LoopThread

__all__ = ["CacheWriter", "CachedRoute", "RouteCache", "Routes"]

log = logging.getLogger(__name__)

FORMAT = 1


class RouteCache:
    """Reads and atomically writes one snapshot file (any thread, one at a time)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> tuple[list[CachedRoute], float | None]:
        """(entries, saved_at unix time); ([], None) when there is no usable file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("route cache %s unreadable (%s); starting empty", self.path, exc)
            return [], None
        try:
            return _parse(json.loads(text))
        except (ValueError, TypeError, KeyError, ValidationError) as exc:
            log.warning("route cache %s is malformed (%s); ignoring it", self.path, exc)
            return [], None

    def save(self, entries: list[CachedRoute], saved_at: float) -> None:
        doc = {"format": FORMAT, "saved_at": saved_at, "routes": [_dump(e) for e in entries]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)


def _dump(entry: CachedRoute) -> dict[str, Any]:
    item: dict[str, Any] = {
        "modid": entry.modid,
        "cmdid": entry.cmdid,
        "hosts": [[wire_to_dotted(ip), port] for ip, port in entry.hosts],
    }
    if entry.at is not None:
        item["at"] = entry.at
    if entry.version is not None:
        item["version"] = entry.version
    if entry.empty_since is not None:
        item["empty_since"] = entry.empty_since
    if entry.weights:
        item["weights"] = [[wire_to_dotted(ip), port, w] for (ip, port), w in entry.weights.items()]
    return item


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"bad time {value!r}")
    return float(value)


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_VERSION:
        raise ValueError(f"bad version {value!r}")
    return value


def _parse(doc: Any) -> tuple[list[CachedRoute], float | None]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("unknown format")
    entries: list[CachedRoute] = []
    for item in doc["routes"]:
        modid, cmdid = int(item["modid"]), int(item["cmdid"])
        hosts = [(uint_to_wire(dotted_to_uint(str(ip))), int(port)) for ip, port in item["hosts"]]
        at, empty_since = _time(item.get("at")), _time(item.get("empty_since"))
        weights = {
            (uint_to_wire(dotted_to_uint(str(ip))), int(port)): wire_weight(int(w))
            for ip, port, w in item.get("weights", [])
        }
        version = _version(item.get("version"))
        entries.append(CachedRoute(modid, cmdid, hosts, at, empty_since, weights, version))
    saved = doc.get("saved_at")
    return entries, float(saved) if isinstance(saved, int | float) else None


class CacheWriter:
    """Collects the shards' snapshots in a RouteBook on one loop and writes at most once
    per `interval`. `update` may be called from any thread (it posts); `answered` only
    on the writer's loop (the route client's)."""

    def __init__(
        self,
        cache: RouteCache,
        thread: LoopThread,
        shard_of: Callable[[int, int], int],
        *,
        interval: float,
        keep: float = DEFAULT_KEEP,
        wall: Callable[[], float] = time.time,
        versions: Callable[[ModuleKey], int | None] | None = None,
    ) -> None:
        self.cache = cache
        self._versions = versions  # each module's applied version (the route client's gate)
        self.thread = thread
        self.interval = interval
        self._wall = wall
        self.book = RouteBook(shard_of, keep=keep)
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self.writes = 0
        self.errors = 0
        self.saved_at: float | None = None  # unix time of the file's content (loaded or written)

    def seed(self, entries: list[CachedRoute]) -> list[CachedRoute]:
        """Start from the loaded file (before start()); returns the entries still kept."""
        kept = self.book.seed(entries, self._wall())
        self._dirty = len(kept) != len(entries)
        return kept

    def start(self) -> None:
        self.thread.call(self._schedule).result()

    def stop(self) -> None:
        """Cancel the timer and write what is pending (call before stopping the loop)."""
        if self.thread.running:
            self.thread.call(self._final).result()

    def update(self, index: int, routes: Routes, weights: Weights | None = None) -> None:
        self.thread.post(self._update, index, routes, weights)

    def answered(self, modid: int, cmdid: int) -> None:
        self.book.answered(modid, cmdid)

    def _update(self, index: int, routes: Routes, weights: Weights | None = None) -> None:
        self.book.update(index, routes, self._wall(), weights)
        self._dirty = True

    def _schedule(self) -> None:
        self._timer = self.thread.loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._schedule()
        self.flush()

    def _final(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def _with_versions(self, entries: list[CachedRoute]) -> list[CachedRoute]:
        """The entries with the version each module's hosts were applied at (the writer's
        loop is the route client's: the gate is read on its own thread)."""
        if self._versions is None:
            return entries
        out = []
        for entry in entries:
            version = self._versions(entry.key)
            same = version is None or version == entry.version
            out.append(entry if same else replace(entry, version=version))
        return out

    def flush(self) -> None:
        if self.book.expire(self._wall()):
            self._dirty = True
        if not self._dirty:
            return
        self._dirty = False
        try:
            now = self._wall()
            self.cache.save(self._with_versions(self.book.snapshot()), now)
            self.saved_at = now
            self.writes += 1
        except OSError as exc:
            self.errors += 1
            log.warning("route cache %s not written: %s", self.cache.path, exc)
