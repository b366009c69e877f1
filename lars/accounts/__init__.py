"""Console accounts and API tokens: roles, password and token hashing, their table.

Shared by the console (login, per-request authorisation) and `lars console user|token`,
which need no web stack: nothing here imports FastAPI.
"""

from __future__ import annotations

from lars.accounts.passwords import PasswordHash, check_password
from lars.accounts.roles import Principal, Role
from lars.accounts.store import Account, AccountError, AccountStore, UnknownAccount
from lars.accounts.tokens import new_token, token_digest

__all__ = [
    "Account",
    "AccountError",
    "AccountStore",
    "PasswordHash",
    "Principal",
    "Role",
    "UnknownAccount",
    "check_password",
    "new_token",
    "token_digest",
]
