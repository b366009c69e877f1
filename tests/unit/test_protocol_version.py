"""RouteVersion arithmetic: serial-number order across the 2**32 wrap, and the renumber."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lars.protocol.version import MAX_VERSION, is_newer, next_version

U32 = st.integers(min_value=0, max_value=MAX_VERSION)


def test_plain_order() -> None:
    assert is_newer(2, 1) and not is_newer(1, 2)
    assert not is_newer(5, 5)


def test_the_wrap_counts_as_newer() -> None:
    assert is_newer(1, MAX_VERSION)  # the renumber
    assert is_newer(0, MAX_VERSION)
    assert not is_newer(MAX_VERSION, 1)
    assert is_newer(1_800_000_000, MAX_VERSION)  # a jump to unix time after the renumber
    assert is_newer(1_800_000_000, 1)


def test_half_the_space_apart_is_neither() -> None:
    assert not is_newer(2**31, 0) and not is_newer(0, 2**31)
    assert is_newer(2**31 - 1, 0) and is_newer(0, 2**31 + 1)


@given(U32, U32)
def test_antisymmetric_and_irreflexive(a: int, b: int) -> None:
    assert not (is_newer(a, b) and is_newer(b, a))
    if a != b and (a - b) % 2**32 != 2**31:
        assert is_newer(a, b) != is_newer(b, a)
    assert not is_newer(a, a)


@given(U32, st.integers(min_value=1, max_value=2**31 - 1))
def test_a_step_forward_is_newer_even_across_the_wrap(a: int, step: int) -> None:
    assert is_newer((a + step) % 2**32, a)


def test_next_version() -> None:
    assert next_version(5, 0.0) == (6, False)
    assert next_version(5, 1_700_000_000.9) == (1_700_000_000, False)
    assert next_version(MAX_VERSION - 1, 0.0) == (MAX_VERSION, False)
    assert next_version(MAX_VERSION, 1_700_000_000.0) == (1, True)
    assert next_version(7, 5e9) == (8, False)  # a clock past 2106 is ignored
    assert next_version(MAX_VERSION, 5e9) == (1, True)


@given(U32, st.floats(min_value=0, max_value=1e10))
def test_next_version_always_fits_and_is_newer(old: int, now: float) -> None:
    version, renumbered = next_version(old, now)
    assert 1 <= version <= MAX_VERSION
    assert renumbered == (old == MAX_VERSION)
    assert version != old
    if not renumbered and version - old < 2**31:
        assert is_newer(version, old)
    if renumbered and old > MAX_VERSION - 2**31:
        assert is_newer(version, old)
