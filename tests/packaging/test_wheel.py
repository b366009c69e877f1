"""The wheel: what it ships (templates, static files, SQL, py.typed), what it does not
(tests), and metadata that keeps the base install light."""

from __future__ import annotations

import email
import email.message
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from this checkout (pip's isolated build, as a user's would be)."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir",
         "--wheel-dir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("lars_platform-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def package_files(pattern: str) -> list[str]:
    """Files of the source package matching pattern, as wheel paths."""
    found = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "lars").rglob(pattern))
    assert found, f"no {pattern} in the source tree"
    return found


def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_ships_templates_static_files_and_stubs(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for pattern in ("templates/*.html", "static/*", "*.pyi"):
        missing = [f for f in package_files(pattern) if f not in names]
        assert missing == [], pattern
    assert "lars/py.typed" in names
    assert "lars/console/templates/base.html" in names


def test_ships_the_sql_schema(wheel: zipfile.ZipFile) -> None:
    sql = [n for n in wheel.namelist() if n.endswith(".sql")]
    assert any(n.endswith("/lars_dns.sql") for n in sql), sql
    assert all(n.startswith("lars/") for n in sql), sql


def test_ships_every_module_and_no_tests(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert [f for f in package_files("*.py") if f not in names] == []
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"lars"}
    assert not [n for n in names if "/tests/" in n or n.split("/")[-1].startswith("test_")]


def test_license_and_metadata(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["Author"] == "lars developers"
    assert meta.get_all("Project-URL") and meta["Keywords"]
    assert "Typing :: Typed" in meta.get_all("Classifier", [])


def test_the_base_install_is_protobuf_only(wheel: zipfile.ZipFile) -> None:
    meta = metadata(wheel)
    requires = meta.get_all("Requires-Dist", [])
    base = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0].strip() for r in base] == ["protobuf"], base
    assert set(meta.get_all("Provides-Extra", [])) >= {"server", "console", "all", "test", "dev"}

    def extra(name: str) -> str:
        return " ".join(r.lower() for r in requires if f"extra == '{name}'" in r
                        or f'extra == "{name}"' in r)  # fmt: skip

    server = ("uvloop", "mmh3", "sqlalchemy", "pymysql", "prometheus-client")
    console = ("fastapi", "uvicorn", "jinja2", "python-multipart")
    for name, packages in [("server", server), ("console", server + console),
                           ("all", server + console), ("test", server + console + ("pytest",)),
                           ("dev", server + console + ("pytest", "ruff", "mypy"))]:  # fmt: skip
        assert [p for p in packages if p not in extra(name)] == [], name
    assert [p for p in console if p in extra("server")] == []
