"""The one exception tree of lars; foreign errors are mapped to it where they enter.

LarsError
├── ConfigError              a configuration file or flag is invalid
├── ProtocolError            bytes on a socket break the Lars frame rules
│   └── FrameLengthError     msglen outside 0..MAX_BODY
├── NetworkError             a peer cannot be reached or went away
│   ├── NotConnected         a reconnecting client is between connections
│   ├── QueueFull            a bounded send queue refused a message
│   └── NotAnswering         an agent or daemon does not answer (timeout or refusal)
├── LarsTimeout              (also a builtin TimeoutError) no reply in time
├── NoHost                   the agent answered without a host (NOEXIST, OVERLOAD)
├── LoopClosed               a task was posted to a loop thread that has stopped
├── DaemonFailed             a daemon cannot go on (one of its threads died): exit 1
├── StoreUnavailable         the database cannot be reached
│   └── EditConflict         an edit kept failing on concurrent edits (deadlock, lock wait)
└── ValidationError          user input (ids, addresses, ports) is invalid
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DaemonFailed",
    "EditConflict",
    "FrameLengthError",
    "LarsError",
    "LarsTimeout",
    "LoopClosed",
    "NetworkError",
    "NoHost",
    "NotAnswering",
    "NotConnected",
    "ProtocolError",
    "QueueFull",
    "StoreUnavailable",
    "ValidationError",
]


class LarsError(Exception):
    """Root of every error lars raises on purpose."""


class ConfigError(LarsError):
    """A configuration file or command-line flag is invalid."""


class ProtocolError(LarsError):
    """Bytes received break the Lars frame rules (spec section 1)."""


class FrameLengthError(ProtocolError):
    """A frame header carries a msglen outside 0..MAX_BODY."""

    def __init__(
        self, msgid: int, msglen: int, frames: list[tuple[int, bytes]] | None = None
    ) -> None:
        super().__init__(f"invalid frame length {msglen} (msgid {msgid})")
        self.msgid = msgid
        self.msglen = msglen
        # The valid frames that preceded the bad header in the same chunk, in order.
        self.frames: list[tuple[int, bytes]] = frames or []


class NetworkError(LarsError):
    """A peer cannot be reached or went away."""


class NotConnected(NetworkError):
    """A reconnecting client has no connection right now."""


class QueueFull(NetworkError):
    """A bounded queue refused a message instead of growing."""


class NotAnswering(NetworkError):
    """An agent or daemon does not answer: no reply in time, or nothing listens there."""


class NoHost(LarsError):
    """The agent answered, but without a host: the module is missing or overloaded."""


class LarsTimeout(LarsError, TimeoutError):
    """No reply arrived within the caller's timeout."""


class LoopClosed(LarsError):
    """A task was posted to a loop thread that is not running."""


class DaemonFailed(LarsError):
    """A daemon stops because it cannot go on: one of its threads died (lars.threads)."""


class StoreUnavailable(LarsError):
    """The database cannot be reached or refused the operation."""


class EditConflict(StoreUnavailable):
    """A route edit kept hitting serialisation failures (deadlock, lock wait timeout)
    after its retries; nothing was changed. Its message is safe to show to users."""


class ValidationError(LarsError, ValueError):
    """User input (an id, an address, a port) is out of range or malformed."""
