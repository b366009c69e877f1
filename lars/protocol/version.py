"""RouteVersion arithmetic: the column is `int unsigned`, so versions wrap at 2**32.

The route table's version is compared for *inequality* by every route service (a
different version is a change, whichever way it moved), which a wrap cannot fool. Where
lars has to *order* two versions (a replica must never serve an older table than one it
served: issue 22), it uses serial-number arithmetic (RFC 1982 style): `a` is newer than
`b` when (a - b) mod 2**32 is in 1 .. 2**31 - 1. The renumber after 4294967295 (to 1,
lars/routes/routeedit.py) is therefore newer, as is a jump to the current unix time.
"""

from __future__ import annotations

__all__ = ["MAX_VERSION", "is_newer", "next_version"]

MAX_VERSION = 2**32 - 1  # the largest RouteVersion.version an `int unsigned` holds
_HALF = 2**31


def is_newer(a: int, b: int) -> bool:
    """Is version `a` newer than version `b` (serial-number order, mod 2**32)?

    Irreflexive and antisymmetric; undefined (False both ways) for the one pair exactly
    2**31 apart, as RFC 1982 leaves it."""
    return 0 < (a - b) % 2**32 < _HALF


def next_version(old: int, now: float) -> tuple[int, bool]:
    """The version after `old`: max(old + 1, unix time `now`), or 1 past MAX_VERSION.
    Returns (version, renumbered). A clock past MAX_VERSION (after 2106) is ignored, so
    consecutive edits never share a version."""
    version = max(old + 1, int(now)) if now <= MAX_VERSION else old + 1
    if version > MAX_VERSION:
        return 1, True
    return version, False
