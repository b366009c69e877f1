"""Routes of the route history and the held-table banner: pages, fragments and JSON API.

Every page shows a banner while a table is held (`attach_hold` looks it up once per page
view, in the thread pool); the banner's Release form is CSRF-checked and confirmed in the
browser, and so is its Restore form (the served table written back, lars/routes/restore.py).
The banner and /api/hold tell what the route services serve and hold, since when (the
guard state they save). The API: GET /api/history, GET /api/hold, POST /api/hold/release,
POST /api/hold/restore.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from lars.console.context import principal_of
from lars.console.history import (
    HISTORY_PAGE,
    MAX_LIMIT,
    HistoryEntryOut,
    HoldOut,
    ReleaseOut,
    RestoreOut,
    RouteHistory,
)
from lars.console.models import ErrorOut
from lars.console.render import CsrfRejected, call, error_page, form, redirect, render
from lars.console.validate import MAX_ID, ascii_digits
from lars.errors import StoreUnavailable, ValidationError
from lars.routes.audit import MAX_ENTRY_ID, NothingHeld

__all__ = ["api_router", "attach_hold", "get_history", "page_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "not logged in"},
    503: {"model": ErrorOut, "description": "database unavailable"},
}
_UNSAFE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "invalid Content-Length"},
    403: {"model": ErrorOut, "description": "missing or wrong CSRF token"},
    409: {"model": ErrorOut, "description": "no route table is held"},
    411: {"model": ErrorOut, "description": "a body without Content-Length"},
    413: {"model": ErrorOut, "description": "the body is larger than 64 KiB"},
}

api_router = APIRouter(prefix="/api", responses=_ERRORS)
page_router = APIRouter(include_in_schema=False)

# ascii_digits after Query: the strict parser, and the schema keeps its integer range
OptId = Annotated[int | None, Query(ge=0, le=MAX_ID), BeforeValidator(ascii_digits)]
Before = Annotated[
    int | None,
    Query(ge=1, le=MAX_ENTRY_ID, description="only entries with a smaller id"),
    BeforeValidator(ascii_digits),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT), BeforeValidator(ascii_digits)]


def get_history(request: Request) -> RouteHistory:
    history: RouteHistory = request.app.state.history
    return history


async def attach_hold(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Look up the held table for a full page (not the API, fragments or static files)."""
    path = request.url.path
    page = request.method == "GET" and not path.startswith(("/api/", "/static/"))
    if page and not path.endswith(".part") and getattr(request.state, "session", None):
        try:
            history = get_history(request)
            request.state.hold = await call(history.hold)
            request.state.guard = await call(history.served)
        except StoreUnavailable:
            request.state.hold = None  # the page itself reports the outage
            request.state.guard = None
    return await call_next(request)


# JSON API


@api_router.get("/history", response_model=list[HistoryEntryOut])
def api_history(
    request: Request,
    modid: OptId = None,
    cmdid: OptId = None,
    limit: Limit = 100,
    before: Before = None,
) -> list[HistoryEntryOut]:
    """Route changes, holds and releases, newest first (of one modid or module if given)."""
    entries = get_history(request).entries(modid, cmdid, limit, before)
    return [HistoryEntryOut.of(e) for e in entries]


@api_router.get("/hold", response_model=HoldOut)
def api_hold(request: Request) -> HoldOut:
    """Whether the route services hold a table back, why, and any release not yet applied."""
    history = get_history(request)
    return HoldOut.of(history.hold(), history.served())


@api_router.post("/hold/release", response_model=ReleaseOut, responses=_UNSAFE)
def api_release(request: Request) -> ReleaseOut:
    """Release the held table (admin; audited with the caller's name); 409 when none is."""
    return ReleaseOut.of(get_history(request).release(principal_of(request).name))


@api_router.post("/hold/restore", response_model=RestoreOut, responses=_UNSAFE)
def api_restore(request: Request) -> RestoreOut:
    """Write the table the route services serve back over the held one (admin; audited
    with the caller's name, lars/routes/restore.py); 409 when nothing is held."""
    return RestoreOut.of(get_history(request).restore(principal_of(request).name))


# Pages


@page_router.get("/history")
async def history_page(
    request: Request, modid: OptId = None, cmdid: OptId = None, before: Before = None
) -> Response:
    history = get_history(request)
    entries = await call(history.entries, modid, cmdid, HISTORY_PAGE + 1, before)
    older = entries[HISTORY_PAGE - 1].id if len(entries) > HISTORY_PAGE else None
    return render(
        request,
        "history.html",
        user=history.user,
        audited=await call(history.audit.available),
        entries=entries[:HISTORY_PAGE],
        modid=modid,
        cmdid=cmdid,
        before=before,
        older=older,
    )


@page_router.get("/hold.part")
async def hold_part(request: Request) -> Response:
    history = get_history(request)
    hold, guard = await call(history.hold), await call(history.served)
    return render(request, "_hold.html", hold=hold, guard=guard)


@page_router.post("/hold/release")
async def release(request: Request) -> Response:
    try:
        await form(request)
    except CsrfRejected:
        return error_page(request, 403, "Your form expired; reload the page and try again.")
    try:
        done = await call(get_history(request).release, principal_of(request).name)
    except NothingHeld as exc:
        return redirect(request, "/history", f"Nothing released: {exc}.")
    if done.repeated:  # one release row per hold: a second click answers the first
        return redirect(
            request,
            "/history",
            f"Already released: release #{done.entry.id} by {done.entry.actor} at version "
            f"{done.entry.version}; nothing written.",
        )
    return redirect(
        request,
        "/history",
        f"Release #{done.entry.id} written at version {done.entry.version}: a route service "
        "holding the table applies it within a poll interval.",
    )


@page_router.post("/hold/restore")
async def restore(request: Request) -> Response:
    try:
        await form(request)
    except CsrfRejected:
        return error_page(request, 403, "Your form expired; reload the page and try again.")
    try:
        done = await call(get_history(request).restore, principal_of(request).name)
    except ValidationError as exc:  # NothingHeld, NoServedTable
        return redirect(request, "/history", f"Nothing restored: {exc}.")
    return redirect(
        request,
        "/history",
        f"Restored the served table (version {done.served_version}: {done.modules} modules, "
        f"{done.hosts} hosts) at version {done.version}; the route services load it within "
        "a poll interval and the hold ends.",
    )
