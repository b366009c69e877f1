"""Accounts and API tokens in the console: the JSON API and the admin's Accounts page.

Both faces go through lars.accounts.AccountStore (the same code as `lars console user|
token`), so a token revoked here stops working at its next request everywhere. Only an
admin reaches these routes (policy.py). A token is shown once, when it is created.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from lars.accounts import Account, AccountStore, Role, UnknownAccount
from lars.accounts.passwords import MAX_PASSWORD_LEN, MIN_PASSWORD_LEN
from lars.accounts.roles import NAME_PATTERN
from lars.console.context import get_context, principal_of
from lars.console.models import ErrorOut
from lars.console.render import CsrfRejected, call, error_page, form, redirect, render
from lars.console.service import NotFound
from lars.errors import ValidationError

__all__ = ["AccountOut", "TokenOut", "api_router", "page_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "not logged in, or an invalid or revoked token"},
    403: {"model": ErrorOut, "description": "only an admin manages accounts and tokens"},
    503: {"model": ErrorOut, "description": "database unavailable"},
}
_UNSAFE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not valid JSON"},
    411: {"model": ErrorOut, "description": "a body without Content-Length"},
    413: {"model": ErrorOut, "description": "the body is larger than 64 KiB"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such user or token"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "the name is taken or reserved"}
}

api_router = APIRouter(prefix="/api", responses=_ERRORS)
page_router = APIRouter(include_in_schema=False)

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64, examples=["alice"])]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LEN, max_length=MAX_PASSWORD_LEN)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    name: Name
    role: Role
    password: Password


class TokenIn(_In):
    name: Name
    role: Role


class PasswordIn(_In):
    password: Password


class RoleIn(_In):
    role: Role


class AccountOut(BaseModel):
    name: str
    kind: str
    role: Role
    created_at: int
    created_by: str

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            name=account.name,
            kind=account.kind,
            role=account.role,
            created_at=account.created_at,
            created_by=account.created_by,
        )


class TokenOut(BaseModel):
    """`token` is shown this once; the database keeps only its SHA-256 digest."""

    name: str
    role: Role
    token: str


def _store(request: Request) -> AccountStore:
    return get_context(request).accounts


def _keep(request: Request) -> bool:
    """Whether the last admin account must stay: without a bootstrap password nobody could
    log in to the console as admin again."""
    return get_context(request).password is None


def _known(fn: Any, *args: Any, keep_admin: bool = False) -> Any:
    """Run a store call; an unknown name becomes the console's 404."""
    try:
        if keep_admin:
            return fn(*args, keep_admin=True)
        return fn(*args)
    except UnknownAccount as exc:
        raise NotFound(str(exc)) from exc


# JSON API


@api_router.get("/accounts", response_model=list[AccountOut])
def list_accounts(request: Request) -> list[AccountOut]:
    """Every user and token (never a secret)."""
    return [AccountOut.of(a) for a in _store(request).accounts()]


@api_router.post(
    "/users",
    status_code=201,
    response_model=AccountOut,
    responses={**_UNSAFE, **_CONFLICT},
)
def add_user(body: UserIn, request: Request) -> AccountOut:
    store = _store(request)
    store.add_user(body.name, body.role, body.password, by=principal_of(request).name)
    return AccountOut.of(next(a for a in store.accounts("user") if a.name == body.name))


@api_router.delete("/users/{name}", status_code=204, responses={**_UNSAFE, **_NOT_FOUND})
def delete_user(name: NamePath, request: Request) -> Response:
    """Delete the user; their sessions end at their next request."""
    _known(_store(request).delete, name, "user", keep_admin=_keep(request))
    return Response(status_code=204)


@api_router.put(
    "/users/{name}/password",
    status_code=204,
    responses={**_UNSAFE, **_NOT_FOUND, **_CONFLICT},
)
def set_password(name: NamePath, body: PasswordIn, request: Request) -> Response:
    _known(_store(request).set_password, name, body.password)
    return Response(status_code=204)


@api_router.put("/users/{name}/role", status_code=204, responses={**_UNSAFE, **_NOT_FOUND})
def set_role(name: NamePath, body: RoleIn, request: Request) -> Response:
    """Change the user's role; it applies at their next request."""
    _known(_store(request).set_role, name, "user", body.role, keep_admin=_keep(request))
    return Response(status_code=204)


@api_router.post(
    "/tokens", status_code=201, response_model=TokenOut, responses={**_UNSAFE, **_CONFLICT}
)
def create_token(body: TokenIn, request: Request) -> TokenOut:
    """A new API token (send it as `Authorization: Bearer TOKEN`); shown only here."""
    token = _store(request).create_token(body.name, body.role, by=principal_of(request).name)
    return TokenOut(name=body.name, role=body.role, token=token)


@api_router.delete("/tokens/{name}", status_code=204, responses={**_UNSAFE, **_NOT_FOUND})
def revoke_token(name: NamePath, request: Request) -> Response:
    """Revoke the token: its next request gets 401."""
    _known(_store(request).delete, name, "token")
    return Response(status_code=204)


# The Accounts page


async def _page(request: Request, status: int = 200, **values: Any) -> Response:
    accounts = await call(_store(request).accounts)
    return render(
        request,
        "accounts.html",
        status,
        users=[a for a in accounts if a.kind == "user"],
        tokens=[a for a in accounts if a.kind == "token"],
        roles=[r.value for r in Role],
        bootstrap=get_context(request).bootstrap_user,
        **values,
    )


@page_router.get("/accounts")
async def accounts_page(request: Request) -> Response:
    return await _page(request)


async def _post(request: Request, action: Any, done: str) -> Response:
    """CSRF-check the form, run `action(fields)`; on a refusal show the page with why."""
    try:
        fields = await form(request)
    except CsrfRejected:
        return error_page(request, 403, "Your form expired; reload the page and try again.")
    try:
        result = await call(action, fields)
    except ValidationError as exc:  # a taken or unknown name, a bad role or password
        return await _page(request, 400, error=str(exc))
    if isinstance(result, str):  # a new token: shown on the page once, never redirected
        return await _page(request, 201, new_token=result, token_name=fields.get("name", ""))
    return redirect(request, "/accounts", done.format_map(defaultdict(str, fields)))


def _role(fields: dict[str, str]) -> Role:
    return Role.parse(fields.get("role", ""))


@page_router.post("/accounts/users")
async def add_user_form(request: Request) -> Response:
    store, by = _store(request), principal_of(request).name
    return await _post(
        request,
        lambda f: store.add_user(f.get("name", "").strip(), _role(f), f.get("password", ""), by=by),
        "User {name} added.",
    )


@page_router.post("/accounts/users/delete")
async def delete_user_form(request: Request) -> Response:
    store, keep = _store(request), _keep(request)
    return await _post(
        request,
        lambda f: store.delete(f.get("name", ""), "user", keep_admin=keep),
        "User {name} deleted.",
    )


@page_router.post("/accounts/users/password")
async def password_form(request: Request) -> Response:
    store = _store(request)
    return await _post(
        request,
        lambda f: store.set_password(f.get("name", ""), f.get("password", "")),
        "Password of {name} changed.",
    )


@page_router.post("/accounts/users/role")
async def role_form(request: Request) -> Response:
    store, keep = _store(request), _keep(request)
    return await _post(
        request,
        lambda f: store.set_role(f.get("name", ""), "user", _role(f), keep_admin=keep),
        "{name} is now {role}.",
    )


@page_router.post("/accounts/tokens")
async def token_form(request: Request) -> Response:
    store, by = _store(request), principal_of(request).name
    return await _post(
        request,
        lambda f: store.create_token(f.get("name", "").strip(), _role(f), by=by),
        "",
    )


@page_router.post("/accounts/tokens/revoke")
async def revoke_form(request: Request) -> Response:
    store = _store(request)
    return await _post(
        request, lambda f: store.delete(f.get("name", ""), "token"), "Token {name} revoked."
    )
