"""ReportStatusRequest -> ServerCallStatus rows, with the wire's edge checks; sans-I/O.

Addresses arrive as signed int32 (spec section 3) and are stored unsigned. Values the
table cannot hold or that no real agent sends (negative ids, ports outside 1..65535,
counters beyond the signed int32 columns) are dropped here and counted by the caller,
so one bad result never fails a whole database batch.
"""

from __future__ import annotations

from lars.protocol import lars_pb2, wire_to_uint
from lars.reporter.pending import Row

__all__ = ["INT32_MAX", "parse_report", "rows_from_report"]

INT32_MAX = 0x7FFFFFFF
_OVERLOAD = ("0", "1")


def parse_report(body: bytes) -> lars_pb2.ReportStatusRequest:
    """Parse a msgid 3 body; protobuf's DecodeError propagates (the router counts it)."""
    msg = lars_pb2.ReportStatusRequest()
    msg.ParseFromString(body)
    return msg


def rows_from_report(msg: lars_pb2.ReportStatusRequest) -> tuple[list[Row], int]:
    """The rows of one report and the number of results dropped as invalid.

    A report with a negative modid or cmdid is dropped whole (counted as one when it
    carries no results).
    """
    modid = msg.modid
    cmdid = msg.cmdid
    results = msg.results
    if modid < 0 or cmdid < 0:
        return [], max(len(results), 1)
    caller = wire_to_uint(msg.caller)
    ts = msg.ts
    rows: list[Row] = []
    bad = 0
    for res in results:
        port = res.port
        succ = res.succ
        err = res.err
        if not 0 < port <= 65535 or succ > INT32_MAX or err > INT32_MAX:
            bad += 1
            continue
        rows.append(
            (
                modid,
                cmdid,
                wire_to_uint(res.ip),
                port,
                caller,
                succ,
                err,
                ts,
                _OVERLOAD[res.overload],
            )
        )
    return rows, bad
