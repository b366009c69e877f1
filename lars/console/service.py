"""What the pages and the API show and do, in one place: modules, hosts, health, versions.

Route edits go to a RouteAdmin (the contract of lars/routes/admin.py); everything else to the
ConsoleStore. Both faces (HTML and JSON) call this class, so they cannot disagree.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from lars.console.health import (
    HostHealth,
    HostSettings,
    HostState,
    ModuleHealth,
    StatusRow,
    hosts_health,
    summarize,
)
from lars.console.store import ConsoleStore
from lars.console.validate import FieldErrors
from lars.errors import LarsError, ValidationError

__all__ = [
    "ConsoleService",
    "ModuleDetail",
    "ModuleSummary",
    "NotFound",
    "RouteAdminLike",
    "RouteLike",
]


class NotFound(LarsError):
    """The module or host named does not exist."""


class RouteLike(HostSettings, Protocol):
    """A route entry with its RouteHostMeta settings (lars.routes.admin.RouteEntry)."""

    @property
    def modid(self) -> int: ...
    @property
    def cmdid(self) -> int: ...
    @property
    def ip(self) -> str: ...
    @property
    def port(self) -> int: ...


class RouteAdminLike(Protocol):
    """The RouteAdmin contract (lars/routes/admin.py) as far as the console uses it."""

    def list_routes(
        self, modid: int | None = None, cmdid: int | None = None, *, registered: bool = False
    ) -> Sequence[RouteLike]: ...
    # Each edit is audited as `actor` (None: the admin's own default actor).
    def add_host(
        self, modid: int, cmdid: int, ip: str, port: int, *, actor: str | None = None
    ) -> int: ...
    def del_host(
        self, modid: int, cmdid: int, ip: str, port: int, *, actor: str | None = None
    ) -> int: ...
    def replace_host(
        self,
        modid: int,
        cmdid: int,
        old_ip: str,
        old_port: int,
        new_ip: str,
        new_port: int,
        *,
        actor: str | None = None,
    ) -> int: ...
    def del_module(self, modid: int, cmdid: int, *, actor: str | None = None) -> int: ...
    def drain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None,
        force: bool,
        actor: str | None = None,
    ) -> int: ...
    def undrain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None,
        actor: str | None = None,
    ) -> int: ...
    def set_weight(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        weight: int,
        *,
        note: str | None,
        actor: str | None = None,
    ) -> int: ...
    def current_version(self) -> int: ...
    def pending_changes(self) -> list[tuple[int, int, int]]: ...


@dataclass(frozen=True, slots=True)
class ModuleSummary:
    modid: int
    cmdid: int
    mod_desc: str
    cmd_desc: str
    health: ModuleHealth


@dataclass(frozen=True, slots=True)
class ModuleDetail:
    modid: int
    cmdid: int
    mod_desc: str
    cmd_desc: str
    hosts: list[HostHealth]
    health: ModuleHealth


class ConsoleService:
    def __init__(
        self,
        admin: RouteAdminLike,
        store: ConsoleStore,
        *,
        stale_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.admin = admin
        self.store = store
        self._stale_after = stale_after
        self._clock = clock
        self._actor: str | None = None  # None: the admin's default actor

    @property
    def stale_after(self) -> float:
        """Seconds after which a host's newest report makes it read stale."""
        return self._stale_after

    def by(self, actor: str) -> ConsoleService:
        """This service with its edits recorded in RouteAudit as `actor` (a copy: the
        shared instance stays unbound; one per request costs a few attributes)."""
        bound = copy.copy(self)
        bound._actor = actor
        return bound

    # Reads

    def modules(
        self,
        query: str = "",
        state: HostState | None = None,
        routes: Sequence[RouteLike] | None = None,
    ) -> list[ModuleSummary]:
        """Every module with hosts, filtered by a search text and/or its health state;
        of `routes` when given (the served table while one is held), else the database's."""
        hosts: dict[tuple[int, int], dict[tuple[str, int], RouteLike]] = {}
        listed = routes if routes is not None else self.admin.list_routes(registered=True)
        for route in listed:
            hosts.setdefault((route.modid, route.cmdid), {})[(route.ip, route.port)] = route
        rows: dict[tuple[int, int], list[StatusRow]] = {}
        for row in self.store.status_rows():
            rows.setdefault((row.modid, row.cmdid), []).append(row)
        mods, cmds = self.store.descriptions()
        now = self._clock()
        result = []
        for modid, cmdid in sorted(hosts):
            mine = rows.get((modid, cmdid), [])
            routed = hosts[(modid, cmdid)]
            health = summarize(
                hosts_health(routed, mine, now=now, stale_after=self._stale_after, settings=routed)
            )
            summary = ModuleSummary(modid, cmdid, mods.get(modid, ""), cmds.get(cmdid, ""), health)
            if _matches(summary, query) and (state is None or health.state == state):
                result.append(summary)
        return result

    def module(self, modid: int, cmdid: int) -> ModuleDetail:
        """A module's hosts with their health; NotFound when it has neither hosts nor reports."""
        entries = {(r.ip, r.port): r for r in self.admin.list_routes(modid, cmdid, registered=True)}
        rows = self.store.status_rows(modid, cmdid)
        if not entries and not rows:
            raise NotFound(f"module {modid}:{cmdid} has no hosts")
        hosts = hosts_health(
            entries, rows, now=self._clock(), stale_after=self._stale_after, settings=entries
        )
        mods, cmds = self.store.descriptions()
        return ModuleDetail(
            modid, cmdid, mods.get(modid, ""), cmds.get(cmdid, ""), hosts, summarize(hosts)
        )

    def versions(self) -> tuple[int, list[tuple[int, int, int]]]:
        return self.admin.current_version(), self.admin.pending_changes()

    # Edits (each returns the new route version)

    def add_module(
        self, modid: int, cmdid: int, ip: str, port: int, mod_desc: str, cmd_desc: str
    ) -> int:
        if self.admin.list_routes(modid, cmdid):
            raise FieldErrors({"cmdid": f"module {modid}:{cmdid} already exists"})
        version = _field_on_error(
            "ip", self.admin.add_host, modid, cmdid, ip, port, actor=self._actor
        )
        if mod_desc or cmd_desc:
            self.store.set_descriptions(modid, cmdid, mod_desc, cmd_desc)
        return version

    def add_host(self, modid: int, cmdid: int, ip: str, port: int) -> int:
        if (ip, port) in self._hosts(modid, cmdid):
            raise FieldErrors({"port": f"{ip}:{port} is already a host of {modid}:{cmdid}"})
        return _field_on_error("ip", self.admin.add_host, modid, cmdid, ip, port, actor=self._actor)

    def replace_host(
        self, modid: int, cmdid: int, old: tuple[str, int], new: tuple[str, int]
    ) -> int:
        current = self._hosts(modid, cmdid)
        if old not in current:
            raise NotFound(f"{old[0]}:{old[1]} is not a host of {modid}:{cmdid}")
        if new != old and new in current:
            raise FieldErrors({"port": f"{new[0]}:{new[1]} is already a host of {modid}:{cmdid}"})
        return _field_on_error(
            "ip",
            self.admin.replace_host,
            modid,
            cmdid,
            old[0],
            old[1],
            new[0],
            new[1],
            actor=self._actor,
        )

    def del_host(self, modid: int, cmdid: int, ip: str, port: int) -> int:
        if (ip, port) not in self._hosts(modid, cmdid):
            raise NotFound(f"{ip}:{port} is not a host of {modid}:{cmdid}")
        return self.admin.del_host(modid, cmdid, ip, port, actor=self._actor)

    def del_module(self, modid: int, cmdid: int) -> int:
        if not self._hosts(modid, cmdid):
            raise NotFound(f"module {modid}:{cmdid} has no hosts")
        return self.admin.del_module(modid, cmdid, actor=self._actor)

    def drain(
        self, modid: int, cmdid: int, ip: str, port: int, *, note: str = "", force: bool = False
    ) -> int:
        """Drain a host (RouteAdmin's rules: the last enabled host needs `force`)."""
        self._known(modid, cmdid, ip, port)
        return _field_on_error(
            "drain",
            self.admin.drain,
            modid,
            cmdid,
            ip,
            port,
            note=note or None,
            force=force,
            actor=self._actor,
        )

    def undrain(self, modid: int, cmdid: int, ip: str, port: int, *, note: str = "") -> int:
        self._known(modid, cmdid, ip, port)
        return _field_on_error(
            "drain",
            self.admin.undrain,
            modid,
            cmdid,
            ip,
            port,
            note=note or None,
            actor=self._actor,
        )

    def set_weight(
        self, modid: int, cmdid: int, ip: str, port: int, weight: int, *, note: str = ""
    ) -> int:
        self._known(modid, cmdid, ip, port)
        return _field_on_error(
            "weight",
            self.admin.set_weight,
            modid,
            cmdid,
            ip,
            port,
            weight,
            note=note or None,
            actor=self._actor,
        )

    def _known(self, modid: int, cmdid: int, ip: str, port: int) -> None:
        """Drain, undrain and weight: RouteData hosts and registered ones alike."""
        known = {(r.ip, r.port) for r in self.admin.list_routes(modid, cmdid, registered=True)}
        if (ip, port) not in known:
            raise NotFound(f"{ip}:{port} is not a host of {modid}:{cmdid}")

    def set_descriptions(self, modid: int, cmdid: int, mod_desc: str, cmd_desc: str) -> None:
        self.store.set_descriptions(modid, cmdid, mod_desc, cmd_desc)

    def _hosts(self, modid: int, cmdid: int) -> set[tuple[str, int]]:
        return {(r.ip, r.port) for r in self.admin.list_routes(modid, cmdid)}


def _field_on_error(field: str, edit: Callable[..., int], *args: object, **kwargs: object) -> int:
    """Run a RouteAdmin edit; its ValidationError (duplicate, too many hosts) names `field`."""
    try:
        return edit(*args, **kwargs)
    except FieldErrors:
        raise
    except ValidationError as exc:
        raise FieldErrors({field: str(exc)}) from exc


def _matches(module: ModuleSummary, query: str) -> bool:
    """Search by 'modid', 'modid:cmdid' (or '/', ' ') prefix, or a word of a description."""
    query = query.strip().lower()
    if not query:
        return True
    ids = f"{module.modid}:{module.cmdid}"
    normalized = query.replace("/", ":").replace(" ", ":")
    if ids.startswith(normalized) or str(module.cmdid) == query:
        return True
    return query in module.mod_desc.lower() or query in module.cmd_desc.lower()
