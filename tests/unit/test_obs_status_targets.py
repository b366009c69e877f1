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
