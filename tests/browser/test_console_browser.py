"""The console in headless Chromium (Debian's package, driven by Playwright; no download).

A person logs in, adds a host and sees it listed; a route-service client subscribed to the
module receives the pushed change; an overloaded host turns red without a page reload.
Screenshots go to test-artifacts/ (kept by CI as artifacts).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine, insert

from lars.console import ConsoleServer, build_console
from lars.db import server_call_status
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.protocol import MsgId, lars_pb2
from lars.protocol.ipv4 import dotted_to_uint, wire_to_dotted
from lars.reactor import FrameDecoder, ReactorConfig, encode
from lars.routes.admin import RouteAdmin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-password-1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


def _chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    reason = f"NO CHROMIUM at {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason + " -- CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Stack:
    engine: Engine
    console: ConsoleServer
    admin: RouteAdmin


@pytest.fixture
def stack(sqlite_url: str) -> Iterator[Stack]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    console = ConsoleServer(
        build_console(engine, PASSWORD, refresh_interval=1.0, stale_after=60.0), "127.0.0.1", 0
    )
    console.start()
    try:
        yield Stack(engine, console, RouteAdmin(engine))
    finally:
        console.stop()
        engine.dispose()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def log_in(page: Page, stack: Stack) -> None:
    page.goto(stack.console.url + "/")
    assert "/login" in page.url
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Modules')")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class RouteSubscriber:
    """A raw route-service client: asks for a module, then collects pushed responses."""

    def __init__(self, port: int, modid: int, cmdid: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.decoder = FrameDecoder()
        body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        self.sock.sendall(encode(MsgId.GET_ROUTE_REQUEST, body))

    def next_hosts(self) -> set[tuple[str, int]]:
        while True:
            for msgid, body in self.decoder.feed(self.sock.recv(65536) or b""):
                assert msgid == MsgId.GET_ROUTE_RESPONSE
                reply = lars_pb2.GetRouteResponse.FromString(body)
                return {(wire_to_dotted(h.ip), h.port) for h in reply.host}

    def close(self) -> None:
        self.sock.close()


def test_log_in_add_a_host_and_the_route_service_pushes_it(
    page: Page, stack: Stack, sqlite_url: str
) -> None:
    stack.admin.add_host(1, 1, "10.0.0.1", 80)
    dns = DnsService(
        DnsConfig(
            db_url=sqlite_url, reactor=ReactorConfig(ip="127.0.0.1", port=0), poll_interval=0.2
        )
    )
    dns.start()
    subscriber = RouteSubscriber(dns.port, 1, 1)
    try:
        assert subscriber.next_hosts() == {("10.0.0.1", 80)}
        log_in(page, stack)
        page.click("a[href='/modules/1/1']")
        page.fill("#add-host input[name=ip]", "10.0.0.2")
        page.fill("#add-host input[name=port]", "8081")
        page.click("#add-host button[type=submit]")
        page.wait_for_selector("tr[data-host='10.0.0.2:8081']")
        assert "Host 10.0.0.2:8081 added" in page.inner_text(".flash")
        # The same edit reached a subscribed route-service client as a push.
        assert subscriber.next_hosts() == {("10.0.0.1", 80), ("10.0.0.2", 8081)}
        screenshot(page, "console-host-added.png")
    finally:
        subscriber.close()
        dns.stop()


def test_field_errors_appear_beside_the_field(page: Page, stack: Stack) -> None:
    log_in(page, stack)
    page.fill("#add-module input[name=modid]", "12")
    page.fill("#add-module input[name=cmdid]", "3")
    page.fill("#add-module input[name=ip]", "10.0.0.300")
    page.fill("#add-module input[name=port]", "70000")
    page.click("#add-module button[type=submit]")
    assert "dotted IPv4" in page.inner_text("#add-ip-err")
    assert "1..65535" in page.inner_text("#add-port-err")
    assert page.input_value("#add-module input[name=modid]") == "12"
    assert stack.admin.list_routes() == []


def _status(
    engine: Engine,
    ip: str,
    port: int,
    caller: str,
    succ: int,
    err: int,
    age: float,
    overload: bool = False,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(server_call_status).values(
                modid=10,
                cmdid=1,
                ip=dotted_to_uint(ip),
                port=port,
                caller=dotted_to_uint(caller),
                succ_cnt=succ,
                err_cnt=err,
                ts=int(time.time() - age),
                overload="1" if overload else "0",
            )
        )


def test_overloaded_host_is_highlighted_without_a_reload(page: Page, stack: Stack) -> None:
    for ip in ("10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14"):
        stack.admin.add_host(10, 1, ip, 9000)
    _status(stack.engine, "10.0.1.11", 9000, "192.168.1.21", 4810, 37, 2)
    _status(stack.engine, "10.0.1.11", 9000, "192.168.1.22", 3904, 41, 3)
    _status(stack.engine, "10.0.1.12", 9000, "192.168.1.21", 3120, 210, 1)
    _status(stack.engine, "10.0.1.13", 9000, "192.168.1.22", 980, 5, 600)
    log_in(page, stack)
    page.goto(stack.console.url + "/modules/10/1")
    page.fill("#descriptions input[name=mod_desc]", "payments")
    page.fill("#descriptions input[name=cmd_desc]", "charge card")
    page.click("#descriptions button[type=submit]")
    page.wait_for_selector(".flash")
    assert page.locator("tr.state-overload").count() == 0
    page.evaluate("window.__notReloaded = true")
    # The reporter marks 10.0.1.12 overloaded; the page picks it up by itself.
    _status(stack.engine, "10.0.1.12", 9000, "192.168.1.22", 35, 180, 1, overload=True)
    row = "tr.state-overload[data-host='10.0.1.12:9000']"
    page.wait_for_selector(row)
    assert page.evaluate("window.__notReloaded === true")
    background = page.eval_on_selector(row + " td", "td => getComputedStyle(td).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    assert page.locator("tr.state-stale[data-host='10.0.1.13:9000']").count() == 1
    assert "192.168.1.21, 192.168.1.22" in page.inner_text(row)
    assert page.locator("svg.chart rect.chart-bar.state-overload").count() == 1
    page.wait_for_function(
        "document.querySelector('[data-updated]').textContent.startsWith('updated')"
    )
    screenshot(page, "console-module-health.png")
    page.goto(stack.console.url + "/")
    assert page.locator("tr.state-overload a[href='/modules/10/1']").count() == 1
    screenshot(page, "console-modules.png")


def test_search_filters_rows_as_you_type(page: Page, stack: Stack) -> None:
    for modid in (1, 2, 30):
        stack.admin.add_host(modid, 1, "10.0.0.1", 80)
    log_in(page, stack)
    page.fill("input[type=search]", "30")
    assert page.locator("#modules-table tr[data-search]:visible").count() == 1
    page.fill("input[type=search]", "")
    assert page.locator("#modules-table tr[data-search]:visible").count() == 3


# Operator fixes (issue 12): each was seen in this browser before it was fixed.


def test_a_stale_overloaded_host_reads_stale_not_red(page: Page, stack: Stack) -> None:
    """Its last report (853 s ago) said overloaded: it stayed red, as if still known."""
    stack.admin.add_host(10, 1, "10.0.1.11", 9000)
    stack.admin.add_host(10, 1, "10.0.1.12", 9000)
    _status(stack.engine, "10.0.1.11", 9000, "192.168.1.21", 40, 160, 853, overload=True)
    _status(stack.engine, "10.0.1.12", 9000, "192.168.1.21", 400, 1, 2)
    log_in(page, stack)
    page.goto(stack.console.url + "/modules/10/1")
    row = page.locator("tr[data-host='10.0.1.11:9000']")
    assert row.get_attribute("class") == "state-stale"
    assert row.locator(".badge").first.inner_text() == "stale"
    assert page.locator("tr.state-overload").count() == 0
    stale_bg = row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert stale_bg == "rgb(255, 244, 224)"  # --warn-bg (amber), not --bad-bg (red)
    assert "14 min" in row.inner_text()  # the age of the last report is still shown
    screenshot(page, "console-stale-host.png")
    page.goto(stack.console.url + "/")
    assert page.locator("tr.state-stale a[href='/modules/10/1']").count() == 1


def test_the_state_filter_applies_on_change(page: Page, stack: Stack) -> None:
    """The text filter applied as you typed; the state filter waited for a click."""
    for modid in (1, 2):
        stack.admin.add_host(modid, 1, "10.0.0.1", 80)
    stack.admin.add_host(10, 1, "10.0.1.12", 9000)
    _status(stack.engine, "10.0.1.12", 9000, "192.168.1.22", 35, 180, 1, overload=True)
    log_in(page, stack)
    assert page.locator("#modules-table tr[data-search]").count() == 3
    with page.expect_navigation():
        page.select_option("select[name=state]", "overload")  # no click on Filter
    assert "state=overload" in page.url
    rows = page.locator("#modules-table tr[data-search]")
    assert rows.count() == 1 and rows.first.locator("a[href='/modules/10/1']").count() == 1
    assert page.input_value("select[name=state]") == "overload"


def test_the_host_table_scrolls_inside_its_card_at_420px(browser: Browser, stack: Stack) -> None:
    """At 420 px the host table ran out of its card and widened the page."""
    for i in range(1, 4):
        stack.admin.add_host(10, 1, f"10.0.1.{i}", 9000)
        _status(stack.engine, f"10.0.1.{i}", 9000, "192.168.100.201", 4810, 37, 2)
        _status(stack.engine, f"10.0.1.{i}", 9000, "192.168.100.202", 3904, 41, 3)
    context = browser.new_context(viewport={"width": 420, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        narrow = context.new_page()
        log_in(narrow, stack)
        narrow.goto(stack.console.url + "/modules/10/1")
        narrow.wait_for_selector("tr[data-host='10.0.1.3:9000']")
        sizes = narrow.evaluate(
            """() => {
              const card = document.querySelector('#hosts');
              const box = card.querySelector('.table-scroll');
              return {page: document.documentElement.scrollWidth,
                      cardRight: card.getBoundingClientRect().right,
                      tableRight: card.querySelector('table').getBoundingClientRect().right,
                      boxScroll: box.scrollWidth, boxWidth: box.clientWidth,
                      tableScroll: card.querySelector('table').scrollWidth,
                      tableWidth: card.querySelector('table').clientWidth,
                      chartRight: card.querySelector('svg.chart').getBoundingClientRect().right};
            }"""
        )
        assert sizes["page"] <= 420, sizes  # nothing widens the page
        assert sizes["cardRight"] <= 420 and sizes["chartRight"] <= sizes["cardRight"], sizes
        # The table scrolls in the card: in its box, or itself (a block table on a phone).
        in_box = sizes["boxScroll"] > sizes["boxWidth"]
        assert in_box or sizes["tableScroll"] > sizes["tableWidth"], sizes
        screenshot(narrow, "console-hosts-420px.png")
        for path in ("/", "/versions", "/history"):  # the other pages fit too
            narrow.goto(stack.console.url + path)
            width = narrow.evaluate("document.documentElement.scrollWidth")
            assert width <= 420, (path, width)
    finally:
        context.close()


def test_a_throttled_login_says_so_with_429(page: Page, stack: Stack) -> None:
    """The form answered 401 'wrong password, or too many attempts' to a lockout."""
    page.goto(stack.console.url + "/login")
    for _ in range(5):
        page.fill("input[name=password]", "not-the-password")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("button[type=submit]")
        assert answer.value.status == 401
        assert "Wrong password." in page.inner_text("main")
    page.fill("input[name=password]", PASSWORD)  # even the right one, while locked out
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 429
    wait = int(answer.value.headers["retry-after"])
    assert 1 <= wait <= 60
    assert "Too many failed logins" in page.inner_text("main")
    screenshot(page, "console-login-throttled.png")


def test_every_page_fits_a_390px_phone(browser: Browser, stack: Stack) -> None:
    """At 390 px "Log out" was clipped and tables overflowed the page."""
    for i in range(1, 4):
        stack.admin.add_host(10, 1, f"10.0.1.{i}", 9000)
        _status(stack.engine, f"10.0.1.{i}", 9000, "192.168.100.201", 4810, 37, 2)
    stack.admin.drain(10, 1, "10.0.1.2", 9000)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        phone = context.new_page()
        log_in(phone, stack)
        for path in ("/", "/modules/10/1", "/versions", "/history", "/accounts"):
            phone.goto(stack.console.url + path)
            phone.wait_for_selector("main")
            sizes = phone.evaluate(
                """() => {
                  const out = document.querySelector('.logout button').getBoundingClientRect();
                  const tables = [...document.querySelectorAll('main table')].map(t => {
                    const r = t.getBoundingClientRect();
                    let box = t.parentElement;
                    while (box && getComputedStyle(box).overflowX === 'visible')
                      box = box.parentElement;
                    return {right: r.right, clipped: box && box.getBoundingClientRect().right};
                  });
                  return {page: document.documentElement.scrollWidth,
                          logoutLeft: out.left, logoutRight: out.right, logoutTop: out.top,
                          tables};
                }"""
            )  # fmt: skip
            assert sizes["page"] <= 390, (path, sizes)
            assert sizes["logoutLeft"] >= 0 and sizes["logoutRight"] <= 390, (path, sizes)
            for table in sizes["tables"]:  # wide tables scroll inside a box on the page
                assert table["right"] <= 390 or (table["clipped"] or 0) <= 390, (path, sizes)
            screenshot(phone, f"console-390px{path.replace('/', '-') or '-modules'}.png")
    finally:
        context.close()
