"""Password hashing: salted scrypt, never reversible, and its text form for the database.

The text form is "scrypt$N$r$p$salt$digest" (salt and digest URL-safe base64), so the
cost can be raised later without breaking stored hashes. Verification compares in
constant time and refuses oversized candidates unhashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from lars.errors import ValidationError

__all__ = ["MAX_PASSWORD_LEN", "MIN_PASSWORD_LEN", "PasswordHash", "check_password"]

# scrypt cost: ~16 MiB and a few tens of ms per check, so guessing is slow.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_MAX_N = 2**20  # a stored hash asking for more memory than this is refused (tampering)
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
_SCHEME = "scrypt"


def check_password(password: str) -> str:
    """`password` when an account may use it; ValidationError saying why not."""
    if len(password) < MIN_PASSWORD_LEN:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise ValidationError(f"a password has at most {MAX_PASSWORD_LEN} characters")
    return password


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PasswordHash:
    """A salted scrypt digest of a password; the plain text is not kept."""

    __slots__ = ("_digest", "_n", "_p", "_r", "_salt")

    def __init__(self, password: str) -> None:
        self._salt = secrets.token_bytes(16)
        self._n, self._r, self._p = _SCRYPT_N, _SCRYPT_R, _SCRYPT_P
        self._digest = _derive(password, self._salt, self._n, self._r, self._p)

    def verify(self, candidate: str) -> bool:
        if not candidate or len(candidate) > MAX_PASSWORD_LEN:
            return False
        derived = _derive(candidate, self._salt, self._n, self._r, self._p)
        return hmac.compare_digest(derived, self._digest)

    def encode(self) -> str:
        """The text the database keeps: scheme, cost, salt and digest."""
        salt, digest = _b64(self._salt), _b64(self._digest)
        return f"{_SCHEME}${self._n}${self._r}${self._p}${salt}${digest}"

    @classmethod
    def decode(cls, text: str) -> PasswordHash:
        """A hash read back from encode(); ValueError for anything else."""
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != _SCHEME:
            raise ValueError("not a scrypt password hash")
        n, r, p = (int(x) for x in parts[1:4])
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt cost out of range")
        hashed = cls.__new__(cls)
        hashed._n, hashed._r, hashed._p = n, r, p
        hashed._salt, hashed._digest = _unb64(parts[4]), _unb64(parts[5])
        if len(hashed._salt) < 8 or len(hashed._digest) != 32:
            raise ValueError("scrypt salt or digest of the wrong size")
        return hashed

    def __repr__(self) -> str:
        return "PasswordHash(<hidden>)"
