"""The frame codec of spec section 1, sans-I/O: encode, stream decoding, datagrams."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.errors import FrameLengthError, ProtocolError
from lars.reactor.frame import (
    HEADER_SIZE,
    MAX_BODY,
    MAX_FRAME,
    FrameDecoder,
    decode_datagram,
    encode,
)

INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
BODIES = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=1000, max_size=5000),
    st.just(b""),
)
FRAMES = st.lists(st.tuples(INT32, BODIES), max_size=20)


def header(msgid: int, msglen: int) -> bytes:
    return struct.pack("<ii", msgid, msglen)


def feed_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out.extend(decoder.feed(data[start:cut]))
        start = cut
    return out


# encode


def test_encode_layout_is_little_endian_signed() -> None:
    assert encode(1, b"abc") == b"\x01\x00\x00\x00\x03\x00\x00\x00abc"
    assert encode(-2, b"") == b"\xfe\xff\xff\xff\x00\x00\x00\x00"
    assert HEADER_SIZE == 8
    assert MAX_BODY == 65527
    assert MAX_FRAME == 65535


def test_encode_accepts_max_body_and_rejects_one_more() -> None:
    frame = encode(7, b"x" * MAX_BODY)
    assert len(frame) == MAX_FRAME
    with pytest.raises(FrameLengthError) as info:
        encode(7, b"x" * (MAX_BODY + 1))
    assert info.value.msgid == 7
    assert info.value.msglen == MAX_BODY + 1


# stream decoding


@settings(max_examples=300, deadline=None)
@given(frames=FRAMES, data=st.data())
def test_any_split_of_any_valid_stream_decodes_to_the_same_frames(
    frames: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode(m, b) for m, b in frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    decoder = FrameDecoder()
    assert feed_chunks(decoder, stream, cuts) == frames
    assert decoder.pending == 0


@settings(max_examples=50, deadline=None)
@given(frames=st.lists(st.tuples(INT32, st.binary(max_size=20)), min_size=1, max_size=5))
def test_byte_by_byte_feeding_holds_at_most_one_partial_frame(
    frames: list[tuple[int, bytes]],
) -> None:
    stream = b"".join(encode(m, b) for m, b in frames)
    decoder = FrameDecoder()
    got: list[tuple[int, bytes]] = []
    for i in range(len(stream)):
        got.extend(decoder.feed(stream[i : i + 1]))
        assert decoder.pending < MAX_FRAME
    assert got == frames
    assert decoder.pending == 0


def test_pending_counts_the_bytes_of_an_incomplete_frame() -> None:
    decoder = FrameDecoder()
    frame = encode(3, b"hello")
    assert decoder.feed(frame[:5]) == []
    assert decoder.pending == 5
    assert decoder.feed(frame[5:] + frame[:9]) == [(3, b"hello")]
    assert decoder.pending == 9
    assert decoder.feed(frame[9:]) == [(3, b"hello")]
    assert decoder.pending == 0


def test_zero_length_bodies_are_frames() -> None:
    decoder = FrameDecoder()
    stream = encode(1) + encode(2, b"") + encode(3, b"x") + encode(4)
    assert decoder.feed(stream) == [(1, b""), (2, b""), (3, b"x"), (4, b"")]
    # A lone empty frame split inside its header.
    assert decoder.feed(encode(5)[:3]) == []
    assert decoder.feed(encode(5)[3:]) == [(5, b"")]


def test_max_body_frame_decodes_in_pieces() -> None:
    body = bytes(range(256)) * (MAX_BODY // 256) + b"z" * (MAX_BODY % 256)
    stream = encode(9, body)
    decoder = FrameDecoder()
    assert feed_chunks(decoder, stream, [1, 8, 9, 4096, MAX_FRAME - 1]) == [(9, body)]


def test_returned_bodies_are_immutable_copies() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode(1, b"ab")[:9])
    (frame,) = decoder.feed(b"b")
    assert type(frame[1]) is bytes
    decoder.feed(encode(2, b"zz"))
    assert frame == (1, b"ab")


@pytest.mark.parametrize("msglen", [-1, -(2**31), MAX_BODY + 1, 10 * 1024 * 1024, 2**31 - 1])
def test_invalid_length_raises_as_soon_as_the_header_is_complete(msglen: int) -> None:
    decoder = FrameDecoder()
    bad = header(42, msglen)
    assert decoder.feed(bad[:7]) == []
    with pytest.raises(FrameLengthError) as info:
        decoder.feed(bad[7:])
    assert (info.value.msgid, info.value.msglen) == (42, msglen)
    assert isinstance(info.value, ProtocolError)
    assert str(msglen) in str(info.value)


def test_invalid_length_after_valid_frames_in_one_read() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameLengthError) as info:
        decoder.feed(encode(1, b"ok") + encode(3, b"") + header(2, -5))
    # The good frames before the bad header are handed over, in order ...
    assert info.value.frames == [(1, b"ok"), (3, b"")]
    # ... and the stream is abandoned: no partial state is kept.
    assert decoder.pending == 0


def test_encode_rejects_a_msgid_outside_int32() -> None:
    for msgid in (2**31, -(2**31) - 1):
        with pytest.raises(ProtocolError):
            encode(msgid, b"")


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.lists(st.tuples(INT32, st.binary(max_size=16)), max_size=4),
    msglen=st.one_of(
        st.integers(min_value=-(2**31), max_value=-1),
        st.integers(min_value=MAX_BODY + 1, max_value=2**31 - 1),
    ),
    data=st.data(),
)
def test_invalid_length_is_always_detected_whatever_the_split(
    prefix: list[tuple[int, bytes]], msglen: int, data: st.DataObject
) -> None:
    good = b"".join(encode(m, b) for m, b in prefix)
    stream = good + header(0, msglen) + b"trailing garbage"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    decoder = FrameDecoder()
    got: list[tuple[int, bytes]] = []
    start = 0
    with pytest.raises(FrameLengthError):
        for cut in [*sorted(cuts), len(stream)]:
            got.extend(decoder.feed(stream[start:cut]))
            start = cut
    # Frames decoded before the bad header are a prefix of the valid ones, in order.
    assert got == prefix[: len(got)]


# datagrams


@settings(max_examples=200, deadline=None)
@given(msgid=INT32, body=st.binary(max_size=2000))
def test_datagram_round_trip(msgid: int, body: bytes) -> None:
    assert decode_datagram(encode(msgid, body)) == (msgid, body)


@pytest.mark.parametrize("size", [0, 1, 7])
def test_datagram_shorter_than_a_header_is_rejected(size: int) -> None:
    with pytest.raises(ProtocolError, match="shorter"):
        decode_datagram(b"\x01" * size)


@pytest.mark.parametrize("msglen", [-1, MAX_BODY + 1, 10 * 1024 * 1024])
def test_datagram_with_invalid_length_is_rejected(msglen: int) -> None:
    with pytest.raises(FrameLengthError):
        decode_datagram(header(4, msglen) + b"x" * 16)


@pytest.mark.parametrize(
    ("msglen", "body"),
    [(10, b"x" * 5), (10, b"x" * 11), (0, b"x"), (3, b"")],
)
def test_datagram_whose_size_is_not_header_plus_msglen_is_rejected(
    msglen: int, body: bytes
) -> None:
    with pytest.raises(ProtocolError, match="msglen"):
        decode_datagram(header(4, msglen) + body)


def test_datagram_of_two_frames_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        decode_datagram(encode(4, b"a") + encode(4, b"b"))


def test_empty_body_datagram_is_valid() -> None:
    assert decode_datagram(encode(6)) == (6, b"")
