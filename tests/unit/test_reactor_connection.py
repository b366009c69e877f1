"""Connection over a fake transport: one write per read, backpressure, frame timer."""

from __future__ import annotations

import time
from typing import Any

from lars.reactor.config import BufferLimits
from lars.reactor.connection import Connection, Counters, sweep_partial_frames
from lars.reactor.frame import encode
from lars.reactor.router import Router


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.reading = True
        self.closed = False
        self.aborted = False
        self.high: int | None = None

    def get_extra_info(self, name: str) -> Any:
        return ("10.0.0.1", 4242) if name == "peername" else None

    def set_write_buffer_limits(self, high: int | None = None) -> None:
        self.high = high

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class FakeOwner:
    def __init__(self, limits: BufferLimits | None = None) -> None:
        self.counters = Counters()
        self.limits = limits or BufferLimits()
        self.posted: list[tuple[Any, tuple[Any, ...]]] = []
        self.made: list[Connection] = []
        self.lost: list[Connection] = []

    def post(self, fn: Any, *args: Any) -> None:
        self.posted.append((fn, args))

    def connection_made(self, conn: Connection) -> None:
        self.made.append(conn)

    def connection_lost(self, conn: Connection) -> None:
        self.lost.append(conn)


def echo_conn(limits: BufferLimits | None = None) -> tuple[Connection, FakeOwner, FakeTransport]:
    owner = FakeOwner(limits)
    router = Router({1: lambda c, m, b: c.send(m, b)})
    conn = Connection(owner, router, 7)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, owner, transport


def test_connection_made_reports_peer_and_limits() -> None:
    conn, owner, transport = echo_conn(BufferLimits(high_water=1000, max_write_buffer=5000))
    assert owner.made == [conn]
    assert conn.peer == ("10.0.0.1", 4242)
    assert transport.high == 1000
    assert "7" in repr(conn)


def test_all_replies_of_one_read_leave_in_one_write() -> None:
    conn, owner, transport = echo_conn()
    conn.data_received(encode(1, b"a") + encode(1, b"") + encode(1, b"ccc"))
    assert transport.writes == [encode(1, b"a") + encode(1, b"") + encode(1, b"ccc")]
    assert owner.counters.frames_in == 3


def test_no_write_for_a_read_without_complete_frames() -> None:
    conn, _, transport = echo_conn()
    frame = encode(1, b"abc")
    conn.data_received(frame[:5])
    assert transport.writes == []
    conn.data_received(frame[5:])
    assert transport.writes == [frame]


def test_invalid_length_closes_and_counts() -> None:
    conn, owner, transport = echo_conn()
    conn.data_received(b"\x01\x00\x00\x00\xff\xff\xff\xff")
    assert transport.closed and conn.closed
    assert owner.counters.frame_errors == 1
    assert transport.writes == []


def test_frames_before_an_invalid_length_are_answered_before_the_close() -> None:
    conn, owner, transport = echo_conn()
    conn.data_received(encode(1, b"a") + encode(1, b"b") + b"\x01\x00\x00\x00\xff\xff\xff\xff")
    assert b"".join(transport.writes) == encode(1, b"a") + encode(1, b"b")
    assert transport.closed and conn.closed
    assert owner.counters.frame_errors == 1


def test_pause_and_resume_writing_stop_and_restart_reading() -> None:
    conn, owner, transport = echo_conn()
    conn.pause_writing()
    assert not transport.reading
    assert owner.counters.backpressure_pauses == 1
    conn.resume_writing()
    assert transport.reading


def test_paused_connection_past_max_write_buffer_is_aborted() -> None:
    limits = BufferLimits(high_water=100, max_write_buffer=1000)
    conn, owner, transport = echo_conn(limits)
    conn.pause_writing()
    transport.buffered = 1000
    conn.send(2, b"at the limit")
    assert not transport.aborted
    transport.buffered = 1001
    conn.send(2, b"past it")
    assert transport.aborted and conn.closed
    assert owner.counters.backpressure_drops == 1
    conn.send(2, b"dropped")
    assert len(transport.writes) == 2


def test_unpaused_connection_is_never_dropped_for_its_buffer() -> None:
    conn, owner, transport = echo_conn(BufferLimits(high_water=10, max_write_buffer=10))
    transport.buffered = 10**9  # e.g. one big write just handed to the transport
    conn.send(2, b"x")
    assert not transport.aborted
    assert owner.counters.backpressure_drops == 0


def test_send_many_writes_once_and_nothing_when_empty() -> None:
    conn, _, transport = echo_conn()
    conn.send_many([encode(1, b"a"), encode(2, b"b")])
    conn.send_many([])
    assert transport.writes == [encode(1, b"a") + encode(2, b"b")]


def test_send_threadsafe_posts_to_the_owner() -> None:
    conn, owner, transport = echo_conn()
    conn.send_threadsafe(3, b"later")
    assert transport.writes == []
    fn, args = owner.posted[0]
    fn(*args)
    assert transport.writes == [encode(3, b"later")]


def test_close_flushes_replies_of_the_current_read_then_drops_later_sends() -> None:
    owner = FakeOwner()

    def bye(conn: Connection, msgid: int, body: bytes) -> None:
        conn.send(msgid, b"bye")
        conn.close()
        conn.send(msgid, b"too late")

    conn = Connection(owner, Router({5: bye}), 1)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(encode(5) + encode(5))
    assert transport.writes == [encode(5, b"bye")]
    assert transport.closed and not transport.aborted
    conn.connection_lost(None)
    assert owner.lost == [conn]


def test_frame_timer_starts_with_a_partial_frame_and_restarts_on_progress() -> None:
    conn, _, _ = echo_conn()
    frame = encode(1, b"0123456789")
    assert conn.partial_since is None
    conn.data_received(frame[:4])
    first = conn.partial_since
    assert first is not None
    conn.data_received(frame[4:6])  # no frame completed: the timer keeps running
    assert conn.partial_since == first
    time.sleep(0.01)
    conn.data_received(frame[6:] + frame[:3])  # one completed, another started
    assert conn.partial_since is not None and conn.partial_since > first
    conn.data_received(frame[3:])
    assert conn.partial_since is None


def test_sweep_aborts_only_connections_stuck_past_the_timeout() -> None:
    stuck, _, stuck_t = echo_conn()
    fresh, _, fresh_t = echo_conn()
    idle, _, idle_t = echo_conn()
    stuck.partial_since = time.monotonic() - 60
    fresh.partial_since = time.monotonic()
    counters = Counters()
    sweep_partial_frames([stuck, fresh, idle], 30.0, counters)
    assert stuck_t.aborted and not fresh_t.aborted and not idle_t.aborted
    assert counters.frame_timeouts == 1
