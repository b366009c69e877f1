"""Review findings on the route service, each shown by a failing test first."""

from __future__ import annotations

import socket
import threading

import pytest

from lars import dbengine
from lars.dns.service import DnsConfig, DnsService
from lars.errors import StoreUnavailable
from lars.reactor import ReactorConfig
from tests.integration.dns_wire import wait_for


def test_a_database_that_accepts_but_never_answers_is_an_outage(
    no_leaks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen server or a partitioned network (no RST) used to hang the poller in a
    socket read with no timeout: no outage logged, no retry, for ~15 minutes."""
    monkeypatch.setattr(dbengine, "MYSQL_IO_TIMEOUT", 0.5)  # the default is 60 s
    # The kernel completes the handshake into the backlog; nobody ever answers.
    blackhole = socket.create_server(("127.0.0.1", 0))
    port = blackhole.getsockname()[1]
    service = DnsService(
        DnsConfig(
            db_url=f"mysql+pymysql://root@127.0.0.1:{port}/lars",
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            retry_initial=0.05,
            retry_max=0.2,
        )
    )
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            service.start()
        except BaseException as exc:  # reported to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=start, name="test-dns-start")
    thread.start()
    try:
        wait_for(
            lambda: service.stats().poller.outages == 1, timeout=30.0, what="the outage logged"
        )
        assert service.stats().poller.in_outage
        assert service.port == 0  # still not listening: no table was ever loaded
    finally:
        service.request_stop()
        blackhole.close()  # resets the backlog: an unfixed, hung read ends too
        thread.join(30.0)
        service.stop()
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable)
