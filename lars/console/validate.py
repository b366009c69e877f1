"""Form input checks that name the field, so the page can show each message beside it.

The same limits as RouteAdmin (ids 0..2147483647, dotted IPv4, port 1..65535); RouteAdmin
checks again, this layer only makes the messages precise.

Every integer the console reads (form fields, path and query parameters, headers) goes
through `parse_uint` (lars.strictint): ASCII digits only. str.isdigit() is not enough:
it is true for `²` and `٣`, on which int() raises or which it reads as 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from lars.errors import ValidationError
from lars.protocol.ipv4 import dotted_to_uint
from lars.strictint import ASCII_DIGITS, parse_uint

__all__ = [
    "MAX_DESC",
    "MAX_ID",
    "FieldErrors",
    "Fields",
    "ascii_digits",
    "check_text",
    "parse_uint",
]

T = TypeVar("T")

MAX_ID = 2**31 - 1
MAX_DESC = 255


def ascii_digits(value: Any) -> Any:
    """A pydantic BeforeValidator for integer path and query parameters: a string must
    be ASCII digits only (pydantic's lax int would read `3_0`, `+3`, ` 3` or `3.0`); the
    range stays with the parameter's ge/le."""
    if isinstance(value, str) and (
        not value or len(value) > 20 or not ASCII_DIGITS.issuperset(value)
    ):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


class FieldErrors(ValidationError):
    """Input errors by form field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def check_text(value: str, max_len: int = MAX_DESC) -> str | None:
    """Why `value` cannot be stored as a description, or None when it can."""
    if len(value) > max_len:
        return f"at most {max_len} characters"
    if any((ord(ch) < 32 and ch not in "\t") or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return "control characters are not allowed"
    return None


class Fields:
    """Parses named form values, collecting one message per bad field."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self._form = form
        self.errors: dict[str, str] = {}

    def raw(self, name: str) -> str:
        return str(self._form.get(name, "")).strip()

    def ident(self, name: str, label: str) -> int:
        raw = self.raw(name)
        if not raw:
            return self._fail(name, f"{label} is required", 0)
        value = parse_uint(raw, 0, MAX_ID)
        if value is None:
            return self._fail(name, f"{label} must be a whole number 0..{MAX_ID}", 0)
        return value

    def ip(self, name: str = "ip") -> str:
        raw = self.raw(name)
        if not raw:
            return self._fail(name, "IP address is required", "")
        try:
            dotted_to_uint(raw)
        except ValidationError:
            return self._fail(name, "must be a dotted IPv4 address such as 10.0.0.7", "")
        return raw  # canonical: dotted_to_uint accepts no other spelling

    def port(self, name: str = "port") -> int:
        raw = self.raw(name)
        if not raw:
            return self._fail(name, "port is required", 0)
        value = parse_uint(raw, 1, 65535)
        if value is None:
            return self._fail(name, "port must be a number 1..65535", 0)
        return value

    def uint(self, name: str, lo: int, hi: int, message: str) -> int:
        """A required whole number lo..hi; `message` beside the field otherwise."""
        value = parse_uint(self.raw(name), lo, hi)
        return self._fail(name, message, 0) if value is None else value

    def text(self, name: str) -> str:
        value = str(self._form.get(name, "")).strip()
        problem = check_text(value)
        if problem:
            return self._fail(name, problem, "")
        return value

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self) -> None:
        """Raise FieldErrors when any field was bad."""
        if self.errors:
            raise FieldErrors(self.errors)

    def _fail(self, name: str, message: str, placeholder: T) -> T:
        self.errors.setdefault(name, message)
        return placeholder
