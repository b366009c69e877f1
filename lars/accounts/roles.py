"""Roles and the principal a request acts as (the actor in RouteAudit).

viewer reads; editor also edits routes (hosts, modules, drain, weight); admin also
manages accounts and tokens and releases or restores held tables. Each role includes the
ones below it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from lars.errors import ValidationError

__all__ = ["NAME_PATTERN", "NAME_RULE", "Principal", "Role", "check_name"]


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        """True when this role may do what `required` may."""
        return self.rank >= required.rank

    @classmethod
    def parse(cls, raw: str) -> Role:
        """The role named `raw`; ValidationError listing the roles otherwise."""
        try:
            return cls(raw.strip().lower())
        except ValueError:
            raise ValidationError(f"unknown role {raw!r}: use viewer, editor or admin") from None


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}

# Lower case only: MySQL compares names without case, SQLite with it; one rule for both.
NAME_RULE = (
    "1-64 characters: lower-case letters, digits and . _ @ -, starting with a letter or digit"
)
NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(name: str) -> str:
    """`name` when it is a valid account or token name; ValidationError otherwise."""
    if not _NAME.fullmatch(name):
        raise ValidationError(f"invalid name {name!r}: {NAME_RULE}")
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: `kind` is "bootstrap" (the configured admin), "user" or
    "token"; `name` is what RouteAudit records."""

    name: str
    role: Role
    kind: str

    def may(self, required: Role) -> bool:
        return self.role.allows(required)
