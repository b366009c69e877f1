"""IPv4 helpers: dotted <-> unsigned (database) <-> signed int32 (wire), spec section 3."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lars.errors import ValidationError
from lars.protocol import lars_pb2
from lars.protocol.ipv4 import (
    dotted_to_uint,
    dotted_to_wire,
    uint_to_dotted,
    uint_to_wire,
    wire_to_dotted,
    wire_to_uint,
)

KNOWN = [
    # dotted, unsigned (database), signed int32 (wire)
    ("0.0.0.0", 0, 0),
    ("127.0.0.1", 2130706433, 2130706433),
    ("127.255.255.255", 2147483647, 2147483647),
    ("128.0.0.0", 2147483648, -2147483648),
    ("192.168.1.177", 3232235953, -1062731343),
    ("255.255.255.255", 4294967295, -1),
]

UINT32 = st.integers(min_value=0, max_value=2**32 - 1)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@pytest.mark.parametrize(("dotted", "unsigned", "wire"), KNOWN)
def test_known_addresses_in_all_three_forms(dotted: str, unsigned: int, wire: int) -> None:
    assert dotted_to_uint(dotted) == unsigned
    assert uint_to_dotted(unsigned) == dotted
    assert uint_to_wire(unsigned) == wire
    assert wire_to_uint(wire) == unsigned
    assert dotted_to_wire(dotted) == wire
    assert wire_to_dotted(wire) == dotted


@pytest.mark.parametrize(("dotted", "unsigned", "wire"), KNOWN)
def test_wire_value_survives_a_protobuf_int32_field(dotted: str, unsigned: int, wire: int) -> None:
    data = lars_pb2.HostInfo(ip=dotted_to_wire(dotted), port=80).SerializeToString()
    back = lars_pb2.HostInfo.FromString(data)
    assert back.ip == wire
    assert wire_to_dotted(back.ip) == dotted


def test_192_168_1_177_matches_the_c_struct_in_addr_reading() -> None:
    # The original reads in_addr.s_addr (network order) with ntohl: most significant first.
    assert dotted_to_uint("192.168.1.177") == int.from_bytes(bytes([192, 168, 1, 177]), "big")


def test_wire_to_uint_accepts_an_already_unsigned_value() -> None:
    assert wire_to_uint(3232235953) == 3232235953
    assert wire_to_dotted(3232235953) == "192.168.1.177"


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(UINT32)
def test_unsigned_round_trips(value: int) -> None:
    wire = uint_to_wire(value)
    assert -(2**31) <= wire < 2**31
    assert wire_to_uint(wire) == value
    dotted = uint_to_dotted(value)
    assert dotted == str(ipaddress.IPv4Address(value))
    assert dotted_to_uint(dotted) == value
    assert wire_to_dotted(wire) == dotted
    assert (wire < 0) == (value >= 2**31)


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(INT32)
def test_wire_round_trips(wire: int) -> None:
    assert uint_to_wire(wire_to_uint(wire)) == wire
    assert dotted_to_wire(wire_to_dotted(wire)) == wire


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(st.tuples(*[st.integers(0, 255)] * 4))
def test_dotted_round_trips(octets: tuple[int, int, int, int]) -> None:
    text = ".".join(map(str, octets))
    assert uint_to_dotted(dotted_to_uint(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.3.1000",
        "a.b.c.d",
        "1..2.3",
        "1.2.3.-4",
        "+1.2.3.4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4\n",
        "0x7f.0.0.1",
        "localhost",
        "::1",
        "1.2.3.\u00b2",  # superscript two: a digit to str.isdigit, not to int()
        "\uff11.\uff12.\uff13.\uff14",  # fullwidth digits are not an IPv4 address
    ],
)
def test_malformed_dotted_raises_validation_error(text: str) -> None:
    with pytest.raises(ValidationError, match="IPv4"):
        dotted_to_uint(text)
    with pytest.raises(ValidationError):
        dotted_to_wire(text)


@pytest.mark.parametrize("value", [-1, 2**32, 2**40])
def test_out_of_range_unsigned_raises(value: int) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        uint_to_dotted(value)
    with pytest.raises(ValidationError, match="out of range"):
        uint_to_wire(value)


@pytest.mark.parametrize("value", [-(2**31) - 1, 2**32, -(2**40)])
def test_out_of_range_wire_raises(value: int) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        wire_to_uint(value)
    with pytest.raises(ValidationError):
        wire_to_dotted(value)


def test_validation_error_is_a_value_error_for_callers_that_expect_one() -> None:
    with pytest.raises(ValueError):
        dotted_to_uint("999.1.1.1")


@pytest.mark.parametrize(
    "text", ["010.0.0.1", "1.2.3.04", "1.2.3", "1.2.3.4.5", "256.0.0.1", " 1.2.3.4", "1.2.3.٤", ""]
)
def test_one_rule_for_dotted_addresses_rejects_leading_zeros_and_junk(text: str) -> None:
    with pytest.raises(ValidationError, match="not a dotted IPv4 address"):
        dotted_to_uint(text)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789.", max_size=16),
        st.lists(st.integers(0, 999).map(str), min_size=4, max_size=4).map(".".join),
        st.lists(st.integers(0, 255), min_size=4, max_size=4).map(
            lambda o: ".".join(f"{x:0{len(str(x)) + (x % 2)}d}" for x in o)  # some leading 0s
        ),
    )
)
def test_the_json_api_pattern_is_the_same_rule(text: str) -> None:
    """The console's OpenAPI pattern (kept for the schema) accepts exactly what
    dotted_to_uint (ipaddress) accepts: one rule for every way an address comes in."""
    import re

    from lars.console.models import IPV4_PATTERN

    try:
        dotted_to_uint(text)
        parsed = True
    except ValidationError:
        parsed = False
    assert (re.fullmatch(IPV4_PATTERN, text) is not None) == parsed, text
