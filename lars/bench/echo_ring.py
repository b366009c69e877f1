"""Pre-built echo requests and the cheap but real check of their replies, sans-I/O.

Request number `seq` of a connection carries id `ID_BASE + (offset + seq) % size` and
the benchmark's content. Every id in the ring encodes to the same number of varint
bytes, so all frames have one length and consecutive frames are one slice of a buffer
built once: sending n requests is a slice, and checking n replies is one bytes
comparison against the frames they answer (content and id of every reply, byte for
byte). A server that encodes an equal message differently (field order, say) fails
that comparison; `EchoChecker` then parses the replies and compares fields instead.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from lars.errors import ProtocolError
from lars.protocol.echo_pb2 import EchoMessage
from lars.reactor.frame import FrameDecoder, encode

__all__ = ["DEFAULT_CONTENT", "ID_BASE", "ID_LIMIT", "EchoChecker", "EchoRing"]

ECHO_MSGID = 1
DEFAULT_CONTENT = "QPS test!"
# Ids in [2**14, 2**21) are three varint bytes each: every frame has one length.
ID_BASE = 1 << 14
ID_LIMIT = 1 << 21


class EchoRing:
    """`size` consecutive request frames, plus `window` more so that slices never wrap."""

    __slots__ = ("_data", "content", "frame_len", "size", "window")

    def __init__(self, *, size: int = 4096, window: int = 64, content: str = DEFAULT_CONTENT):
        if not 0 < size <= ID_LIMIT - ID_BASE:
            raise ValueError(f"ring size {size} out of range")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.size = size
        self.window = window
        self.content = content
        frames = [self.frame(i % size) for i in range(size + window)]
        self.frame_len = len(frames[0])
        self._data = b"".join(frames)

    def frame(self, index: int) -> bytes:
        """The request frame at ring position `index` (0 <= index < size)."""
        body = EchoMessage(content=self.content, id=ID_BASE + index).SerializeToString()
        return encode(ECHO_MSGID, body)

    def id_at(self, pos: int) -> int:
        return ID_BASE + pos % self.size

    def frames(self, pos: int, n: int) -> bytes:
        """Frames for positions pos .. pos+n-1 (n <= window), as one bytes object."""
        start = (pos % self.size) * self.frame_len
        return self._data[start : start + n * self.frame_len]


class EchoChecker:
    """Checks the reply stream of one connection against the requests it sent.

    `feed(data, in_flight)` returns how many replies the chunk completed, all of them
    correct, or raises ValueError at the first wrong one (or at more replies than
    requests). The fast path compares whole frames byte for byte; after a mismatch the
    checker switches for good to parsing frames and comparing msgid, content and id.
    """

    __slots__ = ("_buf", "_decoder", "pos", "ring")

    def __init__(self, ring: EchoRing, pos: int = 0) -> None:
        self.ring = ring
        self.pos = pos
        self._buf = b""
        self._decoder: FrameDecoder | None = None

    def feed(self, data: bytes, in_flight: int) -> int:
        """Check `data`, given `in_flight` requests not yet answered (<= ring.window)."""
        if self._decoder is not None:
            return self._feed_parsed(data, in_flight)
        buf = self._buf + data if self._buf else data
        flen = self.ring.frame_len
        n = len(buf) // flen
        if n == 0:  # less than one frame's length: wait for more
            self._buf = buf
            return 0
        if n <= in_flight:
            used = n * flen
            if (buf[:used] if used < len(buf) else buf) == self.ring.frames(self.pos, n):
                self._buf = buf[used:]
                self.pos += n
                return n
        # Other bytes, or more than the replies we wait for: parse and say exactly what.
        self._buf = b""
        self._decoder = FrameDecoder()
        return self._feed_parsed(buf, in_flight)

    def _feed_parsed(self, data: bytes, in_flight: int) -> int:
        assert self._decoder is not None
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            raise ValueError(f"bad echo reply stream: {exc}") from exc
        if len(frames) > in_flight:
            raise ValueError(f"{len(frames)} replies for {in_flight} requests in flight")
        for msgid, body in frames:
            try:
                msg = EchoMessage.FromString(body)
            except DecodeError as exc:
                raise ValueError(f"bad echo reply: unparsable body ({exc})") from exc
            want = self.ring.id_at(self.pos)
            if msgid != ECHO_MSGID or msg.content != self.ring.content or msg.id != want:
                raise ValueError(
                    f"bad echo reply: msgid {msgid} id {msg.id} content {msg.content!r}, "
                    f"expected msgid {ECHO_MSGID} id {want} content {self.ring.content!r}"
                )
            self.pos += 1
        return len(frames)
