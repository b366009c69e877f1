"""Console login state: password hashing, sessions, CSRF tokens, throttling, config."""

from __future__ import annotations

import pytest

from lars.config import IniFile
from lars.console.auth import LoginThrottle, PasswordHash, SessionStore
from lars.console.config import PASSWORD_ENV, ConsoleConfig, check_password
from lars.errors import ConfigError


def test_password_hash_verifies_only_the_password() -> None:
    hashed = PasswordHash("correct horse")
    assert hashed.verify("correct horse")
    assert not hashed.verify("correct horsE")
    assert not hashed.verify("")
    assert not hashed.verify("x" * 5000)
    assert not hashed.verify("\ud800 lone surrogate")
    assert "correct" not in repr(hashed)


def test_password_hash_keeps_no_plain_text() -> None:
    hashed = PasswordHash("s3cret-pass")
    assert all(b"s3cret" not in bytes(v) for v in (hashed._salt, hashed._digest))


@pytest.mark.parametrize("bad", ["", "short"])
def test_no_default_and_no_short_password(bad: str) -> None:
    with pytest.raises(ConfigError, match="password"):
        check_password(bad)
    with pytest.raises(ConfigError):
        PasswordHash(bad)


def test_sessions_expire_after_idle_ttl_and_slide_on_use() -> None:
    store = SessionStore(ttl=100.0)
    session = store.create(now=0.0)
    assert store.get(session.token, now=90.0) is session  # extends to 190
    assert store.get(session.token, now=180.0) is session
    assert store.get(session.token, now=281.0) is None
    assert store.get(session.token, now=0.0) is None  # removed for good
    assert store.get(None, now=0.0) is None
    assert store.get("forged", now=0.0) is None


def test_session_tokens_and_csrf_are_unique_and_checked() -> None:
    store = SessionStore(ttl=10.0)
    a, b = store.create(0.0), store.create(0.0)
    assert len({a.token, b.token, a.csrf, b.csrf}) == 4
    assert a.csrf_ok(a.csrf)
    assert not a.csrf_ok(b.csrf)
    assert not a.csrf_ok(None)
    assert not a.csrf_ok("")
    store.drop(a.token)
    store.drop(None)
    assert store.get(a.token, 1.0) is None
    assert store.get(b.token, 1.0) is b


def test_session_store_is_bounded() -> None:
    store = SessionStore(ttl=1000.0, max_sessions=3)
    sessions = [store.create(float(i)) for i in range(5)]
    assert len(store) == 3
    assert store.get(sessions[0].token, 5.0) is None
    assert store.get(sessions[4].token, 5.0) is sessions[4]


def test_expired_sessions_are_pruned_on_create() -> None:
    store = SessionStore(ttl=10.0)
    for _ in range(5):
        store.create(0.0)
    store.create(100.0)
    assert len(store) == 1


def test_login_throttle_blocks_after_limit_within_window() -> None:
    throttle = LoginThrottle(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert not throttle.blocked("10.0.0.1", t)
        throttle.failed("10.0.0.1", t)
    assert throttle.blocked("10.0.0.1", 3.0)
    assert not throttle.blocked("10.0.0.2", 3.0)  # per client
    assert not throttle.blocked("10.0.0.1", 61.0)  # failures at 0 and 1 left the window
    throttle.failed("10.0.0.1", 61.0)
    assert not throttle.blocked("10.0.0.1", 61.0)
    throttle.failed("10.0.0.1", 61.0)
    assert throttle.blocked("10.0.0.1", 61.5)
    throttle.succeeded("10.0.0.1")
    assert not throttle.blocked("10.0.0.1", 61.5)


def test_login_throttle_says_how_long_to_wait() -> None:
    throttle = LoginThrottle(limit=3, window=60.0)
    for t in (0.0, 10.0, 20.0):
        assert throttle.retry_after("10.0.0.1", t) is None
        throttle.failed("10.0.0.1", t)
    assert throttle.retry_after("10.0.0.1", 25.0) == 35.0  # the failure at 0 leaves at 60
    assert throttle.retry_after("10.0.0.2", 25.0) is None
    assert throttle.retry_after("10.0.0.1", 60.0) is None
    assert not throttle.blocked("10.0.0.1", 60.0)


def test_login_throttle_is_bounded_in_clients() -> None:
    throttle = LoginThrottle(limit=1, window=60.0, max_clients=10)
    for i in range(25):
        throttle.failed(f"c{i}", 0.0)
    assert len(throttle._failures) <= 10


def test_config_password_from_environment_beats_file() -> None:
    ini = IniFile.from_string("[console]\npassword = from-the-file\nport = 9000\n")
    assert ConsoleConfig.from_ini(ini, {}).password == "from-the-file"
    config = ConsoleConfig.from_ini(ini, {PASSWORD_ENV: "from-the-env"})
    assert config.password == "from-the-env"
    assert config.port == 9000
    assert "from-the" not in repr(config)


def test_config_defaults_and_mysql_section() -> None:
    config = ConsoleConfig.from_ini(IniFile.empty(), {})
    assert config.password == ""
    assert config.db_url == "sqlite:///lars.db"
    assert (config.ip, config.port) == ("127.0.0.1", 7780)
    ini = IniFile.from_string("[mysql]\ndb_host = db.example\ndb_name = lars_dns\n")
    assert ConsoleConfig.from_ini(ini, {}).db_url.startswith("mysql+pymysql://root@db.example:")


@pytest.mark.parametrize("text", ["[console]\nport = 70000\n", "[console]\nstale_after = 0\n"])
def test_config_rejects_bad_values(text: str) -> None:
    with pytest.raises(ConfigError):
        ConsoleConfig.from_ini(IniFile.from_string(text), {})


def test_generated_passwords_are_random_and_accepted() -> None:
    from lars.console.config import generate_password

    first, second = generate_password(), generate_password()
    assert first != second and len(first) >= 16
    check_password(first)
    assert PasswordHash(first).verify(first)
