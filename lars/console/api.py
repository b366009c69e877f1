"""The JSON API under /api: the same operations as the pages, for scripts and tests.

Authentication: POST /api/login with the password sets the session cookie and returns
the CSRF token, which every POST/PUT/DELETE must send in the X-CSRF-Token header.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from lars.console.context import COOKIE, client_of, get_context, session_of
from lars.console.health import HostState
from lars.console.models import (
    CmdId,
    DescriptionsIn,
    DrainIn,
    ErrorOut,
    HostIn,
    HostIp,
    HostPort,
    LoginIn,
    ModId,
    ModuleIn,
    ModuleOut,
    ModuleSummaryOut,
    NoteIn,
    PendingOut,
    SessionOut,
    VersionOut,
    VersionsOut,
    WeightIn,
)

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not valid JSON"},
    411: {"model": ErrorOut, "description": "a body without Content-Length"},
    413: {"model": ErrorOut, "description": "the body is larger than 64 KiB"},
    401: {"model": ErrorOut, "description": "not logged in"},
    403: {"model": ErrorOut, "description": "missing or wrong CSRF token"},
    503: {"model": ErrorOut, "description": "database unavailable"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "conflicts with the route table"}
}

router = APIRouter(prefix="/api", responses=_ERRORS)


@router.post(
    "/login",
    response_model=SessionOut,
    responses={
        401: {"model": ErrorOut, "description": "wrong password"},
        429: {
            "model": ErrorOut,
            "description": "too many failed logins from this address: wait Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    },
)
def login(body: LoginIn, request: Request, response: Response) -> Any:
    ctx = get_context(request)
    client = client_of(request)
    wait = ctx.throttled_for(client)
    if wait is not None:
        return JSONResponse(
            {"detail": f"too many failed logins: retry in {wait} s"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    session = ctx.login(body.password, client)
    if session is None:
        return JSONResponse({"detail": "wrong password"}, status_code=401)
    ctx.set_cookie(response, session)
    return SessionOut(csrf_token=session.csrf)


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    get_context(request).sessions.drop(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/session", response_model=SessionOut)
def session(request: Request) -> SessionOut:
    return SessionOut(csrf_token=session_of(request).csrf)


@router.get("/modules", response_model=list[ModuleSummaryOut])
def list_modules(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    state: HostState | None = None,
) -> list[ModuleSummaryOut]:
    modules = get_context(request).service.modules(q, state)
    return [ModuleSummaryOut.of(m) for m in modules]


@router.post("/modules", status_code=201, response_model=VersionOut, responses=_CONFLICT)
def add_module(body: ModuleIn, request: Request) -> VersionOut:
    service = get_context(request).service
    version = service.add_module(
        body.modid, body.cmdid, body.ip, body.port, body.mod_desc, body.cmd_desc
    )
    return VersionOut(version=version)


@router.get("/modules/{modid}/{cmdid}", response_model=ModuleOut, responses=_NOT_FOUND)
def get_module(modid: ModId, cmdid: CmdId, request: Request) -> ModuleOut:
    return ModuleOut.of_detail(get_context(request).service.module(modid, cmdid))


@router.delete("/modules/{modid}/{cmdid}", response_model=VersionOut, responses=_NOT_FOUND)
def delete_module(modid: ModId, cmdid: CmdId, request: Request) -> VersionOut:
    return VersionOut(version=get_context(request).service.del_module(modid, cmdid))


@router.put("/modules/{modid}/{cmdid}/descriptions", status_code=204)
def set_descriptions(
    modid: ModId, cmdid: CmdId, body: DescriptionsIn, request: Request
) -> Response:
    get_context(request).service.set_descriptions(modid, cmdid, body.mod_desc, body.cmd_desc)
    return Response(status_code=204)


@router.post(
    "/modules/{modid}/{cmdid}/hosts",
    status_code=201,
    response_model=VersionOut,
    responses=_CONFLICT,
)
def add_host(modid: ModId, cmdid: CmdId, body: HostIn, request: Request) -> VersionOut:
    version = get_context(request).service.add_host(modid, cmdid, body.ip, body.port)
    return VersionOut(version=version)


@router.put(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}",
    response_model=VersionOut,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def replace_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, body: HostIn, request: Request
) -> VersionOut:
    service = get_context(request).service
    version = service.replace_host(modid, cmdid, (ip, port), (body.ip, body.port))
    return VersionOut(version=version)


@router.delete(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}", response_model=VersionOut, responses=_NOT_FOUND
)
def delete_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, request: Request
) -> VersionOut:
    return VersionOut(version=get_context(request).service.del_host(modid, cmdid, ip, port))


_HOST_EDIT: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "not a host of the module"},
    409: {"model": ErrorOut, "description": "refused: see detail (e.g. the last enabled host)"},
}


@router.post(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}/drain",
    response_model=VersionOut,
    responses=_HOST_EDIT,
)
def drain_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, body: DrainIn, request: Request
) -> VersionOut:
    """Leave the host out of every route reply and push, keeping its RouteData row."""
    service = get_context(request).service
    version = service.drain(modid, cmdid, ip, port, note=body.note, force=body.force)
    return VersionOut(version=version)


@router.post(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}/undrain",
    response_model=VersionOut,
    responses=_HOST_EDIT,
)
def undrain_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, body: NoteIn, request: Request
) -> VersionOut:
    """Serve a drained host again; agents start it afresh (idle)."""
    service = get_context(request).service
    return VersionOut(version=service.undrain(modid, cmdid, ip, port, note=body.note))


@router.put(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}/weight",
    response_model=VersionOut,
    responses=_HOST_EDIT,
)
def set_host_weight(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, body: WeightIn, request: Request
) -> VersionOut:
    """The host's share of a lars agent's answers; original agents ignore weights."""
    service = get_context(request).service
    version = service.set_weight(modid, cmdid, ip, port, body.weight, note=body.note)
    return VersionOut(version=version)


@router.get("/versions", response_model=VersionsOut)
def versions(request: Request) -> VersionsOut:
    current, pending = get_context(request).service.versions()
    return VersionsOut(
        version=current,
        pending=[PendingOut(modid=m, cmdid=c, version=v) for m, c, v in pending],
    )
