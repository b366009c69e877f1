"""The reporter's metrics listener on SQLite: rows counted exactly, histograms fill."""

from __future__ import annotations

import socket
import time

from lars.obs.listen import MetricsConfig
from lars.protocol import MsgId, lars_pb2
from lars.reactor import ReactorConfig, encode
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterConfig, ReporterService
from tests.obs_util import delta, get_json, scrape, value


def frame(modid: int, results: list[tuple[int, int, int, int]]) -> bytes:
    msg = lars_pb2.ReportStatusRequest(modid=modid, cmdid=1, caller=7, ts=1000)
    for ip, port, succ, err in results:
        msg.results.add(ip=ip, port=port, succ=succ, err=err, overload=False)
    return encode(MsgId.REPORT_STATUS_REQUEST, msg.SerializeToString())


def wait(cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_reporter_counters_readiness_and_status(no_leaks: None, sqlite_url: str) -> None:
    svc = ReporterService(
        ReporterConfig(
            db_url=sqlite_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            writers=2,
            batch_interval=0.01,
            stats_interval=0,
        )
    )
    metrics = reporter_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    svc.start()
    try:
        before = scrape(metrics.url)
        with socket.create_connection(("127.0.0.1", svc.port)) as conn:
            # 3 valid rows of module 1 and one with port 0 (invalid)
            conn.sendall(frame(1, [(1, 80, 1, 0), (2, 80, 1, 0), (3, 80, 0, 1), (4, 0, 1, 1)]))
            conn.sendall(frame(2, [(1, 81, 5, 5)]))  # module 2: one row
            conn.sendall(encode(MsgId.REPORT_STATUS_REQUEST, b"\xff\xff"))  # unparsable
            wait(lambda: svc.stats().written == 4)
            after = scrape(metrics.url)
        assert delta(after, before, "lars_reporter_reports_total") == 2
        assert delta(after, before, "lars_reporter_rows_received_total") == 4
        assert delta(after, before, "lars_reporter_rows_written_total") == 4
        assert delta(after, before, "lars_reporter_rows_dropped_total", reason="invalid") == 1
        assert delta(after, before, "lars_reporter_rows_dropped_total", reason="overflow") == 0
        assert delta(after, before, "lars_reporter_frames_dropped_total", reason="bad_body") == 1
        batches = delta(after, before, "lars_reporter_batches_total")
        counts = sum(
            delta(after, before, "lars_reporter_batch_rows_count", writer=w) for w in ("0", "1")
        )
        rows = sum(
            delta(after, before, "lars_reporter_batch_rows_sum", writer=w) for w in ("0", "1")
        )
        assert counts == batches >= 1 and rows == 4
        commits = sum(
            delta(after, before, "lars_reporter_commit_duration_seconds_count", writer=w)
            for w in ("0", "1")
        )
        assert commits == batches
        assert value(after, "lars_reporter_queue_depth", writer="0") == 0
        assert value(after, "lars_reporter_database_up") == 1
        assert 0 <= value(after, "lars_reporter_last_commit_age_seconds") < 30
        assert value(after, "lars_reporter_connections") == 1
        assert get_json(metrics.url + "/readyz")[0] == 200
        code, status = get_json(metrics.url + "/status")
        assert code == 200 and status["written"] == 4 and status["database_up"] is True
    finally:
        svc.stop()
        metrics.stop()
