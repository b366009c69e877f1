"""The committed seed corpus and the hypothesis strategy that mutates it.

`mutated(kind)` draws a seed of tests/fuzz/corpus/<kind> and applies a few edits of the
kinds that find decoder bugs: flipped and overwritten bytes, interesting integers
(0, -1, int32 limits, 65535, 65536) at any offset, insertions, deletions, truncation,
splices of two seeds, duplication; sometimes random bytes alone.
"""

from __future__ import annotations

import os
import struct
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parent / "corpus"
# LARS_FUZZ_SCALE=20 runs 20 times the examples (a longer hunt by hand; CI uses 1).
SCALE = float(os.environ.get("LARS_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """`n` examples, times LARS_FUZZ_SCALE."""
    return max(1, int(n * SCALE))


_INTERESTING = [0, 1, -1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, -0x80000000]


@cache
def seeds(kind: str) -> tuple[bytes, ...]:
    files = sorted(p for p in (CORPUS / kind).iterdir() if p.is_file())
    assert files, f"no seeds in {CORPUS / kind}"
    return tuple(p.read_bytes() for p in files)


@st.composite
def _edit(draw: st.DrawFn, data: bytes, kind: str) -> bytes:
    buf = bytearray(data)
    op = draw(st.integers(0, 7))
    at = draw(st.integers(0, len(buf))) if buf else 0
    if op == 0 and buf:  # flip bits of one byte
        i = min(at, len(buf) - 1)
        buf[i] ^= draw(st.integers(1, 255))
    elif op == 1:  # an interesting int32 at any offset
        value = draw(st.sampled_from(_INTERESTING))
        buf[at : at + 4] = struct.pack("<i", value)
    elif op == 2:  # insert bytes
        buf[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif op == 3 and buf:  # delete a range
        buf[at : at + draw(st.integers(1, 16))] = b""
    elif op == 4:  # truncate
        del buf[at:]
    elif op == 5:  # splice with another seed
        other = draw(st.sampled_from(seeds(kind)))
        buf = buf[:at] + bytearray(other[draw(st.integers(0, len(other))) :])
    elif op == 6:  # duplicate a tail
        buf += buf[at:]
    else:  # an interesting varint byte (protobuf: a huge length, a field number)
        buf[at:at] = draw(st.sampled_from([b"\xff\xff\xff\xff\x0f", b"\x80", b"\x0a\xff\x01"]))
    return bytes(buf)


@st.composite
def mutated(draw: st.DrawFn, kind: str, max_edits: int = 4) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=256))
    data = draw(st.sampled_from(seeds(kind)))
    for _ in range(draw(st.integers(0, max_edits))):
        data = draw(_edit(data, kind))
    return data
