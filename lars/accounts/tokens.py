"""API tokens: random, high entropy, stored only as a SHA-256 digest.

A token carries 256 random bits, so a fast digest is as safe as a slow password hash
(nobody can guess the input) and costs microseconds per API call, where scrypt would cost
tens of milliseconds of CPU on every request.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["MAX_TOKEN_LEN", "TOKEN_PREFIX", "new_token", "token_digest"]

TOKEN_PREFIX = "lars_"  # lets secret scanners and people recognise a leaked token
MAX_TOKEN_LEN = 128  # longer candidates are refused unread


def new_token() -> str:
    """A fresh token: the prefix and 32 random bytes, URL-safe base64 (no spaces)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps for `token`: "sha256$" and the hex digest."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256${digest}"
