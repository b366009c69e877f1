"""The framed TCP connection shared by the server and the client side.

One asyncio.Protocol per socket: every read is fed to a FrameDecoder, every complete
frame goes to the Router, and every reply the handlers send during that read leaves in
one transport.write. Backpressure: past the high-water mark of unsent bytes the
connection stops reading from the peer; if it still grows past `max_write_buffer` (a
peer that never reads while we push to it), the connection is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, cast

from lars.errors import FrameLengthError
from lars.ratelog import RateLimitedLog
from lars.reactor.config import BufferLimits
from lars.reactor.frame import FrameDecoder, encode
from lars.reactor.router import Router

__all__ = ["Connection", "ConnectionOwner", "Counters", "sweep_partial_frames"]

log = logging.getLogger(__name__)
_log_protocol = RateLimitedLog(log)
_log_overflow = RateLimitedLog(log)


@dataclass(slots=True)
class Counters:
    """Plain counters, mutated only on the owner's loop thread."""

    accepted: int = 0
    closed: int = 0
    refused: int = 0
    frames_in: int = 0
    frame_errors: int = 0
    frame_timeouts: int = 0
    backpressure_pauses: int = 0
    backpressure_drops: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ConnectionOwner(Protocol):
    """The worker or client a connection reports to (all calls on its loop thread)."""

    counters: Counters
    limits: BufferLimits

    def post(self, fn: Any, *args: Any) -> None: ...

    def connection_made(self, conn: Connection) -> None: ...

    def connection_lost(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """A framed connection. `user` is a free slot for the application's per-connection state."""

    __slots__ = (
        "_decoder",
        "_out",
        "_owner",
        "_paused",
        "_router",
        "closed",
        "id",
        "partial_since",
        "peer",
        "transport",
        "user",
    )

    def __init__(self, owner: ConnectionOwner, router: Router, conn_id: int) -> None:
        self.id = conn_id
        self._owner = owner
        self._router = router
        self._decoder = FrameDecoder()
        self._out: list[bytes] | None = None
        self._paused = False
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.user: Any = None
        self.partial_since: float | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.peer}>"

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.peer = transport.get_extra_info("peername")
        limits = self._owner.limits
        self.transport.set_write_buffer_limits(high=limits.high_water)
        self._owner.connection_made(self)

    def data_received(self, data: bytes) -> None:
        bad: FrameLengthError | None = None
        try:
            frames = self._decoder.feed(data)
        except FrameLengthError as exc:  # serve the good frames before it, then close
            bad, frames = exc, exc.frames
        if frames:
            self._owner.counters.frames_in += len(frames)
            out: list[bytes] = []
            self._out = out
            dispatch = self._router.dispatch
            try:
                for msgid, body in frames:
                    dispatch(self, msgid, body)
            finally:
                self._out = None
            if out and not self.closed:
                self._write(out[0] if len(out) == 1 else b"".join(out))
        if bad is not None:
            self._owner.counters.frame_errors += 1
            _log_protocol("closing %s: %s", self.peer, bad)
            self.close()
            return
        if self._decoder.pending:
            # The timer runs for the frame now incomplete: a read that completed frames
            # made progress, so a busy stream whose reads end mid-frame is not timed out.
            if frames or self.partial_since is None:
                self.partial_since = time.monotonic()
        else:
            self.partial_since = None

    def pause_writing(self) -> None:
        self._paused = True
        self._owner.counters.backpressure_pauses += 1
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._owner.connection_lost(self)

    # API

    def send(self, msgid: int, body: bytes = b"") -> None:
        """Send one frame; on the owning loop thread only (see `send_threadsafe`)."""
        frame = encode(msgid, body)
        if self._out is not None:
            self._out.append(frame)
        elif not self.closed:
            self._write(frame)

    def send_many(self, frames: Iterable[bytes]) -> None:
        """Send already-encoded frames in one write."""
        data = b"".join(frames)
        if data and not self.closed:
            self._write(data)

    def send_threadsafe(self, msgid: int, body: bytes = b"") -> None:
        self._owner.post(self.send, msgid, body)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(data)
        if self._paused and transport.get_write_buffer_size() > self._owner.limits.max_write_buffer:
            self._owner.counters.backpressure_drops += 1
            _log_overflow(
                "dropping %s: %d unsent bytes, peer is not reading",
                self.peer,
                transport.get_write_buffer_size(),
            )
            self.abort()

    def close(self) -> None:
        """Flush what is buffered (replies a handler sent before closing too), then close.

        Later sends are dropped: `closed` is true from now on.
        """
        transport = self.transport
        if transport is None or self.closed:
            return
        out = self._out
        if out:  # inside a read: these replies would otherwise be written after the close
            transport.write(b"".join(out))
            out.clear()
        self.closed = True
        transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def sweep_partial_frames(
    connections: Iterable[Connection], frame_timeout: float, counters: Counters
) -> None:
    """Abort connections that have held an incomplete frame for longer than frame_timeout."""
    now = time.monotonic()
    for conn in list(connections):
        since = conn.partial_since
        if since is not None and now - since > frame_timeout:
            counters.frame_timeouts += 1
            _log_protocol("closing %s: incomplete frame for %.1fs", conn.peer, now - since)
            conn.abort()
