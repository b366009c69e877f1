"""Host settings edits: drain, undrain and weight (RouteHostMeta, lars/routes/hostmeta.py).

Each edit runs inside RouteAdmin's one transaction (lars/routes/routeedit.py: a version bump
and a RouteChange row, so route services push it as any route edit) and returns its
audit action and detail. The rules:
- draining the last enabled host of a module is refused unless forced, and a forced drain
  says so in its audit detail; draining a drained host or undraining an enabled one is
  refused (nothing would change);
- a weight is 1..MAX_WEIGHT (lars.protocol.weight); 0 is refused and points to drain;
- the host must be in the module's RouteData, and a database without RouteHostMeta (an
  original Lars database) refuses these edits with a pointer to `lars initdb`.
`HostSettingsEdits` gives RouteAdmin its drain, undrain and set_weight methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy
from sqlalchemy import Connection, and_, select

from lars.db import route_data, route_host_meta, route_instance
from lars.errors import ValidationError
from lars.protocol import uint_to_dotted
from lars.protocol.weight import MAX_WEIGHT, validate_weight
from lars.routes.hostmeta import DEFAULT_META, HostId, HostMeta, read_module, validate_note, write
from lars.routes.routeedit import Change, validate_host, validate_ids

__all__ = ["HostSettingsEdits", "drain_change", "weight_change"]


class HostSettingsEdits:
    """RouteAdmin's drain, undrain and set_weight (mixed into RouteAdmin, which gives
    `actor`, `_clock`, `_meta_present()` and its one transaction `_edit()`)."""

    actor: str
    _clock: Callable[[], float]

    def _meta_present(self) -> bool:
        raise NotImplementedError

    def _edit(
        self,
        modules: list[tuple[int, int]],
        edit: Callable[[Connection], Sequence[Change]],
        actor: str | None = None,
    ) -> int:
        raise NotImplementedError

    def drain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None = None,
        force: bool = False,
        actor: str | None = None,
    ) -> int:
        """Take a host out of every route reply and push, keeping its RouteData row.
        The last enabled host of a module needs `force` (audited as forced)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, enabled=False, note=note, force=force)

    def undrain(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        *,
        note: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Serve a drained host again (agents take it as a new host: fresh idle state)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, enabled=True, note=note)

    def set_weight(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        weight: int,
        *,
        note: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Set a host's weight, 1..MAX_WEIGHT (0 is refused: drain the host instead)."""
        return self._meta_edit(modid, cmdid, ip, port, actor, weight=weight, note=note)

    def _meta_edit(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        actor: str | None,
        *,
        note: str | None,
        enabled: bool | None = None,
        weight: int | None = None,
        force: bool = False,
    ) -> int:
        validate_ids(modid, cmdid)
        uip = validate_host(ip, port)
        note = validate_note(note)
        if weight is not None:
            validate_weight(weight)
        if not self._meta_present():
            raise ValidationError(
                f"this database has no {route_host_meta.name} table (an original Lars "
                "database): run `lars initdb` to add it, then drain and weights work"
            )
        who = actor if actor is not None else self.actor
        now = int(self._clock())

        def edit(conn: Connection) -> list[Change]:
            if weight is not None:
                action, detail = weight_change(
                    conn, modid, cmdid, (uip, port), weight, note=note, actor=who, now=now
                )
            else:
                action, detail = drain_change(
                    conn, modid, cmdid, (uip, port), enabled=bool(enabled), note=note,
                    force=force, actor=who, now=now,
                )  # fmt: skip
            return [Change(action, modid, cmdid, uip, port, detail)]

        return self._edit([(modid, cmdid)], edit, actor)


def _module_hosts(conn: Connection, modid: int, cmdid: int) -> set[HostId]:
    """The module's hosts: RouteData's and the registered ones (RouteInstance, where the
    table exists), since drain and weight apply to both alike."""
    t = route_data.c
    rows = conn.execute(
        select(t.serverip, t.serverport).where(and_(t.modid == modid, t.cmdid == cmdid))
    )
    hosts = {(int(ip), int(p)) for ip, p in rows}
    if sqlalchemy.inspect(conn).has_table(route_instance.name):
        i = route_instance.c
        registered = conn.execute(
            select(i.serverip, i.serverport)
            .where(and_(i.modid == modid, i.cmdid == cmdid))
            .distinct()
        )
        hosts.update((int(ip), int(p)) for ip, p in registered)
    return hosts


def _name(uip: int, port: int) -> str:
    return f"{uint_to_dotted(uip)}:{port}"


def drain_change(
    conn: Connection,
    modid: int,
    cmdid: int,
    host: HostId,
    *,
    enabled: bool,
    note: str | None,
    force: bool,
    actor: str,
    now: int,
) -> tuple[str, str]:
    """Drain (enabled False) or undrain one host; returns (audit action, detail).

    Raises ValidationError: the host is not in the module, nothing would change, or the
    drain would leave the module without an enabled host and `force` is not set."""
    hosts = _module_hosts(conn, modid, cmdid)
    name = _name(*host)
    if host not in hosts:
        raise ValidationError(f"host {name} is not in module {modid}:{cmdid}")
    metas = read_module(conn, modid, cmdid)
    meta = metas.get(host, DEFAULT_META)
    if meta.enabled == enabled:
        state = "enabled (not drained)" if enabled else "already drained"
        raise ValidationError(f"host {name} of module {modid}:{cmdid} is {state}")
    detail = name
    if not enabled:
        others = [h for h in hosts if h != host and metas.get(h, DEFAULT_META).enabled]
        if not others:
            if not force:
                raise ValidationError(
                    f"host {name} is the last enabled host of module {modid}:{cmdid}: "
                    "draining it leaves the module without hosts; force it "
                    "(--force, or confirm in the console) if that is what you want"
                )
            detail += " (forced: the last enabled host of the module)"
    new_note = meta.note if note is None else note
    if note:
        detail += f"; note: {note}"
    write(
        conn,
        modid,
        cmdid,
        *host,
        HostMeta(
            weight=meta.weight, enabled=enabled, note=new_note, updated_at=now, updated_by=actor
        ),
    )
    return ("undrain" if enabled else "drain"), detail


def weight_change(
    conn: Connection,
    modid: int,
    cmdid: int,
    host: HostId,
    weight: int,
    *,
    note: str | None,
    actor: str,
    now: int,
) -> tuple[str, str]:
    """Set one host's weight; returns (audit action, detail). ValidationError: a weight
    outside 1..MAX_WEIGHT (0 points to drain), a host not in the module, no change."""
    validate_weight(weight)
    name = _name(*host)
    if host not in _module_hosts(conn, modid, cmdid):
        raise ValidationError(f"host {name} is not in module {modid}:{cmdid}")
    meta = read_module(conn, modid, cmdid).get(host, DEFAULT_META)
    if meta.weight == weight:
        raise ValidationError(f"host {name} of module {modid}:{cmdid} already has weight {weight}")
    write(
        conn,
        modid,
        cmdid,
        *host,
        HostMeta(
            weight=weight,
            enabled=meta.enabled,
            note=meta.note if note is None else note,
            updated_at=now,
            updated_by=actor,
        ),
    )
    detail = f"{name} weight {meta.weight} -> {weight} (max {MAX_WEIGHT})"
    return "weight", detail + (f"; note: {note}" if note else "")
