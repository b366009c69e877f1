"""The Lars frame (spec section 1), sans-I/O.

A frame is an 8-byte little-endian header (msgid int32, msglen int32) and msglen bytes
of body. `encode` builds one; `FrameDecoder` is fed arbitrary chunks of a TCP stream
and returns every complete frame; `decode_datagram` checks one UDP datagram.
"""

from __future__ import annotations

import struct

from lars.errors import FrameLengthError, ProtocolError

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "MAX_BODY",
    "MAX_FRAME",
    "Frame",
    "FrameDecoder",
    "decode_datagram",
    "encode",
]

HEADER = struct.Struct("<ii")
HEADER_SIZE = HEADER.size
MAX_FRAME = 65535
MAX_BODY = MAX_FRAME - HEADER_SIZE  # 65527

Frame = tuple[int, bytes]

_pack = HEADER.pack
_unpack_from = HEADER.unpack_from


def encode(msgid: int, body: bytes = b"") -> bytes:
    """One frame; raise FrameLengthError when the body exceeds MAX_BODY, ProtocolError
    when msgid is not an int32."""
    n = len(body)
    if n > MAX_BODY:
        raise FrameLengthError(msgid, n)
    try:
        return _pack(msgid, n) + body
    except struct.error:
        raise ProtocolError(f"msgid {msgid} does not fit a signed 32-bit field") from None


class FrameDecoder:
    """Splits a byte stream into frames.

    `feed` returns all frames completed by the chunk, in order. The first invalid header
    raises FrameLengthError carrying the valid frames that came before it in the chunk
    (`exc.frames`); the stream is then unusable (the caller closes it). The
    buffer holds at most one partial frame, so it never exceeds MAX_FRAME bytes.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (0 when the stream is between frames)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
            size = len(data)
            if size >= HEADER_SIZE:  # fast path: a read that is exactly one frame
                msgid, msglen = _unpack_from(data, 0)
                if size - HEADER_SIZE == msglen <= MAX_BODY:
                    return [(msgid, bytes(data[HEADER_SIZE:]))]
        frames: list[Frame] = []
        size = len(view)
        off = 0
        while size - off >= HEADER_SIZE:
            msgid, msglen = _unpack_from(view, off)
            if msglen < 0 or msglen > MAX_BODY:
                buf.clear()
                raise FrameLengthError(msgid, msglen, frames)
            end = off + HEADER_SIZE + msglen
            if end > size:
                break
            frames.append((msgid, bytes(view[off + HEADER_SIZE : end])))
            off = end
        if view is buf:
            if off:
                del buf[:off]
        elif off < size:
            buf += view[off:]
        return frames


def decode_datagram(data: bytes) -> Frame:
    """The one frame of a UDP datagram; ProtocolError when the datagram is not exactly one."""
    size = len(data)
    if size < HEADER_SIZE:
        raise ProtocolError(f"datagram of {size} bytes is shorter than a frame header")
    msgid, msglen = _unpack_from(data, 0)
    if msglen < 0 or msglen > MAX_BODY:
        raise FrameLengthError(msgid, msglen)
    if size != HEADER_SIZE + msglen:
        raise ProtocolError(f"datagram of {size} bytes carries msglen {msglen}")
    return msgid, data[HEADER_SIZE:]
