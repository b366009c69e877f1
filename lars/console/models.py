"""The JSON API's request and response shapes; they are also its OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from lars.console.health import HostHealth, ModuleHealth
from lars.console.service import ModuleDetail, ModuleSummary
from lars.console.validate import MAX_DESC, MAX_ID, ascii_digits, check_text
from lars.errors import ValidationError as LarsValidationError
from lars.protocol.ipv4 import dotted_to_uint
from lars.protocol.weight import MAX_WEIGHT
from lars.routes.hostmeta import NOTE_MAX

__all__ = [
    "CmdId",
    "DescriptionsIn",
    "DrainIn",
    "ErrorOut",
    "HealthOut",
    "HostIn",
    "HostIp",
    "HostOut",
    "HostPort",
    "LoginIn",
    "ModId",
    "ModuleIn",
    "ModuleOut",
    "ModuleSummaryOut",
    "NoteIn",
    "PendingOut",
    "SessionOut",
    "VersionOut",
    "VersionsOut",
    "WeightIn",
]

IPV4_PATTERN = r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"  # noqa: E501


def _ipv4(value: str) -> str:
    try:
        dotted_to_uint(value)
    except LarsValidationError:
        raise ValueError("must be a dotted IPv4 address such as 10.0.0.7") from None
    return value


def _text(value: str) -> str:
    problem = check_text(value)
    if problem:
        raise ValueError(problem)
    return value


Id = Annotated[int, Field(ge=0, le=MAX_ID, strict=True)]
# Path and query integers: ASCII digits only (lax int would read 3_0, +3 or 3.0), then the
# range; BeforeValidator after Path keeps minimum/maximum in the OpenAPI schema.
ModId = Annotated[int, Path(ge=0, le=MAX_ID), BeforeValidator(ascii_digits)]
CmdId = Annotated[int, Path(ge=0, le=MAX_ID), BeforeValidator(ascii_digits)]
# IPv4 by lars.protocol.ipv4 (one rule everywhere) with a message a person can read; the
# pattern stays in the OpenAPI schema as documentation only (a failed `pattern` answered
# the raw regex).
HostIp = Annotated[
    str, Path(json_schema_extra={"pattern": IPV4_PATTERN}), AfterValidator(_ipv4)
]
HostPort = Annotated[int, Path(ge=1, le=65535), BeforeValidator(ascii_digits)]
Ip = Annotated[
    str,
    Field(json_schema_extra={"pattern": IPV4_PATTERN}, examples=["10.0.0.7"]),
    AfterValidator(_ipv4),
]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Text = Annotated[str, Field(max_length=MAX_DESC), AfterValidator(_text)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    """`user` omitted or empty: the bootstrap admin ([console] user)."""

    user: Annotated[str, Field(max_length=64)] = ""
    password: Annotated[str, Field(max_length=1024)]


class SessionOut(BaseModel):
    """`csrf_token` is empty for a Bearer token (no cookie, so no CSRF to guard)."""

    csrf_token: str
    user: str = ""
    role: str = ""


class HostIn(_In):
    ip: Ip
    port: Port


class ModuleIn(_In):
    modid: Id
    cmdid: Id
    ip: Ip
    port: Port
    mod_desc: Text = ""
    cmd_desc: Text = ""


Note = Annotated[str, Field(max_length=NOTE_MAX), AfterValidator(_text)]


class DrainIn(_In):
    """Drain a host: it leaves every route reply and push. Draining the module's last
    enabled host is refused (409) unless `force`."""

    note: Note = ""
    force: Annotated[bool, Field(strict=True)] = False


class NoteIn(_In):
    note: Note = ""  # "" keeps the host's note


class WeightIn(_In):
    """1..MAX_WEIGHT (1 is the default); 0 is refused (409): drain the host instead."""

    weight: Annotated[int, Field(ge=0, le=MAX_WEIGHT, strict=True)]
    note: Note = ""


class DescriptionsIn(_In):
    mod_desc: Text = ""
    cmd_desc: Text = ""


class ErrorOut(BaseModel):
    detail: str
    fields: dict[str, str] = {}


class VersionOut(BaseModel):
    version: int


class HealthOut(BaseModel):
    hosts: int
    ok: int
    overloaded: int
    stale: int
    nodata: int
    state: str
    drained: int = 0

    @classmethod
    def of(cls, h: ModuleHealth) -> HealthOut:
        return cls(
            hosts=h.hosts,
            ok=h.ok,
            overloaded=h.overloaded,
            stale=h.stale,
            nodata=h.nodata,
            state=h.state.value,
            drained=h.drained,
        )


class HostOut(BaseModel):
    ip: str
    port: int
    in_route: bool
    succ: int
    err: int
    error_rate: float | None
    overload: bool
    callers: list[str]
    last_report: int | None
    age: float | None
    stale: bool
    state: str
    weight: int = 1
    enabled: bool = True  # false: drained (left out of every route reply and push)
    note: str = ""
    changed_by: str = ""  # who last drained, undrained or weighted it
    changed_at: int | None = None
    calls_while_drained: list[str] = []  # agents (callers) reporting calls after the drain
    source: str = "static"  # static (RouteData) or registered (an agent registered it)
    agent: str = ""  # the owning agent of a registration
    check: str = ""  # tcp, http://HOST:PORT/PATH or ttl:SECONDS
    check_state: str = ""  # passing or failing
    check_since: int = 0  # unix seconds of the last check state change

    @classmethod
    def of(cls, h: HostHealth) -> HostOut:
        return cls(
            ip=h.ip,
            port=h.port,
            in_route=h.in_route,
            succ=h.succ,
            err=h.err,
            error_rate=h.error_rate,
            overload=h.overload,
            callers=list(h.callers),
            last_report=h.last_report,
            age=h.age,
            stale=h.stale,
            state=h.state.value,
            weight=h.weight,
            enabled=h.enabled,
            note=h.note,
            changed_by=h.changed_by,
            changed_at=h.changed_at,
            calls_while_drained=list(h.calls_while_drained),
            source=h.source,
            agent=h.agent,
            check=h.check,
            check_state=h.check_state,
            check_since=h.check_since,
        )


class ModuleSummaryOut(BaseModel):
    modid: int
    cmdid: int
    mod_desc: str
    cmd_desc: str
    health: HealthOut

    @classmethod
    def of(cls, m: ModuleSummary) -> ModuleSummaryOut:
        return cls(
            modid=m.modid,
            cmdid=m.cmdid,
            mod_desc=m.mod_desc,
            cmd_desc=m.cmd_desc,
            health=HealthOut.of(m.health),
        )


class ModuleOut(ModuleSummaryOut):
    hosts: list[HostOut]

    @classmethod
    def of_detail(cls, m: ModuleDetail) -> ModuleOut:
        return cls(
            modid=m.modid,
            cmdid=m.cmdid,
            mod_desc=m.mod_desc,
            cmd_desc=m.cmd_desc,
            health=HealthOut.of(m.health),
            hosts=[HostOut.of(h) for h in m.hosts],
        )


class PendingOut(BaseModel):
    modid: int
    cmdid: int
    version: int


class VersionsOut(BaseModel):
    version: int
    pending: list[PendingOut]
