"""Route snapshot file: the agent's known routes, so a restart can answer at once.

The file is JSON, written to a temporary file beside it and moved into place with
os.replace (readers never see half a file), at most once per `interval` and only when a
shard's routes changed. It is loaded at start; a missing file is normal, an unreadable
or malformed one is logged and ignored (the agent then starts empty, never crashes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lars.agent.balancer import HostKey
from lars.errors import ValidationError
from lars.protocol import uint_to_wire, wire_to_dotted
from lars.protocol.ipv4 import dotted_to_uint
from lars.reactor import LoopThread

__all__ = ["CacheWriter", "RouteCache", "Routes"]

log = logging.getLogger(__name__)

Routes = list[tuple[int, int, list[HostKey]]]
FORMAT = 1


class RouteCache:
    """Reads and atomically writes one snapshot file (any thread, one at a time)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> tuple[Routes, float | None]:
        """(routes, saved_at unix time); ([], None) when there is no usable file."""
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

    def save(self, routes: Routes, saved_at: float) -> None:
        doc = {
            "format": FORMAT,
            "saved_at": saved_at,
            "routes": [
                {
                    "modid": modid,
                    "cmdid": cmdid,
                    "hosts": [[wire_to_dotted(ip), port] for ip, port in hosts],
                }
                for modid, cmdid, hosts in routes
            ],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)


def _parse(doc: Any) -> tuple[Routes, float | None]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("unknown format")
    routes: Routes = []
    for item in doc["routes"]:
        modid, cmdid = int(item["modid"]), int(item["cmdid"])
        hosts = [(uint_to_wire(dotted_to_uint(str(ip))), int(port)) for ip, port in item["hosts"]]
        routes.append((modid, cmdid, hosts))
    saved = doc.get("saved_at")
    return routes, float(saved) if isinstance(saved, int | float) else None


class CacheWriter:
    """Collects each shard's latest snapshot on one loop and writes at most once per
    `interval`. `update` may be called from any thread (it posts)."""

    def __init__(
        self,
        cache: RouteCache,
        thread: LoopThread,
        shards: int,
        *,
        interval: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.thread = thread
        self.interval = interval
        self._wall = wall
        self._parts: list[Routes] = [[] for _ in range(shards)]
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self.writes = 0
        self.errors = 0

    def seed(self, routes: Routes, shard_of: Callable[[int, int], int]) -> None:
        """Start from the loaded file, so shards that never change keep their part."""
        for modid, cmdid, hosts in routes:
            self._parts[shard_of(modid, cmdid)].append((modid, cmdid, hosts))

    def start(self) -> None:
        self.thread.call(self._schedule).result()

    def stop(self) -> None:
        """Cancel the timer and write what is pending (call before stopping the loop)."""
        if self.thread.running:
            self.thread.call(self._final).result()

    def update(self, index: int, routes: Routes) -> None:
        self.thread.post(self._update, index, routes)

    def _update(self, index: int, routes: Routes) -> None:
        self._parts[index] = routes
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

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        routes = [r for part in self._parts for r in part]
        try:
            self.cache.save(routes, self._wall())
            self.writes += 1
        except OSError as exc:
            self.errors += 1
            log.warning("route cache %s not written: %s", self.cache.path, exc)
