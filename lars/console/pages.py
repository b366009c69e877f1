"""The HTML face: server-rendered pages and the fragments the page script refreshes.

Forms post back here with the session's CSRF token; a bad field re-renders the page with
its message beside the field (422); a good edit redirects (303) with a flash message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from lars.console.context import service_of
from lars.console.health import HostState
from lars.console.history import MODULE_HISTORY
from lars.console.history_routes import get_history
from lars.console.models import CmdId, ModId
from lars.console.render import CsrfRejected, call, error_page, form, redirect, render
from lars.console.served import held_changes, served_entries
from lars.console.validate import FieldErrors, Fields
from lars.protocol.weight import MAX_WEIGHT

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

FormErrors = dict[str, dict[str, Any]]


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
    return render(request, "_modules.html", **await _module_list(request, q[:100], state))


async def _module_list(request: Request, q: str, state: str) -> dict[str, Any]:
    """The module list: the database's table, or while a table is held what agents are
    served with the held change beside it (lars/console/served.py)."""
    service = service_of(request)
    guard = await call(get_history(request).served)
    if guard is None or guard.held is None:
        modules = await call(service.modules, q, _state(state))
        return {"modules": modules, "changes": None, "guard": guard}
    database = await call(lambda: service.admin.list_routes(registered=True))
    changes = held_changes(guard, database)
    modules = await call(service.modules, q, _state(state), served_entries(guard))
    listed = {(m.modid, m.cmdid) for m in modules}
    added = sorted(k for k, c in changes.items() if not c.served and c.held and k not in listed)
    return {"modules": modules, "changes": changes, "held_only": added, "guard": guard}


async def _modules(
    request: Request, q: str, state: str, status: int = 200, forms: FormErrors | None = None
) -> Response:
    return render(
        request,
        "modules.html",
        status,
        **await _module_list(request, q, state),
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
        lambda f, v: call(service_of(request).add_module, *v),
        lambda v, version: (
            f"/modules/{v[0]}/{v[1]}",
            f"Module {v[0]}:{v[1]} added with host {v[2]}:{v[3]} (version {version}).",
        ),
        lambda forms: _modules(request, "", "", 422, forms),
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
        raw = await form(request)
    except CsrfRejected:
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
    return redirect(request, url, message)


# One module


async def _module(
    request: Request, modid: int, cmdid: int, status: int = 200, forms: FormErrors | None = None
) -> Response:
    module = await call(service_of(request).module, modid, cmdid)
    history = await call(get_history(request).entries, modid, cmdid, MODULE_HISTORY)
    return render(request, "module.html", status, m=module, forms=forms or {}, history=history)


@router.get("/modules/{modid}/{cmdid}")
async def module_page(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    return await _module(request, modid, cmdid)


@router.get("/modules/{modid}/{cmdid}/hosts.part")
async def module_part(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    module = await call(service_of(request).module, modid, cmdid)
    return render(request, "_hosts.html", m=module)


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
        lambda _f, v: call(apply, v),
        lambda v, result: (url, message(v, result)),
        lambda forms: _module(request, modid, cmdid, 422, forms),
    )


@router.post("/modules/{modid}/{cmdid}/hosts")
async def add_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = service_of(request)
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
    service = service_of(request)
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
    service = service_of(request)
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


def _host_form_id(prefix: str, raw_form: Any) -> str:
    return f"{prefix}-{raw_form.get('ip', '')}-{raw_form.get('port', '')}"


@router.post("/modules/{modid}/{cmdid}/hosts/drain")
async def drain_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    """The drain toggle; the page's confirmation sets `force` for the last enabled host."""
    service = service_of(request)
    form_id = _host_form_id("drain", await request.form())
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        form_id,
        lambda f: (f.ip(), f.port(), f.text("note"), f.raw("force") == "1"),
        lambda v: service.drain(modid, cmdid, v[0], v[1], note=v[2], force=v[3]),
        lambda v, version: (
            f"Host {v[0]}:{v[1]} drained: agents stop choosing it (version {version})."
        ),
    )
    return response


@router.post("/modules/{modid}/{cmdid}/hosts/undrain")
async def undrain_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = service_of(request)
    form_id = _host_form_id("drain", await request.form())
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        form_id,
        lambda f: (f.ip(), f.port(), f.text("note")),
        lambda v: service.undrain(modid, cmdid, v[0], v[1], note=v[2]),
        lambda v, version: f"Host {v[0]}:{v[1]} is served again (version {version}).",
    )
    return response


@router.post("/modules/{modid}/{cmdid}/hosts/weight")
async def weight_host(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = service_of(request)
    form_id = _host_form_id("weight", await request.form())
    response: Response = await _module_edit(
        request,
        modid,
        cmdid,
        form_id,
        lambda f: (f.ip(), f.port(), _weight(f), f.text("note")),
        lambda v: service.set_weight(modid, cmdid, v[0], v[1], v[2], note=v[3]),
        lambda v, version: f"Host {v[0]}:{v[1]} now has weight {v[2]} (version {version}).",
    )
    return response


def _weight(fields: Fields) -> int:
    # 0 and past MAX_WEIGHT pass here: RouteAdmin says why (0: drain instead)
    return fields.uint("weight", 0, 999_999, f"weight must be a whole number 1..{MAX_WEIGHT}")


@router.post("/modules/{modid}/{cmdid}/descriptions")
async def set_descriptions(request: Request, modid: ModId, cmdid: CmdId) -> Response:
    service = service_of(request)
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
    service = service_of(request)
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
    current, pending = await call(service_of(request).versions)
    return render(request, "versions.html", version=current, pending=pending)


@router.get("/versions.part")
async def versions_part(request: Request) -> Response:
    current, pending = await call(service_of(request).versions)
    return render(request, "_versions.html", version=current, pending=pending)
