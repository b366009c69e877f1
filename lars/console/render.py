"""Rendering helpers shared by the HTML routes: templates, flashes, CSRF-checked forms."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from lars.accounts import Principal, Role
from lars.console.chart import error_rate_svg
from lars.console.context import get_context, session_of
from lars.protocol.weight import MAX_WEIGHT

__all__ = ["CsrfRejected", "call", "error_page", "form", "redirect", "render"]

T = TypeVar("T")

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.filters["svg_chart"] = lambda hosts: Markup(error_rate_svg(hosts))
templates.env.filters["age"] = lambda s: "-" if s is None else _age(s)
templates.env.filters["utc"] = lambda ts: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
templates.env.globals["max_weight"] = MAX_WEIGHT


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    ctx = get_context(request)
    session = getattr(request.state, "session", None)
    flashes: list[str] = []
    if session is not None and not name.startswith("_"):
        flashes, session.flash = session.flash, []
    values.setdefault("forms", {})
    principal: Principal | None = getattr(request.state, "principal", None)
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf": session.csrf if session else "",
            "flashes": flashes,
            "refresh_ms": int(ctx.refresh_interval * 1000),
            "stale_after": ctx.service.stale_after,
            "logged_in": session is not None,
            # What the pages offer: a viewer sees no edit forms, only an admin the
            # Accounts page and the release of a held table (the server checks anyway).
            "principal": principal,
            "can_edit": principal is not None and principal.may(Role.EDITOR),
            "is_admin": principal is not None and principal.may(Role.ADMIN),
            "hold": getattr(request.state, "hold", None),  # set by history_routes.attach_hold
            "guard": getattr(request.state, "guard", None),  # what the route services serve
            **values,
        },
        status_code=status,
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, code=status, message=message)


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    if flash:
        session_of(request).flash.append(flash)
    return RedirectResponse(url, status_code=303)


async def form(request: Request) -> dict[str, str]:
    """The posted fields; a wrong CSRF token is refused before anything else is read."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not session_of(request).csrf_ok(values.get("csrf")):
        raise CsrfRejected()
    return values


class CsrfRejected(Exception):
    pass


async def call(fn: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(fn, *args)
