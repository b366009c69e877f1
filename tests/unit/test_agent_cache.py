"""Route snapshot file: round trip, atomic replace, bad files ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lars.agent.cache import RouteCache
from lars.protocol import dotted_to_wire

ROUTES = [
    (1, 2, [(dotted_to_wire("192.168.1.177"), 9000), (dotted_to_wire("10.0.0.1"), 1)]),
    (3, 3, []),
]


def test_round_trip_keeps_wire_addresses(tmp_path: Path) -> None:
    cache = RouteCache(tmp_path / "routes.json")
    cache.save(ROUTES, 1700000000.5)
    routes, saved_at = cache.load()
    assert routes == ROUTES and saved_at == 1700000000.5
    doc = json.loads((tmp_path / "routes.json").read_text())
    assert doc["routes"][0]["hosts"][0] == ["192.168.1.177", 9000]  # readable
    assert not (tmp_path / "routes.json.tmp").exists()


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert RouteCache(tmp_path / "none.json").load() == ([], None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"format": 2, "routes": []}',
        '{"format": 1}',
        '{"format": 1, "routes": [{"modid": 1}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [["999.1.1.1", 1]]}]}',
        '{"format": 1, "routes": [{"modid": "x", "cmdid": 1, "hosts": []}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [1]}]}',
        "\xff\xfe garbage",
    ],
)
def test_malformed_file_is_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "routes.json"
    path.write_text(text, encoding="utf-8")
    assert RouteCache(path).load() == ([], None)


def test_binary_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert RouteCache(path).load() == ([], None)


def test_unreadable_path_is_ignored(tmp_path: Path) -> None:
    assert RouteCache(tmp_path).load() == ([], None)  # a directory


def test_save_replaces_previous_file(tmp_path: Path) -> None:
    cache = RouteCache(tmp_path / "routes.json")
    cache.save(ROUTES, 1.0)
    cache.save(ROUTES[:1], 2.0)
    assert cache.load() == (ROUTES[:1], 2.0)
