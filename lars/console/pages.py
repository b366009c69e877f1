"""The HTML face: server-rendered pages and the fragments the page script refreshes.

Forms post back here with the session's CSRF token; a bad field re-renders the page with
its message beside the field (400); a good edit redirects (303) with a flash message.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lars.console.chart import error_rate_svg
from lars.console.context import COOKIE, client_of, get_context, session_of
from lars.console.health import HostState
from lars.console.models import CmdId, ModId
from lars.console.validate import FieldErrors, Fields

__all__ = ["error_page", "router"]

T = TypeVar("T")

LOGIN_COOKIE = "lars_login_csrf"
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.filters["svg_chart"] = lambda hosts: Markup(error_rate_svg(hosts))
templates.env.filters["age"] = lambda s: "-" if s is None else _age(s)
router = APIRouter(include_in_schema=False)

FormErrors = dict[str, dict[str, Any]]


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    ctx = get_context(request)
    session = getattr(request.state, "session", None)
    flashes: list[str] = []
    if session is not None and not name.startswith("_"):
        flashes, session.flash = session.flash, []
    values.setdefault("forms", {})
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf": session.csrf if session else "",
            "flashes": flashes,
            "refresh_ms": int(ctx.refresh_interval * 1000),
            "logged_in": session is not None,
            **values,
        },
        status_code=status,
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return _render(request, "error.html", status, code=status, message=message)


def _redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    if flash:
        session_of(request).flash.append(flash)
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """The posted fields; a wrong CSRF token is refused before anything else is read."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not session_of(request).csrf_ok(values.get("csrf")):
        raise _CsrfRejected()
    return values


class _CsrfRejected(Exception):
    pass


async def _call(fn: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(fn, *args)


# Login


def _login_token(request: Request) -> str:
    """The browser's login-form token, kept across page loads (a second tab or a favicon
    request that lands on /login must not invalidate the form already shown)."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    if 20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum():
        return token
    return secrets.token_urlsafe(24)


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    token = _login_token(request)
    response = _render(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    token = str(form.get("csrf", ""))
    ctx = get_context(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not token or not secrets.compare_digest(token, cookie):
        error = "Your login form expired; please try again."
        session = None
    else:
        session = await _call(ctx.login, password, client_of(request))
        error = "Wrong password, or too many attempts: wait a minute and retry."
    if session is None:
        fresh = _login_token(request)
        response: Response = _render(
            request, "login.html", 401, login_csrf=fresh, next=target, error=error
        )
        response.set_cookie(LOGIN_COOKIE, fresh, httponly=True, samesite="strict", path="/login")
        return response
    response = RedirectResponse(target, status_code=303)
    ctx.set_cookie(response, session)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        await _form(request)
    except _CsrfRejected:
        return error_page(request, 403, "Your form expired; reload the page and try again.")
    get_context(request).sessions.drop(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a freshly logged-in user to another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# Modules


def _state(raw: str) -> HostState | None:
    try:
        return HostState(raw)
    except ValueError:
        return None


@router.get("/")
async def modules_page(request: Request, q: str = "", state: str = "") -> Response:
    return await _modules(request, q[:100], state)


@router.get("/modules.part")
async def modules_part(request: Request, q: str = "", state: str = "") -> Response:
    service = get_context(request).service
    modules = await _call(service.modules, q[:100], _state(state))
    return _render(request, "_modules.html", modules=modules)


async def _modules(
    request: Request, q: str, state: str, status: int = 200, forms: FormErrors | None = None
) -> Response:
    service = get_context(request).service
    modules = await _call(service.modules, q, _state(state))
    return _render(
        request,
        "modules.html",
        status,
        modules=modules,
        q=q,
        state=state,
        states=[s.value for s in HostState],
        forms=forms or {},
    )


@router.post("/modules")
async def add_module(request: Request) -> Response:
    return await _edit(
        request,
        "add",
        _parse_module,
        lambda f, v: _call(get_context(request).service.add_module, *v),
        lambda v, version: (
            f"/modules/{v[0]}/{v[1]}",
            f"Module {v[0]}:{v[1]} added with host {v[2]}:{v[3]} (version {version}).",
        ),
        lambda forms: _modules(request, "", "", 400, forms),
    )


def _parse_module(fields: Fields) -> tuple[Any, ...]:
    return (
        fields.ident("modid", "modid"),
        fields.ident("cmdid", "cmdid"),
        fields.ip(),
        fields.port(),
        fields.text("mod_desc"),
        fields.text("cmd_desc"),
    )


async def _edit(
    request: Request,
    form_id: str,
    parse: Callable[[Fields], tuple[Any, ...]],
    apply: Callable[[Fields, tuple[Any, ...]], Any],
    done: Callable[[tuple[Any, ...], Any], tuple[str, str]],
    again: Callable[[FormErrors], Any],
) -> Response:
    """Parse, apply and redirect; on bad fields render the page again via `again`."""
    try:
        raw = await _form(request)
    except _CsrfRejected:
        return error_page(request, 403, "Your form expired; reload the page and try again.")
    fields = Fields(raw)
    values = parse(fields)
    try:
        fields.check()
        result = await apply(fields, values)
    except FieldErrors as exc:
        response: Response = await again({form_id: {"errors": exc.errors, "values": raw}})
        return response
    url, message = done(values, result)
    return _redirect(request, url, message)


# One module


async def _module(
    request: Request, modid: int, cmdid: int, status: int = 200, forms: FormErrors | None = None
) -> Response:
    module = await _call(get_context(request).service.module, modid, cmdid)
    return _render(request, "module.html", status, m=module, forms=forms or {})


@router.get("/modules/{modid}/{cmdid}")
async def module_page(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    return await _module(request, modid, cmdid)


@router.get("/modules/{modid}/{cmdid}/hosts.part")
async def module_part(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    module = await _call(get_context(request).service.module, modid, cmdid)
    return _render(request, "_hosts.html", m=module)


def _module_edit(
    request: Request,
    modid: int,
    cmdid: int,
    form_id: str,
    parse: Callable[[Fields], tuple[Any, ...]],
    apply: Callable[[tuple[Any, ...]], Any],
    message: Callable[[tuple[Any, ...], Any], str],
    target: str | None = None,
) -> Any:
    url = target or f"/modules/{modid}/{cmdid}"
    return _edit(
        request,
        form_id,
        parse,
        lambda _f, v: _call(apply, v),
        lambda v, result: (url, message(v, result)),
        lambda forms: _module(request, modid, cmdid, 400, forms),
    )


@router.post("/modules/{modid}/{cmdid}/hosts")
async def add_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = get_context(request).service
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        "add",
        lambda f: (f.ip(), f.port()),
        lambda v: service.add_host(modid, cmdid, v[0], v[1]),
        lambda v, version: f"Host {v[0]}:{v[1]} added (version {version}).",
    )
    return response


@router.post("/modules/{modid}/{cmdid}/hosts/edit")
async def edit_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = get_context(request).service
    raw_form = await request.form()
    form_id = f"edit-{raw_form.get('old_ip', '')}-{raw_form.get('old_port', '')}"
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        form_id,
        lambda f: (f.ip("old_ip"), f.port("old_port"), f.ip(), f.port()),
        lambda v: service.replace_host(modid, cmdid, (v[0], v[1]), (v[2], v[3])),
        lambda v, version: f"Host {v[0]}:{v[1]} is now {v[2]}:{v[3]} (version {version}).",
    )
    return response


@router.post("/modules/{modid}/{cmdid}/hosts/delete")
async def delete_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = get_context(request).service
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        "delete",
        lambda f: (f.ip(), f.port()),
        lambda v: service.del_host(modid, cmdid, v[0], v[1]),
        lambda v, version: f"Host {v[0]}:{v[1]} deleted (version {version}).",
    )
    return response


@router.post("/modules/{modid}/{cmdid}/descriptions")
async def set_descriptions(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = get_context(request).service
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        "desc",
        lambda f: (f.text("mod_desc"), f.text("cmd_desc")),
        lambda v: service.set_descriptions(modid, cmdid, v[0], v[1]),
        lambda v, _r: "Descriptions saved.",
    )
    return response


@router.post("/modules/{modid}/{cmdid}/delete")
async def delete_module(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = get_context(request).service
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        "delmod",
        lambda f: (),
        lambda v: service.del_module(modid, cmdid),
        lambda v, version: f"Module {modid}:{cmdid} deleted (version {version}).",
        target="/",
    )
    return response


# Versions


@router.get("/versions")
async def versions_page(request: Request) -> Response:
    current, pending = await _call(get_context(request).service.versions)
    return _render(request, "versions.html", version=current, pending=pending)


def form_value(forms: Mapping[str, Any], form_id: str, name: str, default: str = "") -> str:
    return str(forms.get(form_id, {}).get("values", {}).get(name, default))
