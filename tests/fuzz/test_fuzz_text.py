"""Fuzz the text decoders (issue 19 item 10): Lars INI files through every daemon's
config, and the HTTP request heads and query parameters of every listener (the metrics
listener of each daemon, the agent's /debug/module, the console's pages and API).
Each answers with a clear error (ConfigError; a 4xx), never a crash or a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lars.agent.config import AgentConfig, BalancerConfig
from lars.agent.metrics import module_handler
from lars.agent.regconfig import RegisterConfig
from lars.config import IniFile
from lars.console.config import ConsoleConfig
from lars.dns.service import DnsConfig
from lars.errors import ConfigError
from lars.obs.httpwire import MAX_QUERY_PARAMS, HttpError, head_end, parse_request
from lars.obs.listen import MetricsConfig
from lars.obs.server import HandlerError
from lars.reactor.config import ReactorConfig
from lars.reporter.config import ReporterConfig
from tests.fuzz.seeds import examples, mutated, seeds

FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Values a hand-edited file gets wrong: non-numbers, NaN and inf, negatives, overflow,
# Unicode digits, empty, huge.
NASTY = [
    "nan", "inf", "-inf", "1e400", "-1", "0", "1e-9", "9" * 40, "²", "٣", "\uff15", "0x10",
    "3_0", "", " ", "yes", "1.5.6", "\x00", "%(x)s", "127.0.0.1:99999", "[::1]:80", "off",
]  # fmt: skip

CONFIGS: dict[str, Callable[[IniFile], object]] = {
    "reactor": lambda ini: ReactorConfig.from_ini(ini, default_port=7778),
    "dns": DnsConfig.from_ini,
    "reporter": ReporterConfig.from_ini,
    "balancer": BalancerConfig.from_ini,
    "agent": AgentConfig.from_ini,
    "register": RegisterConfig.from_ini,
    "console": lambda ini: ConsoleConfig.from_ini(ini, {"LARS_CONSOLE_PASSWORD": "x" * 12}),
    "metrics": lambda ini: MetricsConfig.build("dns", ini, None),
}


def _keys(text: str) -> list[tuple[int, str]]:
    return [(m.start(2), m.group(1)) for m in re.finditer(r"^(\w+) *= *(.*)$", text, re.M)]


@st.composite
def ini_texts(draw: st.DrawFn) -> str:
    """A corpus file with some values replaced by nasty ones, or a mutated one."""
    if draw(st.booleans()):
        return draw(mutated("ini")).decode("utf-8", errors="replace")
    text = draw(st.sampled_from(seeds("ini"))).decode()
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        numbered = [i for i, line in enumerate(lines) if re.match(r"^\w+ *=", line)]
        i = draw(st.sampled_from(numbered))
        key = lines[i].split("=", 1)[0].strip()
        lines[i] = f"{key} = {draw(st.sampled_from(NASTY) | st.text(max_size=12))}"
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=examples(400))
@given(text=ini_texts(), which=st.sampled_from(sorted(CONFIGS)))
def test_every_config_takes_an_ini_file_or_says_why_not(text: str, which: str) -> None:
    try:
        ini = IniFile.from_string(text)
        CONFIGS[which](ini)
    except ConfigError as exc:
        assert str(exc)  # one clear line naming what is wrong


def test_nan_inf_and_unicode_digits_are_refused_for_every_numeric_setting() -> None:
    """Directed, not random: each numeric key of each sample file, set to each bad
    value, is a ConfigError (nothing slips through as a number)."""
    checked = 0
    for seed in seeds("ini"):
        text = seed.decode()
        for _, key in _keys(text):
            for bad in ("nan", "inf", "1e400", "²", "٣"):
                edited = re.sub(rf"^{key} *=.*$", f"{key} = {bad}", text, count=1, flags=re.M)
                ini = IniFile.from_string(edited)
                for build in CONFIGS.values():
                    try:
                        build(ini)
                    except ConfigError:
                        checked += 1
    assert checked > 100


@FUZZ
@given(head=mutated("http"))
def test_request_heads_parse_or_answer_an_http_error(head: bytes) -> None:
    end = head_end(head)
    assert end == -1 or 0 < end <= len(head)
    try:
        request = parse_request(head[: end if end > 0 else len(head)])
    except HttpError as exc:
        assert 400 <= exc.status <= 505 and str(exc)
        return
    assert request.method in ("GET", "HEAD")
    assert request.path.startswith("/") and len(request.query) <= MAX_QUERY_PARAMS


class _Agent:
    """What module_handler asks the agent: nothing held, nothing registered."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def module_view(self, modid: int, cmdid: int) -> None:
        self.asked.append((modid, cmdid))

    def registrations_view(self, modid: int, cmdid: int) -> list[Any]:
        return []


def queries() -> st.SearchStrategy[dict[str, str]]:
    value = st.sampled_from(NASTY) | st.text(max_size=12) | st.integers(-(2**40), 2**40).map(str)
    fuzzed = st.dictionaries(st.sampled_from(["modid", "cmdid", "x"]), value, max_size=3)
    corpus = mutated("query").map(
        lambda raw: dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    )
    return fuzzed | corpus


@FUZZ
@given(query=queries())
def test_agent_debug_module_takes_ascii_ids_or_answers_400(query: dict[str, str]) -> None:
    agent = _Agent()
    handle = module_handler(agent)  # type: ignore[arg-type]
    try:
        handle(query)
    except HandlerError as exc:
        assert exc.status in (400, 404)
    for modid, cmdid in agent.asked:  # only ids given as ASCII digits within int32
        assert 0 <= modid < 2**31 and 0 <= cmdid < 2**31
        assert query["modid"].strip() == str(modid).zfill(len(query["modid"].strip()))


# the console: pages and API, every integer query and path parameter


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from lars.console import build_console
    from lars.dbengine import init_schema, make_engine

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'lars.db'}")
    init_schema(engine)
    password = "fuzz-password-1"
    with TestClient(build_console(engine, password)) as client:
        response = client.post("/api/login", json={"password": password})
        assert response.status_code == 200
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client
    engine.dispose()


PATHS = [
    "/api/history?{q}", "/api/modules?{q}", "/api/modules/{a}/{b}", "/history?{q}",
    "/modules/{a}/{b}", "/modules/{a}/{b}/hosts.part", "/?{q}", "/api/hold?{q}",
]  # fmt: skip


@settings(
    FUZZ, max_examples=examples(150),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    path=st.sampled_from(PATHS),
    query=queries(),
    a=st.sampled_from(NASTY) | st.text(max_size=8),
    b=st.sampled_from(NASTY) | st.integers(0, 2**33).map(str),
)
def test_console_never_answers_500_to_a_query_or_path(
    console: Any, path: str, query: Mapping[str, str], a: str, b: str
) -> None:
    q = "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    url = path.format(q=q, a=quote(a, safe="") or "x", b=quote(b, safe="") or "x")
    response = console.get(url, follow_redirects=False)
    assert response.status_code < 500, (url, response.status_code, response.text[:200])
