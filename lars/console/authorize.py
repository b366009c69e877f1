"""Who a request is and whether its role may call the route: the console's one gate.

A request is judged, before its body is read or validated, by exactly one credential:
on /api/ paths an `Authorization: Bearer TOKEN` header (cookies are then ignored, and no
CSRF token is needed since nothing rides on a cookie), otherwise the session cookie. The
token or the session's account is read from the database on every request, so a revoked
token or a deleted account stops at once. The role a route needs comes from policy.py:
no credentials give 401 (pages redirect to /login), too small a role 403.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lars.accounts import Principal, Role
from lars.console.auth import Session
from lars.console.context import COOKIE, CSRF_HEADER, ConsoleContext, get_context
from lars.console.render import error_page
from lars.errors import StoreUnavailable

__all__ = ["refusal"]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header; None for any other scheme."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def refusal(request: Request) -> Response | None:
    """The response refusing `request`, or None when it may go on (then
    request.state.principal and request.state.session are set; session is None for a
    token or a public route)."""
    request.state.session = None
    ctx = get_context(request)
    path = request.url.path
    need = ctx.policy.required(request.method, path)
    if not isinstance(need, Role):
        return None  # public
    header = request.headers.get("authorization")
    session: Session | None = None
    try:
        if _is_api(path) and header is not None:
            token = bearer_token(header)
            principal = await run_in_threadpool(ctx.accounts.token, token) if token else None
            if principal is None:
                return JSONResponse(
                    {"detail": "invalid or revoked token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        else:
            session, principal = await _from_cookie(request, ctx)
    except StoreUnavailable as exc:
        log.warning("console request %s: credentials unreadable: %s", path, exc)
        return JSONResponse({"detail": "database unavailable"}, status_code=503)
    if principal is None:
        return _not_logged_in(request)
    request.state.session = session
    request.state.principal = principal
    if not principal.may(need):
        who = f"{principal.name} ({principal.role.value})"
        return _forbidden(request, f"{who} may not do this: it needs the {need.value} role")
    if (
        session is not None
        and _is_api(path)
        and request.method not in SAFE_METHODS
        and not session.csrf_ok(request.headers.get(CSRF_HEADER))
    ):
        return JSONResponse({"detail": "missing or wrong X-CSRF-Token header"}, status_code=403)
    return None


async def _from_cookie(
    request: Request, ctx: ConsoleContext
) -> tuple[Session | None, Principal | None]:
    session = ctx.sessions.get(request.cookies.get(COOKIE), ctx.clock())
    if session is None:
        return None, None
    if session.kind == "bootstrap":  # no database read for the configured admin
        principal = ctx.principal_of_session(session)
    else:
        principal = await run_in_threadpool(ctx.principal_of_session, session)
    if principal is None:  # the account was deleted: its sessions end
        ctx.sessions.drop(session.token)
        return None, None
    return session, principal


def _not_logged_in(request: Request) -> Response:
    path = request.url.path
    if _is_api(path) or path.endswith(".part") or request.method not in SAFE_METHODS:
        return JSONResponse({"detail": "not logged in"}, status_code=401)
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _forbidden(request: Request, message: str) -> Response:
    if _is_api(request.url.path) or request.url.path.endswith(".part"):
        return JSONResponse({"detail": message}, status_code=403)
    return error_page(request, 403, message)
