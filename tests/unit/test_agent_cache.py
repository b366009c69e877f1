"""Route snapshot file: round trip, atomic replace, bad files ignored, old files load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lars.agent.cache import CachedRoute, RouteCache
from lars.protocol import dotted_to_wire

ROUTES = [
    CachedRoute(
        1, 2, [(dotted_to_wire("192.168.1.177"), 9000), (dotted_to_wire("10.0.0.1"), 1)], 5.0
    ),
    CachedRoute(3, 3, []),
    CachedRoute(4, 3, [(dotted_to_wire("10.0.0.9"), 80)], 7.0, empty_since=9.5),
    CachedRoute(
        5, 1, [(1, 80), (dotted_to_wire("10.0.0.2"), 81)], 8.0, weights={(1, 80): 4}
    ),  # lars-only host weights, an optional field
    CachedRoute(6, 1, [(1, 81)], 8.5, version=1_800_000_000),  # the table version (issue 22)
]


def test_round_trip_keeps_wire_addresses(tmp_path: Path) -> None:
    cache = RouteCache(tmp_path / "routes.json")
    cache.save(ROUTES, 1700000000.5)
    routes, saved_at = cache.load()
    assert routes == ROUTES and saved_at == 1700000000.5
    doc = json.loads((tmp_path / "routes.json").read_text())
    assert doc["routes"][0]["hosts"][0] == ["192.168.1.177", 9000]  # readable
    assert doc["format"] == 1  # unchanged: older agents still read the file
    assert "empty_since" not in doc["routes"][0] and doc["routes"][2]["empty_since"] == 9.5
    assert "weights" not in doc["routes"][0]
    assert doc["routes"][3]["weights"] == [["0.0.0.1", 80, 4]]
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
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "at": "x"}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "empty_since": true}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "version": "7"}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "version": 0}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "version": 4294967296}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "version": true}]}',
        '{"format": 1, "routes": [{"modid": 1, "cmdid": 1, "hosts": [], "version": 1.5}]}',
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


def test_a_file_of_the_previous_version_loads_as_current_routes(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(
        '{"format":1,"saved_at":12.5,"routes":[{"modid":1,"cmdid":2,'
        '"hosts":[["10.0.0.1",80]]},{"modid":3,"cmdid":3,"hosts":[]}]}',
        encoding="utf-8",
    )
    entries, saved_at = RouteCache(path).load()
    assert saved_at == 12.5
    assert entries == [
        CachedRoute(1, 2, [(dotted_to_wire("10.0.0.1"), 80)]),
        CachedRoute(3, 3, []),
    ]
    assert not any(e.kept for e in entries)
