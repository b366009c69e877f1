"""build_console(engine, password) -> the ASGI app: JSON API, pages, auth, error mapping.

Without credentials only the login page, /static, /healthz, /metrics and POST /api/login
answer; API calls get 401, pages redirect to /login. Credentials are a session cookie
(the bootstrap admin or an account) or, for the API, a Bearer token; each route needs the
role policy.py declares (authorize.py enforces it, 403 below it). Unsafe API methods on a
session need its CSRF token in X-CSRF-Token; forms carry it as a hidden field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lars.accounts import AccountStore
from lars.console import accounts_routes, api, history_routes, login, pages, render
from lars.console.auth import LoginThrottle, PasswordHash, SessionStore
from lars.console.authorize import refusal
from lars.console.config import DEFAULT_USER, PASSWORD_ENV
from lars.console.context import ConsoleContext, get_context
from lars.console.counters import CountRequests
from lars.console.history import RouteHistory
from lars.console.metrics import ConsoleCollector
from lars.console.service import ConsoleService, NotFound, RouteAdminLike
from lars.console.store import ConsoleStore
from lars.console.validate import FieldErrors, parse_uint
from lars.errors import ConfigError, EditConflict, StoreUnavailable, ValidationError
from lars.obs.registry import new_registry
from lars.routes.admin import RouteAdmin

__all__ = ["build_console"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 64 * 1024
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def build_console(
    engine: Engine,
    password: str,
    *,
    admin: RouteAdminLike | None = None,
    clock: Callable[[], float] = time.time,
    stale_after: float = 60.0,
    refresh_interval: float = 5.0,
    session_ttl: float = 8 * 3600.0,
    secure_cookie: bool = False,
    user: str = DEFAULT_USER,
) -> FastAPI:
    """The console app on `engine`; raises ConfigError for a too short password, or for
    none while the database holds no admin account.

    `password` is the bootstrap admin's, named `user` ([console] user); accounts and tokens
    live in the database (lars.accounts). Route edits go through `admin` (default:
    lars.routes.admin.RouteAdmin on the same engine), audited with the name of whoever
    made them. The password is hashed here and the plain text dropped.
    """
    accounts = AccountStore(
        engine, clock=clock, reserved=frozenset({user}) if password else frozenset()
    )
    if not password and not accounts.has_admin():
        raise ConfigError(
            f"the console needs a password: set {PASSWORD_ENV} or [console] password, or "
            "create an admin account (lars console user add NAME --role admin)"
        )
    hashed = PasswordHash(password) if password else None
    own = admin if isinstance(admin, RouteAdmin) else RouteAdmin(engine, clock=clock, actor=user)
    if admin is None:
        admin = own
    context = ConsoleContext(
        service=ConsoleService(admin, ConsoleStore(engine), stale_after=stale_after, clock=clock),
        password=hashed,
        accounts=accounts,
        bootstrap_user=user,
        sessions=SessionStore(session_ttl),
        throttle=LoginThrottle(),
        clock=clock,
        refresh_interval=refresh_interval,
        secure_cookie=secure_cookie,
        session_ttl=session_ttl,
    )
    app = FastAPI(
        title="lars console",
        version="1",
        description="Route administration and host health for lars.",
        docs_url=None,  # Swagger UI would load scripts from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.console = context
    app.state.history = RouteHistory(own.audit, own, user)
    app.include_router(api.router)
    app.include_router(history_routes.api_router)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(history_routes.page_router)
    app.include_router(accounts_routes.api_router)
    app.include_router(accounts_routes.page_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        ok = await run_in_threadpool(get_context(request).service.store.ping)
        return JSONResponse(
            {"status": "ok" if ok else "database unavailable"}, status_code=200 if ok else 503
        )

    registry = new_registry("console")
    registry.register(ConsoleCollector(context.counters))

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.middleware("http")(history_routes.attach_hold)  # inside: the session is known
    app.middleware("http")(_require_session)
    app.add_middleware(CountRequests, counters=context.counters)  # outermost: refusals too
    _install_error_handlers(app)
    return app


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _body_problem(request: Request) -> JSONResponse | None:
    """Bodies must declare their length, and it must be small: nothing the console takes
    (a form, a host, a description) comes near MAX_BODY, so a flood is refused unread."""
    if request.method in _SAFE_METHODS:
        return None
    if "transfer-encoding" in request.headers:
        return JSONResponse({"detail": "a body needs a Content-Length"}, status_code=411)
    length = parse_uint(request.headers.get("content-length", "0"), 0, 10**12)
    if length is None:
        return JSONResponse({"detail": "invalid Content-Length"}, status_code=400)
    if length > MAX_BODY:
        return JSONResponse({"detail": f"body larger than {MAX_BODY} bytes"}, status_code=413)
    return None


async def _require_session(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    refused = _body_problem(request) or await refusal(request)
    if refused is not None:
        return _secure(refused)
    static = request.url.path.startswith("/static/")
    return _secure(await call_next(request), cache=static)


def _secure(response: Response, *, cache: bool = False) -> Response:
    """Browser hardening: no framing, no foreign scripts or styles, no MIME sniffing; pages
    and API answers are never cached (they show live state and carry CSRF tokens)."""
    response.headers.update(_SECURITY_HEADERS)
    if not cache:
        response.headers["Cache-Control"] = "no-store"
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if _is_api(request.url.path):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return render.error_page(request, 404, str(exc))

    @app.exception_handler(ValidationError)
    async def conflict(request: Request, exc: ValidationError) -> Response:
        fields = exc.errors if isinstance(exc, FieldErrors) else {}
        return JSONResponse({"detail": str(exc), "fields": fields}, status_code=409)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> Response:
        log.warning("console request %s failed: %s", request.url.path, exc)
        if isinstance(exc, EditConflict):  # says what happened; names no server
            if _is_api(request.url.path):
                return JSONResponse({"detail": str(exc)}, status_code=503)
            return render.error_page(request, 503, str(exc))
        if _is_api(request.url.path):
            return JSONResponse({"detail": "database unavailable"}, status_code=503)
        return render.error_page(request, 503, "The database is unavailable; try again shortly.")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request.url.path):
            return JSONResponse({"detail": _jsonable(exc.errors())}, status_code=422)
        return render.error_page(request, 404, "No such page.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request.url.path) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)
        return render.error_page(request, exc.status_code, str(exc.detail))


def _jsonable(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """loc, msg and type of each error; the input is never echoed (it may be a password)."""
    return [
        {
            "loc": [_printable(part) for part in err.get("loc", ())],
            "msg": _printable(err.get("msg", "")),
            "type": _printable(err.get("type", "")),
        }
        for err in errors
    ]


def _printable(value: object) -> object:
    """Strings made safe to encode as UTF-8 (a lone surrogate in a JSON key is escaped)."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")
