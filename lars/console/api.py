"""The JSON API under /api: the same operations as the pages, for scripts and tests.

Authentication: either `Authorization: Bearer TOKEN` on every call (a token made with
`lars console token create` or the admin page), or POST /api/login with a user and
password (the password alone: the bootstrap admin), which sets the session cookie and
returns the CSRF token every POST/PUT/DELETE on that session must send in X-CSRF-Token.
Each endpoint needs the role lars/console/policy.py declares: 401 without credentials,
403 for a smaller role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from lars.console.context import COOKIE, client_of, get_context, principal_of, service_of
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
    401: {"model": ErrorOut, "description": "not logged in, or an invalid or revoked token"},
    403: {"model": ErrorOut, "description": "the role may not do this, or a missing CSRF token"},
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
        401: {"model": ErrorOut, "description": "wrong user or password"},
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
    session = ctx.login(body.password, client, body.user)
    if session is None:
        return JSONResponse({"detail": "wrong user or password"}, status_code=401)
    principal = ctx.principal_of_session(session)
    ctx.set_cookie(response, session)
    role = principal.role.value if principal else ""
    return SessionOut(csrf_token=session.csrf, user=session.user, role=role)


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    get_context(request).sessions.drop(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/session", response_model=SessionOut)
def session(request: Request) -> SessionOut:
    """Who the caller is, and the session's CSRF token (empty for a Bearer token)."""
    session = request.state.session
    principal = principal_of(request)
    csrf = session.csrf if session is not None else ""
    return SessionOut(csrf_token=csrf, user=principal.name, role=principal.role.value)


@router.get("/modules", response_model=list[ModuleSummaryOut])
def list_modules(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    state: HostState | None = None,
) -> list[ModuleSummaryOut]:
    modules = service_of(request).modules(q, state)
    return [ModuleSummaryOut.of(m) for m in modules]


@router.post("/modules", status_code=201, response_model=VersionOut, responses=_CONFLICT)
def add_module(body: ModuleIn, request: Request) -> VersionOut:
    service = service_of(request)
    version = service.add_module(
        body.modid, body.cmdid, body.ip, body.port, body.mod_desc, body.cmd_desc
    )
    return VersionOut(version=version)


@router.get("/modules/{modid}/{cmdid}", response_model=ModuleOut, responses=_NOT_FOUND)
def get_module(modid: ModId, cmdid: CmdId, request: Request) -> ModuleOut:
    return ModuleOut.of_detail(service_of(request).module(modid, cmdid))


@router.delete("/modules/{modid}/{cmdid}", response_model=VersionOut, responses=_NOT_FOUND)
def delete_module(modid: ModId, cmdid: CmdId, request: Request) -> VersionOut:
    return VersionOut(version=service_of(request).del_module(modid, cmdid))


@router.put("/modules/{modid}/{cmdid}/descriptions", status_code=204)
def set_descriptions(
    modid: ModId, cmdid: CmdId, body: DescriptionsIn, request: Request
) -> Response:
    service_of(request).set_descriptions(modid, cmdid, body.mod_desc, body.cmd_desc)
    return Response(status_code=204)


@router.post(
    "/modules/{modid}/{cmdid}/hosts",
    status_code=201,
    response_model=VersionOut,
    responses=_CONFLICT,
)
def add_host(modid: ModId, cmdid: CmdId, body: HostIn, request: Request) -> VersionOut:
    version = service_of(request).add_host(modid, cmdid, body.ip, body.port)
    return VersionOut(version=version)


@router.put(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}",
    response_model=VersionOut,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def replace_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, body: HostIn, request: Request
) -> VersionOut:
    service = service_of(request)
    version = service.replace_host(modid, cmdid, (ip, port), (body.ip, body.port))
    return VersionOut(version=version)


@router.delete(
    "/modules/{modid}/{cmdid}/hosts/{ip}/{port}", response_model=VersionOut, responses=_NOT_FOUND
)
def delete_host(
    modid: ModId, cmdid: CmdId, ip: HostIp, port: HostPort, request: Request
) -> VersionOut:
    return VersionOut(version=service_of(request).del_host(modid, cmdid, ip, port))


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
    service = service_of(request)
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
    service = service_of(request)
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
    service = service_of(request)
    version = service.set_weight(modid, cmdid, ip, port, body.weight, note=body.note)
    return VersionOut(version=version)


@router.get("/versions", response_model=VersionsOut)
def versions(request: Request) -> VersionsOut:
    current, pending = service_of(request).versions()
    return VersionsOut(
        version=current,
        pending=[PendingOut(modid=m, cmdid=c, version=v) for m, c, v in pending],
    )
