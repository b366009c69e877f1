"""One strict parser for integers typed by people or sent in URLs: ASCII digits only.

str.isdigit() and int() take far more than the digits 0-9: `²` and `¹²` pass isdigit()
and make int() raise; int() reads `٣`, fullwidth digits, `+3`, ` 3`, `3_0` as numbers.
Every console field and path or query parameter, and the metrics listeners' query
parameters (the agent's /debug/module), go through `parse_uint` instead (issue 19).
Standard library only.
"""

from __future__ import annotations

__all__ = ["ASCII_DIGITS", "parse_uint"]

ASCII_DIGITS = frozenset("0123456789")
_MAX_LEN = 20  # leading zeros allowed up to this; longer is never a number we take


def parse_uint(raw: str, lo: int, hi: int) -> int | None:
    """`raw` (blanks around it ignored) as an int in lo..hi, or None when it is not one.

    Only ASCII digits: no sign, underscore, blank inside, or any other Unicode digit.
    Never raises, and never runs int() on more than max(20, digits of `hi`) characters,
    so a huge value costs nothing."""
    text = raw.strip()
    if not text or len(text) > max(_MAX_LEN, len(str(hi))) or not ASCII_DIGITS.issuperset(text):
        return None
    value = int(text)
    return value if lo <= value <= hi else None
