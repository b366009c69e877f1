"""Periodic counter lines appear only when something changed (measured: an idle reporter
logged `stats: received 36 (+0) ...` every 10 s)."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from lars.protocol import MsgId, lars_pb2
from lars.reactor import ReactorConfig, encode
from lars.reporter.service import ReporterConfig, ReporterService


def stats_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stats:")]


def test_idle_reporter_logs_no_stats_lines(
    no_leaks: None, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lars.reporter.service")
    svc = ReporterService(
        ReporterConfig(
            db_url=sqlite_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            writers=1,
            stats_interval=0.05,
        )
    )
    svc.start()
    try:
        time.sleep(0.5)  # ~10 intervals with nothing received
        assert stats_lines(caplog) == []
        msg = lars_pb2.ReportStatusRequest(modid=1, cmdid=1, caller=1, ts=1)
        msg.results.add(ip=1, port=80, succ=1, err=0, overload=False)
        with socket.create_connection(("127.0.0.1", svc.port)) as conn:
            conn.sendall(encode(MsgId.REPORT_STATUS_REQUEST, msg.SerializeToString()))
            deadline = time.monotonic() + 20
            while svc.stats().written < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(0.5)  # the change is logged, then silence again
        lines = stats_lines(caplog)
        assert 1 <= len(lines) <= 2, lines  # received, then (maybe separately) written
        assert "received 1 (+1)" in lines[0]
    finally:
        svc.stop()
