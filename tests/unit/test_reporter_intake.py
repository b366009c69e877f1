"""ReportStatusRequest -> rows: sign conversion at the edge, bad values dropped."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from lars.protocol import dotted_to_wire, lars_pb2
from lars.reporter.intake import INT32_MAX, parse_report, rows_from_report


def report(modid: int = 10, cmdid: int = 2, caller: int = 0, ts: int = 1700000000, **kw: object):
    msg = lars_pb2.ReportStatusRequest(modid=modid, cmdid=cmdid, caller=caller, ts=ts)
    for res in kw.get("results", []):  # type: ignore[attr-defined]
        msg.results.add(**res)
    return msg


def test_addresses_arrive_signed_and_are_stored_unsigned() -> None:
    msg = report(
        caller=dotted_to_wire("192.168.1.177"),
        results=[
            {"ip": dotted_to_wire("10.0.0.1"), "port": 80, "succ": 5, "err": 1},
            {"ip": dotted_to_wire("255.255.255.254"), "port": 9000, "overload": True},
        ],
    )
    assert msg.caller < 0
    rows, bad = rows_from_report(parse_report(msg.SerializeToString()))
    assert bad == 0
    assert rows == [
        (10, 2, 167772161, 80, 3232235953, 5, 1, 1700000000, "0"),
        (10, 2, 4294967294, 9000, 3232235953, 0, 0, 1700000000, "1"),
    ]


def test_empty_body_is_a_report_without_results() -> None:
    rows, bad = rows_from_report(parse_report(b""))
    assert (rows, bad) == ([], 0)


def test_unparsable_body_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        parse_report(b"\xff\xff\xff\xff")


@pytest.mark.parametrize("modid,cmdid", [(-1, 1), (1, -5), (-2147483648, 0)])
def test_negative_ids_drop_the_whole_report(modid: int, cmdid: int) -> None:
    msg = report(modid, cmdid, results=[{"ip": 1, "port": 80}, {"ip": 2, "port": 81}])
    assert rows_from_report(msg) == ([], 2)
    assert rows_from_report(report(modid, cmdid)) == ([], 1)


@pytest.mark.parametrize(
    "result",
    [
        {"ip": 1, "port": 0},
        {"ip": 1, "port": -80},
        {"ip": 1, "port": 65536},
        {"ip": 1, "port": 80, "succ": INT32_MAX + 1},
        {"ip": 1, "port": 80, "err": 2**32 - 1},
    ],
)
def test_absurd_results_are_dropped_and_the_rest_kept(result: dict[str, int]) -> None:
    msg = report(results=[result, {"ip": 7, "port": 7, "succ": INT32_MAX, "err": INT32_MAX}])
    rows, bad = rows_from_report(msg)
    assert bad == 1
    assert rows == [(10, 2, 7, 7, 0, INT32_MAX, INT32_MAX, 1700000000, "0")]


i32 = st.integers(-(2**31), 2**31 - 1)
u32 = st.integers(0, 2**32 - 1)


@given(
    modid=i32,
    cmdid=i32,
    caller=i32,
    ts=u32,
    results=st.lists(st.tuples(i32, i32, u32, u32, st.booleans()), max_size=6),
)
def test_every_result_is_either_a_valid_row_or_counted(
    modid: int, cmdid: int, caller: int, ts: int, results: list[tuple[int, int, int, int, bool]]
) -> None:
    msg = lars_pb2.ReportStatusRequest(modid=modid, cmdid=cmdid, caller=caller, ts=ts)
    for ip, port, succ, err, over in results:
        msg.results.add(ip=ip, port=port, succ=succ, err=err, overload=over)
    rows, bad = rows_from_report(parse_report(msg.SerializeToString()))
    assert len(rows) + bad == max(len(results), 0 if modid >= 0 and cmdid >= 0 else 1)
    for r in rows:
        assert r[0] == modid >= 0 and r[1] == cmdid >= 0
        assert 0 <= r[2] <= 2**32 - 1 and 0 <= r[4] <= 2**32 - 1
        assert 1 <= r[3] <= 65535
        assert 0 <= r[5] <= INT32_MAX and 0 <= r[6] <= INT32_MAX
        assert r[7] == ts and r[8] in ("0", "1")
