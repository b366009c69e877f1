"""Login and logout pages. The login form carries a token that must match a cookie set with
the page (double submit), so another site cannot log a browser in behind its back."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lars.console.context import COOKIE, client_of, get_context
from lars.console.render import CsrfRejected, call, error_page, form, render

__all__ = ["router"]

LOGIN_COOKIE = "lars_login_csrf"
router = APIRouter(include_in_schema=False)


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
    response = render(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login")
async def login_submit(request: Request) -> Response:
    posted = await request.form()
    password = str(posted.get("password", ""))
    user = str(posted.get("user", ""))[:64]
    target = _safe_next(str(posted.get("next", "/")))
    token = str(posted.get("csrf", ""))
    ctx = get_context(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    wait = ctx.throttled_for(client_of(request))
    status, headers = 401, {}
    if wait is not None:
        # A lockout, not a wrong password: 429 with Retry-After, as the API answers.
        error = f"Too many failed logins: wait {wait} s and retry."
        session = None
        status, headers = 429, {"Retry-After": str(wait)}
    elif not token or not secrets.compare_digest(token, cookie):
        error = "Your login form expired; please try again."
        session = None
    else:
        session = await call(ctx.login, password, client_of(request), user)
        error = "Wrong user or password." if user.strip() else "Wrong password."
    if session is None:
        fresh = _login_token(request)
        response: Response = render(
            request, "login.html", status, login_csrf=fresh, next=target, error=error, user=user
        )
        response.headers.update(headers)
        response.set_cookie(LOGIN_COOKIE, fresh, httponly=True, samesite="strict", path="/login")
        return response
    response = RedirectResponse(target, status_code=303)
    ctx.set_cookie(response, session)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        await form(request)
    except CsrfRejected:
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
