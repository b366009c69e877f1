"""Which listener `lars status` asks: named, or this host's agent and then a `lars up`."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from lars.errors import NotAnswering
from lars.obs.status import base_urls, first_answer


def _args(metrics: str | None = None, daemon: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(metrics=metrics, daemon=daemon)


def test_named_listener_or_daemon_is_the_only_target() -> None:
    assert base_urls(_args(metrics="10.1.2.3:9000")) == ["http://10.1.2.3:9000"]
    assert base_urls(_args(daemon="reporter")) == ["http://127.0.0.1:7782"]
    with pytest.raises(NotAnswering):
        base_urls(_args(metrics="off"))


def test_default_asks_the_agent_then_lars_up() -> None:
    assert base_urls(_args()) == ["http://127.0.0.1:7783", "http://127.0.0.1:7781"]


def test_first_answer_falls_back_and_reports_the_first_failure() -> None:
    asked: list[str] = []

    def get(url: str, timeout: float) -> tuple[int, Any]:
        asked.append(url)
        if ":7783" in url:
            raise NotAnswering(f"no answer from {url}: refused")
        return 200, {"daemon": "up"}

    bases = ["http://127.0.0.1:7783", "http://127.0.0.1:7781"]
    assert first_answer(bases, "/status", 1.0, get) == (
        "http://127.0.0.1:7781",
        200,
        {"daemon": "up"},
    )
    assert asked == ["http://127.0.0.1:7783/status", "http://127.0.0.1:7781/status"]

    def nobody(url: str, timeout: float) -> tuple[int, Any]:
        raise NotAnswering(f"no answer from {url}: refused")

    with pytest.raises(NotAnswering, match="7783"):
        first_answer(bases, "/status", 1.0, nobody)


def test_module_view_shows_runs_of_successes_failures_or_none() -> None:
    from lars.obs.status import render_module

    def host(port: int, succ: int, err: int) -> dict[str, Any]:
        return {"ip": "10.0.0.1", "port": port, "state": "idle", "vsucc": 180, "verr": 0,
                "rsucc": succ, "rerr": err, "contin_succ": succ, "contin_err": err,
                "window_age": 1.0}  # fmt: skip

    doc = {"modid": 1, "cmdid": 1, "shard": 2, "route_state": "ready", "route_age": 0.5,
           "hosts": [host(1, 3, 0), host(2, 0, 2), host(3, 0, 0)]}  # fmt: skip
    rows = render_module(doc).splitlines()[2:]
    assert [row.split()[7] for row in rows] == ["+3", "-2", "0"]
